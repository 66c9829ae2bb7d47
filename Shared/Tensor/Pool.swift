extension Ops {
    /// Max pooling of a channels-last `[B, H, W, C]` tensor with a square kernel equal to
    /// its stride and no padding; trailing rows/columns that do not fill a window are
    /// dropped (`ceil_mode=False`). ref: torch.nn.functional.max_pool2d(kernel_size=k, stride=k)
    /// applied to `x.permute(0, 3, 1, 2)` (SAM 2's `do_pool`)
    public static func maxPool2dNHWC(_ x: Tensor, kernel k: Int) -> Tensor {
        precondition(x.rank == 4 && k > 0, "maxPool2dNHWC: x \(x.shape) must be [B, H, W, C], kernel \(k)")
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ho = h / k, wo = w / k
        return Tensor.uninitialized([b, ho, wo, c]) { o in
            x.data.withUnsafeBufferPointer { xp in
                guard let src = xp.baseAddress, let dst = o.baseAddress else { return }
                for bi in 0..<b { for oy in 0..<ho { for ox in 0..<wo {
                    let out = dst + ((bi * ho + oy) * wo + ox) * c
                    out.update(from: src + ((bi * h + oy * k) * w + ox * k) * c, count: c)
                    for dy in 0..<k { for dx in 0..<k where dy != 0 || dx != 0 {
                        let row = src + ((bi * h + oy * k + dy) * w + ox * k + dx) * c
                        // NaN propagates as in PyTorch's max_pool2d.
                        for j in 0..<c where row[j] > out[j] || row[j].isNaN { out[j] = row[j] }
                    } }
                } } }
            }
        }
    }
}

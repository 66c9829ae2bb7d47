import Foundation
import Tensor
import XCTest

/// Fast kernels vs the naive Double references in ReferenceKernels.swift, over odd and
/// tiny shapes (1×1, primes, 3 channels, groups, strides with padding, dilation,
/// non-square) that exercise every edge/blocking path.
final class KernelReferenceTests: XCTestCase {
    var rng = SeededRNG(seed: 0x5E6F_1077)

    func testLinear() {
        for (lead, inF, outF, bias) in [([1], 1, 1, true), ([7], 13, 5, true), ([2, 3], 17, 1, false),
                                        ([1, 1], 64, 33, true), ([5, 11], 3, 29, false)] {
            let x = rng.tensor(lead + [inF]), w = rng.tensor([outF, inF]), b = bias ? rng.tensor([outF]) : nil
            assertClose(Ops.linear(x, weight: w, bias: b), Ref.linear(x, w, b), tol: Tol.gemmRelTol, "linear \(lead) \(inF)->\(outF)")
        }
    }

    func testMatmulTransposesAndBroadcast() {
        let cases: [([Int], [Int], Bool, Bool)] = [
            ([1, 1], [1, 1], false, false), ([7, 13], [13, 5], false, false), ([13, 7], [13, 5], true, false),
            ([7, 13], [5, 13], false, true), ([13, 7], [5, 13], true, true), ([2, 3, 5, 7], [2, 3, 7, 4], false, false),
            ([3, 1, 5, 6], [4, 2, 6], false, true), ([2, 6, 5], [6, 3], true, false), ([2, 9, 11], [11, 3], false, false),
            ([1, 4, 7], [3, 7, 2], false, false),
        ]
        for (sa, sb, ta, tb) in cases {
            let a = rng.tensor(sa), b = rng.tensor(sb)
            assertClose(Ops.matmul(a, b, transposeA: ta, transposeB: tb), Ref.matmul(a, b, transA: ta, transB: tb),
                        tol: Tol.gemmRelTol, "matmul \(sa)\(ta ? "ᵀ" : "") \(sb)\(tb ? "ᵀ" : "")")
        }
        let a = rng.tensor([2, 3, 4]), b = rng.tensor([2, 4, 5])
        assertClose(Ops.matmul(a, b, alpha: 0.25), Ref.matmul(a, b, transA: false, transB: false).data.map { $0 * 0.25 }
                    .withShape([2, 3, 5]), tol: Tol.gemmRelTol, "matmul alpha")
    }

    func testConv2d() {
        // (n, cin, h, w, cout, kh, kw, stride, pad, dilation, groups, bias)
        typealias C = (Int, Int, Int, Int, Int, Int, Int, (Int, Int), (Int, Int), (Int, Int), Int, Bool)
        let cases: [C] = [
            (1, 1, 1, 1, 1, 1, 1, (1, 1), (0, 0), (1, 1), 1, true),     // 1x1 everything
            (2, 3, 7, 13, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1, true),    // primes, 3 channels
            (1, 3, 13, 7, 5, 3, 3, (2, 2), (1, 1), (1, 1), 1, false),   // stride 2 + padding
            (1, 4, 11, 10, 3, 3, 3, (1, 1), (2, 2), (2, 2), 1, true),   // dilation 2
            (2, 4, 6, 5, 6, 3, 3, (1, 1), (1, 1), (1, 1), 2, true),     // groups 2
            (1, 6, 9, 8, 6, 3, 3, (2, 2), (1, 1), (1, 1), 6, true),     // depthwise stride 2
            (1, 3, 7, 7, 6, 5, 5, (1, 1), (2, 2), (1, 1), 3, false),    // depthwise multiplier 2
            (1, 5, 8, 9, 5, 3, 3, (1, 1), (2, 2), (2, 2), 5, true),     // depthwise dilation 2
            (2, 5, 4, 3, 7, 1, 1, (1, 1), (0, 0), (1, 1), 1, true),     // 1x1 direct GEMM path
            (1, 3, 16, 12, 8, 4, 4, (4, 4), (0, 0), (1, 1), 1, true),   // patch embed
            (1, 2, 9, 11, 3, 2, 3, (2, 1), (1, 0), (1, 2), 1, true),    // non-square everything
            (1, 2, 5, 5, 2, 3, 3, (3, 3), (3, 3), (1, 1), 1, true),     // padding >= kernel/2, big stride
            (1, 4, 6, 6, 8, 1, 1, (2, 2), (0, 0), (1, 1), 4, false),    // grouped 1x1 stride 2
        ]
        for (n, cin, h, w, cout, kh, kw, s, p, d, g, hasBias) in cases {
            let x = rng.tensor([n, cin, h, w]), wt = rng.tensor([cout, cin / g, kh, kw]), b = hasBias ? rng.tensor([cout]) : nil
            let got = Ops.conv2d(x, weight: wt, bias: b, stride: Size2(s.0, s.1), padding: Size2(p.0, p.1),
                                 dilation: Size2(d.0, d.1), groups: g)
            let want = Ref.conv2d(x, wt, b, stride: s, padding: p, dilation: d, groups: g)
            assertClose(got, want, tol: Tol.convRelTol, "conv2d x\([n, cin, h, w]) k\(kh)x\(kw) s\(s) p\(p) d\(d) g\(g)")
        }
    }

    func testConvTranspose2d() {
        // (n, cin, h, w, coutG, kh, kw, stride, pad, outPad, dilation, groups)
        typealias C = (Int, Int, Int, Int, Int, Int, Int, (Int, Int), (Int, Int), (Int, Int), (Int, Int), Int)
        let cases: [C] = [
            (1, 1, 1, 1, 1, 1, 1, (1, 1), (0, 0), (0, 0), (1, 1), 1),
            (2, 4, 3, 5, 3, 2, 2, (2, 2), (0, 0), (0, 0), (1, 1), 1),   // SAM output upscaling
            (1, 3, 4, 4, 2, 3, 3, (2, 2), (1, 1), (1, 1), (1, 1), 1),
            (1, 4, 3, 5, 2, 3, 2, (1, 2), (1, 0), (0, 1), (2, 1), 2),
            (1, 3, 7, 2, 5, 3, 3, (3, 1), (2, 1), (2, 0), (1, 1), 1),
        ]
        for (n, cin, h, w, coutG, kh, kw, s, p, op, d, g) in cases {
            let x = rng.tensor([n, cin, h, w]), wt = rng.tensor([cin, coutG, kh, kw]), b = rng.tensor([coutG * g])
            let got = Ops.convTranspose2d(x, weight: wt, bias: b, stride: Size2(s.0, s.1), padding: Size2(p.0, p.1),
                                          outputPadding: Size2(op.0, op.1), dilation: Size2(d.0, d.1), groups: g)
            let want = Ref.convTranspose2d(x, wt, b, stride: s, padding: p, outputPadding: op, dilation: d, groups: g)
            assertClose(got, want, tol: Tol.convRelTol, "convTranspose2d x\([n, cin, h, w]) k\(kh)x\(kw) s\(s) p\(p) op\(op) d\(d) g\(g)")
        }
    }

    func testNorms() {
        for shape in [[1, 1], [7, 13], [2, 3, 64], [5, 3]] {
            let x = rng.tensor(shape, scale: 3, offset: 10), c = shape.last!
            let w = rng.tensor([c]), b = rng.tensor([c])
            assertClose(Ops.layerNorm(x, weight: w, bias: b, eps: 1e-5), Ref.layerNorm(x, w, b, eps: 1e-5),
                        tol: Tol.normRelTol, "layerNorm \(shape)")
            assertClose(Ops.layerNorm(x, weight: nil, bias: nil, eps: 1e-6), Ref.layerNorm(x, nil, nil, eps: 1e-6),
                        tol: Tol.normRelTol, "layerNorm no affine \(shape)")
        }
        for shape in [[1, 1, 1, 1], [2, 3, 7, 13], [1, 64, 2, 3]] {
            let x = rng.tensor(shape, scale: 2, offset: -4), w = rng.tensor([shape[1]]), b = rng.tensor([shape[1]])
            assertClose(Ops.layerNorm2d(x, weight: w, bias: b), Ref.layerNorm2d(x, w, b, eps: 1e-6),
                        tol: Tol.normRelTol, "layerNorm2d \(shape)")
            let rv = rng.tensor([shape[1]], scale: 0.5, offset: 1) // variances in [0.5, 1.5)
            let rm = rng.tensor([shape[1]])
            assertClose(Ops.batchNorm(x, runningMean: rm, runningVar: rv, weight: w, bias: b, eps: 1e-5),
                        Ref.batchNorm(x, mean: rm, variance: rv, w, b, eps: 1e-5), tol: Tol.normRelTol, "batchNorm \(shape)")
        }
    }

    func testActivationsAndSoftmax() {
        let x = Tensor(shape: [401]) { Float($0 - 200) * 0.05 } // [-10, 10], includes 0 exactly
        assertClose(Ops.gelu(x), Ref.gelu(x), tol: Tol.activationRelTol, "gelu erf")
        assertClose(Ops.gelu(x, approximate: .tanh), Ref.geluTanh(x), tol: Tol.activationRelTol, "gelu tanh")
        assertClose(Ops.quickGELU(x), Ref.quickGELU(x), tol: Tol.activationRelTol, "quickGELU")
        assertClose(Ops.relu(x), Ref.relu(x), tol: Tol.activationRelTol, "relu")
        assertClose(Ops.sigmoid(x), Ref.sigmoid(x), tol: Tol.activationRelTol, "sigmoid")
        let extreme = Tensor(shape: [4], data: [-200, -90, 90, 200])
        XCTAssertEqual(Ops.sigmoid(extreme).data, [0, Float(Ref.sigmoid(extreme).data[1]), 1, 1])
        XCTAssertFalse(Ops.quickGELU(extreme).data.contains { $0.isNaN }, "quickGELU overflow produced NaN")
        // Masking semantics: -inf logits get exactly 0; an all -inf row is NaN as in torch.
        let masked = Ops.softmax(Tensor(shape: [2, 9], data: [0, -.infinity, 1, 2, -.infinity, 3, 4, 5, -.infinity]
                                                         + [Float](repeating: -.infinity, count: 9)))
        XCTAssertEqual([masked.data[1], masked.data[4], masked.data[8]], [0, 0, 0])
        XCTAssertEqual(masked.data[0..<9].reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertTrue(masked.data[9...].allSatisfy(\.isNaN), "fully masked row must be NaN")
        for shape in [[1, 1], [7, 13], [3, 1, 64], [200, 300]] {
            let s = rng.tensor(shape, scale: 50) // large logits: naive exp would overflow
            assertClose(Ops.softmax(s), Ref.softmax(s), tol: Tol.softmaxRelTol, "softmax \(shape)")
        }
    }

    func testAttention() {
        for (b, h, lq, lk, d, dv) in [(1, 1, 1, 1, 1, 1), (2, 3, 5, 7, 4, 6), (1, 2, 13, 11, 8, 3), (1, 1, 300, 129, 16, 16)] {
            let q = rng.tensor([b, h, lq, d]), k = rng.tensor([b, h, lk, d]), v = rng.tensor([b, h, lk, dv])
            assertClose(Ops.attention(q: q, k: k, v: v), Ref.attention(q: q, k: k, v: v, scale: 1 / Double(d).squareRoot(), bias: nil),
                        tol: Tol.attentionRelTol, "attention \([b, h, lq, lk, d, dv])")
            // Bias broadcast over heads: [B, 1, Lq, Lk]; also per-key mask [Lk] broadcast everywhere.
            let bias = rng.tensor([b, 1, lq, lk], scale: 3)
            let full = Tensor(shape: [b, h, lq, lk]) { f in bias.data[(f / (h * lq * lk)) * lq * lk + f % (lq * lk)] }
            assertClose(Ops.attention(q: q, k: k, v: v, scale: 0.7, bias: bias),
                        Ref.attention(q: q, k: k, v: v, scale: 0.7, bias: full), tol: Tol.attentionRelTol, "attention+bias \([b, h, lq, lk])")
            let keyMask = Tensor(shape: [lk]) { $0 % 3 == 2 ? -Float.infinity : 0 }
            let fullMask = Tensor(shape: [b, h, lq, lk]) { keyMask.data[$0 % lk] }
            assertClose(Ops.attention(q: q, k: k, v: v, bias: keyMask),
                        Ref.attention(q: q, k: k, v: v, scale: 1 / Double(d).squareRoot(), bias: fullMask),
                        tol: Tol.attentionRelTol, "attention+mask \([b, h, lq, lk])")
        }
    }

    /// Big attention problems run in blocks of query rows (`Ops.attentionScoreBlockBytes`):
    /// blocks that do not divide the rows, per-row bias and rel-pos terms must land on the
    /// right rows. The same cases as whole maps must agree with the reference too.
    func testAttentionInQueryBlocks() {
        defer { Ops.attentionScoreBlockBytes = Ops.defaultAttentionScoreBlockBytes }
        let (hh, ww, d) = (9, 11, 8), l = hh * ww
        let q = rng.tensor([1, l, d]), k = rng.tensor([1, l, d]), v = rng.tensor([1, l, 5])
        let bias = rng.tensor([1, l, l], scale: 3)
        let th = rng.tensor([2 * hh - 1, d]), tw = rng.tensor([2 * ww - 1, d])
        let rp = Ops.decomposedRelPos(q: q, relPosH: th, relPosW: tw, qSize: (hh, ww), kSize: (hh, ww))
        let (relH, relW) = Ref.relTerms(q: q, rh: Ref.getRelPos(qSize: hh, kSize: hh, table: th),
                                        rw: Ref.getRelPos(qSize: ww, kSize: ww, table: tw), qSize: (hh, ww), kSize: (hh, ww))
        let want = Ref.attention(q: q, k: k, v: v, scale: 0.6, bias: bias, relH: relH, relW: relW, kSize: (hh, ww))
        for rows in [1, 7, 64, l] {
            Ops.attentionScoreBlockBytes = rows * l * MemoryLayout<Float>.size
            assertClose(Ops.attention(q: q, k: k, v: v, scale: 0.6, bias: bias, relPos: rp), want,
                        tol: Tol.attentionRelTol, "attention in \(rows)-row blocks, bias + rel-pos")
            let mq = rng.tensor([1, 70, 2 * d]), mk = rng.tensor([1, 130, 2 * d]), mv = rng.tensor([1, 130, 2 * 3])
            let heads = Ops.multiHeadAttention(q: .contiguous(mq, heads: 2), k: .contiguous(mk, heads: 2), v: .contiguous(mv, heads: 2), heads: 2)
            let split = { (t: Tensor, w: Int) in Ops.permute(t.reshaped([1, t.shape[1], 2, w]), [0, 2, 1, 3]) }
            let ref = Ref.attention(q: split(mq, d), k: split(mk, d), v: split(mv, 3), scale: 1 / Double(d).squareRoot(), bias: nil)
            assertClose(heads, Ops.permute(ref, [0, 2, 1, 3]).reshaped([1, 70, 6]), tol: Tol.attentionRelTol,
                        "multi-head attention in \(rows)-row blocks")
        }
    }

    func testRelPosAndFusedAttention() {
        for (qs, ks, l) in [(1, 1, 1), (5, 5, 9), (4, 7, 13), (6, 6, 7), (3, 5, 6), (7, 3, 20), (14, 14, 27), (14, 14, 127)] {
            let t = rng.tensor([l, 5])
            assertClose(Ops.getRelPos(qSize: qs, kSize: ks, relPos: t), Ref.getRelPos(qSize: qs, kSize: ks, table: t),
                        tol: Tol.resizeRelTol, "getRelPos q\(qs) k\(ks) L\(l)")
        }
        for (b, qsz, ksz, c, lh, lw) in [(1, (1, 1), (1, 1), 1, 1, 1), (2, (3, 4), (3, 4), 5, 5, 7), (1, (4, 2), (2, 5), 3, 6, 11), (3, (7, 5), (7, 5), 8, 13, 9)] {
            let q = rng.tensor([b, qsz.0 * qsz.1, c]), attn = rng.tensor([b, qsz.0 * qsz.1, ksz.0 * ksz.1])
            let th = rng.tensor([lh, c]), tw = rng.tensor([lw, c])
            let got = Ops.addDecomposedRelPos(attn: attn, q: q, relPosH: th, relPosW: tw, qSize: (qsz.0, qsz.1), kSize: (ksz.0, ksz.1))
            assertClose(got, Ref.addDecomposedRelPos(attn: attn, q: q, tableH: th, tableW: tw, qSize: qsz, kSize: ksz),
                        tol: Tol.gemmRelTol, "addDecomposedRelPos q\(qsz) k\(ksz)")
        }
        // Fused path (SAM Attention.forward): heads folded into B.
        let (bh, hh, ww, hd) = (4, 5, 7, 8)
        let q = rng.tensor([bh, hh * ww, hd]), k = rng.tensor([bh, hh * ww, hd]), v = rng.tensor([bh, hh * ww, hd])
        let th = rng.tensor([2 * hh - 1, hd]), tw = rng.tensor([2 * ww - 1, hd])
        let rp = Ops.decomposedRelPos(q: q, relPosH: th, relPosW: tw, qSize: (hh, ww), kSize: (hh, ww))
        let rh = Ref.getRelPos(qSize: hh, kSize: hh, table: th), rw = Ref.getRelPos(qSize: ww, kSize: ww, table: tw)
        let (relH, relW) = Ref.relTerms(q: q, rh: rh, rw: rw, qSize: (hh, ww), kSize: (hh, ww))
        assertClose(rp.relH, relH, tol: Tol.gemmRelTol, "relH")
        assertClose(rp.relW, relW, tol: Tol.gemmRelTol, "relW")
        let scale = 1 / Float(hd).squareRoot()
        assertClose(Ops.attention(q: q, k: k, v: v, scale: scale, relPos: rp),
                    Ref.attention(q: q, k: k, v: v, scale: Double(scale), bias: nil, relH: relH, relW: relW, kSize: (hh, ww)),
                    tol: Tol.attentionRelTol, "fused rel-pos attention")
    }

    func testWindowPartitionRoundTrip() {
        for (shape, ws) in [([1, 1, 1, 1], 1), ([2, 7, 10, 3], 4), ([1, 14, 14, 5], 14), ([1, 5, 3, 2], 7), ([1, 8, 8, 1], 4)] {
            let x = rng.tensor(shape)
            let (wins, pad) = Ops.windowPartition(x, windowSize: ws)
            assertClose(wins, Ref.windowPartition(x, ws: ws), tol: Tol.copyRelTol, "windowPartition \(shape) ws\(ws)")
            XCTAssertEqual([pad.h, pad.w], [(shape[1] + ws - 1) / ws * ws, (shape[2] + ws - 1) / ws * ws])
            let back = Ops.windowUnpartition(wins, windowSize: ws, padHW: pad, hw: (shape[1], shape[2]))
            XCTAssertEqual(back, x, "window round trip \(shape) ws\(ws)")
        }
    }

    func testResize() {
        let sizes: [([Int], (Int, Int))] = [([1, 1, 1, 1], (1, 1)), ([1, 1, 1, 1], (3, 2)), ([1, 2, 17, 23], (5, 7)),
                                            ([1, 2, 17, 23], (9, 20)), ([2, 3, 7, 13], (31, 40)), ([1, 1, 13, 7], (13, 7)),
                                            ([1, 3, 64, 48], (21, 16)), ([1, 1, 5, 5], (2, 11))]
        for (shape, size) in sizes {
            let x = rng.tensor(shape)
            let s2 = Size2(size.0, size.1)
            assertClose(Ops.interpolateBilinear(x, size: s2), Ref.bilinear(x, size: size, alignCorners: false),
                        tol: Tol.resizeRelTol, "bilinear \(shape)->\(size)")
            assertClose(Ops.interpolateBilinear(x, size: s2, alignCorners: true), Ref.bilinear(x, size: size, alignCorners: true),
                        tol: Tol.resizeRelTol, "bilinear align_corners \(shape)->\(size)")
            assertClose(Ops.interpolateBilinear(x, size: s2, antialias: true), Ref.bilinearAntialias(x, size: size),
                        tol: Tol.resizeRelTol, "bilinear antialias \(shape)->\(size)")
            assertClose(Ops.interpolateNearest(x, size: s2), Ref.nearest(x, size: size), tol: Tol.copyRelTol, "nearest \(shape)->\(size)")
        }
        // Antialias upsampling is plain bilinear (the filter support stays 1 pixel).
        let x = rng.tensor([1, 2, 6, 5])
        assertClose(Ops.interpolateBilinear(x, size: [11, 13], antialias: true), Ops.interpolateBilinear(x, size: [11, 13]),
                    tol: Tol.resizeRelTol, "antialias upsample == bilinear")
    }

    func testShapeOps() {
        let x = rng.tensor([2, 3, 4, 5])
        for perm in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [0, 2, 1, 3], [0, 1, 3, 2], [1, 0, 2, 3]] {
            assertClose(Ops.permute(x, perm), Ref.permute(x, perm), tol: Tol.copyRelTol, "permute \(perm)")
        }
        assertClose(Ops.transpose(x, -1, 1), Ref.permute(x, [0, 3, 2, 1]), tol: Tol.copyRelTol, "transpose")
        let one = rng.tensor([1, 1])
        assertClose(Ops.permute(one, [1, 0]), one, tol: Tol.copyRelTol, "permute 1x1")

        let p = rng.tensor([2, 3, 4])
        for amounts in [[(0, 0), (0, 0), (0, 0)], [(2, 0), (0, 3), (1, 2)], [(1, 1), (1, 1), (0, 0)], [(0, 1), (0, 0), (5, 0)]] {
            assertClose(Ops.pad(p, amounts.map { (before: $0.0, after: $0.1) }, value: -1.5),
                        Ref.pad(p, amounts, value: -1.5), tol: Tol.copyRelTol, "pad \(amounts)")
        }
        let parts = [rng.tensor([2, 1, 3]), rng.tensor([2, 4, 3]), rng.tensor([2, 0, 3]), rng.tensor([2, 2, 3])]
        assertClose(Ops.concat(parts, axis: 1), Ref.concat(parts, axis: 1), tol: Tol.copyRelTol, "concat axis 1")
        let rows = [rng.tensor([1, 5]), rng.tensor([3, 5])]
        assertClose(Ops.concat(rows, axis: 0), Ref.concat(rows, axis: 0), tol: Tol.copyRelTol, "concat axis 0")
        let cols = [rng.tensor([3, 2]), rng.tensor([3, 1])]
        assertClose(Ops.concat(cols, axis: -1), Ref.concat(cols, axis: 1), tol: Tol.copyRelTol, "concat axis -1")

        let s = rng.tensor([3, 7, 2])
        assertClose(Ops.slice(s, axis: 1, start: 1, end: 6, step: 2), Ref.slice(s, axis: 1, start: 1, end: 6, step: 2), tol: Tol.copyRelTol, "slice step 2")
        assertClose(Ops.slice(s, axis: 1, start: -3), Ref.slice(s, axis: 1, start: 4, end: 7, step: 1), tol: Tol.copyRelTol, "slice negative start")
        assertClose(Ops.slice(s, axis: 0, end: 1), Ref.slice(s, axis: 0, start: 0, end: 1, step: 1), tol: Tol.copyRelTol, "slice first")
        assertClose(Ops.slice(s, axis: -1, start: 1, end: 100), Ref.slice(s, axis: 2, start: 1, end: 2, step: 1), tol: Tol.copyRelTol, "slice clamp")
        XCTAssertEqual(Ops.slice(s, axis: 1, start: 5, end: 2).shape, [3, 0, 2])
    }

    func testBroadcastingAndReductions() {
        let pairs: [([Int], [Int])] = [([1], [1]), ([7, 13], [7, 13]), ([2, 1, 4], [3, 1]), ([2, 3, 4, 5], [3, 1, 1]),
                                       ([2, 3, 4, 5], [5]), ([1], [2, 3]), ([4, 1], [1, 6]), ([2, 3, 4, 5], [2, 1, 4, 1]), ([3, 1, 5], [])]
        for (sa, sb) in pairs {
            let a = rng.tensor(sa), b = sb.isEmpty ? Tensor(shape: [], data: [0.75]) : rng.tensor(sb, offset: 2)
            assertClose(a + b, Ref.broadcast(a, b, +), tol: Tol.elementwiseRelTol, "add \(sa) \(sb)")
            assertClose(a - b, Ref.broadcast(a, b, -), tol: Tol.elementwiseRelTol, "sub \(sa) \(sb)")
            assertClose(b * a, Ref.broadcast(b, a, *), tol: Tol.elementwiseRelTol, "mul \(sb) \(sa)")
            assertClose(a / b, Ref.broadcast(a, b, /), tol: Tol.elementwiseRelTol, "div \(sa) \(sb)")
        }
        let x = rng.tensor([3, 4, 5])
        assertClose(x * 2.5 - 1, Ref.map(x) { $0 * 2.5 - 1 }, tol: Tol.scalarChainRelTol, "scalar ops")
        assertClose(1 - x, Ref.map(x) { 1 - $0 }, tol: Tol.elementwiseRelTol, "scalar minus tensor")
        for axis in 0..<3 {
            assertClose(Ops.sum(x, axis: axis), Ref.sum(x, axis: axis, mean: false), tol: Tol.reductionRelTol, "sum \(axis)")
            assertClose(Ops.mean(x, axis: axis - 3), Ref.sum(x, axis: axis, mean: true), tol: Tol.reductionRelTol, "mean \(axis)")
        }
        XCTAssertEqual(Ops.mean(x, axis: 1, keepDims: true).shape, [3, 1, 5])
    }

    /// The tiny shapes above stay under `Ops.parallelGrain`, so they only run the serial
    /// paths; these medium shapes push every kernel that splits work across cores over
    /// the threshold so the chunking/disjoint-write logic is checked too.
    func testParallelPathsAtMediumSizes() {
        let x = rng.tensor([1, 8, 33, 31]), w = rng.tensor([6, 8, 3, 3]), b = rng.tensor([6])
        assertClose(Ops.conv2d(x, weight: w, bias: b, padding: 1), Ref.conv2d(x, w, b, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1),
                    tol: Tol.convRelTol, "conv2d parallel im2col")
        let dw = rng.tensor([8, 1, 3, 3])
        assertClose(Ops.conv2d(x, weight: dw, bias: nil, stride: 1, padding: 1, groups: 8),
                    Ref.conv2d(x, dw, nil, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 8), tol: Tol.convRelTol, "depthwise parallel")
        let xt = rng.tensor([1, 8, 33, 31]), wt = rng.tensor([8, 16, 2, 2]), bt = rng.tensor([16])
        assertClose(Ops.convTranspose2d(xt, weight: wt, bias: bt, stride: 2),
                    Ref.convTranspose2d(xt, wt, bt, stride: (2, 2), padding: (0, 0), outputPadding: (0, 0), dilation: (1, 1), groups: 1),
                    tol: Tol.convRelTol, "convTranspose2d parallel col2im")
        let rows = rng.tensor([300, 64], scale: 2, offset: 3), g = rng.tensor([64]), be = rng.tensor([64])
        assertClose(Ops.layerNorm(rows, weight: g, bias: be), Ref.layerNorm(rows, g, be, eps: 1e-5), tol: Tol.normRelTol, "layerNorm parallel")
        let img = rng.tensor([1, 4, 96, 80])
        assertClose(Ops.interpolateBilinear(img, size: [130, 120]), Ref.bilinear(img, size: (130, 120), alignCorners: false),
                    tol: Tol.resizeRelTol, "bilinear parallel")
        assertClose(Ops.interpolateBilinear(img, size: [30, 25], antialias: true), Ref.bilinearAntialias(img, size: (30, 25)),
                    tol: Tol.resizeRelTol, "antialias parallel")
    }

    func testBLASInfo() {
        XCTAssertFalse(BLASInfo.coreName.isEmpty)
        XCTAssertNotEqual(BLASInfo.coreName, "unknown")
        XCTAssertGreaterThanOrEqual(BLASInfo.threads, 1)
        print("OpenBLAS core: \(BLASInfo.coreName), threads: \(BLASInfo.threads), config: \(BLASInfo.config)")
    }
}

extension Array where Element == Float {
    func withShape(_ shape: [Int]) -> Tensor { Tensor(shape: shape, data: self) }
}

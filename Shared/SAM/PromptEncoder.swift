import Checkpoint
import Foundation
import NN
import Tensor

/// Encodes points, boxes and a low-resolution mask into SAM's sparse and dense prompt
/// embeddings. ref: segment_anything/modeling/prompt_encoder.py PromptEncoder
public struct PromptEncoder: Sendable {
    public let embedDim: Int
    public let imageEmbeddingSize: Int   // 64
    public let inputImageSize: Int       // 1024 (SAM, MobileSAM) or 256 (LiteMedSAM)
    let gaussian: Tensor                 // pe_layer.positional_encoding_gaussian_matrix [2, embedDim/2]
    let pointEmbeddings: [Tensor]        // 4 × [embedDim]: negative, positive, box corner 1, box corner 2
    let notAPoint: Tensor
    let noMask: Tensor
    let maskConv0: Conv2d, maskNorm1: LayerNorm2d, maskConv3: Conv2d, maskNorm4: LayerNorm2d, maskConv6: Conv2d
    /// SAM 2 passes a box as two corner points, so its prompts are always padded with one
    /// not-a-point token (SAM pads only when there is no box).
    /// ref: sam2/sam2_image_predictor.py _predict (box → points labelled 2, 3; boxes=None);
    ///      transformers modeling_sam2.py Sam2PromptEncoder._embed_boxes ("padding point")
    public internal(set) var padsAlways: Bool

    public init(_ vb: WeightLoader, embedDim: Int, imageEmbeddingSize: Int, inputImageSize: Int, maskInChans: Int) throws {
        self.embedDim = embedDim; self.imageEmbeddingSize = imageEmbeddingSize; self.inputImageSize = inputImageSize
        gaussian = try vb.pp("pe_layer").tensor("positional_encoding_gaussian_matrix", shape: [2, embedDim / 2])
        pointEmbeddings = try (0..<4).map {
            try vb.pp("point_embeddings").pp($0).tensor("weight", shape: [1, embedDim]).reshaped([embedDim])
        }
        notAPoint = try vb.pp("not_a_point_embed").tensor("weight", shape: [1, embedDim]).reshaped([embedDim])
        noMask = try vb.pp("no_mask_embed").tensor("weight", shape: [1, embedDim]).reshaped([embedDim])
        let m = vb.pp("mask_downscaling")
        maskConv0 = try Conv2d(m.pp(0), in: 1, out: maskInChans / 4, kernel: 2, stride: 2)
        maskNorm1 = try LayerNorm2d(m.pp(1), channels: maskInChans / 4)
        maskConv3 = try Conv2d(m.pp(3), in: maskInChans / 4, out: maskInChans, kernel: 2, stride: 2)
        maskNorm4 = try LayerNorm2d(m.pp(4), channels: maskInChans)
        maskConv6 = try Conv2d(m.pp(6), in: maskInChans, out: embedDim, kernel: 1)
        padsAlways = false
    }

    /// SAM 2's prompt encoder: the same computation as SAM's (the sam2 package keeps SAM's
    /// module names: `pe_layer.*`, `point_embeddings.N`, `mask_downscaling.N`), or
    /// transformers' `Sam2PromptEncoder` names (`shared_embedding.positional_embedding`,
    /// `point_embed` as one [4, C] table, `mask_embed.conv1…3` / `layer_norm1…2`).
    public init(sam2 vb: WeightLoader, transformersNames: Bool, embedDim: Int, imageEmbeddingSize: Int, inputImageSize: Int,
                maskInChans: Int, layerNormEps: Float) throws {
        guard transformersNames else {
            // sam2/modeling/sam/prompt_encoder.py builds its LayerNorm2d with SAM's eps (1e-6).
            try self.init(vb, embedDim: embedDim, imageEmbeddingSize: imageEmbeddingSize, inputImageSize: inputImageSize,
                          maskInChans: maskInChans)
            padsAlways = true
            return
        }
        let table = try vb.pp("point_embed").tensor("weight", shape: [4, embedDim])
        let m = vb.pp("mask_embed")
        self.init(embedDim: embedDim, imageEmbeddingSize: imageEmbeddingSize, inputImageSize: inputImageSize,
                  gaussian: try vb.pp("shared_embedding").tensor("positional_embedding", shape: [2, embedDim / 2]),
                  pointEmbeddings: (0..<4).map { Tensor(shape: [embedDim], data: Array(table.data[($0 * embedDim)..<(($0 + 1) * embedDim)])) },
                  notAPoint: try vb.pp("not_a_point_embed").tensor("weight", shape: [1, embedDim]).reshaped([embedDim]),
                  noMask: try vb.pp("no_mask_embed").tensor("weight", shape: [1, embedDim]).reshaped([embedDim]),
                  maskConv0: try Conv2d(m.pp("conv1"), in: 1, out: maskInChans / 4, kernel: 2, stride: 2),
                  maskNorm1: try LayerNorm2d(m.pp("layer_norm1"), channels: maskInChans / 4, eps: layerNormEps),
                  maskConv3: try Conv2d(m.pp("conv2"), in: maskInChans / 4, out: maskInChans, kernel: 2, stride: 2),
                  maskNorm4: try LayerNorm2d(m.pp("layer_norm2"), channels: maskInChans, eps: layerNormEps),
                  maskConv6: try Conv2d(m.pp("conv3"), in: maskInChans, out: embedDim, kernel: 1), padsAlways: true)
    }

    init(embedDim: Int, imageEmbeddingSize: Int, inputImageSize: Int, gaussian: Tensor, pointEmbeddings: [Tensor], notAPoint: Tensor,
         noMask: Tensor, maskConv0: Conv2d, maskNorm1: LayerNorm2d, maskConv3: Conv2d, maskNorm4: LayerNorm2d, maskConv6: Conv2d,
         padsAlways: Bool) {
        self.embedDim = embedDim; self.imageEmbeddingSize = imageEmbeddingSize; self.inputImageSize = inputImageSize
        self.gaussian = gaussian; self.pointEmbeddings = pointEmbeddings; self.notAPoint = notAPoint; self.noMask = noMask
        self.maskConv0 = maskConv0; self.maskNorm1 = maskNorm1; self.maskConv3 = maskConv3; self.maskNorm4 = maskNorm4
        self.maskConv6 = maskConv6; self.padsAlways = padsAlways
    }

    /// Random Fourier features of coordinates already normalised to [0, 1].
    /// ref: prompt_encoder.py PositionEmbeddingRandom._pe_encoding
    func peEncoding(_ coords: [(Float, Float)]) -> [Float] { Self.peEncoding(coords, gaussian: gaussian) }

    static func peEncoding(_ coords: [(Float, Float)], gaussian: Tensor) -> [Float] {
        let half = gaussian.shape[1], dim = 2 * half
        var out = [Float](repeating: 0, count: coords.count * dim)
        for (i, (x, y)) in coords.enumerated() {
            let cx = 2 * x - 1, cy = 2 * y - 1
            for j in 0..<half {
                let p = 2 * Float.pi * (cx * gaussian.data[j] + cy * gaussian.data[half + j])
                out[i * dim + j] = sin(p)
                out[i * dim + half + j] = cos(p)
            }
        }
        return out
    }

    /// Dense positional encoding of the embedding grid: [1, embedDim, g, g].
    /// ref: prompt_encoder.py PositionEmbeddingRandom.forward
    public func densePositionalEncoding() -> Tensor { Self.densePositionalEncoding(gaussian: gaussian, grid: imageEmbeddingSize) }

    /// The same grid encoding from any gaussian matrix [2, C/2] (transformers' SAM 2 keeps a
    /// separate copy for the image-wide encoding).
    public static func densePositionalEncoding(gaussian: Tensor, grid g: Int) -> Tensor {
        let dim = 2 * gaussian.shape[1]
        var coords: [(Float, Float)] = []
        coords.reserveCapacity(g * g)
        for y in 0..<g { for x in 0..<g { coords.append(((Float(x) + 0.5) / Float(g), (Float(y) + 0.5) / Float(g))) } }
        let pe = Tensor(shape: [g, g, dim], data: peEncoding(coords, gaussian: gaussian))
        return Ops.permute(pe, [2, 0, 1]).reshaped([1, dim, g, g])
    }

    /// Sparse embeddings for one prompt: [N, embedDim]. Coordinates are in the model's
    /// input frame (after ResizeLongestSide). Labels: 1 foreground, 0 background, -1 padding.
    /// ref: prompt_encoder.py _embed_points, _embed_boxes, forward
    public func sparseEmbedding(points: [(x: Float, y: Float, label: Int)], box: (Float, Float, Float, Float)?) -> Tensor {
        var rows: [Float] = []
        var pts = points
        if !points.isEmpty && box == nil && !padsAlways { pts.append((0, 0, -1)) }  // pad when there is no box
        let s = Float(inputImageSize)
        if !pts.isEmpty {
            var pe = peEncoding(pts.map { (($0.x + 0.5) / s, ($0.y + 0.5) / s) })
            for (i, p) in pts.enumerated() {
                for j in 0..<embedDim {
                    switch p.label {
                    case -1: pe[i * embedDim + j] = notAPoint.data[j]
                    case 0: pe[i * embedDim + j] += pointEmbeddings[0].data[j]
                    case 1: pe[i * embedDim + j] += pointEmbeddings[1].data[j]
                    default: break  // labels are validated by the caller
                    }
                }
            }
            rows += pe
        }
        if let b = box {
            var pe = peEncoding([((b.0 + 0.5) / s, (b.1 + 0.5) / s), ((b.2 + 0.5) / s, (b.3 + 0.5) / s)])
            for j in 0..<embedDim {
                pe[j] += pointEmbeddings[2].data[j]
                pe[embedDim + j] += pointEmbeddings[3].data[j]
            }
            rows += pe
        }
        if padsAlways { rows += notAPoint.data }
        return Tensor(shape: [rows.count / embedDim, embedDim], data: rows)
    }

    /// Dense embedding: from a low-res mask [1, 1, 4g, 4g] or the learned no-mask vector.
    public func denseEmbedding(mask: Tensor?) -> Tensor {
        if let mask {
            let h1 = Ops.gelu(maskNorm1(maskConv0(mask)))
            let h2 = Ops.gelu(maskNorm4(maskConv3(h1)))
            return maskConv6(h2)
        }
        let g = imageEmbeddingSize
        var data = [Float](repeating: 0, count: embedDim * g * g)
        for c in 0..<embedDim { for i in 0..<(g * g) { data[c * g * g + i] = noMask.data[c] } }
        return Tensor(shape: [1, embedDim, g, g], data: data)
    }
}

import SAM

/// The image embedding as a grid of unit-length feature vectors, the tracker's view of
/// "what the object looks like". SAM-family embeddings ([1, C, g, g]) cover the
/// ResizeLongestSide input padded bottom-right, so a frame pixel (x, y) sits at cell
/// (x, y) · g / max(W, H); cells past the resized image are padding and never sampled.
struct FeatureGrid {
    let channels: Int, side: Int
    let cellsPerPixel: Float
    /// Valid (non-padding) extent in cells.
    let validWidth: Float, validHeight: Float
    /// [side, side, C], each vector unit length.
    let data: [Float]

    init(_ emb: ImageEmbedding) throws {
        let s = emb.embedding.shape
        guard s.count == 4, s[0] == 1, s[1] > 0, s[2] > 0, s[2] == s[3] else { throw TrackerError.embeddingShape(s) }
        channels = s[1]; side = s[2]
        let (w, h) = (emb.originalSize.width, emb.originalSize.height)
        cellsPerPixel = Float(side) / Float(max(w, h))
        let inLong = Float(max(emb.inputSize.width, emb.inputSize.height, 1))
        validWidth = max(1, Float(side) * Float(emb.inputSize.width) / inLong)
        validHeight = max(1, Float(side) * Float(emb.inputSize.height) / inLong)
        let (c, g) = (channels, side)
        var out = [Float](repeating: 0, count: g * g * c)
        emb.embedding.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for cell in 0..<(g * g) {
                    var norm: Float = 0
                    for k in 0..<c { let v = src[k * g * g + cell]; dst[cell * c + k] = v; norm += v * v }
                    let inv = norm > 0 ? 1 / norm.squareRoot() : 0
                    for k in 0..<c { dst[cell * c + k] *= inv }
                }
            }
        }
        data = out
    }

    /// Bilinear sample at frame pixel (x, y), normalised, accumulated into `out`.
    func sample(x: Float, y: Float, into out: UnsafeMutablePointer<Float>) {
        // Cell centres at i + 0.5; clamp to the valid region.
        let cx = min(max(x * cellsPerPixel, 0.5), validWidth - 0.5) - 0.5
        let cy = min(max(y * cellsPerPixel, 0.5), validHeight - 0.5) - 0.5
        let ix = Int(cx.rounded(.down)), iy = Int(cy.rounded(.down))
        let ax = cx - Float(ix), ay = cy - Float(iy)
        let ix1 = min(ix + 1, side - 1), iy1 = min(iy + 1, side - 1)
        let w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay
        let c = channels
        data.withUnsafeBufferPointer { p in
            let a = p.baseAddress! + (iy * side + ix) * c, b = p.baseAddress! + (iy * side + ix1) * c
            let d = p.baseAddress! + (iy1 * side + ix) * c, e = p.baseAddress! + (iy1 * side + ix1) * c
            var norm: Float = 0
            for k in 0..<c {
                let v = w00 * a[k] + w01 * b[k] + w10 * d[k] + w11 * e[k]
                out[k] = v; norm += v * v
            }
            let inv = norm > 0 ? 1 / norm.squareRoot() : 0
            for k in 0..<c { out[k] *= inv }
        }
    }

    /// points² unit vectors on a grid over `box` (cell centres of a points×points split).
    func template(_ box: TrackBox, points: Int) -> [Float] {
        var out = [Float](repeating: 0, count: points * points * channels)
        out.withUnsafeMutableBufferPointer { o in
            for j in 0..<points {
                let y = box.y0 + (Float(j) + 0.5) / Float(points) * box.height
                for i in 0..<points {
                    let x = box.x0 + (Float(i) + 0.5) / Float(points) * box.width
                    sample(x: x, y: y, into: o.baseAddress! + (j * points + i) * channels)
                }
            }
        }
        return out
    }

    func score(_ box: TrackBox, templates: [[Float]], points: Int) -> Float {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: channels)
        defer { scratch.deallocate() }
        return score(box, templates: templates, points: points, scratch: scratch)
    }

    /// Mean cosine similarity between `box`'s samples and each template (averaged).
    func score(_ box: TrackBox, templates: [[Float]], points: Int, scratch: UnsafeMutablePointer<Float>) -> Float {
        var total: Float = 0
        let c = channels
        for j in 0..<points {
            let y = box.y0 + (Float(j) + 0.5) / Float(points) * box.height
            for i in 0..<points {
                let x = box.x0 + (Float(i) + 0.5) / Float(points) * box.width
                sample(x: x, y: y, into: scratch)
                let base = (j * points + i) * c
                for t in templates {
                    t.withUnsafeBufferPointer { tp in
                        var dot: Float = 0
                        for k in 0..<c { dot += scratch[k] * tp[base + k] }
                        total += dot
                    }
                }
            }
        }
        return total / Float(points * points * templates.count)
    }

    /// Best-matching box among translations of `center` within `radius` pixels and the
    /// given scales: a coarse pass (one cell) and a fine pass (a quarter cell, nearby scales).
    /// The coarse pass takes at most `maxSteps` steps each way (of whole cells, at least
    /// `minStride`), so a large object or a wide search costs no more than a small one.
    func search(around centers: [TrackBox], radius: Float, scales: [Float], templates: [[Float]], points: Int,
                maxSteps: Int, minStride: Int = 1) -> (score: Float, box: TrackBox) {
        let cell = 1 / cellsPerPixel
        let center = centers[0]
        var best: (score: Float, box: TrackBox, scale: Float) = (-.infinity, center, 1)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: channels)
        defer { scratch.deallocate() }
        func consider(dx: Float, dy: Float, scale: Float, base: TrackBox) {
            let b = TrackBox(center: base.centerX + dx, base.centerY + dy, width: center.width * scale, height: center.height * scale)
            let s = score(b, templates: templates, points: points, scratch: scratch)
            if s > best.score { best = (s, b, scale) }
        }
        let stride = max(minStride, Int((radius / (cell * Float(maxSteps))).rounded(.up)))
        let step = cell * Float(stride)
        let n = Int((radius / step).rounded(.up))
        for c in centers {
            for scale in scales {
                for iy in -n...n { for ix in -n...n { consider(dx: Float(ix) * step, dy: Float(iy) * step, scale: scale, base: c) } }
            }
        }
        // Fine pass: quarter steps over ± one coarse step, nearby scales.
        let coarse = best.box, fine = step / 4, m = 4
        let s0 = best.scale
        for scale in [s0 * 0.96, s0, s0 * 1.04] {
            for iy in -m...m { for ix in -m...m where ix != 0 || iy != 0 || scale != s0 {
                let b = TrackBox(center: coarse.centerX + Float(ix) * fine, coarse.centerY + Float(iy) * fine,
                                 width: coarse.width * scale / s0, height: coarse.height * scale / s0)
                let sc = score(b, templates: templates, points: points, scratch: scratch)
                if sc > best.score { best = (sc, b, scale) }
            } }
        }
        return (best.score, best.box)
    }
}

/// Unit vectors quantised to int8 (×127): what the state keeps, so a restored state
/// decides exactly as the original did.
enum Quantized {
    static func encode(_ v: [Float]) -> [Int8] {
        v.map { Int8(max(-127, min(127, ($0 * 127).rounded()))) }
    }

    /// Dequantised and renormalised per vector of `channels`.
    static func decode(_ q: [Int8], channels: Int) -> [Float] {
        var out = q.map { Float($0) / 127 }
        normalizePerVector(&out, channels: channels)
        return out
    }

    /// Running template: normalise(a·(1−r) + b·r) per vector.
    static func blend(_ a: [Float], _ b: [Float], rate: Float, channels: Int) -> [Float] {
        var out = zip(a, b).map { $0 * (1 - rate) + $1 * rate }
        normalizePerVector(&out, channels: channels)
        return out
    }

    /// Scales each consecutive vector of `channels` values to unit length (zero stays zero).
    static func normalizePerVector(_ out: inout [Float], channels: Int) {
        var i = 0
        while i + channels <= out.count {
            var n: Float = 0
            for k in i..<(i + channels) { n += out[k] * out[k] }
            let inv = n > 0 ? 1 / n.squareRoot() : 0
            for k in i..<(i + channels) { out[k] *= inv }
            i += channels
        }
    }
}

import Checkpoint
import Foundation
import Imaging
import Tensor

/// One in-context example: an image and what it shows.
public struct SegGPTPrompt: Sendable, Equatable {
    public var image: RGBImage
    public var target: SegGPTTarget
    public init(image: RGBImage, target: SegGPTTarget) { self.image = image; self.target = target }
}

/// Wall-clock seconds of each stage of one call.
public struct SegGPTTimings: Sendable, Equatable {
    public var preprocess: Double = 0, forward: Double = 0, postprocess: Double = 0
    public var total: Double { preprocess + forward + postprocess }
}

/// The answer for one query.
public struct SegGPTOutput: Sendable {
    /// The query half of the prediction in the network's normalised space, `[3, h, w]` at the
    /// model's half-canvas size (what `--save-logits` stores).
    public var raw: Tensor
    /// Binary prompts: the query's mask at its own size.
    public var mask: BinaryMask?
    /// Class-map prompts: the query's class map at its own size.
    public var classMap: SegGPTClassMap?
    public var timings: SegGPTTimings
}

/// What Painter should read from its output.
public enum PainterTask: Sendable, Equatable {
    /// Colour-coded classes: nearest palette colour after a bilinear resize (Painter's ADE20k
    /// evaluation). Index 0 of the palette is the background.
    case semantic(palette: [UInt8])
    /// NYUv2 depth: metres, grey level 1.0 = 10 m.
    case depth
    /// An image (denoise / derain / low-light enhancement).
    case restore
}

/// Painter's answer.
public struct PainterOutput: Sendable {
    public var raw: Tensor
    public var classMap: SegGPTClassMap?
    /// `[height, width]` metres.
    public var depthMetres: Tensor?
    public var image: RGBImage?
    public var timings: SegGPTTimings
}

/// SegGPT or Painter with its processor: the entry point for services and the CLI.
///
/// ```swift
/// let model = try SegGPT.load(url: URL(fileURLWithPath: "seggpt-vit-large"))  // HF directory, .safetensors or .pth
/// let out = try model.segment(query: photo, prompts: [SegGPTPrompt(image: example, target: .binaryMask(mask))])
/// out.mask     // BinaryMask at the photo's size
/// out.raw      // [3, 448, 448] query half, normalised space
/// ```
public struct SegGPT: Sendable {
    public enum Kind: String, Sendable, Equatable, CaseIterable { case seggpt, painter }

    enum Network: Sendable {
        case seggpt(SegGptForImageSegmentation)
        case painter(Painter)
    }

    public let kind: Kind
    public let config: SegGptConfig
    public let names: SegGptWeightNames
    public let processor: SegGPTProcessor
    let network: Network

    /// The SegGPT network (whole-canvas `pred_masks`, features), if this is SegGPT.
    public var segGptNetwork: SegGptForImageSegmentation? {
        if case .seggpt(let n) = network { return n }
        return nil
    }

    /// The Painter network, if this is Painter.
    public var painterNetwork: Painter? {
        if case .painter(let n) = network { return n }
        return nil
    }

    /// Builds from a state dict whose layout (transformers / original, SegGPT / Painter) is
    /// detected from its names; `kind` (if given) must agree. Strict: every tensor must be used.
    public init(stateDict: StateDict, config: SegGptConfig, kind: Kind? = nil,
                processor: SegGPTProcessor? = nil) throws(SegGPTError) {
        try config.validate()
        let (detected, names, strip) = try Self.detectLayout(stateDict)
        if let kind, kind != detected {
            throw .wrongKind(requested: kind.rawValue, checkpoint: detected.rawValue)
        }
        do {
            let vb = try WeightLoader(stateDict, stripPrefix: strip)
            switch detected {
            case .seggpt: network = .seggpt(try SegGptForImageSegmentation(vb, config: config, names: names))
            case .painter: network = .painter(try Painter(vb, config: config))
            }
            try vb.finish()
        } catch { throw .checkpoint(error) }
        self.kind = detected; self.config = config; self.names = names
        self.processor = processor ?? SegGPTProcessor(size: config.halfImageSize)
    }

    /// Random weights (deterministic per seed), for benchmarks: transformers layout for
    /// SegGPT, original for Painter.
    public static func randomWeights(kind: Kind = .seggpt, config: SegGptConfig = .vitLarge, seed: UInt64 = 0) throws(SegGPTError) -> SegGPT {
        try config.validate()
        let vb = WeightLoader.synthesizing(seed: seed)
        do {
            switch kind {
            case .seggpt:
                return SegGPT(kind: kind, config: config, names: .transformers,
                              network: .seggpt(try SegGptForImageSegmentation(vb, config: config, names: .transformers)))
            case .painter:
                return SegGPT(kind: kind, config: config, names: .original, network: .painter(try Painter(vb, config: config)))
            }
        } catch { throw .checkpoint(error) }
    }

    init(kind: Kind, config: SegGptConfig, names: SegGptWeightNames, network: Network) {
        self.kind = kind; self.config = config; self.names = names; self.network = network
        processor = SegGPTProcessor(size: config.halfImageSize)
    }

    /// (kind, names, prefix to strip) from the tensor names.
    static func detectLayout(_ sd: StateDict) throws(SegGPTError) -> (Kind, SegGptWeightNames, String?) {
        if sd.contains("model.embeddings.mask_token") { return (.seggpt, .transformers, nil) }
        for strip in ["", "model.", "module.", "model.module."] where sd.contains(strip + "mask_token") {
            let kind: Kind = sd.contains(strip + "type_token_cls") || sd.contains(strip + "type_token_ins") ? .seggpt : .painter
            return (kind, .original, strip.isEmpty ? nil : strip)
        }
        throw .unknownLayout(firstNames: Array(sd.names.prefix(5)))
    }

    // MARK: running

    /// The query half `[3, h, w]` for preprocessed inputs (each `[3, h, w]`; one pair per prompt).
    /// SegGPT ensembles several prompts (original rule); Painter takes exactly one.
    public func predictQueryHalf(query: Tensor, prompts: [(image: Tensor, target: Tensor)],
                                 embeddingType: SegGptEmbeddingType = .instance) throws(SegGPTError) -> Tensor {
        guard !prompts.isEmpty else { throw .badPrompts(reason: "no prompt") }
        let (hh, hw) = config.halfImageSize
        let one = [config.numChannels, hh, hw]
        guard query.shape == one else { throw .badInput(what: "query pixel values", expected: one, actual: query.shape) }
        for p in prompts {
            guard p.image.shape == one else { throw .badInput(what: "prompt pixel values", expected: one, actual: p.image.shape) }
            guard p.target.shape == one else { throw .badInput(what: "prompt target", expected: one, actual: p.target.shape) }
        }
        let n = prompts.count
        let q = Tensor(shape: [n] + one, data: Array((0..<n).map { _ in query.data }.joined()))
        let pi = Tensor(shape: [n] + one, data: Array(prompts.map(\.image.data).joined()))
        let pt = Tensor(shape: [n] + one, data: Array(prompts.map(\.target.data).joined()))
        switch network {
        case .seggpt(let m):
            return try m.predictQueryHalf(pixelValues: q, promptPixelValues: pi, promptMasks: pt, embeddingType: embeddingType)
        case .painter(let m):
            return try m.predictQueryHalf(pixelValues: q, promptPixelValues: pi, promptMasks: pt)
        }
    }

    /// Segments `query` from in-context examples. Binary-mask prompts give `mask`, class-map
    /// prompts (all with the same `numLabels`) give `classMap`; image targets only `raw`.
    public func segment(query: RGBImage, prompts: [SegGPTPrompt],
                        embeddingType: SegGptEmbeddingType = .instance) throws(SegGPTError) -> SegGPTOutput {
        guard !prompts.isEmpty else { throw .badPrompts(reason: "no prompt") }
        var t = SegGPTTimings()
        var clock = ContinuousClock.now
        func lap() -> Double {
            let now = ContinuousClock.now
            let d = now - clock
            clock = now
            return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        let q = processor.preprocess(image: query)
        let pairs = prompts.map { (image: processor.preprocess(image: $0.image), target: processor.preprocess(target: $0.target)) }
        var numLabels: Int?, allBinary = true
        for p in prompts {
            switch p.target {
            case .binaryMask: numLabels = numLabels ?? nil
            case .classMap(let c):
                allBinary = false
                if let n = numLabels, n != c.numLabels {
                    throw .badPrompts(reason: "class-map prompts disagree on numLabels (\(n) vs \(c.numLabels))")
                }
                numLabels = c.numLabels
            case .image: allBinary = false
            }
        }
        t.preprocess = lap()
        let raw = try predictQueryHalf(query: q, prompts: pairs, embeddingType: embeddingType)
        t.forward = lap()
        var out = SegGPTOutput(raw: raw, mask: nil, classMap: nil, timings: t)
        if allBinary { out.mask = processor.binaryMask(raw, width: query.width, height: query.height) }
        if let numLabels { out.classMap = processor.classMap(raw, numLabels: numLabels, width: query.width, height: query.height) }
        t.postprocess = lap()
        out.timings = t
        return out
    }

    /// Painter: one prompt pair, output read as `task` says.
    public func paint(query: RGBImage, prompt: SegGPTPrompt, task: PainterTask) throws(SegGPTError) -> PainterOutput {
        var t = SegGPTTimings()
        let start = ContinuousClock.now
        func since(_ s: ContinuousClock.Instant) -> Double {
            let d = ContinuousClock.now - s
            return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        let pair = (image: processor.preprocess(image: prompt.image), target: processor.preprocess(target: prompt.target))
        let q = processor.preprocess(image: query)
        t.preprocess = since(start)
        let f0 = ContinuousClock.now
        let raw = try predictQueryHalf(query: q, prompts: [pair])
        t.forward = since(f0)
        let p0 = ContinuousClock.now
        var out = PainterOutput(raw: raw, classMap: nil, depthMetres: nil, image: nil, timings: t)
        switch task {
        case .semantic(let flat):
            guard flat.count >= 6, flat.count % 3 == 0 else {
                throw .badPrompts(reason: "palette must be RGB triples (background first), got \(flat.count) values")
            }
            let pal = stride(from: 0, to: flat.count, by: 3).map { (r: flat[$0], g: flat[$0 + 1], b: flat[$0 + 2]) }
            out.classMap = processor.classMap(raw, palette: pal, width: query.width, height: query.height, resample: .bilinear)
        case .depth: out.depthMetres = processor.depthMetres(raw, width: query.width, height: query.height)
        case .restore: out.image = processor.restoredImage(raw, width: query.width, height: query.height)
        }
        t.postprocess = since(p0)
        out.timings = t
        return out
    }
}

import Foundation
import Pipeline
import SAM
import CLIPSeg

/// How a process asks for a model: its registry name, the weights (a file, or a Hugging
/// Face model directory where the family supports one), an optional config (a family's
/// preset name or a JSON file), and the halves it needs.
public struct ModelLoadRequest: Sendable {
    public var model: String
    public var checkpoint: String?
    public var config: String?
    public var parts: Set<BackendPart>
    public init(model: String, checkpoint: String? = nil, config: String? = nil, parts: Set<BackendPart> = Set(BackendPart.allCases)) {
        self.model = model; self.checkpoint = checkpoint; self.config = config; self.parts = parts
    }
}

/// One name users pass to `--model`.
public struct ModelInfo: Sendable {
    public var name: String
    public var family: String
    public var promptKinds: Set<PromptKind>
    /// Where the weights come from (for help and errors).
    public var weights: String
    /// Measured score ranges of automatic masks for a model outside its training domain
    /// there (nil: upstream's defaults suit it).
    public var everythingScores: EverythingScores?
    public init(name: String, family: String, promptKinds: Set<PromptKind>, weights: String, everythingScores: EverythingScores? = nil) {
        self.name = name; self.family = family; self.promptKinds = promptKinds; self.weights = weights
        self.everythingScores = everythingScores
    }
}

/// What a model's automatic-mask scores look like, measured on the repository's fixture
/// photographs, so a request whose thresholds would keep nothing is warned about at run
/// time (not only in --help).
public struct EverythingScores: Sendable {
    /// Highest predicted IoU measured.
    public var maxPredictedIoU: Double
    /// Highest stability score measured at upstream's offset (1.0).
    public var maxStabilityScore: Double
    /// Why, and the thresholds that keep masks (with the measured counts).
    public var advice: String
}

extension ModelRegistry {
    /// A warning when `everything`'s thresholds are above every score `model` produced on
    /// the fixtures (so the answer will almost surely hold no masks); nil otherwise.
    public static func everythingWarning(model: String, predIoUThresh: Double, stabilityScoreThresh: Double,
                                         stabilityScoreOffset: Double) -> String? {
        guard let scores = info(model)?.everythingScores else { return nil }
        var over: [String] = []
        if predIoUThresh > scores.maxPredictedIoU {
            over.append("--pred-iou-thresh \(predIoUThresh) (its predicted IoU reached \(scores.maxPredictedIoU))")
        }
        if stabilityScoreThresh > scores.maxStabilityScore && stabilityScoreOffset >= 1 {
            over.append("--stability-score-thresh \(stabilityScoreThresh) (its stability score reached \(scores.maxStabilityScore))")
        }
        guard !over.isEmpty else { return nil }
        return "warning: \(model) is out of its domain for `everything`: expect 0 masks with " + over.joined(separator: " and ")
            + ". " + scores.advice
    }
}

/// A model family: its names and how it loads. Each family declares one (`SAMBackend.family`, …).
public struct ModelFamily: Sendable {
    public var name: String
    public var models: [ModelInfo]
    public var load: @Sendable (ModelLoadRequest) throws -> any SegmentationBackend
    public init(name: String, models: [ModelInfo], load: @escaping @Sendable (ModelLoadRequest) throws -> any SegmentationBackend) {
        self.name = name; self.models = models; self.load = load
    }
}

public enum RegistryError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownModel(String)
    case unsupportedPrompt(model: String, kind: PromptKind)
    /// A tool for one family (SGFE embedding files, the SAM benchmark) given another's model.
    case notInFamily(model: String, family: String)

    public var description: String {
        switch self {
        case let .unknownModel(m): "unknown model '\(m)'; choose one of: \(ModelRegistry.modelNames.joined(separator: ", "))"
        case let .unsupportedPrompt(m, k):
            "model \(m) takes no \(k.rawValue) prompts; it takes: \(ModelRegistry.info(m).map { $0.promptKinds.map(\.rawValue).sorted().joined(separator: ", ") } ?? "-")"
        case let .notInFamily(m, f):
            "this works with the \(f) family (\(ModelRegistry.families.first { $0.name == f }?.models.map(\.name).joined(separator: ", ") ?? "")); '\(m)' is not one of them"
        }
    }
}

/// The only place that knows model names (transformers' `models/auto`, llama.cpp's
/// `llm_arch` table). Adding a family: a library target, a backend type with a `family`,
/// one line here, its tests.
public enum ModelRegistry {
    public static let families: [ModelFamily] = [
        SAMBackend.family,
        Sam2Backend.family,
        CLIPSegBackend.family,
        SegGPTBackend.family,
    ]

    public static var models: [ModelInfo] { families.flatMap(\.models) }
    public static var modelNames: [String] { models.map(\.name) }
    /// The model the commands use when none is named: the one whose weights ship with set-up.
    public static let defaultModel = SamModelKind.liteMedSAM.rawValue

    public static func info(_ name: String) -> ModelInfo? { models.first { $0.name == name.lowercased() } }

    public static func family(of name: String) throws(RegistryError) -> ModelFamily {
        guard let f = families.first(where: { $0.models.contains { $0.name == name.lowercased() } }) else {
            throw .unknownModel(name)
        }
        return f
    }

    public static func load(_ request: ModelLoadRequest) throws -> any SegmentationBackend {
        var r = request
        r.model = request.model.lowercased()
        return try family(of: r.model).load(r)
    }

    /// Fails (before any compute) when `model` does not take `kind`.
    public static func require(_ kind: PromptKind, model: String) throws(RegistryError) {
        guard let i = info(model) else { throw .unknownModel(model) }
        guard i.promptKinds.contains(kind) else { throw .unsupportedPrompt(model: i.name, kind: kind) }
    }

    /// The names for `--help`.
    public static var helpList: String { modelNames.joined(separator: ", ") }
}

extension SAMBackend {
    public static let promptKinds: Set<PromptKind> = [.points, .boxes, .maskInput, .multimask, .everything, .tracking]

    public static let family = ModelFamily(
        name: "sam",
        models: SamModelKind.allCases.map {
            ModelInfo(name: $0.rawValue, family: "sam", promptKinds: promptKinds,
                      weights: $0 == .liteMedSAM ? "cached by Deploy/setup.sh (lite_medsam.pth)" : "--checkpoint \($0.officialCheckpointName)",
                      everythingScores: $0 == .liteMedSAM ? liteMedSAMEverything : nil)
        },
        load: { r in
            guard let kind = SamModelKind(rawValue: r.model) else { throw RegistryError.unknownModel(r.model) }
            return SAMBackend(try ModelStore.load(kind, checkpoint: r.checkpoint))
        })
}

extension SAMBackend {
    /// Measured with `segflow everything --in-process --pred-iou-thresh 0
    /// --stability-score-thresh 0` on Tests/SAMTests/Fixtures/chelsea.png and coffee.png
    /// (16 points per side: 597 and 512 masks before the thresholds): LiteMedSAM was trained
    /// for single-mask box prompts; its multimask logits never clear upstream's stability
    /// offset of 1.0 (stability 0 on every mask) and its predicted IoU stays ≤ 0.24.
    static let liteMedSAMEverything = EverythingScores(
        maxPredictedIoU: 0.24, maxStabilityScore: 0,
        advice: "LiteMedSAM was trained for single-mask box prompts. Masks survive with --stability-score-thresh 0 and "
            + "--pred-iou-thresh 0.2 or lower (measured at 32 points per side: 0.2 kept 58 and 36 masks on the two fixture "
            + "photographs, 0.15 kept 1175 and 859); box prompts (`segflow segment --box`) are its domain.")
}

extension CLIPSegBackend {
    public static let family = ModelFamily(
        name: "clipseg",
        models: [ModelInfo(name: modelName, family: "clipseg", promptKinds: promptKinds,
                           weights: "--checkpoint model.safetensors of CIDAS/clipseg-rd64-refined (layout --config rd64-refined)")],
        load: { r in
            guard let path = r.checkpoint else {
                throw PipelineError.missingCheckpoint(model: modelName, path: nil)
            }
            var parts: Set<CLIPSegForImageSegmentation.Part> = []
            if r.parts.contains(.encoder) { parts.insert(.vision) }
            if r.parts.contains(.decoder) { parts.insert(.decoder) }
            if r.parts.contains(.text) { parts.insert(.text) }
            return try CLIPSegBackend(checkpoint: URL(fileURLWithPath: (path as NSString).expandingTildeInPath),
                                      config: try config(named: r.config ?? "rd64-refined"), parts: parts)
        })
}

extension SAMBackend {
    /// The SAM-family variant a registry name denotes (for SAM-only tools: embed files,
    /// benchmarks); other families' names are refused with the registry's message.
    public static func kind(named name: String) throws(RegistryError) -> SamModelKind {
        guard let info = ModelRegistry.info(name) else { throw .unknownModel(name) }
        guard info.family == family.name, let kind = SamModelKind(rawValue: info.name) else {
            throw .notInFamily(model: info.name, family: family.name)
        }
        return kind
    }
}

import Foundation
import Tensor

/// A scoped, strict view of a `StateDict` for building models, in the spirit of
/// candle's `VarBuilder`: the state-dict path is written where a layer is built.
///
/// ```swift
/// let vb = try WeightLoader(stateDict)
/// let head = vb.pp("mask_decoder").pp("iou_prediction_head").pp("layers").pp(0)
/// let w = try head.tensor("weight", shape: [256, 256])
/// …
/// try vb.finish()   // throws if the checkpoint holds tensors no layer asked for
/// ```
///
/// Every scope shares one usage record, so `finish()` on any of them sees all loads.
public struct WeightLoader: Sendable {
    /// Dotted path of this scope, "" at the root.
    public let prefix: String
    private let store: Store

    /// - Parameters:
    ///   - stripPrefix: removed from stored names that start with it, e.g. "module."
    ///     from `DataParallel` checkpoints. Names without it are kept as they are.
    public init(_ stateDict: StateDict, stripPrefix: String? = nil) throws(CheckpointError) {
        self.store = try Store(stateDict, stripPrefix: stripPrefix)
        self.prefix = ""
    }

    /// A loader with no checkpoint behind it: every request is answered with a
    /// deterministic random tensor of the requested shape (uniform in ±1/√fan-in, seeded
    /// by the name) and recorded. For benchmarking architectures whose weights are not
    /// at hand and for listing the names and shapes a model asks for.
    /// `zeros: true` skips the random fill (listing names and shapes of huge models).
    public static func synthesizing(seed: UInt64 = 0, zeros: Bool = false) -> WeightLoader {
        WeightLoader(store: Store(syntheticSeed: seed, zeros: zeros), prefix: "")
    }

    /// Names and shapes requested so far from a `synthesizing` loader, in request order.
    public var synthesizedTensors: [(name: String, shape: [Int])] { store.synthesized() }

    private init(store: Store, prefix: String) {
        self.store = store
        self.prefix = prefix
    }

    /// A child scope: `pp("layers").pp(0)` addresses `layers.0.*`.
    public func pp(_ component: String) -> WeightLoader {
        WeightLoader(store: store, prefix: path(component))
    }

    public func pp(_ index: Int) -> WeightLoader { pp(String(index)) }

    /// Full dotted name of `name` in this scope.
    public func path(_ name: String) -> String {
        if prefix.isEmpty { return name }
        if name.isEmpty { return prefix }
        return prefix + "." + name
    }

    public func contains(_ name: String) -> Bool { store.stored(path(name)) != nil }

    public func info(_ name: String) -> TensorInfo? {
        store.stored(path(name)).flatMap { store.stateDict.info(named: $0) }
    }

    /// Loads `name` in this scope, requiring `shape` (and `dtype` as stored, if given),
    /// and records it as used.
    public func tensor(_ name: String, shape: [Int], dtype: DType? = nil) throws(CheckpointError) -> Tensor {
        let full = path(name)
        if let seed = store.syntheticSeed { return store.synthesize(full, shape: shape, seed: seed) }
        guard let stored = store.stored(full), let info = store.stateDict.info(named: stored) else {
            throw .missingTensor(path: full, expectedShape: shape)
        }
        guard info.shape == shape else { throw .shapeMismatch(path: full, expected: shape, actual: info.shape) }
        if let dtype, dtype != info.dtype { throw .dtypeMismatch(path: full, expected: dtype, actual: info.dtype) }
        let t = try store.stateDict.tensor(named: stored)
        store.markUsed(full)
        return t
    }

    /// Declares a tensor as intentionally not loaded (e.g. BatchNorm `num_batches_tracked`),
    /// so `finish()` does not report it. Returns whether it exists.
    @discardableResult
    public func skip(_ name: String) -> Bool {
        let full = path(name)
        if store.syntheticSeed != nil { return false }
        guard store.stored(full) != nil else { return false }
        store.markUsed(full)
        return true
    }

    /// Names (after prefix stripping) loaded or skipped so far, in checkpoint order.
    public var usedTensors: [String] { store.names(used: true) }

    /// Names (after prefix stripping) nothing has loaded or skipped, in checkpoint order.
    public var unusedTensors: [String] { store.names(used: false) }

    /// Throws `CheckpointError.unusedTensors` if any checkpoint tensor was not consumed:
    /// a silently ignored tensor usually means a misnamed layer.
    public func finish() throws(CheckpointError) {
        let unused = unusedTensors
        guard unused.isEmpty else { throw .unusedTensors(names: unused) }
    }

    private final class Store: @unchecked Sendable {
        // @unchecked: `used` and `synthesizedList` are only touched under `lock`;
        // everything else is immutable.
        let stateDict: StateDict
        let syntheticSeed: UInt64?
        let syntheticZeros: Bool
        private var synthesizedList: [(name: String, shape: [Int])] = []
        /// Logical (stripped) name → stored name, and logical names in checkpoint order.
        private let storedNames: [String: String]
        private let logicalOrder: [String]
        private let lock = NSLock()
        private var used = Set<String>()

        init(_ stateDict: StateDict, stripPrefix: String?) throws(CheckpointError) {
            self.stateDict = stateDict
            var map: [String: String] = [:]
            var order: [String] = []
            for stored in stateDict.names {
                var logical = stored
                if let p = stripPrefix, !p.isEmpty, stored.hasPrefix(p) { logical = String(stored.dropFirst(p.count)) }
                guard map.updateValue(stored, forKey: logical) == nil else { throw .duplicateTensor(name: logical) }
                order.append(logical)
            }
            storedNames = map
            logicalOrder = order
            syntheticSeed = nil
            syntheticZeros = false
        }

        init(syntheticSeed seed: UInt64, zeros: Bool) {
            syntheticZeros = zeros
            // An empty state dict: nothing is stored, so `finish()` has nothing to report.
            stateDict = try! StateDict(bytes: SafeTensorsWriter.encode([]))
            storedNames = [:]
            logicalOrder = []
            syntheticSeed = seed
        }

        func synthesize(_ name: String, shape: [Int], seed: UInt64) -> Tensor {
            lock.lock()
            synthesizedList.append((name, shape))
            lock.unlock()
            if syntheticZeros { return Tensor(zeros: shape) }
            var state = seed ^ 0x9E37_79B9_7F4A_7C15
            for b in name.utf8 { state = (state ^ UInt64(b)) &* 0x100_0000_01B3 }  // FNV-1a
            let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : max(1, shape.first ?? 1)
            let scale = 1 / Float(max(1, fanIn)).squareRoot()
            let n = shape.reduce(1, *)
            var data = [Float](repeating: 0, count: n)
            for i in 0..<n {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                data[i] = (Float(z >> 40) / Float(1 << 24) * 2 - 1) * scale
            }
            return Tensor(shape: shape, data: data)
        }

        func synthesized() -> [(name: String, shape: [Int])] {
            lock.lock()
            defer { lock.unlock() }
            return synthesizedList
        }

        func stored(_ logical: String) -> String? { storedNames[logical] }

        func markUsed(_ logical: String) {
            lock.lock()
            used.insert(logical)
            lock.unlock()
        }

        func names(used wanted: Bool) -> [String] {
            lock.lock()
            defer { lock.unlock() }
            return logicalOrder.filter { used.contains($0) == wanted }
        }
    }
}

/// Callables a checkpoint pickle may reference. Anything else is refused at the GLOBAL
/// opcode, before it could be called.
/// ref: torch/_weights_only_unpickler.py (`_get_allowed_globals`) — a strict subset.
enum AllowedGlobal: Equatable {
    case orderedDict            // collections.OrderedDict
    case rebuildTensorV2        // torch._utils._rebuild_tensor_v2
    case rebuildParameter       // torch._utils._rebuild_parameter
    case rebuildParameterWithState  // torch._utils._rebuild_parameter_with_state
    case torchSize              // torch.Size
    case storageType(DType)     // torch.FloatStorage, torch.HalfStorage, …

    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): self = .rebuildParameterWithState
        case ("torch", "Size"): self = .torchSize
        case ("torch", _):
            guard let dtype = DType(torchStorageName: name) else { return nil }
            self = .storageType(dtype)
        default: return nil
        }
    }
}

/// A storage record referenced by a persistent id, already resolved to bytes of the file.
struct StorageRef: Equatable {
    let key: String
    let dtype: DType
    /// Elements in the storage (the persistent id's `numel`).
    let elementCount: Int
    /// Absolute byte offset of the record's data in the checkpoint file.
    let fileOffset: Int
}

/// The arguments of `torch._utils._rebuild_tensor_v2`, unvalidated against the storage
/// (that needs the tensor's name for the error message; see `PyTorchCheckpoint`).
struct TensorRef: Equatable {
    let storage: StorageRef
    let storageOffset: Int
    let shape: [Int]
    let strides: [Int]
}

/// Tuples are immutable values; their nesting depth is bounded so that destroying a
/// hostile deeply nested value cannot overflow the stack.
struct PickleTuple: Equatable {
    let items: [PickleValue]
    let depth: Int
}

/// A value on the unpickler stack. Lists and dicts are mutable and shared through the
/// memo (Python reference semantics), so they live in an arena and are referenced by
/// index; that also makes self-referencing containers harmless (no ARC cycles).
indirect enum PickleValue: Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    case list(Int)
    case dict(Int)
    case global(AllowedGlobal)
    case storage(StorageRef)
    case tensor(TensorRef)

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .global: return "global"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }

    var depth: Int {
        if case let .tuple(t) = self { return t.depth }
        return 0
    }
}

/// An insertion-ordered dict with Python's replace-in-place semantics for str/int keys.
struct PickleDict {
    private(set) var keys: [PickleValue] = []
    private(set) var values: [PickleValue] = []
    private var index: [HashKey: Int] = [:]

    private enum HashKey: Hashable {
        case string(String)
        case int(Int)
    }

    mutating func set(_ key: PickleValue, _ value: PickleValue) {
        let hashKey: HashKey?
        switch key {
        case let .string(s): hashKey = .string(s)
        case let .int(i): hashKey = .int(i)
        case let .bool(b): hashKey = .int(b ? 1 : 0)  // Python: True == 1
        default: hashKey = nil
        }
        if let hashKey, let i = index[hashKey] {
            values[i] = value
            return
        }
        if let hashKey { index[hashKey] = keys.count }
        keys.append(key)
        values.append(value)
    }
}

enum PickleContainer {
    case list([PickleValue])
    case dict(PickleDict)
}

/// Resolves a persistent id `('storage', StorageType, key, location, numel)` to a record.
typealias StorageResolver = (_ dtype: DType, _ key: String, _ elementCount: Int) throws(CheckpointError) -> StorageRef

/// A restricted unpickler for `torch.save` payloads: protocol-2 opcodes that
/// `torch.save` emits (plus the harmless protocol 3–4 framing/string opcodes) and an
/// allow-list of globals. It never imports or calls anything: GLOBAL resolves to an
/// `AllowedGlobal` and REDUCE interprets those few callables itself.
/// ref: cpython Lib/pickle.py `_Unpickler` (load_* methods), torch/serialization.py
///      `_save` / `_load` (persistent_id / persistent_load), torch/_utils.py
struct Unpickler {
    /// Deepest tuple nesting accepted (torch.save output nests 3 deep).
    static let maxTupleDepth = 64

    private let reader: ByteReader
    private let resolveStorage: StorageResolver
    private var pos = 0
    private var opcodeStart = 0
    private var opcode: PickleOpcode = .stop
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private(set) var arena: [PickleContainer] = []

    init(_ reader: ByteReader, resolveStorage: @escaping StorageResolver) {
        self.reader = reader
        self.resolveStorage = resolveStorage
    }

    private func fail(_ reason: String) -> CheckpointError {
        .malformedPickle(offset: reader.origin + opcodeStart, opcode: opcode.description, reason: reason)
    }

    // MARK: - reading arguments

    private mutating func take(_ n: Int) throws(CheckpointError) -> UnsafeRawBufferPointer {
        let s = try reader.slice(pos, n)
        pos += n
        return s
    }

    private mutating func takeU8() throws(CheckpointError) -> UInt8 {
        let v = try reader.u8(pos); pos += 1; return v
    }

    private mutating func takeU16() throws(CheckpointError) -> UInt16 {
        let v = try reader.u16(pos); pos += 2; return v
    }

    private mutating func takeU32() throws(CheckpointError) -> UInt32 {
        let v = try reader.u32(pos); pos += 4; return v
    }

    private mutating func takeU64() throws(CheckpointError) -> UInt64 {
        let v = try reader.u64(pos); pos += 8; return v
    }

    private mutating func takeLength(_ raw: UInt64) throws(CheckpointError) -> Int {
        // A length beyond the remaining bytes is a truncation, reported before any copy.
        guard raw <= UInt64(reader.count - pos) else {
            throw CheckpointError.truncated(context: reader.context, offset: reader.origin + pos,
                                            needed: raw > UInt64(Int.max) ? Int.max : Int(raw),
                                            available: reader.count - pos)
        }
        return Int(raw)
    }

    private mutating func takeString(length: Int) throws(CheckpointError) -> String {
        let raw = try take(length)
        guard let s = String(validating: raw, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return s
    }

    /// A newline-terminated line (GLOBAL arguments), at most 256 bytes.
    private mutating func takeLine() throws(CheckpointError) -> String {
        let start = pos
        while true {
            let c = try takeU8()
            if c == 0x0a { break }
            guard pos - start <= 256 else { throw fail("GLOBAL argument longer than 256 bytes") }
        }
        let raw = try reader.slice(start, pos - 1 - start)
        guard let s = String(validating: raw, as: UTF8.self) else { throw fail("GLOBAL argument is not valid UTF-8") }
        return s
    }

    /// Little-endian two's complement integer of `n` bytes (LONG1 / LONG4).
    private mutating func takeLong(_ n: Int) throws(CheckpointError) -> Int {
        guard n <= 8 else { throw fail("integer of \(n) bytes does not fit in 64 bits") }
        let raw = try take(n)
        var v: UInt64 = 0
        for i in 0 ..< n { v |= UInt64(raw[i]) << (8 * UInt64(i)) }
        if n > 0 && n < 8 && raw[n - 1] & 0x80 != 0 {
            v |= ~UInt64(0) << (8 * UInt64(n))  // sign-extend
        }
        return Int(Int64(bitPattern: v))
    }

    // MARK: - stack

    private mutating func push(_ v: PickleValue) { stack.append(v) }

    private mutating func pop() throws(CheckpointError) -> PickleValue {
        guard let v = stack.popLast() else { throw fail("stack underflow") }
        if let m = marks.last, stack.count < m { throw fail("pops across a MARK") }
        return v
    }

    private func top() throws(CheckpointError) -> PickleValue {
        guard let v = stack.last else { throw fail("stack underflow") }
        if let m = marks.last, stack.count <= m { throw fail("no item above the MARK") }
        return v
    }

    private mutating func popMark() throws(CheckpointError) -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no MARK on the stack") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private mutating func makeTuple(_ items: [PickleValue]) throws(CheckpointError) -> PickleValue {
        let depth = 1 + (items.map(\.depth).max() ?? 0)
        guard depth <= Self.maxTupleDepth else { throw fail("tuples nested deeper than \(Self.maxTupleDepth)") }
        return .tuple(PickleTuple(items: items, depth: depth))
    }

    private mutating func newContainer(_ c: PickleContainer) -> Int {
        arena.append(c)
        return arena.count - 1
    }

    // MARK: - main loop

    /// Runs the pickle to STOP and returns the resulting object.
    mutating func load() throws(CheckpointError) -> PickleValue {
        while true {
            opcodeStart = pos
            let byte = try takeU8()
            guard let op = PickleOpcode(rawValue: byte) else {
                throw CheckpointError.unsupportedOpcode(opcode: byte, offset: reader.origin + opcodeStart)
            }
            opcode = op
            switch op {
            case .proto:
                let version = try takeU8()
                guard version >= 2 && version <= 5 else { throw fail("unsupported protocol \(version)") }
            case .frame:
                _ = try takeU64()  // framing is only a read-ahead hint
            case .stop:
                let result = try pop()
                guard stack.isEmpty, marks.isEmpty else { throw fail("\(stack.count) item(s) left on the stack") }
                return result

            case .mark: marks.append(stack.count)
            case .emptyDict: push(.dict(newContainer(.dict(PickleDict()))))
            case .emptyList: push(.list(newContainer(.list([]))))
            case .emptyTuple: push(.tuple(PickleTuple(items: [], depth: 1)))
            case .none: push(.none)
            case .newtrue: push(.bool(true))
            case .newfalse: push(.bool(false))

            case .binint: push(.int(Int(Int32(bitPattern: try takeU32()))))
            case .binint1: push(.int(Int(try takeU8())))
            case .binint2: push(.int(Int(try takeU16())))
            case .long1: push(.int(try takeLong(Int(try takeU8()))))
            case .long4:
                let n = try takeU32()
                push(.int(try takeLong(Int(min(n, 9)))))  // > 8 bytes is rejected
            case .binfloat:
                // ref: pickle.py load_binfloat — big-endian IEEE double
                push(.float(Double(bitPattern: UInt64(bigEndian: try reader.slice(pos, 8).loadUnaligned(as: UInt64.self)))))
                pos += 8

            case .binunicode: push(.string(try takeString(length: try takeLength(UInt64(try takeU32())))))
            case .shortBinunicode: push(.string(try takeString(length: Int(try takeU8()))))
            case .binunicode8: push(.string(try takeString(length: try takeLength(try takeU64()))))
            // Python 2 str; torch.load decodes them with encoding='utf-8'.
            case .shortBinstring: push(.string(try takeString(length: Int(try takeU8()))))
            case .binstring:
                let n = Int32(bitPattern: try takeU32())
                guard n >= 0 else { throw fail("negative BINSTRING length") }
                push(.string(try takeString(length: try takeLength(UInt64(n)))))
            case .shortBinbytes: push(.bytes(Array(try take(Int(try takeU8())))))
            case .binbytes: push(.bytes(Array(try take(try takeLength(UInt64(try takeU32()))))))

            case .tuple: push(try makeTuple(try popMark()))
            case .tuple1:
                let a = try pop()
                push(try makeTuple([a]))
            case .tuple2:
                let b = try pop(), a = try pop()
                push(try makeTuple([a, b]))
            case .tuple3:
                let c = try pop(), b = try pop(), a = try pop()
                push(try makeTuple([a, b, c]))

            case .setitem:
                let value = try pop(), key = try pop()
                try setItems(on: try top(), [key, value])
            case .setitems:
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("odd number of items for SETITEMS") }
                try setItems(on: try top(), items)
            case .append:
                let value = try pop()
                try append(to: try top(), [value])
            case .appends:
                let items = try popMark()
                try append(to: try top(), items)

            case .binput: memo[Int(try takeU8())] = try top()
            case .longBinput: memo[Int(try takeU32())] = try top()
            case .memoize: memo[memo.count] = try top()
            case .binget: try pushMemo(Int(try takeU8()))
            case .longBinget: try pushMemo(Int(try takeU32()))

            case .global:
                let module = try takeLine()
                let name = try takeLine()
                push(try allowGlobal(module: module, name: name))
            case .stackGlobal:
                let name = try pop(), module = try pop()
                guard case let .string(n) = name, case let .string(m) = module else {
                    throw fail("STACK_GLOBAL needs two strings, got \(module.kind) and \(name.kind)")
                }
                push(try allowGlobal(module: m, name: n))

            case .reduce:
                let args = try pop(), callable = try pop()
                push(try reduce(callable, args))
            case .build:
                let state = try pop()
                // ref: pickle.py load_build — for OrderedDict the state is its __dict__
                // ({'_metadata': …} from Module.state_dict()); it carries no tensors.
                guard case .dict = try top() else { throw fail("BUILD on a \(try top().kind) is not supported") }
                switch state {
                case .dict, .none, .tuple: break
                default: throw fail("BUILD state must be a dict, got \(state.kind)")
                }
            case .binpersid:
                push(try persistentLoad(try pop()))

            default:
                throw CheckpointError.unsupportedOpcode(opcode: byte, offset: reader.origin + opcodeStart)
            }
        }
    }

    private mutating func pushMemo(_ index: Int) throws(CheckpointError) {
        guard let v = memo[index] else { throw fail("memo key \(index) was never stored") }
        push(v)
    }

    private func allowGlobal(module: String, name: String) throws(CheckpointError) -> PickleValue {
        guard let g = AllowedGlobal(module: module, name: name) else {
            throw CheckpointError.forbiddenGlobal(module: module, name: name, offset: reader.origin + opcodeStart)
        }
        return .global(g)
    }

    private mutating func setItems(on target: PickleValue, _ items: [PickleValue]) throws(CheckpointError) {
        guard case let .dict(id) = target, case var .dict(d) = arena[id] else {
            throw fail("target is a \(target.kind), not a dict")
        }
        arena[id] = .list([])  // drop the arena's reference so `d` is mutated in place
        for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
        arena[id] = .dict(d)
    }

    private mutating func append(to target: PickleValue, _ items: [PickleValue]) throws(CheckpointError) {
        guard case let .list(id) = target, case var .list(l) = arena[id] else {
            throw fail("target is a \(target.kind), not a list")
        }
        arena[id] = .list([])
        l.append(contentsOf: items)
        arena[id] = .list(l)
    }

    private func int(_ v: PickleValue, _ what: String) throws(CheckpointError) -> Int {
        guard case let .int(i) = v else { throw fail("\(what) must be an int, got \(v.kind)") }
        return i
    }

    private func ints(_ v: PickleValue, _ what: String) throws(CheckpointError) -> [Int] {
        guard case let .tuple(t) = v else { throw fail("\(what) must be a tuple, got \(v.kind)") }
        var out: [Int] = []
        out.reserveCapacity(t.items.count)
        for item in t.items {
            let i = try int(item, "\(what) element")
            guard i >= 0 else { throw fail("\(what) has a negative element \(i)") }
            out.append(i)
        }
        return out
    }

    private mutating func reduce(_ callable: PickleValue, _ argsValue: PickleValue) throws(CheckpointError) -> PickleValue {
        guard case let .global(g) = callable else { throw fail("callable is a \(callable.kind), not an allowed global") }
        guard case let .tuple(argsTuple) = argsValue else { throw fail("arguments are a \(argsValue.kind), not a tuple") }
        let args = argsTuple.items
        switch g {
        case .orderedDict:
            guard args.isEmpty else { throw fail("OrderedDict with \(args.count) argument(s) is not supported") }
            return .dict(newContainer(.dict(PickleDict())))
        case .torchSize:
            guard args.count == 1, case .tuple = args[0] else { throw fail("torch.Size expects one tuple") }
            _ = try ints(args[0], "torch.Size")
            return args[0]
        case .rebuildTensorV2:
            // ref: torch/_utils.py _rebuild_tensor_v2(storage, storage_offset, size, stride,
            //      requires_grad, backward_hooks, metadata=None)
            guard args.count == 6 || args.count == 7 else {
                throw fail("_rebuild_tensor_v2 expects 6 or 7 arguments, got \(args.count)")
            }
            guard case let .storage(storage) = args[0] else {
                throw fail("_rebuild_tensor_v2 storage argument is a \(args[0].kind)")
            }
            let offset = try int(args[1], "storage_offset")
            guard offset >= 0 else { throw fail("negative storage_offset \(offset)") }
            let shape = try ints(args[2], "size")
            let strides = try ints(args[3], "stride")
            guard shape.count == strides.count else {
                throw fail("size has \(shape.count) dimension(s) but stride has \(strides.count)")
            }
            return .tensor(TensorRef(storage: storage, storageOffset: offset, shape: shape, strides: strides))
        case .rebuildParameter, .rebuildParameterWithState:
            // ref: torch/_utils.py _rebuild_parameter(data, requires_grad, backward_hooks)
            //      and _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state)
            let expected = g == .rebuildParameter ? 3 : 4
            guard args.count == expected else { throw fail("\(g) expects \(expected) arguments, got \(args.count)") }
            guard case .tensor = args[0] else { throw fail("parameter data is a \(args[0].kind), not a tensor") }
            return args[0]
        case .storageType:
            throw fail("storage types are only valid inside a persistent id")
        }
    }

    private mutating func persistentLoad(_ pid: PickleValue) throws(CheckpointError) -> PickleValue {
        // ref: torch/serialization.py _save.persistent_id → ('storage', storage_type,
        //      key, location, numel); _load.persistent_load reads data/<key>.
        guard case let .tuple(t) = pid, t.items.count == 5 else { throw fail("persistent id is not a 5-tuple") }
        let items = t.items
        guard case .string("storage") = items[0] else { throw fail("persistent id is not a storage reference") }
        guard case let .global(.storageType(dtype)) = items[1] else {
            throw fail("persistent id storage type is a \(items[1].kind), not a torch storage class")
        }
        guard case let .string(key) = items[2] else { throw fail("storage key is a \(items[2].kind), not a str") }
        guard case .string = items[3] else { throw fail("storage location is a \(items[3].kind), not a str") }
        let numel = try int(items[4], "storage numel")
        guard numel >= 0 else { throw fail("negative storage numel \(numel)") }
        return .storage(try resolveStorage(dtype, key, numel))
    }
}

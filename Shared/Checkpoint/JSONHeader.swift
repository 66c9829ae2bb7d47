/// A minimal strict JSON reader for safetensors headers.
///
/// Foundation's JSONSerialization would do, but a header is attacker-controlled input:
/// this parser keeps object key order (tensor order in the file), rejects duplicate
/// keys, limits nesting depth, parses integers exactly (offsets beyond 2^53 are not
/// silently rounded) and reports the byte offset of every error.
indirect enum JSONValue: Equatable {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case integer(Int)
    case number(Double)
    case bool(Bool)
    case null

    static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.array(x), .array(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }

    var typeName: String {
        switch self {
        case .object: return "object"
        case .array: return "array"
        case .string: return "string"
        case .integer, .number: return "number"
        case .bool: return "bool"
        case .null: return "null"
        }
    }
}

struct JSONParser {
    static let maxDepth = 16

    private let bytes: UnsafeRawBufferPointer
    private var pos = 0

    /// Parses one JSON value filling `bytes`, allowing trailing whitespace (safetensors
    /// pads headers with spaces to an 8-byte boundary).
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.pos == bytes.count else { throw parser.fail("unexpected data after the JSON value") }
        return value
    }

    private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func fail(_ reason: String) -> CheckpointError { .invalidHeader(offset: pos, reason: reason) }

    private var atEnd: Bool { pos >= bytes.count }

    private func peek() throws(CheckpointError) -> UInt8 {
        guard pos < bytes.count else { throw fail("unexpected end of header") }
        return bytes[pos]
    }

    private mutating func skipWhitespace() {
        while pos < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[pos]) { pos += 1 }
    }

    private mutating func expect(_ c: UInt8) throws(CheckpointError) {
        guard try peek() == c else {
            throw fail("expected '\(Character(Unicode.Scalar(c)))'")
        }
        pos += 1
    }

    private mutating func value(depth: Int) throws(CheckpointError) -> JSONValue {
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth)") }
        switch try peek() {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws(CheckpointError) {
        let n = word.utf8CodeUnitCount
        guard n <= bytes.count - pos else { throw fail("unexpected end of header") }
        for i in 0 ..< n where bytes[pos + i] != word.utf8Start[i] {
            throw fail("invalid literal")
        }
        pos += n
    }

    private mutating func object(depth: Int) throws(CheckpointError) -> JSONValue {
        pos += 1  // {
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard try peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyOffset = pos
            let key = try string()
            guard seen.insert(key).inserted else {
                throw CheckpointError.invalidHeader(offset: keyOffset, reason: "duplicate key '\(key)'")
            }
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            members.append((key, try value(depth: depth + 1)))
            skipWhitespace()
            let c = try peek()
            pos += 1
            if c == UInt8(ascii: "}") { return .object(members) }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw fail("expected ',' or '}'") }
        }
    }

    private mutating func array(depth: Int) throws(CheckpointError) -> JSONValue {
        pos += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try value(depth: depth + 1))
            skipWhitespace()
            let c = try peek()
            pos += 1
            if c == UInt8(ascii: "]") { return .array(items) }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw fail("expected ',' or ']'") }
        }
    }

    private mutating func hex4() throws(CheckpointError) -> UInt32 {
        guard 4 <= bytes.count - pos else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0 ..< 4 {
            let c = bytes[pos]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }

    private mutating func string() throws(CheckpointError) -> String {
        pos += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let c = bytes[pos]
            pos += 1
            switch c {
            case UInt8(ascii: "\""):
                guard let s = String(validating: utf8, as: UTF8.self) else {
                    throw fail("string is not valid UTF-8")
                }
                return s
            case UInt8(ascii: "\\"):
                let e = try peek()
                pos += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(e)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0c)
                case UInt8(ascii: "n"): utf8.append(0x0a)
                case UInt8(ascii: "r"): utf8.append(0x0d)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xd800 ..< 0xdc00).contains(scalar) {
                        // surrogate pair
                        guard 2 <= bytes.count - pos, bytes[pos] == UInt8(ascii: "\\"),
                              bytes[pos + 1] == UInt8(ascii: "u") else { throw fail("unpaired surrogate") }
                        pos += 2
                        let low = try hex4()
                        guard (0xdc00 ..< 0xe000).contains(low) else { throw fail("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                    utf8.append(contentsOf: String(Character(u)).utf8)
                default: throw fail("invalid escape")
                }
            case 0x00 ..< 0x20:
                pos -= 1
                throw fail("control character in string")
            default:
                utf8.append(c)
            }
        }
    }

    private mutating func number() throws(CheckpointError) -> JSONValue {
        let start = pos
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        var isInteger = true
        while pos < bytes.count {
            let c = bytes[pos]
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                pos += 1
            } else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E")
                        || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                isInteger = false
                pos += 1
            } else {
                break
            }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start ..< pos]), as: UTF8.self)
        if isInteger, let v = Int(text) { return .integer(v) }
        if isInteger && text.utf8.count > 1 {
            throw CheckpointError.invalidHeader(offset: start, reason: "integer '\(text.prefix(40))' out of range")
        }
        guard let d = Double(text), d.isFinite else {
            throw CheckpointError.invalidHeader(offset: start, reason: "invalid number '\(text.prefix(40))'")
        }
        return .number(d)
    }
}

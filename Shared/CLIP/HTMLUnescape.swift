/// Python's `html.unescape`, scalar for scalar: open_clip's `basic_clean` applies it twice.
/// ref: cpython Lib/html/__init__.py (`_charref`, `_replace_charref`, `unescape`)
enum HTMLUnescape {
    /// name (with ";" where the standard has it) → replacement scalars.
    private static let named: [String: [Unicode.Scalar]] = {
        var table: [String: [Unicode.Scalar]] = [:]
        table.reserveCapacity(2300)
        for line in HTMLEntityTables.named.split(separator: "\n") {
            let parts = line.split(separator: "\t")
            table[String(parts[0])] = parts[1].split(separator: " ").map { Unicode.Scalar(UInt32($0, radix: 16)!)! }
        }
        return table
    }()

    private static let invalidCharrefs: [UInt32: Unicode.Scalar?] = {
        var table: [UInt32: Unicode.Scalar?] = [:]
        for item in HTMLEntityTables.invalidCharrefs.split(separator: " ") {
            let kv = item.split(separator: ":", omittingEmptySubsequences: false)
            table[UInt32(kv[0], radix: 16)!] = kv[1].isEmpty ? .some(nil) : Unicode.Scalar(UInt32(kv[1], radix: 16)!)
        }
        return table
    }()

    private static let invalidCodepoints: Set<UInt32> =
        Set(HTMLEntityTables.invalidCodepoints.split(separator: " ").map { UInt32($0, radix: 16)! })

    /// Longest entity name in the table; `_charref` allows 32 characters anyway.
    private static let maxNameScalars = 32

    static func unescape(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        // ref: `if '&' not in s: return s`
        guard s.contains("&") else { return s }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if s[i] == "&", let (replacement, end) = charref(s, at: i + 1) {
                out.append(contentsOf: replacement)
                i = end
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    private static func isASCIIDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
    private static func isHexDigit(_ c: Unicode.Scalar) -> Bool {
        isASCIIDigit(c) || (c >= "a" && c <= "f") || (c >= "A" && c <= "F")
    }

    /// Matches `_charref` right after an "&" at `start`:
    /// `#[0-9]+;?` | `#[xX][0-9a-fA-F]+;?` | `[^\t\n\f <&#;]{1,32};?`
    /// and returns `_replace_charref`'s result and the index after the match.
    private static func charref(_ s: [Unicode.Scalar], at start: Int) -> ([Unicode.Scalar], Int)? {
        guard start < s.count else { return nil }
        if s[start] == "#" {
            var j = start + 1
            var hex = false
            if j < s.count, s[j] == "x" || s[j] == "X" { hex = true; j += 1 }
            let digitsStart = j
            while j < s.count, hex ? isHexDigit(s[j]) : isASCIIDigit(s[j]) { j += 1 }
            // `#x` with no hex digit: the regex backtracks to `#[0-9]+`, which also fails
            // ("x" is not a digit), and the named branch excludes "#": no match.
            guard j > digitsStart else { return nil }
            let digits = String(String.UnicodeScalarView(s[digitsStart..<j]))
            if j < s.count, s[j] == ";" { j += 1 }
            return (numeric(digits, radix: hex ? 16 : 10), j)
        }
        // Named: up to 32 scalars not in "\t\n\f <&#;", then an optional ";".
        var j = start
        while j < s.count, j - start < maxNameScalars, !"\t\n\u{0C} <&#;".unicodeScalars.contains(s[j]) { j += 1 }
        guard j > start else { return nil }
        if j < s.count, s[j] == ";" { j += 1 }
        let name = Array(s[start..<j])
        if let value = named[String(String.UnicodeScalarView(name))] { return (value, j) }
        // ref: "find the longest matching name (as defined by the standard)"
        //      for x in range(len(s)-1, 1, -1): if s[:x] in _html5: return _html5[s[:x]] + s[x:]
        var x = name.count - 1
        while x > 1 {
            if let value = named[String(String.UnicodeScalarView(name[0..<x]))] {
                return (value + name[x...], j)
            }
            x -= 1
        }
        return (["&"] + name, j)
    }

    /// ref: `_replace_charref`, numeric branch (`int(...)` is unbounded in Python: a value
    /// too long for UInt32 is simply > 0x10FFFF).
    private static func numeric(_ digits: String, radix: Int) -> [Unicode.Scalar] {
        let num = UInt32(digits, radix: radix) ?? UInt32.max
        if let replacement = invalidCharrefs[num] { return replacement.map { [$0] } ?? [] }
        if (0xD800...0xDFFF).contains(num) || num > 0x10FFFF { return ["\u{FFFD}"] }
        if invalidCodepoints.contains(num) { return [] }
        return [Unicode.Scalar(num)!]
    }
}

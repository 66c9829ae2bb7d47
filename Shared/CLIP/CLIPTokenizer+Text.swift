/// Text cleaning and the pre-tokenizer regex, on Unicode scalars (Python strings are code
/// point sequences; Swift `Character`s would glue combining marks and emoji sequences).
extension CLIPTokenizer {
    /// open_clip's `_clean_lower` without ftfy:
    /// `whitespace_clean(basic_clean(x)).lower()` where `basic_clean` is
    /// `html.unescape(html.unescape(text)).strip()`.
    ///
    /// Divergence, by design: open_clip's `basic_clean` first runs `ftfy.fix_text`
    /// (NFC, mojibake repair, curly → straight quotes, ligatures, full-width → ASCII, control
    /// characters, …). Segflow does not port ftfy; texts ftfy would change tokenize as
    /// open_clip does with ftfy disabled (Tests/CLIPTests/Fixtures/tokenizer_cases.json
    /// records both).
    /// ref: open_clip/tokenizer.py basic_clean, whitespace_clean, _clean_lower
    public static func clean(_ text: String) -> [Unicode.Scalar] {
        var s = Array(text.unicodeScalars)
        s = HTMLUnescape.unescape(HTMLUnescape.unescape(s))
        // ref: text.strip(), then " ".join(text.split()).strip() — split() already drops
        // leading/trailing whitespace, so one split-and-join covers all three.
        var collapsed: [Unicode.Scalar] = []
        collapsed.reserveCapacity(s.count)
        var pendingSpace = false
        for c in s {
            if isPythonWhitespace(c) {
                pendingSpace = !collapsed.isEmpty
            } else {
                if pendingSpace { collapsed.append(" "); pendingSpace = false }
                collapsed.append(c)
            }
        }
        return pythonLower(collapsed)
    }

    /// `str.isspace()` in CPython (the set `str.split()` and `str.strip()` use): ASCII
    /// \t\n\v\f\r, the separators \x1c–\x1f and space, then bidi class WS/B/S or category Zs.
    /// ref: cpython Objects/unicodetype_db.h _PyUnicode_IsWhitespace, Python/pyctype.c
    static func isPythonWhitespace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// `str.lower()`: full lowercase mappings (İ → i̇) with the contextual Final_Sigma rule.
    /// ref: cpython Objects/unicodeobject.c do_lower / handle_capital_sigma
    static func pythonLower(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        for (i, c) in s.enumerated() {
            if c.value < 0x80 {
                out.append(c >= "A" && c <= "Z" ? Unicode.Scalar(c.value + 32)! : c)
            } else if c == "\u{03A3}" {
                out.append(finalSigma(s, at: i) ? "\u{03C2}" : "\u{03C3}")
            } else {
                out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    /// \p{cased}\p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased})
    private static func finalSigma(_ s: [Unicode.Scalar], at i: Int) -> Bool {
        var j = i - 1
        while j >= 0, s[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0, s[j].properties.isCased else { return false }
        j = i + 1
        while j < s.count, s[j].properties.isCaseIgnorable { j += 1 }
        return j == s.count || !s[j].properties.isCased
    }

    /// `re.findall` with open_clip's pattern (compiled with `regex.IGNORECASE`):
    /// `<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
    /// Alternatives are tried in order at each position; whitespace matches none and is skipped.
    /// ref: open_clip/tokenizer.py SimpleTokenizer.__init__ (self.pat)
    static func preTokenize(_ s: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var pieces: [ArraySlice<Unicode.Scalar>] = []
        var i = 0
        while i < s.count {
            let c = s[i]
            if let n = literalMatch(s, at: i) {
                pieces.append(s[i..<(i + n)])
                i += n
            } else if isLetter(c) {
                var j = i + 1
                while j < s.count, isLetter(s[j]) { j += 1 }
                pieces.append(s[i..<j])
                i = j
            } else if isNumber(c) {
                pieces.append(s[i...i])
                i += 1
            } else if isOther(c) {
                var j = i + 1
                while j < s.count, isOther(s[j]) { j += 1 }
                pieces.append(s[i..<j])
                i = j
            } else {
                i += 1  // whitespace, or U+0345 (see `isOther`): no alternative matches
            }
        }
        return pieces
    }

    /// The literal alternatives, in pattern order.
    private static let literals: [[Unicode.Scalar]] =
        (specialTokens + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]).map { Array($0.unicodeScalars) }

    /// Length of the first literal alternative matching at `i`, compared case-insensitively.
    private static func literalMatch(_ s: [Unicode.Scalar], at i: Int) -> Int? {
        guard s[i] == "<" || s[i] == "'" else { return nil }
        for lit in literals where i + lit.count <= s.count {
            if zip(lit, s[i..<(i + lit.count)]).allSatisfy({ caselessEqual($0, $1) }) { return lit.count }
        }
        return nil
    }

    /// IGNORECASE equality of a pattern literal (lowercase ASCII or punctuation) with a text
    /// scalar under simple case folding. Besides ASCII case, two non-ASCII scalars fold to
    /// ASCII letters: U+017F ſ → s and U+212A K (Kelvin) → k; `lower()` has already turned
    /// the Kelvin sign into "k", but ſ survives, so "it'ſ" splits as "it" + "'ſ".
    private static func caselessEqual(_ literal: Unicode.Scalar, _ c: Unicode.Scalar) -> Bool {
        if literal == c { return true }
        if literal >= "a" && literal <= "z" {
            if c.value == literal.value - 32 { return true }
            if literal == "s" && c == "\u{017F}" { return true }
            if literal == "k" && c == "\u{212A}" { return true }
        }
        return false
    }

    /// `\p{L}`: general categories Lu, Ll, Lt, Lm, Lo.
    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// `\p{N}`: general categories Nd, Nl, No.
    static func isNumber(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return c >= "0" && c <= "9" }
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// `[^\s\p{L}\p{N}]` under IGNORECASE. The `regex` module treats a negated class
    /// caselessly as "no case variant is in the set": U+0345 COMBINING GREEK YPOGEGRAMMENI
    /// (Mn) folds to ι (a letter), so it matches neither this class nor `[\p{L}]` — it is
    /// dropped like whitespace. Measured over every code point: the only such scalar.
    static func isOther(_ c: Unicode.Scalar) -> Bool {
        !isRegexWhitespace(c) && !isLetter(c) && !isNumber(c) && c.value != 0x345
    }

    /// The `regex` module's `\s` (Unicode White_Space). After `clean` only " " can occur,
    /// but the predicate is kept exact so `preTokenize` stands on its own.
    static func isRegexWhitespace(_ c: Unicode.Scalar) -> Bool {
        c.value == 0x20 || (c.value >= 0x09 && c.value <= 0x0D) || (c.value >= 0x80 && c.properties.isWhitespace)
    }
}

import CLIP
import Foundation
import XCTest

/// Token ids against open_clip's SimpleTokenizer and transformers' CLIPTokenizer on the
/// corpus in Fixtures/tokenizer_cases.json (Tests/Reference/make_clip_fixtures.py).
final class CLIPTokenizerTests: XCTestCase {
    struct Case {
        let text: String
        let openCLIP: [Int], openCLIPNoFTFY: [Int], transformers: [Int], encodeNoFTFY: [Int]
    }

    static func cases() throws -> [Case] {
        let root = try XCTUnwrap(try fixtureJSON("tokenizer_cases.json") as? [String: Any])
        let rows = try XCTUnwrap(root["cases"] as? [[String: Any]])
        return try rows.map {
            Case(text: try XCTUnwrap($0["text"] as? String), openCLIP: try XCTUnwrap($0["open_clip"] as? [Int]),
                 openCLIPNoFTFY: try XCTUnwrap($0["open_clip_no_ftfy"] as? [Int]),
                 transformers: try XCTUnwrap($0["transformers"] as? [Int]),
                 encodeNoFTFY: try XCTUnwrap($0["encode_no_ftfy"] as? [Int]))
        }
    }

    /// Texts ftfy.fix_text changes (Segflow does not port ftfy): decomposed accents (NFC),
    /// half-width katakana, curly quotes, U+0345 after α (NFC), C0/C1 controls and zero-width
    /// characters, ligatures and full-width forms.
    static let ftfyDivergent: Set<String> = [
        "Cafe\u{0301} cre\u{0300}me (decomposed accents)",
        "猫の写真 고양이 사진 一只猫 ｶﾀｶﾅ",
        "it’s curly ‘quoted’ “text”",
        "ypogegrammeni \u{03b1}\u{0345} !\u{0345}? \u{0345}",
        "sep\u{1f}by\u{1c}info\u{85}next\u{2028}line\u{200b}zero width\u{feff}bom",
        "İstanbul KELVIN \u{212a} STRASSE Straße ǅ ﬁsh ＡＢＣ１２３",
        "tab\tcontrol\u{07}bell\u{00}nul",
    ]

    /// Texts on which transformers' CLIPTokenizer (tokenizers backend: NFC + `\s+`→" " +
    /// lowercase, no HTML unescape, `<|startoftext|>` spelling, case-sensitive regex) and
    /// open_clip disagree.
    static let transformersDivergent: Set<String> = [
        "Cafe\u{0301} cre\u{0300}me (decomposed accents)",                     // NFC
        "it'ſ a long s",                                                       // IGNORECASE 'ſ
        "ypogegrammeni \u{03b1}\u{0345} !\u{0345}? \u{0345}",                  // NFC, IGNORECASE U+0345
        "fish &amp; chips &lt;b&gt; &quot;q&quot; &#39;s &#x1F600; &copy 2024 &notit; &nbsp;x",  // html.unescape
        "double &amp;lt;tag&amp;gt; &amp;amp; &#0; &#x80; &#x9F; &#xD800; &#1114112; &#99999999999; &bogus; &",
        "&AMP; &Amp; &ampx &lt3 &#X41;&#65 &#x;",
        "sep\u{1f}by\u{1c}info\u{85}next\u{2028}line\u{200b}zero width\u{feff}bom",  // \x1c-\x1f split by Python only
        "<start_of_text> hi <end_of_text>",                                    // special-token spelling
        "<|startoftext|> hi <|endoftext|>",
        "ΟΔΟΣ ΣΟΦΟΣ Σ ΑΣ. ὈΔΥΣΣΕΎΣ",                                            // final sigma rule
    ]

    func testMatchesOpenCLIPWithoutFTFYOnTheWholeCorpus() throws {
        let tok = try CLIPTokenizer()
        let cases = try Self.cases()
        XCTAssertGreaterThanOrEqual(cases.count, 30)
        for c in cases {
            XCTAssertEqual(tok.encode(c.text), c.encodeNoFTFY, "encode \(c.text.debugDescription)")
            let framed = tok.tokenized(c.text)
            XCTAssertEqual(Array(framed.ids[..<framed.length]), c.openCLIPNoFTFY, "tokenize \(c.text.debugDescription)")
            XCTAssertEqual(framed.ids.count, 77)
            XCTAssertTrue(framed.ids[framed.length...].allSatisfy { $0 == 0 }, "zero padding")
        }
    }

    func testMatchesInstalledOpenCLIPWhereverFTFYChangesNothing() throws {
        let tok = try CLIPTokenizer()
        var divergent: Set<String> = []
        for c in try Self.cases() {
            let framed = tok.tokenized(c.text)
            let ids = Array(framed.ids[..<framed.length])
            if c.openCLIP != c.openCLIPNoFTFY {
                divergent.insert(c.text)
            } else {
                XCTAssertEqual(ids, c.openCLIP, "open_clip (with ftfy) on \(c.text.debugDescription)")
            }
        }
        // The divergence documented in CLIPTokenizer.clean is exactly this set.
        XCTAssertEqual(divergent, Self.ftfyDivergent)
    }

    func testTransformersAgreesExceptTheDocumentedCases() throws {
        var divergent: Set<String> = []
        for c in try Self.cases() where c.transformers != c.openCLIPNoFTFY { divergent.insert(c.text) }
        XCTAssertEqual(divergent, Self.transformersDivergent)
    }

    func testTruncationKeepsTheEndTokenLast() throws {
        let tok = try CLIPTokenizer()
        let long = String(repeating: "word ", count: 80)
        let t = tok.tokenized(long)
        XCTAssertEqual(t.textTokens, 80)
        XCTAssertEqual(t.length, 77)
        XCTAssertEqual(t.droppedTokens, 80 + 2 - 77)
        XCTAssertEqual(t.ids.first, tok.startTokenID)
        XCTAssertEqual(t.ids[76], tok.endTokenID)
        XCTAssertEqual(tok.encode("word"), [t.ids[75]])
        // Exactly full: 75 words + start + end, nothing dropped.
        let full = tok.tokenized(String(repeating: "word ", count: 75))
        XCTAssertEqual(full.droppedTokens, 0)
        XCTAssertEqual(full.length, 77)
        // Other context lengths: open_clip's rule is generic.
        XCTAssertEqual(tok.tokenize(["a photo of a cat"], contextLength: 4), [[49406, 320, 1125, 49407]])
        XCTAssertEqual(tok.tokenize(["a cat", ""], contextLength: 6), [[49406, 320, 2368, 49407, 0, 0], [49406, 49407, 0, 0, 0, 0]])
    }

    func testSpecialTokensAndDecode() throws {
        let tok = try CLIPTokenizer()
        XCTAssertEqual(tok.startTokenID, 49406)
        XCTAssertEqual(tok.endTokenID, 49407)
        XCTAssertEqual(tok.vocabularySize, 49408)
        XCTAssertEqual(tok.encode("<END_OF_TEXT>"), [49407])  // lower-cased first, then matched whole
        XCTAssertEqual(tok.decode(tok.encode("A photo of a Cat!")), "a photo of a cat ! ")
        XCTAssertEqual(tok.decode(tok.encode("猫 🍕")), "猫 🍕 ")
    }

    func testVocabularyFileErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clip-vocab-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let real = try XCTUnwrap(CLIPTokenizer.bundledVocabularyURL())
        let gz = try Data(contentsOf: real)

        func expectUnreadable(_ bytes: Data, _ fragment: String, line: UInt = #line) {
            let url = dir.appendingPathComponent("v\(line).gz")
            try? bytes.write(to: url)
            XCTAssertThrowsError(try CLIPTokenizer(vocabularyURL: url), line: line) { error in
                guard case let CLIPError.vocabularyUnreadable(reason) = error else {
                    return XCTFail("unexpected \(error)", line: line)
                }
                XCTAssertTrue(reason.contains(fragment), "'\(reason)' lacks '\(fragment)'", line: line)
            }
        }
        expectUnreadable(gz.prefix(gz.count / 2), "truncated")
        expectUnreadable(Data("not gzip at all".utf8), "corrupt")
        expectUnreadable(gz + Data([1, 2, 3]), "after the gzip stream")
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyURL: dir.appendingPathComponent("absent.gz")))
        // A valid gzip of a too-short merge list.
        let short = dir.appendingPathComponent("short.gz")
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/sh")
        gzip.arguments = ["-c", "printf '#version: 0.2\\na b\\n' | gzip -c > '\(short.path)'"]
        try gzip.run()
        gzip.waitUntilExit()
        XCTAssertThrowsError(try CLIPTokenizer(vocabularyURL: short)) { error in
            guard case let CLIPError.vocabularyUnreadable(reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("lines"), reason)
        }
        // The bundled copy is the upstream file.
        XCTAssertEqual(gz.count, 1_356_917)
    }
}

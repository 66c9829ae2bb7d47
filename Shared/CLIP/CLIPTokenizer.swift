import Foundation

/// OpenAI CLIP's byte-level BPE tokenizer, as `open_clip.tokenizer.SimpleTokenizer` (default
/// `clean='lower'`) implements it — without ftfy (see `clean(_:)`).
///
/// ```swift
/// let tok = try CLIPTokenizer()                 // the bundled bpe_simple_vocab_16e6.txt.gz
/// tok.encode("a photo of a cat")               // [320, 1125, 539, 320, 2368]
/// tok.tokenize(["a cat"])                       // [[49406, 320, 2368, 49407, 0, 0, …]] (77 wide)
/// ```
/// Immutable after construction, so one instance can be shared across threads.
public struct CLIPTokenizer: Sendable {
    /// `<start_of_text>` (OpenAI CLIP spells it `<|startoftext|>`).
    public let startTokenID: Int
    /// `<end_of_text>` (OpenAI CLIP: `<|endoftext|>`).
    public let endTokenID: Int
    /// Padding id after the end token (open_clip pads with zeros; id 0 is also "!").
    public static let paddingTokenID = 0
    /// Context length of every released CLIP text tower.
    public static let defaultContextLength = 77
    /// The special-token spellings open_clip uses (its regex matches them literally).
    public static let specialTokens = ["<start_of_text>", "<end_of_text>"]

    /// BPE symbol → id (byte symbols, byte symbols + "</w>", merges, special tokens).
    let encoder: [String: Int]
    /// id → symbol, for `decode`.
    let decoder: [String]
    /// Merge pair → rank (lower merges first).
    let bpeRanks: [SymbolPair: Int]

    public var vocabularySize: Int { decoder.count }

    struct SymbolPair: Hashable, Sendable {
        let first: String, second: String
    }

    /// Builds the tables from the merge list (the text inside bpe_simple_vocab_16e6.txt.gz).
    /// ref: open_clip/tokenizer.py SimpleTokenizer.__init__
    init(mergesText: String) throws(CLIPError) {
        // merges = merges[1:49152-256-2+1]: skip the "#version" line, keep 48,894 merges.
        let lines = mergesText.split(separator: "\n", omittingEmptySubsequences: false)
        let mergeCount = 49152 - 256 - 2
        guard lines.count > mergeCount else {
            throw .vocabularyUnreadable(reason: "\(lines.count) lines, CLIP's merge list has at least \(mergeCount + 1)")
        }
        // ref: vocab = list(bytes_to_unicode().values()) — in the dict's insertion order
        // (printable bytes first), not in byte order.
        let byteSymbols = ByteEncoder.vocabularyOrder.map { String(Character(ByteEncoder.table[Int($0)])) }
        var vocab = byteSymbols + byteSymbols.map { $0 + "</w>" }
        var ranks: [SymbolPair: Int] = [:]
        ranks.reserveCapacity(mergeCount)
        vocab.reserveCapacity(vocab.count + mergeCount + 2)
        for (rank, line) in lines[1...mergeCount].enumerated() {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else {
                throw .vocabularyUnreadable(reason: "merge line \(rank + 2) is not two symbols: '\(line.prefix(40))'")
            }
            let pair = SymbolPair(first: String(parts[0]), second: String(parts[1]))
            ranks[pair] = rank
            vocab.append(pair.first + pair.second)
        }
        vocab.append(contentsOf: Self.specialTokens)
        var encoder: [String: Int] = [:]
        encoder.reserveCapacity(vocab.count)
        // ref: dict(zip(vocab, range(len(vocab)))) — a later duplicate would win; the real
        // list has none, which the count check below relies on.
        for (id, symbol) in vocab.enumerated() { encoder[symbol] = id }
        guard encoder.count == vocab.count else {
            throw .vocabularyUnreadable(reason: "duplicate symbols in the merge list")
        }
        self.encoder = encoder
        self.decoder = vocab
        self.bpeRanks = ranks
        self.startTokenID = encoder[Self.specialTokens[0]]!
        self.endTokenID = encoder[Self.specialTokens[1]]!
    }

    // MARK: Encoding

    /// BPE ids of `text` after cleaning, without start/end tokens or padding.
    /// ref: open_clip/tokenizer.py SimpleTokenizer.encode
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        for piece in Self.preTokenize(Self.clean(text)) {
            let pieceString = String(String.UnicodeScalarView(piece))
            // ref: self.cache = {t: t for t in special_tokens} — a literal special token maps to
            // itself and is looked up whole (the regex matched it case-insensitively, so only an
            // exact spelling hits the cache; anything else goes through BPE like other text).
            if let special = Self.specialTokens.firstIndex(of: pieceString) {
                ids.append(special == 0 ? startTokenID : endTokenID)
                continue
            }
            let symbols = Array(pieceString.utf8).map { String(Character(ByteEncoder.table[Int($0)])) }
            for symbol in bpe(symbols) {
                // Every BPE output is in the vocabulary: single byte symbols are, and each
                // merge result was added with its rank.
                ids.append(encoder[symbol]!)
            }
        }
        return ids
    }

    /// A text's ids framed as the model sees them, with what truncation dropped.
    public struct Tokenized: Sendable, Equatable {
        /// `[start] + encode(text) + [end]`, cut to the context length with the end token
        /// kept last, then zero-padded to the context length.
        public var ids: [Int]
        /// Positions before padding (start … end inclusive).
        public var length: Int
        /// BPE tokens of the text that did not fit (0 if none).
        public var droppedTokens: Int
        /// BPE tokens of the text before truncation (excluding start/end).
        public var textTokens: Int
    }

    /// Frames one text. ref: open_clip/tokenizer.py SimpleTokenizer.__call__
    ///   tokens = tokens[:context_length]; tokens[-1] = self.eot_token_id
    public func tokenized(_ text: String, contextLength: Int = CLIPTokenizer.defaultContextLength) -> Tokenized {
        precondition(contextLength >= 2, "context length \(contextLength) cannot hold start and end tokens")
        let body = encode(text)
        var ids = [startTokenID] + body + [endTokenID]
        var dropped = 0
        if ids.count > contextLength {
            dropped = ids.count - contextLength
            ids.removeLast(dropped)
            ids[contextLength - 1] = endTokenID
        }
        let length = ids.count
        ids += repeatElement(Self.paddingTokenID, count: contextLength - length)
        return Tokenized(ids: ids, length: length, droppedTokens: dropped, textTokens: body.count)
    }

    /// `[N][contextLength]` ids: start, text, end (kept at the last position when the text is
    /// too long), zero padding — exactly `open_clip.tokenize(texts, context_length)`.
    public func tokenize(_ texts: [String], contextLength: Int = CLIPTokenizer.defaultContextLength) -> [[Int]] {
        texts.map { tokenized($0, contextLength: contextLength).ids }
    }

    /// ids → text, "</w>" becoming a space. ref: open_clip/tokenizer.py SimpleTokenizer.decode
    public func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && id < decoder.count {
            for scalar in decoder[id].unicodeScalars {
                // Special tokens are spelled in printable ASCII, which maps to itself.
                bytes.append(ByteEncoder.inverse[scalar] ?? UInt8(truncatingIfNeeded: scalar.value))
            }
        }
        return String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "</w>", with: " ")
    }

    // MARK: BPE

    /// Merges symbols by rank until no ranked pair remains; the last symbol carries "</w>".
    /// ref: open_clip/tokenizer.py SimpleTokenizer.bpe
    func bpe(_ symbols: [String]) -> [String] {
        guard var last = symbols.last else { return [] }
        var word = symbols
        last += "</w>"
        word[word.count - 1] = last
        // ref: `if not pairs: return token+'</w>'`
        if word.count == 1 { return word }
        while word.count > 1 {
            // ref: bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float('inf')))
            var best: (rank: Int, pair: SymbolPair)?
            for i in 0..<(word.count - 1) {
                let pair = SymbolPair(first: word[i], second: word[i + 1])
                if let rank = bpeRanks[pair], rank < best?.rank ?? .max { best = (rank, pair) }
            }
            guard let (_, pair) = best else { break }
            // Merge every non-overlapping occurrence, left to right.
            var merged: [String] = []
            merged.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i < word.count - 1, word[i] == pair.first, word[i + 1] == pair.second {
                    merged.append(pair.first + pair.second)
                    i += 2
                } else {
                    merged.append(word[i])
                    i += 1
                }
            }
            word = merged
        }
        return word
    }
}

/// GPT-2/CLIP's reversible byte → printable-unicode table.
/// ref: open_clip/tokenizer.py bytes_to_unicode
enum ByteEncoder {
    /// `bs`: printable bytes in order, then the remaining bytes — the order of the dict and
    /// hence of the first 256 (and next 256) vocabulary ids.
    static let vocabularyOrder: [UInt32] = {
        var bs = Array(UInt32(33)...126) + Array(UInt32(161)...172) + Array(UInt32(174)...255)
        bs += (UInt32(0)..<256).filter { !bs.contains($0) }
        return bs
    }()

    /// byte → its printable stand-in: itself if printable, else 256 + n in `bs` order.
    static let table: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in vocabularyOrder {
            if b >= 33 && b <= 126 || b >= 161 && b <= 172 || b >= 174 {
                table[Int(b)] = Unicode.Scalar(b)!
            } else {
                table[Int(b)] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return table
    }()

    static let inverse: [Unicode.Scalar: UInt8] = {
        var inv: [Unicode.Scalar: UInt8] = [:]
        for (b, c) in table.enumerated() { inv[c] = UInt8(b) }
        return inv
    }()
}

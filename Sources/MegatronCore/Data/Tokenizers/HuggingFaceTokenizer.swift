// HuggingFaceTokenizer.swift — Megatron's HuggingFaceTokenizer for byte-level BPE tokenizers in Hugging
// Face's tokenizer.json format (Llama 3, Qwen 2, GPT-2 style; read by HFTokenizerJSON), encoding
// as transformers' AutoTokenizer does by default: added tokens are split out of the text first
// (longest match at each position, lstrip / rstrip taking the whitespace beside them); each stretch
// between them is normalized (NFC when the file says so), given a leading space when the ByteLevel
// pre-tokenizer adds one, split by the pre-tokenisation rule, and each piece's bytes merged by BPE
// rank (or, with ignore_merges, taken whole when the piece is a token); the post-processor's special
// tokens (Llama 3's <|begin_of_text|>) go around the result. Decoding concatenates the tokens' bytes,
// specials as their text (transformers 5 decodes without clean-up). eod is tokenizer_config.json's
// eos_token, as Megatron's `eos_token_id`.
import Foundation

public final class HuggingFaceTokenizer: Tokenizer, @unchecked Sendable {
    /// The ids' count: the file's, or a model's larger vocabulary (extendVocabulary).
    public private(set) var vocabSize: Int
    public let eod: Int32
    public var name: String { "HuggingFaceTokenizer" }
    /// The text of the end-of-document token (tokenizer_config.json's eos_token).
    public let eodName: String
    /// Ids put before and after each text's own.
    public let prefix: [Int32], suffix: [Int32]
    let tokenBytes: [[UInt8]]
    let byteToken: [Int32]
    let merges: [UInt64: UInt64]
    /// Piece bytes → id, for ignore_merges (empty otherwise).
    let wholePieces: [[UInt8]: Int32]
    let nfc: Bool
    let addPrefixSpace: Bool
    let gpt2Scanner: GPT2PreTokenizer?
    let splitScanner: SplitPreTokenizer?
    let added: AddedTokenMatcher
    private let cache = PieceCache()
    private let lock = NSLock()

    /// Reads `path`: a directory with tokenizer.json and tokenizer_config.json, or a tokenizer.json.
    public init(path: String) throws {
        let spec = try HFTokenizerSpec.read(path: path)
        let file = HFTokenizerSpec.files(of: path).json  // named in the errors
        var size = (spec.vocab.values.max() ?? -1) + 1
        for a in spec.added { size = max(size, Int(a.id) + 1) }
        var bytes = [[UInt8]](repeating: [], count: size)
        var idOf: [[UInt8]: Int32] = [:]
        for (token, id) in spec.vocab {
            guard id >= 0, let raw = ByteLevelBPE.bytes(of: token) else {
                throw TokenizerError.malformed(
                    path: file, reason: "model.vocab token '\(token)' (id \(id)) is not in the byte-level alphabet")
            }
            bytes[id] = raw
            idOf[raw] = Int32(id)
        }
        for a in spec.added {
            let text = String(decoding: a.content, as: UTF8.self)
            bytes[Int(a.id)] = ByteLevelBPE.bytes(of: text) ?? a.content  // as the ByteLevel decoder does
        }
        let byteToken = try ByteLevelBPE.byteTokens(idOf, path: file)
        var merges: [UInt64: UInt64] = [:]
        for (rank, (a, b)) in spec.merges.enumerated() {
            guard let left = spec.vocab[a], let right = spec.vocab[b], let merged = spec.vocab[a + b] else {
                throw TokenizerError.malformed(
                    path: file, reason: "model.merges[\(rank)] '\(a) \(b)' names a token the vocabulary lacks")
            }
            let key = ByteLevelBPE.pair(Int32(left), Int32(right))
            if merges[key] == nil { merges[key] = UInt64(rank) << 32 | UInt64(UInt32(merged)) }
        }
        vocabSize = size
        eod = spec.eos
        eodName = spec.eosName
        prefix = spec.prefix
        suffix = spec.suffix
        for id in prefix + suffix where !(0..<size).contains(Int(id)) {
            throw TokenizerError.malformed(path: file, reason: "post_processor id \(id) is outside the vocabulary")
        }
        tokenBytes = bytes
        self.byteToken = byteToken
        self.merges = merges
        wholePieces = spec.ignoreMerges ? idOf : [:]
        nfc = spec.nfc
        switch spec.preTokenizer {
        case .gpt2(let space): (addPrefixSpace, gpt2Scanner, splitScanner) = (space, GPT2PreTokenizer(), nil)
        case .split(let scanner): (addPrefixSpace, gpt2Scanner, splitScanner) = (false, nil, scanner)
        }
        added = AddedTokenMatcher(spec.added)
    }

    /// Counts `rows` ids (≥ the file's), as a model whose embedding has more rows than the tokenizer
    /// has tokens; the ids above the file's are never produced and decode to nothing. Called before
    /// the tokenizer is shared.
    public func extendVocabulary(to rows: Int) {
        precondition(rows >= tokenBytes.count, "a vocabulary only grows")
        vocabSize = rows
    }

    public func encode(_ text: UnsafeBufferPointer<UInt8>) -> [Int32] {
        prefix + encodeText(text) + suffix
    }

    /// A continuation (LAMBADA's " word") is the text's own ids, without the specials around them.
    public func encodeContinuation(_ text: [UInt8]) -> [Int32] {
        text.withUnsafeBufferPointer { encodeText($0) }
    }

    /// The ids of `text` before the post-processor.
    func encodeText(_ text: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.count / 3)
        guard let base = text.baseAddress, text.count > 0 else { return out }
        lock.lock(); defer { lock.unlock() }
        var symbols: [Int32] = []
        added.segments(base, count: text.count) { segment in
            switch segment {
            case .token(let id): out.append(id)
            case .text(let start, let end): encodeStretch(base + start, count: end - start, into: &out, &symbols)
            }
        }
        return out
    }

    /// Appends the ids of a stretch of text between added tokens.
    private func encodeStretch(
        _ p: UnsafePointer<UInt8>, count n: Int, into out: inout [Int32], _ symbols: inout [Int32]
    ) {
        var bytes = Array(UnsafeBufferPointer(start: p, count: n))
        if nfc && bytes.contains(where: { $0 >= 0x80 }) {
            bytes = Array(String(decoding: bytes, as: UTF8.self).precomposedStringWithCanonicalMapping.utf8)
        }
        if addPrefixSpace && bytes.first != 0x20 { bytes.insert(0x20, at: 0) }
        bytes.withUnsafeBufferPointer { buffer in
            let base = buffer.baseAddress!
            let piece: (Int, Int) -> Void = { start, end in
                let piece = UnsafeBufferPointer(start: base + start, count: end - start)
                if self.cache.lookup(piece, into: &out) { return }
                let first = out.count
                if let id = self.wholePieces.isEmpty ? nil : self.wholePieces[Array(piece)] {
                    out.append(id)
                } else {
                    ByteLevelBPE.merge(
                        piece, byteToken: self.byteToken, merges: self.merges, into: &out, scratch: &symbols)
                }
                self.cache.insert(piece, ids: out[first...])
            }
            if let splitScanner {
                splitScanner.split(base, count: buffer.count, piece)
            } else {
                gpt2Scanner!.split(base, count: buffer.count, piece)
            }
        }
    }

    public func decode(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokenBytes.count { out.append(contentsOf: tokenBytes[Int(id)]) }
        return out
    }
}

/// Finds added tokens in a text: at each position the longest whose content starts there (only
/// positions whose byte begins some token are tried), with lstrip / rstrip taking the whitespace
/// before / after it.
struct AddedTokenMatcher {
    enum Segment {
        case text(Int, Int)
        case token(Int32)
    }
    private var byFirstByte = [[HFTokenizerSpec.AddedToken]](repeating: [], count: 256)
    /// Whether some token starts with the byte (most bytes of a text start none).
    private var startsAny = [Bool](repeating: false, count: 256)

    init(_ tokens: [HFTokenizerSpec.AddedToken]) {
        for t in tokens.sorted(by: { $0.content.count > $1.content.count }) {
            byFirstByte[Int(t.content[0])].append(t)
            startsAny[Int(t.content[0])] = true
        }
    }

    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }

    /// Calls `body` with the text stretches (non-empty) and added tokens of `p[0..<n]`, in order.
    func segments(_ p: UnsafePointer<UInt8>, count n: Int, _ body: (Segment) -> Void) {
        var textStart = 0, i = 0
        while i < n {
            guard startsAny[Int(p[i])] else { i += 1; continue }
            let match = byFirstByte[Int(p[i])].first { t in
                t.content.count <= n - i
                    && t.content.withUnsafeBufferPointer { memcmp($0.baseAddress!, p + i, $0.count) == 0 }
            }
            guard let match else { i += 1; continue }
            var start = i, end = i + match.content.count
            if match.lstrip { while start > textStart && Self.isSpace(p[start - 1]) { start -= 1 } }
            if match.rstrip { while end < n && Self.isSpace(p[end]) { end += 1 } }
            if start > textStart { body(.text(textStart, start)) }
            body(.token(match.id))
            textStart = end; i = end
        }
        if n > textStart { body(.text(textStart, n)) }
    }
}

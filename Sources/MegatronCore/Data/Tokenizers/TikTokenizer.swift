// TikTokenizer.swift — Megatron's TikTokenizer: a byte-level BPE given as ranks of byte strings, in the
// JSON file Megatron reads (`tokenizer_model`: a list of {"rank", "token_bytes" (base64), "token_str"},
// rank = position, the 256 single bytes first in byte order), encoded as the tiktoken library does.
// Ids: `tiktoken_num_special_tokens` special tokens first (`tokenizer_special_tokens`, which must hold
// <unk>, <s> and </s>, then <SPECIAL_k> fillers), then rank r at id r + that number, for the first
// `vocab_size` − specials ranks of the file (Megatron cuts the file there; vocab_size defaults to
// 131,072). Encoding (Megatron's tokenize, tiktoken's encode_ordinary: special tokens' text is plain
// text): the text is split by the v1 or v2 pattern (`tiktoken_pattern`), a piece that is a token is
// that token, any other has its adjacent pair of lowest rank merged — the leftmost of equal ranks,
// one pair at a time — until no pair is a token. Decoding concatenates the tokens' bytes (specials as
// their text). eod is </s>.
import Foundation

/// `tiktoken_pattern`: Megatron's two pre-tokenisation patterns.
public enum TikTokenPattern: String, Sendable, CaseIterable {
    /// `[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`
    case v1
    /// Mistral's Tekken pattern (TekkenPreTokenizer).
    case v2
}

/// The settings of a TikTokenizer besides its file, as Megatron's arguments give them.
public struct TikTokenSettings: Sendable {
    public var pattern: TikTokenPattern
    /// All ids, special tokens included (Megatron's `--vocab-size`; 2¹⁷ when not given).
    public var vocabSize: Int
    public var numSpecialTokens: Int
    /// The named special tokens first (Megatron's `--tokenizer-special-tokens`), nil for <unk> <s> </s>.
    public var specialTokens: [String]?

    public static let defaultVocabSize = 1 << 17
    public static let defaultNumSpecialTokens = 1000
    public static let requiredSpecialTokens = ["<unk>", "<s>", "</s>"]

    public init(
        pattern: TikTokenPattern, vocabSize: Int? = nil, numSpecialTokens: Int = defaultNumSpecialTokens,
        specialTokens: [String]? = nil
    ) {
        self.pattern = pattern
        self.vocabSize = vocabSize ?? Self.defaultVocabSize
        self.numSpecialTokens = numSpecialTokens
        self.specialTokens = specialTokens
    }

    /// The special tokens' texts by id (named ones, then <SPECIAL_k> up to numSpecialTokens); throws
    /// naming the key when they cannot be made as Megatron makes them.
    func specialTexts() throws -> [String] {
        let named = specialTokens ?? Self.requiredSpecialTokens
        func fail(_ key: String, _ value: String, _ rule: String) -> ConfigError {
            ConfigError.invalidValue(key: key, value: value, rule: rule)
        }
        guard Set(named).count == named.count else {
            throw fail("tokenizer_special_tokens", "\(named)", "must not name a token twice")
        }
        let missing = Self.requiredSpecialTokens.filter { !named.contains($0) }
        guard missing.isEmpty else {
            throw fail(
                "tokenizer_special_tokens", "\(named)",
                "must include \(Self.requiredSpecialTokens.joined(separator: ", ")) (missing: "
                    + "\(missing.joined(separator: ", ")))")
        }
        guard named.count <= numSpecialTokens, numSpecialTokens < vocabSize else {
            throw fail(
                "tiktoken_num_special_tokens", "\(numSpecialTokens)",
                "must be at least the \(named.count) named special tokens and below vocab_size \(vocabSize)")
        }
        let texts = named + (named.count..<numSpecialTokens).map { "<SPECIAL_\($0)>" }
        guard Set(texts).count == texts.count else {
            throw fail("tokenizer_special_tokens", "\(named)", "names a <SPECIAL_k> that a filler token also takes")
        }
        return texts
    }
}

public final class TikTokenizer: Tokenizer, @unchecked Sendable {
    public let vocabSize: Int
    public let eod: Int32
    public var name: String { "TikTokenizer" }
    public let settings: TikTokenSettings
    /// Ranks of the file in use (vocab_size − special tokens).
    public let rankCount: Int
    let numSpecial: Int32
    let ranks: ByteStringTable
    /// Bytes of every id: special tokens' texts, then each rank's bytes.
    let tokenBytes: [[UInt8]]
    let v1: SplitPreTokenizer?
    let v2: TekkenPreTokenizer?
    private let cache = PieceCache()
    private let lock = NSLock()

    /// Reads the rank file `path` (Megatron's JSON list) under `settings`.
    public init(path: String, settings: TikTokenSettings) throws {
        let specials = try settings.specialTexts()
        let inner = settings.vocabSize - specials.count
        let fileRanks = try Self.readRanks(path: path, limit: inner)
        guard fileRanks.count == inner else {
            throw ConfigError.invalidValue(
                key: "vocab_size", value: "\(settings.vocabSize)",
                rule: "needs \(inner) ranks after the \(specials.count) special tokens, but '\(path)' "
                    + "(tokenizer_model) has \(fileRanks.count): set vocab_size to at most "
                    + "\(specials.count + fileRanks.count)")
        }
        guard inner >= 256 else {
            throw ConfigError.invalidValue(
                key: "vocab_size", value: "\(settings.vocabSize)",
                rule: "must leave the 256 single-byte ranks after the \(specials.count) special tokens")
        }
        self.settings = settings
        vocabSize = settings.vocabSize
        rankCount = inner
        numSpecial = Int32(specials.count)
        eod = Int32(specials.firstIndex(of: "</s>")!)
        tokenBytes = specials.map { Array($0.utf8) } + fileRanks
        ranks = ByteStringTable(fileRanks)
        switch settings.pattern {
        case .v1: (v1, v2) = (SplitPreTokenizer.tiktokenV1, nil)
        case .v2: (v1, v2) = (nil, TekkenPreTokenizer())
        }
    }

    /// The byte strings of the first `limit` ranks of Megatron's rank file, checked as Megatron checks
    /// them (each entry's keys, rank = position, the single bytes first, no string twice).
    static func readRanks(path: String, limit: Int) throws -> [[UInt8]] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError.unreadable(path: path, key: "tokenizer_model")
        }
        guard let list = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
            throw TokenizerError.malformed(
                path: path,
                reason: "not a JSON list (TikTokenizer reads Megatron's rank file: a list of {\"rank\", "
                    + "\"token_bytes\", \"token_str\"})")
        }
        var out: [[UInt8]] = []
        out.reserveCapacity(min(limit, list.count))
        var seen = Set<[UInt8]>()
        for (i, item) in list.prefix(max(0, limit)).enumerated() {
            func bad(_ why: String) -> TokenizerError { .malformed(path: path, reason: "entry \(i): \(why)") }
            guard let entry = item as? [String: Any], Set(entry.keys) == ["rank", "token_bytes", "token_str"] else {
                throw bad("must be an object with exactly the keys rank, token_bytes, token_str")
            }
            guard let rank = entry["rank"] as? Int, rank == i else { throw bad("rank must be \(i), its position") }
            guard let text = entry["token_bytes"] as? String, let raw = Data(base64Encoded: text), !raw.isEmpty else {
                throw bad("token_bytes must be non-empty base64")
            }
            let bytes = [UInt8](raw)
            guard i >= 256 || bytes == [UInt8(i)] else { throw bad("the first 256 ranks must be the bytes 0 to 255") }
            guard seen.insert(bytes).inserted else { throw bad("token_bytes repeats an earlier rank's") }
            out.append(bytes)
        }
        return out
    }

    public func encode(_ text: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.count / 3)
        guard let base = text.baseAddress, text.count > 0 else { return out }
        lock.lock(); defer { lock.unlock() }
        let piece: (Int, Int) -> Void = { start, end in
            let piece = UnsafeBufferPointer(start: base + start, count: end - start)
            if self.cache.lookup(piece, into: &out) { return }
            let first = out.count
            self.merge(piece, into: &out)
            self.cache.insert(piece, ids: out[first...])
        }
        if let v1 { v1.split(base, count: text.count, piece) } else { v2!.split(base, count: text.count, piece) }
        return out
    }

    /// Appends the ids of one piece: the piece itself when it is a token, else tiktoken's merge — the
    /// adjacent pair whose bytes are the token of lowest rank joined (the leftmost of equals), one pair
    /// at a time, until no adjacent pair is a token. The pairs wait in a heap ordered by (rank, start),
    /// so a piece of n bytes takes O(n log n), not the n² of rescanning it after every join.
    func merge(_ piece: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        let p = piece.baseAddress!, n = piece.count
        if let whole = ranks.rank(p, n) { out.append(whole + numSpecial); return }
        // Parts are byte ranges named by their start; next[k] is where the part after k starts (n: none).
        var next = Array(1...n), previous = Array(-1..<n), pairRank = [Int32](repeating: .max, count: n)
        var heap = BinaryHeap<UInt64>()
        func rankPair(_ k: Int) {
            let j = next[k]
            guard j < n, let r = ranks.rank(p + k, next[j] - k) else { pairRank[k] = .max; return }
            pairRank[k] = r
            heap.push(UInt64(UInt32(bitPattern: r)) << 32 | UInt64(k))
        }
        for k in 0..<n { rankPair(k) }
        while let top = heap.pop() {
            let k = Int(top & 0xFFFF_FFFF), r = Int32(truncatingIfNeeded: top >> 32)
            // A stale entry: the part was joined into its left neighbour, or its pair changed since.
            guard previous[k] != -2, pairRank[k] == r else { continue }
            let j = next[k]
            next[k] = next[j]
            if next[j] < n { previous[next[j]] = k }
            previous[j] = -2
            pairRank[j] = .max
            rankPair(k)
            if previous[k] >= 0 { rankPair(previous[k]) }
        }
        var k = 0
        while k < n {
            out.append(ranks.rank(p + k, next[k] - k)! + numSpecial)
            k = next[k]
        }
    }

    public func decode(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokenBytes.count { out.append(contentsOf: tokenBytes[Int(id)]) }
        return out
    }
}

/// Byte strings → their index, an open-addressing hash table over one pool (no allocation per lookup).
struct ByteStringTable: Sendable {
    private let pool: [UInt8]
    private let slots: [(hash: UInt64, start: Int32, count: Int32, value: Int32)]

    init(_ strings: [[UInt8]]) {
        var capacity = 16
        while capacity < 2 * strings.count { capacity *= 2 }
        var pool: [UInt8] = []
        var slots = [(hash: UInt64, start: Int32, count: Int32, value: Int32)](
            repeating: (0, -1, 0, 0), count: capacity)
        for (value, s) in strings.enumerated() {
            let h = s.withUnsafeBufferPointer { PieceCache.hash($0) }
            var i = Int(truncatingIfNeeded: h) & (capacity - 1)
            while slots[i].start >= 0 { i = (i + 1) & (capacity - 1) }
            slots[i] = (h, Int32(pool.count), Int32(s.count), Int32(value))
            pool.append(contentsOf: s)
        }
        self.pool = pool
        self.slots = slots
    }

    /// The index of `p[0..<n]`, or nil.
    @inline(__always) func rank(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32? {
        let h = PieceCache.hash(UnsafeBufferPointer(start: p, count: n)), mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        return pool.withUnsafeBufferPointer { pool in
            while slots[i].start >= 0 {
                let s = slots[i]
                if s.hash == h && Int(s.count) == n && memcmp(pool.baseAddress! + Int(s.start), p, n) == 0 {
                    return s.value
                }
                i = (i + 1) & mask
            }
            return nil
        }
    }
}

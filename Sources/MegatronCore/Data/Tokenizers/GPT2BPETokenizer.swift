// GPT2BPETokenizer.swift — GPT-2's byte-level BPE (Megatron's GPT2BPETokenizer) from `vocab.json`
// and `merges.txt`. Text is split by GPT-2's pre-tokenisation rule (GPT2PreTokenizer); each piece's
// bytes start as one-byte tokens and the adjacent pair of lowest merge rank is merged until none
// is left. Pieces repeat a lot in real text, so their ids are cached (PieceCache). Tokens are byte
// strings internally; vocab.json's printable form (GPT-2's byte-to-unicode table, 'Ġ' = space) is
// only a file encoding. Decoding concatenates the tokens' bytes, so it returns any input exactly,
// invalid UTF-8 included. `<|endoftext|>` (the end-of-document id) is never produced from text.
import Foundation

public final class GPT2BPETokenizer: Tokenizer, @unchecked Sendable {
    public let vocabSize: Int
    public let eod: Int32
    public var name: String { "GPT2BPETokenizer" }
    /// Bytes of every token id.
    let tokenBytes: [[UInt8]]
    /// The id of each single-byte token.
    let byteToken: [Int32]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    let preTokenizer = GPT2PreTokenizer()
    private let cache = PieceCache()
    private let lock = NSLock()

    /// GPT-2's reversible map from bytes to printable characters (bytes_to_unicode).
    static let byteToCharacter: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = [UInt32](repeating: 0, count: 256)
        for b in printable { chars[b] = UInt32(b) }
        var extra: UInt32 = 256
        for b in 0..<256 where !printable.contains(b) { chars[b] = extra; extra += 1; printable.append(b) }
        return chars.map { Character(Unicode.Scalar($0)!) }
    }()

    /// Loads `vocab.json` and `merges.txt`; every token of a merge must be in the vocabulary.
    public init(vocabFile: String, mergeFile: String) throws {
        guard let vocabData = FileManager.default.contents(atPath: vocabFile) else {
            throw TokenizerError.unreadable(path: vocabFile, key: "vocab_file")
        }
        guard let object = try? JSONSerialization.jsonObject(with: vocabData), let vocab = object as? [String: Int]
        else {
            throw TokenizerError.malformed(
                path: vocabFile, reason: "not a JSON object of token → id (GPT-2's vocab.json)")
        }
        var charToByte: [Character: UInt8] = [:]
        for (b, ch) in Self.byteToCharacter.enumerated() { charToByte[ch] = UInt8(b) }
        var bytes = [[UInt8]](repeating: [], count: vocab.count)
        var idOf: [[UInt8]: Int32] = [:]
        for (token, id) in vocab {
            guard id >= 0, id < vocab.count, bytes[id].isEmpty else {
                throw TokenizerError.malformed(
                    path: vocabFile, reason: "ids must be 0..<\(vocab.count), each once; '\(token)' has \(id)")
            }
            // Special tokens like <|endoftext|> are stored as their text.
            let raw: [UInt8] =
                token.hasPrefix("<|") && token.hasSuffix("|>")
                ? Array(token.utf8)
                : try token.map { ch in
                    guard let b = charToByte[ch] else {
                        throw TokenizerError.malformed(
                            path: vocabFile,
                            reason: "token '\(token)' holds '\(ch)', which is not in GPT-2's byte alphabet")
                    }
                    return b
                }
            bytes[id] = raw
            if !(token.hasPrefix("<|") && token.hasSuffix("|>")) { idOf[raw] = Int32(id) }
        }
        var byteToken = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            guard let id = idOf[[UInt8(b)]] else {
                throw TokenizerError.malformed(
                    path: vocabFile, reason: "byte \(b) has no token (a byte-level vocabulary has all 256)")
            }
            byteToken[b] = id
        }
        guard let eod = vocab["<|endoftext|>"] else {
            throw TokenizerError.malformed(path: vocabFile, reason: "no <|endoftext|> token")
        }
        guard
            let mergeText = FileManager.default.contents(atPath: mergeFile).flatMap({
                String(data: $0, encoding: .utf8)
            })
        else {
            throw TokenizerError.unreadable(path: mergeFile, key: "merge_file")
        }
        var merges: [UInt64: UInt64] = [:]
        var rank: UInt64 = 0
        for (n, line) in mergeText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("#version") || line.isEmpty { continue }
            let parts = line.split(separator: " ")
            guard parts.count == 2 else {
                throw TokenizerError.malformed(
                    path: mergeFile, reason: "line \(n + 1) is not two tokens separated by a space: '\(line)'")
            }
            func id(_ s: Substring) throws -> Int32 {
                guard let i = vocab[String(s)] else {
                    throw TokenizerError.mismatch(vocab: vocabFile, merges: mergeFile, line: n + 1, token: String(s))
                }
                return Int32(i)
            }
            let a = try id(parts[0]), b = try id(parts[1]), merged = try id(parts[0] + parts[1])
            merges[UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))] = rank << 32 | UInt64(UInt32(merged))
            rank += 1
        }
        self.vocabSize = vocab.count
        self.eod = Int32(eod)
        self.tokenBytes = bytes
        self.byteToken = byteToken
        self.merges = merges
    }

    /// The ids of `text` (any bytes).
    public func encode(_ text: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.count / 3)
        guard let base = text.baseAddress, text.count > 0 else { return out }
        var symbols: [Int32] = []
        lock.lock(); defer { lock.unlock() }
        preTokenizer.split(base, count: text.count) { start, end in
            let piece = UnsafeBufferPointer(start: base + start, count: end - start)
            if cache.lookup(piece, into: &out) { return }
            let first = out.count
            bpe(piece, into: &out, scratch: &symbols)
            cache.insert(piece, ids: out[first...])
        }
        return out
    }

    public func encode(_ text: String) -> [Int32] {
        var s = text
        return s.withUTF8 { encode($0) }
    }

    /// Appends the merged tokens of one piece.
    func bpe(_ piece: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch symbols: inout [Int32]) {
        symbols.removeAll(keepingCapacity: true)
        for b in piece { symbols.append(byteToken[Int(b)]) }
        while symbols.count > 1 {
            var best = UInt64.max, bestAt = -1
            for k in 0..<(symbols.count - 1) {
                if let m = merges[UInt64(UInt32(symbols[k])) << 32 | UInt64(UInt32(symbols[k + 1]))], m < best {
                    best = m; bestAt = k
                }
            }
            guard bestAt >= 0 else { break }
            // Merge every occurrence of the pair, left to right.
            let left = symbols[bestAt], right = symbols[bestAt + 1],
                merged = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            var write = 0, k = 0
            while k < symbols.count {
                if k + 1 < symbols.count && symbols[k] == left && symbols[k + 1] == right {
                    symbols[write] = merged; k += 2
                } else {
                    symbols[write] = symbols[k]; k += 1
                }
                write += 1
            }
            symbols.removeLast(symbols.count - write)
        }
        out.append(contentsOf: symbols)
    }

    public func decode(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokenBytes.count { out.append(contentsOf: tokenBytes[Int(id)]) }
        return out
    }

    /// vocab.json's printable form of a token (for display and tests).
    public func tokenString(_ id: Int32) -> String {
        if id == eod { return "<|endoftext|>" }
        return String(tokenBytes[Int(id)].map { Self.byteToCharacter[Int($0)] })
    }
}

/// Piece bytes → ids, an open-addressing hash table over two flat pools (no allocation per lookup).
final class PieceCache {
    private var keys: [UInt8] = [], ids: [Int32] = []
    private var slots: [(hash: UInt64, keyStart: Int32, keyCount: Int32, idStart: Int32, idCount: Int32)]
    private var used = 0

    init() { slots = Array(repeating: (0, -1, 0, 0, 0), count: 1 << 16) }

    @inline(__always) static func hash(_ p: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h | 1
    }

    func lookup(_ piece: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) -> Bool {
        let h = Self.hash(piece), mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i].keyStart >= 0 {
            let s = slots[i]
            if s.hash == h && Int(s.keyCount) == piece.count {
                let same = keys.withUnsafeBufferPointer { k in
                    memcmp(k.baseAddress! + Int(s.keyStart), piece.baseAddress!, piece.count) == 0
                }
                if same { out.append(contentsOf: ids[Int(s.idStart)..<Int(s.idStart + s.idCount)]); return true }
            }
            i = (i + 1) & mask
        }
        return false
    }

    func insert(_ piece: UnsafeBufferPointer<UInt8>, ids newIds: ArraySlice<Int32>) {
        guard keys.count + piece.count < Int(Int32.max) / 2, piece.count <= 256 else { return }
        if (used + 1) * 2 > slots.count { grow() }
        let h = Self.hash(piece), mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i].keyStart >= 0 { i = (i + 1) & mask }
        slots[i] = (h, Int32(keys.count), Int32(piece.count), Int32(ids.count), Int32(newIds.count))
        keys.append(contentsOf: piece)
        ids.append(contentsOf: newIds)
        used += 1
    }

    private func grow() {
        let old = slots
        slots = Array(repeating: (0, -1, 0, 0, 0), count: old.count * 2)
        let mask = slots.count - 1
        for s in old where s.keyStart >= 0 {
            var i = Int(truncatingIfNeeded: s.hash) & mask
            while slots[i].keyStart >= 0 { i = (i + 1) & mask }
            slots[i] = s
        }
    }
}

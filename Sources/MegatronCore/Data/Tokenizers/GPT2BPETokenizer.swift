// GPT2BPETokenizer.swift — GPT-2's byte-level BPE (Megatron's GPT2BPETokenizer) from `vocab.json`
// and `merges.txt`. Text is split by GPT-2's pre-tokenisation rule (GPT2PreTokenizer); each piece's
// bytes start as one-byte tokens and the adjacent pair of lowest merge rank is merged until none
// is left. Pieces repeat a lot in real text, so their ids are cached (PieceCache). Tokens are byte
// strings internally; vocab.json's printable form (GPT-2's byte-to-unicode table, 'Ġ' = space) is
// only a file encoding (ByteLevelBPE holds the map and the merge loop). Decoding concatenates the
// tokens' bytes, so it returns any input exactly, invalid UTF-8 included. `<|endoftext|>` (the
// end-of-document id) is never produced from text.
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
        let charToByte = ByteLevelBPE.characterToByte
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
        let byteToken = try ByteLevelBPE.byteTokens(idOf, path: vocabFile)
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
            merges[ByteLevelBPE.pair(a, b)] = rank << 32 | UInt64(UInt32(merged))
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
        ByteLevelBPE.merge(piece, byteToken: byteToken, merges: merges, into: &out, scratch: &symbols)
    }

    public func decode(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokenBytes.count { out.append(contentsOf: tokenBytes[Int(id)]) }
        return out
    }

    /// vocab.json's printable form of a token (for display and tests).
    public func tokenString(_ id: Int32) -> String {
        if id == eod { return "<|endoftext|>" }
        return String(tokenBytes[Int(id)].map { ByteLevelBPE.byteToCharacter[Int($0)] })
    }
}

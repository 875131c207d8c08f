// ByteLevelBPE.swift — what GPT-2's byte-level BPE and Hugging Face's byte-level tokenizer.json
// share: the reversible map from bytes to printable characters that vocabularies are written in
// (GPT-2's bytes_to_unicode, 'Ġ' = space), the merge loop (the adjacent pair of lowest rank merged,
// every occurrence left to right, until none is left), and a cache of the ids of pieces seen.
import Foundation

enum ByteLevelBPE {
    /// GPT-2's reversible map from bytes to printable characters (bytes_to_unicode).
    static let byteToCharacter: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = [UInt32](repeating: 0, count: 256)
        for b in printable { chars[b] = UInt32(b) }
        var extra: UInt32 = 256
        for b in 0..<256 where !printable.contains(b) { chars[b] = extra; extra += 1; printable.append(b) }
        return chars.map { Character(Unicode.Scalar($0)!) }
    }()

    /// The inverse of `byteToCharacter`.
    static let characterToByte: [Character: UInt8] = {
        var map: [Character: UInt8] = [:]
        for (b, ch) in byteToCharacter.enumerated() { map[ch] = UInt8(b) }
        return map
    }()

    /// The bytes a vocabulary's printable token stands for, nil when a character is outside the map.
    static func bytes(of token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for ch in token {
            guard let b = characterToByte[ch] else { return nil }
            out.append(b)
        }
        return out
    }

    /// The id of each single-byte token, from the vocabulary's byte strings → ids; `path` names
    /// the file in the error when a byte has none.
    static func byteTokens(_ idOf: [[UInt8]: Int32], path: String) throws -> [Int32] {
        try (0..<256).map { b in
            guard let id = idOf[[UInt8(b)]] else {
                throw TokenizerError.malformed(
                    path: path, reason: "byte \(b) has no token (a byte-level vocabulary has all 256)")
            }
            return id
        }
    }

    /// The key of the pair (left, right) in a merge table whose values are rank << 32 | merged id.
    @inline(__always) static func pair(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Appends the merged tokens of one piece: its bytes as one-byte tokens, then the adjacent pair
    /// of lowest rank merged (every occurrence, left to right) until no pair has a merge.
    static func merge(
        _ piece: UnsafeBufferPointer<UInt8>, byteToken: [Int32], merges: [UInt64: UInt64], into out: inout [Int32],
        scratch symbols: inout [Int32]
    ) {
        symbols.removeAll(keepingCapacity: true)
        for b in piece { symbols.append(byteToken[Int(b)]) }
        while symbols.count > 1 {
            var best = UInt64.max, bestAt = -1
            for k in 0..<(symbols.count - 1) {
                if let m = merges[pair(symbols[k], symbols[k + 1])], m < best {
                    best = m; bestAt = k
                }
            }
            guard bestAt >= 0 else { break }
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

// TokenTable.swift — a vocabulary looked up by UTF-8 bytes without building a String: every
// token's bytes in one arena, an open-addressing table of FNV-1a hashes over them. WordPiece asks
// for the longest token that starts a span (optionally as a "##" continuation); the hash is
// extended one character at a time, so finding it costs one pass over at most the longest token.
// SentencePiece asks for the piece of a span (BPE's merges) and for every piece that starts at a
// position (unigram's lattice), the same way.
struct TokenTable {
    private var arena: [UInt8] = []
    private var offsets: [Int] = [0]
    private var slots: [Int32]
    private var slotHashes: [UInt64]
    private let mask: Int
    /// The longest token in bytes: no longer span can match.
    let longestToken: Int

    static let basis: UInt64 = 0xcbf2_9ce4_8422_2325
    @inline(__always) static func mix(_ h: UInt64, _ b: UInt8) -> UInt64 { (h ^ UInt64(b)) &* 0x100_0000_01b3 }

    /// Token i of `tokens` gets id i; a repeated token keeps its first id.
    init(tokens: [String]) { self.init(byteTokens: tokens.map { Array($0.utf8) }) }

    /// The same over tokens given as bytes (SentencePiece's pieces).
    init(byteTokens tokens: [[UInt8]]) {
        var capacity = 16
        while capacity < 2 * tokens.count { capacity *= 2 }
        slots = Array(repeating: -1, count: capacity)
        slotHashes = Array(repeating: 0, count: capacity)
        mask = capacity - 1
        var longest = 0
        for t in tokens {
            arena.append(contentsOf: t)
            offsets.append(arena.count)
            longest = max(longest, t.count)
        }
        longestToken = longest
        for id in tokens.indices {
            let bytes = arena[offsets[id]..<offsets[id + 1]]
            let h = bytes.reduce(Self.basis, Self.mix)
            var slot = Int(truncatingIfNeeded: h) & mask
            var duplicate = false
            while slots[slot] >= 0 {
                let other = Int(slots[slot])
                if slotHashes[slot] == h && arena[offsets[other]..<offsets[other + 1]].elementsEqual(bytes) {
                    duplicate = true
                    break
                }
                slot = (slot + 1) & mask
            }
            if !duplicate { slots[slot] = Int32(id); slotHashes[slot] = h }
        }
    }

    /// The id of the token whose bytes are `prefix` followed by `span`, or nil.
    private func find(_ h: UInt64, prefix: Int, _ span: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int32? {
        var slot = Int(truncatingIfNeeded: h) & mask
        while slots[slot] >= 0 {
            let id = Int(slots[slot])
            if slotHashes[slot] == h && offsets[id + 1] - offsets[id] == prefix + range.count {
                let start = offsets[id]
                var equal = prefix == 0 || (arena[start] == 35 && arena[start + 1] == 35)
                var i = 0
                while equal && i < range.count {
                    equal = arena[start + prefix + i] == span[range.lowerBound + i]
                    i += 1
                }
                if equal { return Int32(id) }
            }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// The id of `token` (its first, if repeated), or nil.
    func id(of token: String) -> Int32? {
        var token = token
        return token.withUTF8 { find($0.reduce(Self.basis, Self.mix), prefix: 0, $0, 0..<$0.count) }
    }

    /// The id of the token whose bytes are `text[range]`, or nil.
    func id(of text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int32? {
        guard range.count <= longestToken else { return nil }
        var h = Self.basis
        for i in range { h = Self.mix(h, text[i]) }
        return find(h, prefix: 0, text, range)
    }

    /// Calls `body(id, end)` for every token equal to `text[start..<end]`, shortest first.
    func forEachPrefix(of text: UnsafeBufferPointer<UInt8>, from start: Int, _ body: (Int32, Int) -> Void) {
        var h = Self.basis
        var e = start
        while e < text.count && e - start < longestToken {
            h = Self.mix(h, text[e])
            e += 1
            if let id = find(h, prefix: 0, text, start..<e) { body(id, e) }
        }
    }

    /// The longest token equal to `word[start..<e]` (after "##" when `continuation`) for an `e` that
    /// ends a UTF-8 character, with that `e`; nil when no such token exists.
    func longestMatch(
        in word: UnsafeBufferPointer<UInt8>, from start: Int, continuation: Bool
    ) -> (id: Int32, end: Int)? {
        let prefix = continuation ? 2 : 0
        var h = Self.basis
        if continuation { h = Self.mix(Self.mix(h, 35), 35) }
        var best: (id: Int32, end: Int)? = nil
        var e = start
        while e < word.count && e - start + prefix < longestToken {
            h = Self.mix(h, word[e])
            e += 1
            if e < word.count && word[e] & 0xC0 == 0x80 { continue }  // inside a character
            if let id = find(h, prefix: prefix, word, start..<e) { best = (id, e) }
        }
        return best
    }
}

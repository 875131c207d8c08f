// SentencePieceNormalizer.swift — SentencePiece's text normalization before encoding: at each
// position the longest rule of the precompiled character map (a Darts-clone double-array trie of
// UTF-8 keys, its values offsets of NUL-terminated replacements; the map is
// <trie bytes: u32 LE><trie units: u32 LE …><replacements>) replaces the matched bytes; with no rule
// one UTF-8 character is copied (an invalid byte becomes U+FFFD); user-defined symbols pass as
// they are. Then the whitespace switches: remove_extra_whitespaces drops leading and trailing
// spaces and keeps one of each run, add_dummy_prefix puts a space in front (behind with
// treat_whitespace_as_suffix), escape_whitespaces writes every space as U+2581 "▁".
// Identity normalization (Llama's) is an empty map.
struct SentencePieceNormalizer {
    static let spaceSymbol: [UInt8] = [0xE2, 0x96, 0x81]  // U+2581
    static let replacementCharacter: [UInt8] = [0xEF, 0xBF, 0xBD]  // U+FFFD

    private let units: [UInt32]
    private let replacements: [UInt8]
    let userSymbols: PrefixMatcher
    let addDummyPrefix, removeExtraWhitespaces, escapeWhitespaces, whitespaceAsSuffix: Bool

    init(model: SentencePieceModelFile, userSymbols: PrefixMatcher, path: String) throws {
        let map = model.precompiledCharsmap
        if map.isEmpty {
            (units, replacements) = ([], [])
        } else {
            let trieBytes = map.count >= 4 ? Int(map[0..<4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) : -1
            guard trieBytes >= 0, trieBytes % 4 == 0, 4 + trieBytes < map.count else {
                throw TokenizerError.malformed(
                    path: path, reason: "the normalizer's precompiled_charsmap is cut short or its trie size is wrong")
            }
            units = stride(from: 4, to: 4 + trieBytes, by: 4).map { i in
                UInt32(map[i]) | UInt32(map[i + 1]) << 8 | UInt32(map[i + 2]) << 16 | UInt32(map[i + 3]) << 24
            }
            replacements = Array(map[(4 + trieBytes)...])
        }
        self.userSymbols = userSymbols
        addDummyPrefix = model.addDummyPrefix
        removeExtraWhitespaces = model.removeExtraWhitespaces
        escapeWhitespaces = model.escapeWhitespaces
        whitespaceAsSuffix = model.treatWhitespaceAsSuffix
    }

    /// The normalized bytes of `text`.
    func normalize(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        replacements.withUnsafeBufferPointer { replacements in
            Self.replacementCharacter.withUnsafeBufferPointer { fffd in
                normalize(text, replacements: replacements, fffd: fffd)
            }
        }
    }

    private func normalize(
        _ text: UnsafeBufferPointer<UInt8>, replacements: UnsafeBufferPointer<UInt8>, fffd: UnsafeBufferPointer<UInt8>
    ) -> [UInt8] {
        var position = 0
        if removeExtraWhitespaces {  // leading spaces
            while position < text.count {
                let (piece, consumed) = prefix(text, at: position, replacements, fffd)
                guard piece.count == 1 && piece[0] == 0x20 else { break }
                position += consumed
            }
        }
        guard position < text.count else { return [] }
        let space = escapeWhitespaces ? Self.spaceSymbol : [0x20]
        var out: [UInt8] = []
        out.reserveCapacity(text.count + text.count / 4 + 3)
        if addDummyPrefix && !whitespaceAsSuffix { out += space }
        var previousWasSpace = removeExtraWhitespaces
        while position < text.count {
            let (piece, consumed) = prefix(text, at: position, replacements, fffd)
            var start = 0
            while previousWasSpace && start < piece.count && piece[start] == 0x20 { start += 1 }
            if start < piece.count {
                for i in start..<piece.count {
                    if piece[i] == 0x20 && escapeWhitespaces {
                        out.append(0xE2); out.append(0x96); out.append(0x81)
                    } else {
                        out.append(piece[i])
                    }
                }
                previousWasSpace = piece[piece.count - 1] == 0x20
            }
            position += consumed
            if !removeExtraWhitespaces { previousWasSpace = false }
        }
        if removeExtraWhitespaces {  // trailing spaces
            while out.count >= space.count && out[(out.count - space.count)...].elementsEqual(space) {
                out.removeLast(space.count)
            }
        }
        if addDummyPrefix && whitespaceAsSuffix { out += space }
        return out
    }

    /// The replacement of the text at `position` (in the text itself, in `replacements`, or U+FFFD)
    /// and how many bytes it consumes.
    @inline(__always)
    private func prefix(
        _ text: UnsafeBufferPointer<UInt8>, at position: Int, _ replacements: UnsafeBufferPointer<UInt8>,
        _ fffd: UnsafeBufferPointer<UInt8>
    ) -> (UnsafeBufferPointer<UInt8>, Int) {
        let rest = UnsafeBufferPointer(rebasing: text[position...])
        if !userSymbols.isEmpty {
            let userLength = userSymbols.longestMatch(rest)
            if userLength > 0 { return (UnsafeBufferPointer(rebasing: rest[0..<userLength]), userLength) }
        }
        if let (offset, length) = longestRule(rest) {
            var end = offset
            while end < replacements.count && replacements[end] != 0 { end += 1 }
            return (UnsafeBufferPointer(rebasing: replacements[offset..<end]), length)
        }
        let length = UTF8Validation.validLength(rest)
        if length == 0 { return (fffd, 1) }
        return (UnsafeBufferPointer(rebasing: rest[0..<length]), length)
    }

    /// Darts-clone's common-prefix search: the longest key of the map that starts `key`, as (value, length).
    private func longestRule(_ key: UnsafeBufferPointer<UInt8>) -> (Int, Int)? {
        guard !units.isEmpty else { return nil }
        @inline(__always) func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }
        var best: (Int, Int)?
        var node = offset(units[0])
        for (i, byte) in key.enumerated() {
            node ^= Int(byte)
            guard node < units.count else { break }
            let unit = units[node]
            guard unit & ((1 << 31) | 0xFF) == UInt32(byte) else { break }  // label
            node ^= offset(unit)
            if (unit >> 8) & 1 == 1 {  // has a leaf: a key ends here
                guard node < units.count else { break }
                let value = Int(units[node] & ((1 << 31) - 1))
                if value < replacements.count { best = (value, i + 1) }
            }
        }
        return best
    }
}

/// The user-defined symbols of a model, matched longest first at a position (they are never split).
struct PrefixMatcher {
    private let symbols: [[UInt8]]  // longest first
    init(_ symbols: [[UInt8]]) { self.symbols = symbols.sorted { $0.count > $1.count } }
    var isEmpty: Bool { symbols.isEmpty }

    /// The length of the longest symbol that starts `text`, or 0.
    func longestMatch(_ text: UnsafeBufferPointer<UInt8>) -> Int {
        for s in symbols where s.count <= text.count && text[0..<s.count].elementsEqual(s) { return s.count }
        return 0
    }
}

enum UTF8Validation {
    /// The byte length of the UTF-8 character that starts `bytes` (1–4), or 0 when it is not a
    /// well-formed one (overlong forms, surrogates and code points past U+10FFFF included).
    static func validLength(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        guard let lead = bytes.first else { return 0 }
        if lead < 0x80 { return 1 }
        let (length, low, high): (Int, UInt8, UInt8)
        switch lead {
        case 0xC2...0xDF: (length, low, high) = (2, 0x80, 0xBF)
        case 0xE0: (length, low, high) = (3, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (length, low, high) = (3, 0x80, 0xBF)
        case 0xED: (length, low, high) = (3, 0x80, 0x9F)
        case 0xF0: (length, low, high) = (4, 0x90, 0xBF)
        case 0xF1...0xF3: (length, low, high) = (4, 0x80, 0xBF)
        case 0xF4: (length, low, high) = (4, 0x80, 0x8F)
        default: return 0
        }
        guard bytes.count >= length, (low...high).contains(bytes[1]) else { return 0 }
        for i in 2..<length where !(0x80...0xBF).contains(bytes[i]) { return 0 }
        return length
    }

    /// The length SentencePiece gives a character by its lead byte alone (1 for ASCII and stray
    /// continuation bytes, 2, 3 or 4), at most the bytes left.
    static func leadLength(_ lead: UInt8, remaining: Int) -> Int {
        let length = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
        return min(length, remaining)
    }
}

// BertWordPieceTokenizer.swift — BERT's tokenizer (Megatron's BertWordPieceLowerCase, and with
// `lowerCase` false its BertWordPieceCase: no lower-casing, no accent stripping) from
// `vocab.txt` (one token per line, id = line number). Basic tokenisation first:
//   clean (drop NUL, U+FFFD and control characters; every whitespace character becomes a space)
//   → a space on both sides of each CJK ideograph → (lower case) NFD, drop non-spacing marks,
//   lower-case → split on whitespace and around every punctuation character;
// then WordPiece: each word greedily takes the longest vocabulary entry from the left, later
// pieces prefixed with "##"; a word with no such split, or over 100 characters, is [UNK].
// Pieces of ASCII text between whitespace take a byte-level path with the same rules; words are
// looked up by their UTF-8 bytes (TokenTable), so no candidate piece becomes a String.
// `encode` gives the ids of the text alone; [CLS]/[SEP] are added by whoever builds the sample.
import Foundation

public final class BertWordPieceTokenizer: Tokenizer, @unchecked Sendable {
    public let vocabSize: Int
    public let lowerCase: Bool
    public var name: String { lowerCase ? "BertWordPieceLowerCase" : "BertWordPieceCase" }
    let table: TokenTable
    let tokens: [String]
    public let cls: Int32, sep: Int32, pad: Int32, unk: Int32, mask: Int32
    /// Megatron's BERT tokenizer uses [SEP] as the end-of-document id.
    public var eod: Int32 { sep }
    static let maxWordCharacters = 100

    public init(vocabFile: String, lowerCase: Bool) throws {
        guard let data = FileManager.default.contents(atPath: vocabFile), let text = String(data: data, encoding: .utf8)
        else {
            throw TokenizerError.unreadable(path: vocabFile, key: "vocab_file")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0).trimmingCharacters(in: .init(charactersIn: "\r"))
        }
        if lines.last == "" { lines.removeLast() }
        let table = TokenTable(tokens: lines)
        func special(_ t: String) throws -> Int32 {
            guard let id = table.id(of: t) else {
                throw TokenizerError.malformed(
                    path: vocabFile, reason: "no \(t) token (a BERT vocab.txt has [PAD], [UNK], [CLS], [SEP], [MASK])")
            }
            return id
        }
        self.table = table
        self.tokens = lines
        self.vocabSize = lines.count
        self.lowerCase = lowerCase
        cls = try special("[CLS]"); sep = try special("[SEP]"); pad = try special("[PAD]"); unk = try special("[UNK]");
        mask = try special("[MASK]")
    }

    public func encode(_ text: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var ids: [Int32] = []
        forEachWord(text) { wordPiece($0, into: &ids) }
        return ids
    }

    public func encode(_ text: String) -> [Int32] {
        var text = text
        return text.withUTF8 { encode($0) }
    }

    /// Calls `body` with the UTF-8 bytes of each word and punctuation mark of `text` after cleaning,
    /// CJK spacing and (lower case) accent stripping. The text is cut at ASCII whitespace (no rule
    /// looks across it: it ends every word, combining sequence and casing context); an ASCII piece
    /// takes a byte-level path with the same rules, any other the Unicode path.
    func forEachWord(_ text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var word: [UInt8] = []
        word.reserveCapacity(64)
        func flush() {
            if !word.isEmpty { word.withUnsafeBufferPointer(body); word.removeAll(keepingCapacity: true) }
        }
        var start = 0
        while start < text.count {
            var end = start, ascii = true
            while end < text.count, !Self.isASCIIWhitespace(text[end]) {
                ascii = ascii && text[end] < 0x80
                end += 1
            }
            let piece = UnsafeBufferPointer(rebasing: text[start..<end])
            if ascii {
                // Control bytes (tab, newline and return excepted) are dropped; NFD leaves ASCII
                // unchanged, with no marks to strip.
                for b in piece {
                    switch b {
                    case 0..<32, 127: continue
                    case 33...47, 58...64, 91...96, 123...126:
                        flush(); word.append(b); flush()
                    case 65...90 where lowerCase: word.append(b + 32)
                    default: word.append(b)
                    }
                }
            } else {
                for s in normalized(String(decoding: piece, as: UTF8.self)).unicodeScalars {
                    if Self.isWhitespace(s) {
                        flush()
                    } else if Self.isPunctuation(s) {
                        flush(); UTF8.encode(s) { word.append($0) }; flush()
                    } else {
                        UTF8.encode(s) { word.append($0) }
                    }
                }
            }
            flush()
            start = end + 1
        }
    }

    @inline(__always) static func isASCIIWhitespace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 }

    /// `text` cleaned, with CJK ideographs spaced and (lower case) NFD without non-spacing marks, lower-cased.
    func normalized(_ text: String) -> String {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
            if Self.isWhitespace(s) { cleaned.append(" "); continue }
            if Self.isCJK(s) { cleaned.append(" "); cleaned.append(s); cleaned.append(" "); continue }
            cleaned.append(s)
        }
        guard lowerCase else { return String(cleaned) }
        var kept = String.UnicodeScalarView()
        for s in String(cleaned).decomposedStringWithCanonicalMapping.unicodeScalars
        where s.properties.generalCategory != .nonspacingMark {
            kept.append(s)
        }
        return String(kept).lowercased()
    }

    /// Greedy longest-match-first WordPiece of one word's UTF-8 bytes; [UNK] for a word of more than
    /// 100 characters or one with no complete split.
    func wordPiece(_ word: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        if word.lazy.filter({ $0 & 0xC0 != 0x80 }).count > Self.maxWordCharacters { ids.append(unk); return }
        let mark = ids.count
        var start = 0
        while start < word.count {
            guard let (id, end) = table.longestMatch(in: word, from: start, continuation: start > 0) else {
                ids.removeSubrange(mark...)
                ids.append(unk)
                return
            }
            ids.append(id)
            start = end
        }
    }

    public func decode(_ ids: [Int32]) -> [UInt8] {
        var out = ""
        for id in ids where id >= 0 && Int(id) < tokens.count {
            let t = tokens[Int(id)]
            if isContinuation(id) {
                out += String(decoding: t.utf8.dropFirst(2), as: UTF8.self)
            } else {
                out += (out.isEmpty ? "" : " ") + t
            }
        }
        return Array(out.utf8)
    }

    public func token(_ id: Int32) -> String { tokens[Int(id)] }

    /// Whether piece `id` continues the word before it: it starts with the bytes "##" (compared as
    /// bytes, since Swift's `hasPrefix` compares Characters and "##" before a combining mark is not
    /// two of them — 16 such pieces in BERT's uncased vocabulary).
    public func isContinuation(_ id: Int32) -> Bool { tokens[Int(id)].utf8.starts(with: "##".utf8) }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse, .unassigned, .surrogate: return true
        default: return false
        }
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }
}

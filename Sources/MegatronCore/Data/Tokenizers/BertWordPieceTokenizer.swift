// BertWordPieceTokenizer.swift — BERT's tokenizer (Megatron's BertWordPieceLowerCase) from
// `vocab.txt` (one token per line, id = line number). Basic tokenisation first:
//   clean (drop NUL, U+FFFD and control characters; every whitespace character becomes a space)
//   → a space on both sides of each CJK ideograph → (lower case) NFD, drop non-spacing marks,
//   lower-case → split on whitespace and around every punctuation character;
// then WordPiece: each word greedily takes the longest vocabulary entry from the left, later
// pieces prefixed with "##"; a word with no such split, or over 100 characters, is [UNK].
// `encode` gives the ids of the text alone; [CLS]/[SEP] are added by whoever builds the sample.
import Foundation

public final class BertWordPieceTokenizer: Tokenizer, @unchecked Sendable {
    public let vocabSize: Int
    public let lowerCase: Bool
    public var name: String { lowerCase ? "BertWordPieceLowerCase" : "BertWordPieceCase" }
    let vocab: [String: Int32]
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
        var vocab: [String: Int32] = [:]
        for (i, t) in lines.enumerated() where vocab[t] == nil { vocab[t] = Int32(i) }
        func special(_ t: String) throws -> Int32 {
            guard let id = vocab[t] else {
                throw TokenizerError.malformed(
                    path: vocabFile, reason: "no \(t) token (a BERT vocab.txt has [PAD], [UNK], [CLS], [SEP], [MASK])")
            }
            return id
        }
        self.vocab = vocab
        self.tokens = lines
        self.vocabSize = lines.count
        self.lowerCase = lowerCase
        cls = try special("[CLS]"); sep = try special("[SEP]"); pad = try special("[PAD]"); unk = try special("[UNK]");
        mask = try special("[MASK]")
    }

    public func encode(_ text: UnsafeBufferPointer<UInt8>) -> [Int32] {
        encode(String(decoding: text, as: UTF8.self))
    }

    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for word in basicTokens(text) { wordPiece(word, into: &ids) }
        return ids
    }

    /// The words and punctuation marks of `text` after cleaning, CJK spacing and (lower case) accent stripping.
    func basicTokens(_ text: String) -> [String] {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
            if Self.isWhitespace(s) { cleaned.append(" "); continue }
            if Self.isCJK(s) { cleaned.append(" "); cleaned.append(s); cleaned.append(" "); continue }
            cleaned.append(s)
        }
        var normalized = String(cleaned)
        if lowerCase {
            let decomposed = normalized.decomposedStringWithCanonicalMapping
            var kept = String.UnicodeScalarView()
            for s in decomposed.unicodeScalars where s.properties.generalCategory != .nonspacingMark { kept.append(s) }
            normalized = String(kept).lowercased()
        }
        var words: [String] = []
        var current = String.UnicodeScalarView()
        func flush() { if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() } }
        for s in normalized.unicodeScalars {
            if Self.isWhitespace(s) {
                flush()
            } else if Self.isPunctuation(s) {
                flush(); words.append(String(s))
            } else {
                current.append(s)
            }
        }
        flush()
        return words
    }

    func wordPiece(_ word: String, into ids: inout [Int32]) {
        let scalars = Array(word.unicodeScalars)
        if scalars.count > Self.maxWordCharacters { ids.append(unk); return }
        var pieces: [Int32] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int32? = nil
            while start < end {
                var piece = String(String.UnicodeScalarView(scalars[start..<end]))
                if start > 0 { piece = "##" + piece }
                if let id = vocab[piece] { found = id; break }
                end -= 1
            }
            guard let id = found else { ids.append(unk); return }
            pieces.append(id)
            start = end
        }
        ids.append(contentsOf: pieces)
    }

    public func decode(_ ids: [Int32]) -> [UInt8] {
        var out = ""
        for id in ids where id >= 0 && Int(id) < tokens.count {
            let t = tokens[Int(id)]
            if t.hasPrefix("##") { out += t.dropFirst(2) } else { out += (out.isEmpty ? "" : " ") + t }
        }
        return Array(out.utf8)
    }

    public func token(_ id: Int32) -> String { tokens[Int(id)] }

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

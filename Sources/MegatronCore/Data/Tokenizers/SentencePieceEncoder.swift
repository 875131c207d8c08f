// SentencePieceEncoder.swift — a SentencePiece model's pieces for normalized text, as the library
// computes them, and its ids back to text.
//   BPE: the text starts as one symbol per UTF-8 character (a user-defined symbol stays whole and
//   never merges); repeatedly the adjacent pair whose concatenation is a piece with the highest
//   score merges (ties: the leftmost), from a heap of candidate pairs with stale entries skipped;
//   a merged piece of type UNUSED is split back into the two it came from.
//   Unigram: Viterbi over every piece that starts at each character (score = the piece's log
//   probability; a user-defined symbol length · max score − 0.1; a character no piece covers is
//   <unk> at min score − 10), ties kept by the first path found.
// Then runs of <unk> become one, and with byte_fallback an <unk> becomes its bytes' <0xXX> pieces.
// Decoding: control pieces vanish, <unk> is " ⁇ ", byte pieces are gathered and read as UTF-8
// (a bad byte is U+FFFD), "▁" is a space, and the first piece loses its leading "▁" when the model
// adds a dummy prefix.
import Foundation

struct SentencePieceEncoder {
    let model: SentencePieceModelFile
    let normalizer: SentencePieceNormalizer
    private let table: TokenTable
    private let byteIDs: [Int32]  // the <0xXX> piece of each byte, or unk
    private let minScore, maxScore: Float
    let unkID: Int32
    /// Set when BPE can encode word by word: the text splits before each "▁" and no piece holds a
    /// "▁" after its start (nor is "▁" unknown), so no merge, and no run of <unk>, crosses a split —
    /// each word's pieces are then the same as in the whole text, and repeated words are looked up.
    private let wordCache: WordCache?

    init(model: SentencePieceModelFile, path: String) throws {
        self.model = model
        let pieces = model.pieces
        guard model.modelType == .bpe || model.modelType == .unigram else {
            throw TokenizerError.malformed(
                path: path, reason: "a SentencePiece \(model.modelType) model; BPE and unigram models are built")
        }
        guard let unk = pieces.firstIndex(where: { $0.type == .unknown }) else {
            throw TokenizerError.malformed(path: path, reason: "no <unk> piece (every SentencePiece model has one)")
        }
        guard pieces.filter({ $0.type == .unknown }).count == 1 else {
            throw TokenizerError.malformed(path: path, reason: "more than one UNKNOWN piece")
        }
        if let empty = pieces.firstIndex(where: { $0.text.isEmpty }) {
            throw TokenizerError.malformed(path: path, reason: "piece \(empty) is empty")
        }
        var seen = Set<[UInt8]>()
        for (id, p) in pieces.enumerated() where !seen.insert(p.text).inserted {
            throw TokenizerError.malformed(
                path: path, reason: "piece \(id) ('\(String(decoding: p.text, as: UTF8.self))') is defined twice")
        }
        if !model.byteFallback, pieces.contains(where: { $0.type == .byte }) {
            throw TokenizerError.malformed(path: path, reason: "byte pieces in a model without byte_fallback")
        }
        unkID = Int32(unk)
        table = TokenTable(byteTokens: pieces.map(\.text))
        var byteIDs = [Int32](repeating: Int32(unk), count: 256)
        for (id, p) in pieces.enumerated() where p.type == .byte {
            let text = String(decoding: p.text, as: UTF8.self)
            if text.count == 6, text.hasPrefix("<0x"), text.hasSuffix(">"),
                let b = UInt8(text.dropFirst(3).prefix(2), radix: 16)
            {
                byteIDs[Int(b)] = Int32(id)
            }
        }
        self.byteIDs = byteIDs
        let normal = pieces.filter { $0.type == .normal }.map(\.score)
        minScore = normal.min() ?? 0
        maxScore = normal.max() ?? 0
        let space = SentencePieceNormalizer.spaceSymbol
        let mergeable = pieces.filter { $0.type == .normal || $0.type == .userDefined || $0.type == .unused }
        let wordwise =
            model.modelType == .bpe && model.escapeWhitespaces && mergeable.contains { $0.text == space }
            && !mergeable.contains { p in
                p.text.count > 3 && (1...(p.text.count - 3)).contains { p.text[$0..<($0 + 3)].elementsEqual(space) }
            }
        wordCache = wordwise ? WordCache() : nil
        let users = pieces.filter { $0.type == .userDefined }.map(\.text)
        normalizer = try SentencePieceNormalizer(model: model, userSymbols: PrefixMatcher(users), path: path)
    }

    private func type(_ id: Int32) -> SentencePieceModelFile.PieceType { model.pieces[Int(id)].type }

    /// Whether `ids` hold a piece that decodes to text (not only control pieces).
    func hasText(_ ids: [Int32]) -> Bool {
        ids.contains { $0 >= 0 && Int($0) < model.pieces.count && type($0) != .control }
    }

    /// A piece that takes part in merges and lattices (SentencePiece's "normal" map).
    private func isMergeable(_ id: Int32) -> Bool {
        let t = type(id)
        return t == .normal || t == .userDefined || t == .unused
    }

    /// The ids of `text` (no BOS or EOS).
    func encode(_ text: UnsafeBufferPointer<UInt8>) -> [Int32] {
        let normalized = normalizer.normalize(text)
        guard !normalized.isEmpty else { return [] }
        return normalized.withUnsafeBufferPointer { n in
            var ids: [Int32] = []
            ids.reserveCapacity(n.count / 3)
            guard let words = wordCache else {
                append(model.modelType == .bpe ? bpe(n) : unigram(n), to: &ids)
                return ids
            }
            words.lock.lock()
            defer { words.lock.unlock() }
            var start = 0
            while start < n.count {  // each word: a "▁" and what follows up to the next
                var end = start + 1
                while end < n.count
                    && !(n[end] == 0xE2 && end + 2 < n.count && n[end + 1] == 0x96 && n[end + 2] == 0x81)
                {
                    end += 1
                }
                let word = UnsafeBufferPointer(rebasing: n[start..<end])
                if !words.cache.lookup(word, into: &ids) {
                    let first = ids.count
                    append(bpe(word), to: &ids)
                    words.cache.insert(word, ids: ids[first...])
                }
                start = end
            }
            return ids
        }
    }

    /// The ids of `spans`: a run of <unk> is one, or with byte fallback its bytes.
    private func append(_ spans: [Span], to ids: inout [Int32]) {
        let unk = unkID
        var i = 0
        while i < spans.count {
            guard spans[i].id == unk else {
                ids.append(spans[i].id)
                i += 1
                continue
            }
            var end = i + 1
            while end < spans.count && spans[end].id == unk { end += 1 }
            if model.byteFallback {
                for s in spans[i..<end] { for b in s.bytes { ids.append(byteIDs[Int(b)]) } }
            } else {
                ids.append(unk)
            }
            i = end
        }
    }

    /// BPE's words' ids, remembered (and locked: one encoder may serve several threads).
    final class WordCache: @unchecked Sendable {
        let cache = PieceCache()
        let lock = NSLock()
    }

    struct Span {
        var bytes: ArraySlice<UInt8>
        var id: Int32
    }

    /// Any piece with these bytes (reserved ones included), else <unk>.
    private func pieceID(_ n: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int32 {
        table.id(of: n, range) ?? unkID
    }

    private func bpe(_ n: UnsafeBufferPointer<UInt8>) -> [Span] {
        var start: [Int] = [], end: [Int] = [], frozen: [Bool] = []
        var position = 0
        while position < n.count {
            let user = normalizer.userSymbols.longestMatch(UnsafeBufferPointer(rebasing: n[position...]))
            let length = user > 0 ? user : UTF8Validation.leadLength(n[position], remaining: n.count - position)
            start.append(position); end.append(position + length); frozen.append(user > 0)
            position += length
        }
        let count = start.count
        var next = Array(1...count), previous = Array(-1..<(count - 1))
        next[count - 1] = -1
        var heap = BinaryHeap<MergeCandidate>()
        var unusedSplits: [[UInt8]: (ArraySlice<UInt8>, ArraySlice<UInt8>)] = [:]
        func consider(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0, !frozen[left], !frozen[right] else { return }
            guard let id = table.id(of: n, start[left]..<end[right]), isMergeable(id) else { return }
            heap.push(
                .init(score: model.pieces[Int(id)].score, left: left, right: right, size: end[right] - start[left]))
            if type(id) == .unused {
                let slice = { (s: Int) in Array(n[start[s]..<end[s]])[...] }
                unusedSplits[Array(n[start[left]..<end[right]])] = (slice(left), slice(right))
            }
        }
        for i in 1..<count { consider(i - 1, i) }
        while let top = heap.pop() {
            let (l, r) = (top.left, top.right)
            guard end[l] > start[l], end[r] > start[r], end[r] - start[l] == top.size, next[l] == r else { continue }
            end[l] = end[r]
            start[r] = end[r]  // emptied
            next[l] = next[r]
            if next[r] >= 0 { previous[next[r]] = l }
            consider(previous[l], l)
            consider(l, next[l])
        }
        var spans: [Span] = []
        var i = 0
        while i >= 0 {
            resegment(Array(n[start[i]..<end[i]])[...], unusedSplits, into: &spans)
            i = next[i]
        }
        return spans
    }

    private func resegment(
        _ piece: ArraySlice<UInt8>, _ splits: [[UInt8]: (ArraySlice<UInt8>, ArraySlice<UInt8>)],
        into spans: inout [Span]
    ) {
        let id = piece.withUnsafeBufferPointer { pieceID($0, 0..<$0.count) }
        if type(id) == .unused, let (a, b) = splits[Array(piece)] {
            resegment(a, splits, into: &spans)
            resegment(b, splits, into: &spans)
        } else {
            spans.append(Span(bytes: piece, id: id))
        }
    }

    private func unigram(_ n: UnsafeBufferPointer<UInt8>) -> [Span] {
        // best[e]: the best path ending at byte e — its score, the start of its last piece, that piece.
        var score = [Float](repeating: 0, count: n.count + 1)
        var from = [Int](repeating: -1, count: n.count + 1)
        var piece = [Int32](repeating: -1, count: n.count + 1)
        let unkScore = minScore - 10
        var s = 0
        while s < n.count {
            let here = score[s]
            let length = UTF8Validation.leadLength(n[s], remaining: n.count - s)
            var coversCharacter = false
            table.forEachPrefix(of: n, from: s) { id, e in
                guard isMergeable(id), type(id) != .unused else { return }
                let pieceScore = type(id) == .userDefined ? Float(e - s) * maxScore - 0.1 : model.pieces[Int(id)].score
                if from[e] < 0 || here + pieceScore > score[e] {
                    (score[e], from[e], piece[e]) = (here + pieceScore, s, id)
                }
                if e - s == length { coversCharacter = true }
            }
            if !coversCharacter {
                let e = s + length
                if from[e] < 0 || here + unkScore > score[e] {
                    (score[e], from[e], piece[e]) = (here + unkScore, s, unkID)
                }
            }
            s += length
        }
        var spans: [Span] = []
        var e = n.count
        while e > 0 {
            spans.append(Span(bytes: Array(n[from[e]..<e])[...], id: piece[e]))
            e = from[e]
        }
        return spans.reversed()
    }

    /// The text of `ids` (ids outside the model are skipped); `continuing` when they follow text
    /// already written, so no leading "▁" is the dummy prefix.
    func decode(_ ids: [Int32], continuing: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        var bytes: [UInt8] = []
        // At the start a piece's leading "▁" is the dummy prefix: dropped from the first piece with
        // text, and with remove_extra_whitespaces from every piece until one has text.
        var atStart = !model.treatWhitespaceAsSuffix && !continuing
        let stripsPrefix = model.addDummyPrefix || model.removeExtraWhitespaces
        func flushBytes() {
            var i = 0
            while i < bytes.count {
                let length = bytes[i...].withUnsafeBufferPointer { UTF8Validation.validLength($0) }
                if length == 0 {
                    out += SentencePieceNormalizer.replacementCharacter
                    i += 1
                } else {
                    out += bytes[i..<(i + length)]
                    i += length
                }
            }
            bytes.removeAll(keepingCapacity: true)
        }
        for id in ids where id >= 0 && Int(id) < model.pieces.count {
            let p = model.pieces[Int(id)]
            if p.type == .control { continue }
            if p.type == .byte, let b = byteIDs.firstIndex(of: id) {
                bytes.append(UInt8(b))
                atStart = false
                continue
            }
            flushBytes()
            if p.type == .unknown {
                out += Array(" \u{2047} ".utf8)
                atStart = false
                continue
            }
            var text = p.text[...]
            var droppedPrefix = false
            if atStart && stripsPrefix && text.starts(with: SentencePieceNormalizer.spaceSymbol) {
                text = text.dropFirst(3)
                droppedPrefix = !model.removeExtraWhitespaces
            }
            if !text.isEmpty || droppedPrefix { atStart = false }
            var i = text.startIndex
            while i < text.endIndex {
                if text[i...].starts(with: SentencePieceNormalizer.spaceSymbol) {
                    out.append(0x20)
                    i += 3
                } else {
                    out.append(text[i])
                    i += 1
                }
            }
        }
        flushBytes()
        return out
    }
}

/// A candidate merge of SentencePiece's BPE: the highest score first, then the leftmost.
private struct MergeCandidate: HeapOrdered {
    var score: Float
    var left, right, size: Int
    func before(_ o: MergeCandidate) -> Bool { score > o.score || (score == o.score && left < o.left) }
}

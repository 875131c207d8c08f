// BertSamples.swift — Megatron's BERT samples (megatron/core/datasets/bert_dataset.py and
// masked_dataset.py) from documents held as lists of sentences:
//   mapping: each document's sentences are cut into runs whose token count reaches a target length
//     — s − 3, or with probability short_seq_prob a length drawn from [2, s − 3] — once the run has
//     ≥ 2 sentences (≥ 1 without the binary head) and more than one sentence would remain; one
//     sample per run (a document's last run may fall short of its target);
//   sample i (its own generator keyed by (seed, i), so samples do not depend on order or grid):
//     split the run into segments A | B at a random sentence boundary; with probability 0.5 swap
//     them (the sentence-order label is 1); while A + B is longer than the target, drop a token
//     from the longer segment, from its front or back at random; tokens [CLS] A [SEP] B [SEP] with
//     token types 0 (… first [SEP]) and 1 (B, last [SEP]); predict max(1, round(0.15 · maskable))
//     non-special positions, chosen as Megatron's BERT dataset chooses them: whole words (a
//     WordPiece `##` continuation joins the word before it) in n-grams of up to 3 words, n drawn
//     with P(n) ∝ 1/n at n-gram starts taken in a random order, shorter n tried when the longer
//     would overshoot the count, n-grams that overlap a chosen one or still overshoot skipped;
//     each chosen token becomes [MASK] (80%), a random non-special token (10%) or stays (10%); pad
//     to s with [PAD] (label −1, never attended to).
// The sentence splitter for raw text is `SentenceSplitter`.
import Foundation
import Tensor

/// The special ids a BERT vocabulary needs, and the ids random replacement draws from.
public struct BertVocabulary: Sendable, Equatable {
    public let size: Int
    public let cls: Int32, sep: Int32, mask: Int32, pad: Int32
    /// Ids of pieces that continue the word before them (WordPiece's `##…`); none for bytes.
    public let continuations: Set<Int32>

    public init(size: Int, cls: Int32, sep: Int32, mask: Int32, pad: Int32, continuations: Set<Int32> = []) {
        self.size = size; self.cls = cls; self.sep = sep; self.mask = mask; self.pad = pad
        self.continuations = continuations
    }

    /// The byte-level vocabulary with BERT's special tokens appended: bytes 0…255, then [CLS] 256,
    /// [SEP] 257, [MASK] 258, [PAD] 259 (the built-in corpus's BERT vocabulary).
    public static let byteLevel = BertVocabulary(size: 260, cls: 256, sep: 257, mask: 258, pad: 259)

    public func isSpecial(_ id: Int32) -> Bool { id == cls || id == sep || id == mask || id == pad }
}

/// A document as sentences of token ids.
public typealias BertDocument = [[Int32]]

/// Documents as lists of sentences of token ids, wherever they live: in memory (the built-in
/// corpus) or in a sentence-split MMIDIDX dataset (one sequence per sentence, document boundaries
/// in document_indices), read in place.
public protocol BertCorpus {
    var documentCount: Int { get }
    /// The token count of each sentence of document `d`.
    func sentenceLengths(_ d: Int) -> [Int]
    /// The tokens of sentences `range` of document `d`.
    func sentences(_ d: Int, _ range: Range<Int>) -> [[Int32]]
}

extension Array: BertCorpus where Element == BertDocument {
    public var documentCount: Int { count }
    public func sentenceLengths(_ d: Int) -> [Int] { self[d].map(\.count) }
    public func sentences(_ d: Int, _ range: Range<Int>) -> [[Int32]] {
        let document: BertDocument = self[d]
        return [[Int32]](document[range])
    }
}

extension IndexedDataset: BertCorpus {
    public func sentenceLengths(_ d: Int) -> [Int] {
        (Int(documentIndices[d])..<Int(documentIndices[d + 1])).map { length($0) }
    }
    public func sentences(_ d: Int, _ range: Range<Int>) -> [[Int32]] {
        let first = Int(documentIndices[d])
        return range.map { i in
            let n = length(first + i)
            var tokens = [Int32](repeating: 0, count: n)
            tokens.withUnsafeMutableBufferPointer {
                read(sequence: first + i, offset: 0, count: n, into: $0.baseAddress!)
            }
            return tokens
        }
    }
}

/// One BERT sample, laid out for s positions.
public struct BertSample: Sendable, Equatable {
    public var tokens: [Int32], tokentypes: [Int32], labels: [Int32]
    /// Real tokens (the rest is [PAD]); 1 when the segments were swapped.
    public var length: Int, sopLabel: Int32
    /// The words in each n-gram chosen for prediction, in the order chosen (Megatron's masked spans).
    public var maskedNgrams: [Int] = []
}

/// A run of consecutive sentences of one document that makes one sample, and its target length.
public struct BertSpan: Sendable, Equatable {
    public let document: Int, sentences: Range<Int>, targetLength: Int
}

/// Deterministic generator of one sample: splitmix64 keyed by (seed, index, stream).
struct SampleRandom {
    var state: UInt64
    init(seed: Int, index: Int, stream: UInt64) {
        state = splitMix64(
            UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 ^ splitMix64(UInt64(index) &+ stream))
    }
    /// Uniform in [0, 1).
    mutating func uniform() -> Double {
        state = splitMix64(state)
        return Double(state >> 11) * 0x1p-53
    }
    /// Uniform in range.
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + min(range.count - 1, Int(uniform() * Double(range.count)))
    }
}

/// Epochs over `count` items, each in its own order: item k of a run is position k mod count of
/// epoch k / count's permutation (Fisher–Yates keyed by seed, epoch and `stream`). The current
/// epoch's permutation is kept, so consecutive reads cost nothing.
struct EpochShuffle {
    let count: Int, seed: Int, stream: UInt64
    private var cached: (epoch: Int, order: [Int]) = (-1, [])

    init(count: Int, seed: Int, stream: UInt64) { self.count = count; self.seed = seed; self.stream = stream }

    mutating func item(_ k: Int) -> Int {
        let epoch = k / count
        if cached.epoch != epoch {
            var order = Array(0..<count)
            var random = SampleRandom(seed: seed, index: epoch, stream: stream)
            for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, random.int(0...i)) }
            cached = (epoch, order)
        }
        return cached.order[k % count]
    }
}

public struct BertSampleBuilder: Sendable {
    public let vocabulary: BertVocabulary
    public let seqLength: Int
    public let maskProb: Double, shortSeqProb: Double
    public let binaryHead: Bool
    public let seed: Int
    /// Longest n-gram of words masked together (Megatron's BERT: 3; 1 masks single words), and
    /// whether a word's continuation pieces are masked with it (Megatron's BERT: yes).
    public let maxNgram: Int, wholeWords: Bool

    public init(
        vocabulary: BertVocabulary, seqLength: Int, maskProb: Double = 0.15, shortSeqProb: Double = 0.1,
        binaryHead: Bool = true, seed: Int, maxNgram: Int = 3, wholeWords: Bool = true
    ) {
        precondition(maxNgram >= 1, "maxNgram must be at least 1")
        self.vocabulary = vocabulary; self.seqLength = seqLength; self.maskProb = maskProb
        self.shortSeqProb = shortSeqProb; self.binaryHead = binaryHead; self.seed = seed
        self.maxNgram = maxNgram; self.wholeWords = wholeWords
    }

    /// Tokens a sample of `maskable` non-special tokens masks: max(1, round(mask_prob · maskable)), at most all.
    public static func maskedCount(maskable: Int, maskProb: Double) -> Int {
        min(maskable, max(1, Int((maskProb * Double(maskable)).rounded())))
    }

    /// Megatron's mapping: runs of sentences reaching each run's target length, in document order,
    /// over `documents` of the corpus (all when nil). A document's runs depend on (seed, document) only.
    public func spans(_ corpus: some BertCorpus, documents: Range<Int>? = nil) -> [BertSpan] {
        let maxTokens = seqLength - 3, least = binaryHead ? 2 : 1
        var spans: [BertSpan] = []
        for d in documents ?? 0..<corpus.documentCount {
            let doc = corpus.sentenceLengths(d)
            var random = SampleRandom(seed: seed, index: d, stream: 1)
            func target() -> Int { random.uniform() < shortSeqProb ? random.int(2...max(2, maxTokens)) : maxTokens }
            var start = 0, tokens = 0, goal = target()
            for (i, sentence) in doc.enumerated() {
                tokens += sentence
                // Megatron's rule: a run ends at its target once it has enough sentences, unless only
                // one sentence would remain (it joins this run); the document's end ends any run.
                let last = i == doc.count - 1, remaining = doc.count - 1 - i
                if (tokens >= goal && remaining > 1 && i + 1 - start >= least) || last {
                    if i + 1 - start >= least && tokens > 0 {
                        spans.append(BertSpan(document: d, sentences: start..<(i + 1), targetLength: goal))
                    }
                    start = i + 1; tokens = 0; goal = target()
                }
            }
        }
        return spans
    }

    /// Sample `index` built from `span` of `corpus`.
    public func sample(_ index: Int, span: BertSpan, corpus: some BertCorpus) -> BertSample {
        var random = SampleRandom(seed: seed, index: index, stream: 2)
        let sentences = corpus.sentences(span.document, span.sentences)
        var a: [Int32] = [], b: [Int32] = [], swapped = false
        if binaryHead && sentences.count >= 2 {
            let pivot = random.int(1...(sentences.count - 1))
            a = sentences[..<pivot].flatMap { $0 }
            b = sentences[pivot...].flatMap { $0 }
            if random.uniform() < 0.5 { swap(&a, &b); swapped = true }
        } else {
            a = sentences.flatMap { $0 }
        }
        let maxTokens = min(span.targetLength, seqLength - 3)
        while a.count + b.count > maxTokens {
            if a.count > b.count {  // Megatron's truncate_segments: B on a tie
                if random.uniform() < 0.5 { a.removeFirst() } else { a.removeLast() }
            } else {
                if random.uniform() < 0.5 { b.removeFirst() } else { b.removeLast() }
            }
        }
        let v = vocabulary
        var tokens = [v.cls] + a + [v.sep]
        var types = [Int32](repeating: 0, count: tokens.count)
        if binaryHead {
            tokens += b + [v.sep]
            types += [Int32](repeating: 1, count: b.count + 1)
        }
        let length = tokens.count
        var labels = [Int32](repeating: -1, count: seqLength)
        let ngrams = maskTokens(&tokens, labels: &labels, random: &random)
        let pad = seqLength - length
        return BertSample(
            tokens: tokens + [Int32](repeating: v.pad, count: pad),
            tokentypes: types + [Int32](repeating: 0, count: pad),
            labels: labels, length: length, sopLabel: swapped ? 1 : 0, maskedNgrams: ngrams)
    }

    /// Chooses max(1, round(mask_prob · maskable)) non-special positions as whole-word n-grams
    /// (see the header) and replaces them: 80% [MASK], 10% a random non-special token, 10% kept.
    /// Returns the word count of each n-gram chosen.
    func maskTokens(_ tokens: inout [Int32], labels: inout [Int32], random: inout SampleRandom) -> [Int] {
        let v = vocabulary
        // Words: runs of positions, a continuation piece joining the word right before it.
        var words: [Range<Int>] = []
        for p in tokens.indices where !v.isSpecial(tokens[p]) {
            if wholeWords, let last = words.last, last.upperBound == p, v.continuations.contains(tokens[p]) {
                words[words.count - 1] = last.lowerBound..<(p + 1)
            } else {
                words.append(p..<(p + 1))
            }
        }
        let maskable = words.reduce(0) { $0 + $1.count }
        guard maskable > 0 else { return [] }
        let count = Self.maskedCount(maskable: maskable, maskProb: maskProb)
        // n-gram starts in a random order (Fisher–Yates).
        var starts = Array(words.indices)
        for i in stride(from: starts.count - 1, to: 0, by: -1) { starts.swapAt(i, random.int(0...i)) }
        let weights = (1...maxNgram).map { 1 / Double($0) }, totalWeight = weights.reduce(0, +)
        var covered = [Bool](repeating: false, count: tokens.count)
        var chosen = 0
        var ngrams: [Int] = []
        for start in starts {
            if chosen >= count { break }
            // n with P(n) ∝ 1/n; an n-gram running past the last word is cut there (as Megatron's).
            var u = random.uniform() * totalWeight
            var n = 1
            while n < maxNgram && u >= weights[n - 1] { u -= weights[n - 1]; n += 1 }
            n = min(n, words.count - start)
            func size(_ n: Int) -> Int { words[start..<(start + n)].reduce(0) { $0 + $1.count } }
            while n > 1 && chosen + size(n) > count { n -= 1 }
            let positions = words[start..<(start + n)].flatMap { Array($0) }
            if chosen + positions.count > count || positions.contains(where: { covered[$0] }) { continue }
            for p in positions {
                covered[p] = true
                labels[p] = tokens[p]
                let r = random.uniform()
                if r < 0.8 {
                    tokens[p] = v.mask
                } else if r < 0.9 {
                    var t: Int32
                    repeat { t = Int32(random.int(0...(v.size - 1))) } while v.isSpecial(t)
                    tokens[p] = t
                }
            }
            chosen += positions.count
            ngrams.append(n)
        }
        return ngrams
    }
}

/// Splits text into sentences: a sentence ends after '.', '!' or '?' followed by whitespace, or at
/// a blank line; leading and trailing whitespace is dropped and empty sentences are skipped. (A
/// simple rule, not NLTK's punkt: abbreviations such as "e.g. " end a sentence here.)
public enum SentenceSplitter {
    public static func split(_ text: [UInt8]) -> [[UInt8]] {
        var sentences: [[UInt8]] = [], current: [UInt8] = []
        func flush() {
            var s = current[...]
            while let f = s.first, isSpace(f) { s = s.dropFirst() }
            while let l = s.last, isSpace(l) { s = s.dropLast() }
            if !s.isEmpty { sentences.append(Array(s)) }
            current = []
        }
        var i = 0
        while i < text.count {
            let c = text[i]
            current.append(c)
            let next = i + 1 < text.count ? text[i + 1] : 0x20
            if (c == 0x2E || c == 0x21 || c == 0x3F) && isSpace(next) {
                flush()
            } else if c == 0x0A && next == 0x0A {
                flush()
            }
            i += 1
        }
        flush()
        return sentences
    }

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x09 || c == 0x0D }
}

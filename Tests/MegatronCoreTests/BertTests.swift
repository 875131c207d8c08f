// BertTests.swift — BERT on one rank: every parameter's gradient of the whole model (embeddings with
// token types, bidirectional layers over padded sequences, final norm, masked-LM head with its
// vocabulary bias, pooler and binary head; the finetuning heads: classification, multiple choice)
// against central finite differences of the loss; and
// Megatron's sample construction, by its properties over many samples.
import MegatronCore
import Tensor
import XCTest

final class BertTests: XCTestCase {
    override func setUp() { ThreadBudget.configure(threads: 2) }

    static let vocabulary = BertVocabulary(size: 40, cls: 36, sep: 37, mask: 38, pad: 39)

    func makeModel(binaryHead: Bool = true, postLayerNorm: Bool = false, task: BertTask = .pretraining) -> BertModel {
        var gpt = GPTConfig(
            numLayers: 2, hiddenSize: 16, numAttentionHeads: 2, seqLength: 12, maxPositionEmbeddings: 12,
            vocabSize: 40, paddedVocabSize: 48, initMethodStd: 0.2, seed: 7)
        gpt.postLayerNorm = postLayerNorm
        return BertModel(
            config: BertConfig(transformer: gpt, binaryHead: binaryHead, task: task), microBatch: 2, threads: 2)
    }

    /// Two sequences, the second padded after 7 tokens, with masked positions in both.
    func fill(_ acts: BertActivations) {
        var random = SplitMixTestRandom(seed: 3)
        let s = 12, b = 2, lengths = [12, 7]
        for j in 0..<b {
            for pos in 0..<s {
                let r = pos * b + j, real = pos < lengths[j]
                acts.core.tokens.base[r] = !real ? 39 : pos == 0 ? 36 : Int32(random.next() % 36)
                acts.tokentypes.base[r] = real && pos >= lengths[j] / 2 ? 1 : 0
                acts.labels.base[r] = real && pos > 0 && pos % 3 == 1 ? Int32(random.next() % 36) : -1
            }
        }
        acts.sequenceLabels = [1, 0]
        acts.setLengths(lengths)
    }

    func testEveryParameterGradientMatchesFiniteDifferences() throws {
        let cases: [(Bool, Bool, BertTask)] = [
            (true, false, .pretraining), (false, false, .pretraining), (true, true, .pretraining),
            (true, false, .classification(classes: 3)), (true, true, .multipleChoice(choices: 2)),
        ]
        for (binaryHead, postLN, task) in cases {
            let model = makeModel(binaryHead: binaryHead, postLayerNorm: postLN, task: task)
            let acts = model.makeActivations()
            fill(acts)
            if task != .pretraining { acts.sequenceLabels = task == .multipleChoice(choices: 2) ? [1, 0] : [2, 0] }
            let ctx = PassContext(iteration: 1, microbatch: 0, training: true)
            model.grads.zero()
            let loss = try XCTUnwrap(try model.forward(acts, ctx, gradScale: 1))
            try model.backward(acts, ctx)
            XCTAssertGreaterThan(task == .pretraining ? acts.maskedRows : acts.pooledExamples, 0)
            if binaryHead { XCTAssertGreaterThan(acts.pooledLossSum, 0) }
            if task == .multipleChoice(choices: 2) {
                XCTAssertEqual(acts.pooledExamples, 1, "one question of 2 options")
            }
            func evalLoss() throws -> Double {
                try XCTUnwrap(
                    try model.forward(acts, PassContext(iteration: 1, microbatch: 0, training: false), gradScale: nil))
            }
            XCTAssertEqual(try evalLoss(), loss, accuracy: 1e-6 * loss, "the loss does not depend on training")
            var checked = 0
            for (slot, spec) in model.table.specs.enumerated() {
                let p = model.params.pointer(slot), g = model.grads.pointer(slot)
                // Every element of small tensors, a spread of the large ones.
                let stride = max(1, spec.count / 24)
                var maxDiff = 0.0, maxRef = 0.0
                for i in Swift.stride(from: 0, to: spec.count, by: stride) {
                    let keep = p[i], eps: Float = 1e-2
                    p[i] = keep + eps; let up = try evalLoss()
                    p[i] = keep - eps; let down = try evalLoss()
                    p[i] = keep
                    let numeric = (up - down) / Double(2 * eps)
                    maxDiff = max(maxDiff, abs(numeric - Double(g[i])))
                    maxRef = max(maxRef, abs(numeric))
                    checked += 1
                }
                // Float32 forward: the differences carry ~1e-5 of rounding noise.
                XCTAssertLessThanOrEqual(
                    maxDiff, 2e-2 * maxRef + 1e-4,
                    "\(spec.name) (binary head \(binaryHead), post-LN \(postLN), \(task))")
                // One score per option, softmax over the options: the head's bias moves every score
                // alike, so the loss does not depend on it and its true gradient is zero.
                if spec.name == BertSlots.multichoiceBiasName {
                    XCTAssertLessThanOrEqual(abs(Double(g[0])), 1e-6, "\(spec.name): the loss does not depend on it")
                    continue
                }
                XCTAssertGreaterThan(
                    maxRef, 0,
                    "\(spec.name): no gradient reaches it (binary head \(binaryHead), post-LN \(postLN), \(task))")
            }
            XCTAssertGreaterThan(checked, 200)
        }
    }

    func testPaddedPositionsChangeNothing() throws {
        for postLN in [false, true] { try paddedPositionsChangeNothing(makeModel(postLayerNorm: postLN)) }
    }

    func paddedPositionsChangeNothing(_ model: BertModel) throws {
        let a = model.makeActivations(), b = model.makeActivations()
        fill(a); fill(b)
        // Different tokens and types where sequence 1 is padding (positions ≥ 7): same losses.
        for pos in 7..<12 { b.core.tokens.base[pos * 2 + 1] = 5; b.tokentypes.base[pos * 2 + 1] = 1 }
        let ctx = PassContext(iteration: 1, microbatch: 0, training: false)
        XCTAssertEqual(try model.forward(a, ctx, gradScale: nil), try model.forward(b, ctx, gradScale: nil))
    }

    func testSentenceSplitter() {
        let text = Array("One. Two?  Three!\n\nFour\nstill four. e.g. Five".utf8)
        XCTAssertEqual(
            SentenceSplitter.split(text).map { String(decoding: $0, as: UTF8.self) },
            ["One.", "Two?", "Three!", "Four\nstill four.", "e.g.", "Five"])
    }

    func testSampleConstructionProperties() {
        let v = BertVocabulary.byteLevel, s = 64
        // 150 documents of 3…12 sentences of 4…30 byte tokens.
        var random = SplitMixTestRandom(seed: 11)
        let documents: [BertDocument] = (0..<150).map { _ in
            (0..<(3 + Int(random.next() % 10))).map { _ in
                (0..<(4 + Int(random.next() % 27))).map { _ in Int32(random.next() % 256) }
            }
        }
        let builder = BertSampleBuilder(vocabulary: v, seqLength: s, seed: 5)
        let spans = builder.spans(documents)
        XCTAssertGreaterThan(spans.count, 250)
        let short = spans.filter { $0.targetLength < s - 3 }.count
        XCTAssertEqual(Double(short) / Double(spans.count), 0.1, accuracy: 0.05, "short targets ≈ short_seq_prob")
        var maskable = 0, masked = 0, asMask = 0, asRandom = 0, kept = 0, swapped = 0
        let samples = 4000
        for i in 0..<samples {
            let span = spans[i % spans.count]
            let sample = builder.sample(i, span: span, corpus: documents)
            XCTAssertEqual(sample.tokens.count, s); XCTAssertEqual(sample.labels.count, s)
            XCTAssertLessThanOrEqual(sample.length, s)
            XCTAssertEqual(sample.tokens[0], v.cls)
            XCTAssertEqual(sample.tokens[sample.length - 1], v.sep)
            XCTAssertTrue(sample.tokens[sample.length...].allSatisfy { $0 == v.pad })
            let specials = sample.tokens[..<sample.length].filter { $0 == v.cls || $0 == v.sep }.count
            XCTAssertEqual(specials, 3, "[CLS] A [SEP] B [SEP]")
            maskable += sample.length - 3
            for p in 0..<s where sample.labels[p] >= 0 {
                masked += 1
                XCTAssertFalse(v.isSpecial(sample.labels[p]), "a special token was masked")
                if sample.tokens[p] == v.mask {
                    asMask += 1
                } else if sample.tokens[p] == sample.labels[p] {
                    kept += 1
                } else {
                    asRandom += 1
                }
            }
            swapped += Int(sample.sopLabel)
            XCTAssertEqual(builder.sample(i, span: span, corpus: documents), sample, "same seed, same sample")
        }
        XCTAssertEqual(Double(masked) / Double(maskable), 0.15, accuracy: 0.01)
        XCTAssertEqual(Double(asMask) / Double(masked), 0.8, accuracy: 0.02)
        XCTAssertEqual(Double(asRandom) / Double(masked), 0.1, accuracy: 0.02)
        XCTAssertEqual(Double(kept) / Double(masked), 0.1, accuracy: 0.02)
        XCTAssertEqual(Double(swapped) / Double(samples), 0.5, accuracy: 0.03)
        let other = BertSampleBuilder(vocabulary: v, seqLength: s, seed: 6)
        let differing = spans.indices.prefix(50).filter {
            other.sample($0, span: spans[$0], corpus: documents)
                != builder.sample($0, span: spans[$0], corpus: documents)
        }.count
        XCTAssertGreaterThan(differing, 40, "another seed gives other samples")
    }

    /// Each word of a sample's real tokens (specials skipped; a continuation piece joins the word
    /// before it, read from the original tokens): its piece count and how many of them are masked.
    static func wordMasks(_ sample: BertSample, _ v: BertVocabulary) -> [(pieces: Int, masked: Int)] {
        XCTAssertEqual(sample.tokens.count, sample.labels.count)
        let original = zip(sample.tokens, sample.labels).map { $1 >= 0 ? $1 : $0 }
        var words: [(pieces: Int, masked: Int)] = []
        var p = 0
        while p < sample.length {
            guard !v.isSpecial(original[p]) else { p += 1; continue }
            var end = p + 1
            while end < sample.length && v.continuations.contains(original[end]) { end += 1 }
            words.append((end - p, (p..<end).filter { sample.labels[$0] >= 0 }.count))
            p = end
        }
        return words
    }

    /// Megatron's whole-word n-gram masking on a WordPiece-like vocabulary: ids 0..<20 start a word,
    /// 20..<36 continue it. No word is ever masked in part; the predicted share of the maskable tokens
    /// stays at mask_prob (it may fall a little short when no whole word fits the rest of the count);
    /// n-grams of 1, 2 and 3 words come with P(n) ∝ 1/n (shortened only to fit the count or the end).
    func testWholeWordNgramMasking() {
        let v = BertVocabulary(size: 40, cls: 36, sep: 37, mask: 38, pad: 39, continuations: Set(20..<36))
        var random = SplitMixTestRandom(seed: 21)
        let documents: [BertDocument] = (0..<150).map { _ in
            (0..<(3 + Int(random.next() % 8))).map { _ in
                (0..<(3 + Int(random.next() % 10))).flatMap { _ in
                    [Int32(random.next() % 20)]
                        + (0..<Int(random.next() % 3)).map { _ in Int32(20 + random.next() % 16) }
                }
            }
        }
        let builder = BertSampleBuilder(vocabulary: v, seqLength: 128, seed: 5)
        let spans = builder.spans(documents)
        var maskable = 0, masked = 0, ngrams = [0, 0, 0, 0]
        for i in 0..<3000 {
            let sample = builder.sample(i, span: spans[i % spans.count], corpus: documents)
            let words = Self.wordMasks(sample, v)
            for (w, word) in words.enumerated() {
                XCTAssertTrue(
                    word.masked == 0 || word.masked == word.pieces, "sample \(i): word \(w) masked in part")
                maskable += word.pieces; masked += word.masked
            }
            let maskedWords = words.filter { $0.masked > 0 }.count
            for n in sample.maskedNgrams { ngrams[n] += 1 }
            XCTAssertEqual(
                sample.maskedNgrams.reduce(0, +), maskedWords, "sample \(i): the n-grams hold the masked words")
        }
        XCTAssertEqual(ngrams[0], 0)
        let share = Double(masked) / Double(maskable)
        XCTAssertLessThanOrEqual(share, 0.155); XCTAssertGreaterThan(share, 0.13)
        XCTAssertTrue(ngrams[1] > ngrams[2] && ngrams[2] > ngrams[3] && ngrams[3] > 0, "\(ngrams)")

        // Where the count rarely cuts an n-gram short (one-byte words, 60 n-grams a sample), the
        // n-grams follow P(n) ∝ 1/n: 6/11, 3/11, 2/11.
        let bytes: [BertDocument] = (0..<40).map { _ in
            (0..<12).map { _ in (0..<(30 + Int(random.next() % 60))).map { _ in Int32(random.next() % 256) } }
        }
        let long = BertSampleBuilder(vocabulary: .byteLevel, seqLength: 1024, seed: 9)
        let longSpans = long.spans(bytes)
        var lengths = [0, 0, 0, 0]
        for i in 0..<400 {
            for n in long.sample(i, span: longSpans[i % longSpans.count], corpus: bytes).maskedNgrams {
                lengths[n] += 1
            }
        }
        let all = Double(lengths.reduce(0, +))
        print("n-gram counts at seq 1024: \(lengths)")
        XCTAssertEqual(Double(lengths[1]) / all, 6.0 / 11, accuracy: 0.04, "\(lengths)")
        XCTAssertEqual(Double(lengths[2]) / all, 3.0 / 11, accuracy: 0.04, "\(lengths)")
        XCTAssertEqual(Double(lengths[3]) / all, 2.0 / 11, accuracy: 0.04, "\(lengths)")

        // Single pieces (the per-token masking): every n-gram one token, the count exact.
        let single = BertSampleBuilder(vocabulary: v, seqLength: 128, seed: 5, maxNgram: 1, wholeWords: false)
        for i in 0..<200 {
            let sample = single.sample(i, span: spans[i % spans.count], corpus: documents)
            let maskableHere = sample.tokens[..<sample.length].count - 3
            XCTAssertEqual(sample.labels.filter { $0 >= 0 }.count, max(1, Int((0.15 * Double(maskableHere)).rounded())))
            XCTAssertTrue(sample.maskedNgrams.allSatisfy { $0 == 1 })
        }
    }

    /// BERT's uncased vocabulary (../shared): its 5,828 `##` pieces (16 of them "##" before a
    /// spacing vowel sign) are the continuations whole-word masking joins to their word, and on real
    /// WordPiece text no word is masked in part.
    func testWordPieceVocabularyMarksContinuations() throws {
        let file = try SharedData.require("tokenizers/bert-base-uncased/vocab.txt").path
        let config = try ConfigLoader.parse(
            path: nil, flags: ["--tokenizer-type", "BertWordPieceLowerCase", "--vocab-file", file])
        let (v, tokenize) = try BertVocabulary.forConfig(config)
        XCTAssertEqual(v.size, 30522)
        XCTAssertEqual(v.continuations.count, 5828)
        // "##" then a Devanagari vowel sign (U+093E): not two Characters in Swift, but a continuation.
        XCTAssertTrue(v.continuations.contains(29876))
        let wordPiece = try BertWordPieceTokenizer(vocabFile: file, lowerCase: true)
        XCTAssertEqual(wordPiece.decode([29876]), Array("\u{093E}".utf8))
        let pieces = tokenize(Array("unaffable tokenization".utf8))
        XCTAssertGreaterThan(pieces.count, 2)
        XCTAssertFalse(v.continuations.contains(pieces[0]), "a word starts with a non-## piece")
        XCTAssertTrue(pieces.dropFirst().contains { v.continuations.contains($0) }, "\(pieces)")
        let text =
            "Tokenization splits unbelievably long words. Whole words are masked together. "
            + "Pretraining transformers overestimates nothing. Embeddings disentangle meanings."
        let document = SentenceSplitter.split(Array(text.utf8)).map(tokenize)
        let builder = BertSampleBuilder(vocabulary: v, seqLength: 64, maskProb: 0.3, seed: 3)
        let spans = builder.spans([document])
        XCTAssertFalse(spans.isEmpty)
        var partial = 0, maskedWords = 0
        for i in 0..<300 {
            let sample = builder.sample(i, span: spans[i % spans.count], corpus: [document])
            let words = Self.wordMasks(sample, v)
            maskedWords += words.filter { $0.masked > 0 }.count
            partial += words.filter { $0.masked > 0 && $0.masked < $0.pieces }.count
        }
        XCTAssertGreaterThan(maskedWords, 300)
        XCTAssertEqual(partial, 0, "words masked in part")
    }
}

/// splitmix64 stream for test data.
struct SplitMixTestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 { state = splitMix64(state); return state }
}

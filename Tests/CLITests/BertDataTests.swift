// BertDataTests.swift — BERT's data through the real binary: `preprocess-data --split-sentences`
// writes one MMIDIDX sequence per sentence with document boundaries (the splitter's sentences,
// tokenized); `train` reads it with data_path, caches the spans next to the data and loads them on
// the next run with the same losses; a dataset of whole documents is refused with what to run. With
// ../shared present, the same with BERT's WordPiece vocabulary on WikiText-103's validation text.
import Foundation
import MegatronCore
import TestSupport
import XCTest

final class BertDataTests: XCTestCase {
    /// Three documents of several sentences each (paragraphs separated by blank lines).
    static let text = (0..<24).map { d in
        (0..<9).map { s in "Document \(d) says thing \(s) about tensors and pipelines. Is it \(s * d)? Yes!" }
            .joined(separator: " ")
    }.joined(separator: "\n\n")

    func testSentenceSplitDatasetTrainsAndCachesItsSpans() throws {
        let dir = CLI.scratch("bert-mmidx")
        try Self.text.write(to: dir.appendingPathComponent("corpus.txt"), atomically: true, encoding: .utf8)
        let pre = try CLI.run(
            [
                "preprocess-data", "--input", "corpus.txt", "--tokenizer-type", "ByteLevelTokenizer",
                "--split-sentences", "--output-prefix", "data",
            ], in: dir)
        XCTAssertEqual(pre.code, 0, pre.stderr)
        XCTAssertTrue(pre.stdout.contains("data_text_sentence.bin/.idx"), pre.stdout)
        let dataset = try IndexedDataset(prefix: dir.appendingPathComponent("data_text_sentence").path)
        XCTAssertEqual(dataset.documentCount, 24)
        let paragraphs = Self.text.components(separatedBy: "\n\n")
        for d in [0, 23] {
            let expected = SentenceSplitter.split(Array(paragraphs[d].utf8)).map { $0.map(Int32.init) }
            XCTAssertEqual(expected.count, 27, "three sentences per clause group")
            XCTAssertEqual(dataset.sentences(d, 0..<dataset.sentenceLengths(d).count), expected, "document \(d)")
        }
        let train = [
            "train", "--config", CLI.config("bert-tiny.json"), "--data-path", "data_text_sentence", "--train-iters",
            "12", "--eval-interval", "6", "--eval-iters", "2", "--log-interval", "6",
        ]
        let first = try CLI.run(train + ["--metrics-file", "a.jsonl"], in: dir)
        XCTAssertEqual(first.code, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("BERT dataset data_text_sentence: 24 documents"), first.stdout)
        XCTAssertFalse(first.stdout.contains("loaded from the cache"), first.stdout)
        XCTAssertTrue(first.stdout.contains("sop loss value:"), first.stdout)
        let cache = try FileManager.default.contentsOfDirectory(
            atPath: dir.appendingPathComponent("cache/BertDataset_indices").path)
        XCTAssertEqual(cache.filter { $0.hasSuffix("-spans.npy") }.count, 2, "\(cache)")
        let second = try CLI.run(train + ["--metrics-file", "b.jsonl"], in: dir)
        XCTAssertEqual(second.code, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("(spans loaded from the cache)"), second.stdout)
        XCTAssertEqual(try CLI.losses(dir, "b"), try CLI.losses(dir, "a"))

        // A document-level dataset (no --split-sentences) cannot make sentence-order samples.
        let whole = try CLI.run(
            [
                "preprocess-data", "--input", "corpus.txt", "--tokenizer-type", "ByteLevelTokenizer",
                "--output-prefix", "docs",
            ], in: dir)
        XCTAssertEqual(whole.code, 0, whole.stderr)
        let refused = try CLI.run(
            ["train", "--config", CLI.config("bert-tiny.json"), "--data-path", "docs_text_document"], in: dir)
        XCTAssertNotEqual(refused.code, 0)
        XCTAssertTrue(refused.stderr.contains("--split-sentences"), refused.stderr)
    }

    func testWordPieceSentencesOfWikiText() throws {
        let shared = CLI.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
        let vocab = shared.appendingPathComponent("tokenizers/bert-base-uncased/vocab.txt").path
        let text = shared.appendingPathComponent("wikitext/wikitext-103/wiki.valid.tokens").path
        guard FileManager.default.fileExists(atPath: vocab), FileManager.default.fileExists(atPath: text) else {
            throw XCTSkip("../shared/data is absent: the WordPiece BERT dataset is not checked")
        }
        let dir = CLI.scratch("bert-wordpiece")
        let paragraph = try XCTUnwrap(
            try String(contentsOfFile: text, encoding: .utf8).components(separatedBy: "\n \n").first {
                $0.count > 400 && !$0.contains(" = ")
            })
        /// Preprocesses the text with `type` into `prefix`, and returns a paragraph's sentences as that
        /// tokenizer gives them, checking that they appear as one document of the dataset.
        func preprocess(_ type: String, _ prefix: String) throws -> [[Int32]] {
            let pre = try CLI.run(
                [
                    "preprocess-data", "--input", text, "--tokenizer-type", type, "--vocab-file", vocab,
                    "--split-sentences", "--output-prefix", prefix,
                ], in: dir)
            XCTAssertEqual(pre.code, 0, pre.stderr)
            let dataset = try IndexedDataset(prefix: dir.appendingPathComponent(prefix + "_text_sentence").path)
            XCTAssertGreaterThan(dataset.sequenceCount, 4 * dataset.documentCount, "sentences, not documents")
            let tokenizer = try BertWordPieceTokenizer(vocabFile: vocab, lowerCase: type == "BertWordPieceLowerCase")
            let sentences = SentenceSplitter.split(Array(paragraph.utf8)).map { tokenizer.encode($0) }.filter {
                !$0.isEmpty
            }
            let found = (0..<dataset.documentCount).contains { d in
                dataset.sentenceLengths(d).count == sentences.count
                    && dataset.sentences(d, 0..<sentences.count) == sentences
            }
            XCTAssertTrue(found, "\(type): a paragraph's sentences, tokenized, appear as one document")
            return sentences
        }
        let sentences = try preprocess("BertWordPieceLowerCase", "wiki")
        let r = try CLI.run(
            [
                "train", "--config", CLI.config("bert-tiny.json"), "--tokenizer-type", "BertWordPieceLowerCase",
                "--vocab-file", vocab, "--data-path", "wiki_text_sentence", "--seq-length", "128",
                "--max-position-embeddings", "128", "--train-iters", "20", "--eval-interval", "20", "--eval-iters", "2",
                "--metrics-file", "m.jsonl",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let losses = try CLI.losses(dir, "m")
        XCTAssertEqual(losses.count, 20)
        XCTAssertLessThan(losses.suffix(5).reduce(0, +), losses.prefix(5).reduce(0, +), "the loss falls")

        // BertWordPieceCase end to end: the same paragraph's sentences as the cased tokenizer gives them
        // (not the lower-cased ones), and a BERT trains on them.
        XCTAssertNotEqual(try preprocess("BertWordPieceCase", "cased"), sentences, "WikiText has capitals")
        let casedRun = try CLI.run(
            [
                "train", "--config", CLI.config("bert-tiny.json"), "--tokenizer-type", "BertWordPieceCase",
                "--vocab-file", vocab, "--data-path", "cased_text_sentence", "--seq-length", "128",
                "--max-position-embeddings", "128", "--train-iters", "4", "--eval-iters", "0",
            ], in: dir)
        XCTAssertEqual(casedRun.code, 0, casedRun.stderr)
        XCTAssertTrue(casedRun.stdout.contains("iteration        4/"), casedRun.stdout)
    }
}

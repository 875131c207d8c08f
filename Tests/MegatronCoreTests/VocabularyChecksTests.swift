// VocabularyChecksTests.swift — no silent nonsense about the vocabulary: a dataset holding an id ≥
// the run's vocabulary is refused naming the dataset, the document and the id (and the scan is
// cached); the cross entropy refuses a target outside the vocabulary instead of mapping it; and
// GPT-2's files without tokenizer_type select GPT2BPETokenizer (BERT's vocab alone: WordPiece).
import Foundation
import MegatronCore
import Tensor
import XCTest

final class VocabularyChecksTests: XCTestCase {
    func testDatasetWithAnIdBeyondTheVocabularyIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-check-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let prefix = dir.appendingPathComponent("data_text_document").path
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: .uint16)
        try writer.addDocument([[1, 2, 3]])
        try writer.addDocument([[4, 5], [256, 9]])
        try writer.addDocument([[7, 50256, 8]])
        try writer.finish()
        let dataset = try IndexedDataset(prefix: prefix)
        XCTAssertEqual(dataset.largestTokenId(), 50256)
        XCTAssertNoThrow(try dataset.checkTokens(vocabSize: 50257))
        XCTAssertThrowsError(try dataset.checkTokens(vocabSize: 257)) { error in
            let text = "\(error)"
            for part in ["data_text_document", "document 2", "token id 50256", "257 ids"] {
                XCTAssertTrue(text.contains(part), "\(text) lacks \(part)")
            }
        }
        // The scan is cached beside the data, keyed by the index file.
        let cache = dir.appendingPathComponent("cache/token_range")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.path).count, 1)
    }

    func testCrossEntropyRefusesATargetOutsideTheVocabulary() throws {
        let h = 4, v = 6, n = 2
        let x = [Float](repeating: 0.1, count: n * h), e = [Float](repeating: 0.2, count: v * h)
        var logits = [Float](repeating: 0, count: n * v), stats = [Float](repeating: 0, count: 3 * n)
        var rowLoss = [Double](repeating: 0, count: n)
        for (targets, fails) in [([Int32(1), 5], false), ([1, 6], true), ([-1, 2], true)] {
            let run = {
                _ = try VocabCrossEntropy.forward(
                    x: x, embedding: e, vocab: VocabShard(start: 0, rows: v, realRows: v), targets: targets, rows: n,
                    hidden: h, chunkRows: n, logits: &logits, rowStats: &stats, rowLoss: &rowLoss,
                    tensorParallel: .single)
            }
            if fails {
                XCTAssertThrowsError(try run()) { XCTAssertTrue("\($0)".contains("outside the vocabulary"), "\($0)") }
            } else {
                XCTAssertNoThrow(try run())
            }
        }
    }

    func testTokenizerFilesWithoutTokenizerTypeChooseTheirTokenizer() throws {
        let gpt = try ConfigLoader.parse(
            path: nil, flags: ["--vocab-file", "vocab.json", "--merge-file", "merges.txt"])
        XCTAssertEqual(gpt.tokenizerType, .gpt2BPE)
        XCTAssertTrue(gpt.startupNotes.joined().contains("GPT2BPETokenizer"), "\(gpt.startupNotes)")
        let bert = try ConfigLoader.parse(path: nil, flags: ["--model-type", "BERT", "--vocab-file", "vocab.txt"])
        XCTAssertEqual(bert.tokenizerType, .bertWordPieceLowerCase)
        let explicit = try ConfigLoader.parse(
            path: nil, flags: ["--tokenizer-type", "ByteLevelTokenizer", "--vocab-file", "vocab.json"])
        XCTAssertEqual(explicit.tokenizerType, .byteLevel, "an explicit choice stands")
        XCTAssertTrue(explicit.startupNotes.isEmpty)
        XCTAssertEqual(try ConfigLoader.parse(path: nil, flags: []).tokenizerType, .byteLevel, "no files: the default")
    }
}

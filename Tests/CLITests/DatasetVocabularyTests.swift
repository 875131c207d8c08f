// DatasetVocabularyTests.swift — through the binary: a dataset made with GPT-2's BPE (ids up to
// 50,256) given to a byte-level run is refused at start, naming the dataset, document and id.
import Foundation
import MegatronCore
import TestSupport
import XCTest

final class DatasetVocabularyTests: XCTestCase {
    func testAnotherTokenizersDatasetIsRefused() throws {
        let dir = CLI.scratch("dataset-vocabulary")
        let writer = try IndexedDatasetWriter(
            prefix: dir.appendingPathComponent("bpe_text_document").path, dtype: .uint16)
        for d in 0..<40 { try writer.addDocument([(0..<200).map { Int32(($0 * 97 + d * 13) % 256) }]) }
        try writer.addDocument([[464, 2068, 50256]])  // GPT-2 ids in document 40
        try writer.finish()
        let r = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--data-path", "bpe_text_document", "--train-iters",
                "2",
            ], in: dir)
        XCTAssertNotEqual(r.code, 0)
        for part in ["bpe_text_document", "document 40", "token id 50256", "257 ids"] {
            XCTAssertTrue(r.stderr.contains(part), "\(r.stderr) lacks \(part)")
        }
    }
}

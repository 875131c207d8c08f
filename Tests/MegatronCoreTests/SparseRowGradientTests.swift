// SparseRowGradientTests.swift — the data-parallel sparse ending's bookkeeping: tokens map to compact
// rows in order of first appearance (repeats share one, tokens outside the vocabulary shard none),
// new rows start at zero and each micro-batch starts afresh; the auto rule against hand-computed
// sizes; and the config refuses `on` with a pipeline, naming both keys. The exchange itself runs
// under mpirun (DataParallelTests, BertTrainingTests: every grid equals one rank).
import MegatronCore
import XCTest

final class SparseRowGradientTests: XCTestCase {
    func testTokensMapToCompactRowsOfTheirShard() {
        let g = SparseRowGradient(tableRows: 10, hidden: 3, tokensPerMicrobatch: 6)
        XCTAssertEqual(g.capacity, 6)
        // Shard of vocabulary rows 100 ..< 110: 99 and 110 are another rank's.
        let tokens: [Int32] = [105, 103, 105, 99, 110, 100]
        let rows = tokens.withUnsafeBufferPointer { g.collect(tokens: $0.baseAddress!, count: 6, vocabStart: 100) }
        XCTAssertEqual((0..<6).map { rows[$0] }, [0, 1, 0, -1, -1, 2])
        XCTAssertEqual(g.rows, [5, 3, 0])
        XCTAssertTrue(g.holdsRows)
        XCTAssertEqual((0..<9).map { g.values[$0] }, [Float](repeating: 0, count: 9), "new rows start at zero")
        g.values[0] = 7  // row 5's gradient from this micro-batch
        let next: [Int32] = [103, 101]
        let rows2 = next.withUnsafeBufferPointer { g.collect(tokens: $0.baseAddress!, count: 2, vocabStart: 100) }
        XCTAssertEqual((0..<2).map { rows2[$0] }, [0, 1], "a new micro-batch numbers its rows afresh")
        XCTAssertEqual(g.rows, [3, 1])
        XCTAssertEqual(g.values[0], 0, "and zeroes them")
    }

    func testAutoExchangesRowsOnlyWhenThatMovesFewerBytes() {
        // gpt2-124m, micro-batch 4 × 1024 tokens, 50,304 rows of 768: 2·4096·769 ≤ 50,304·768.
        XCTAssertTrue(
            SparseRowGradient.pays(tableRows: 50_304, hidden: 768, tokensPerMicrobatch: 4096, dataParallel: 2))
        // d = 16: 16·4096·769 = 50.4M > 38.6M.
        XCTAssertFalse(
            SparseRowGradient.pays(tableRows: 50_304, hidden: 768, tokensPerMicrobatch: 4096, dataParallel: 16))
        // gpt2-tiny (384 rows of 64, 128 tokens): d = 2 gives 16,640 ≤ 24,576; d = 3 gives 24,960.
        XCTAssertTrue(SparseRowGradient.pays(tableRows: 384, hidden: 64, tokensPerMicrobatch: 128, dataParallel: 2))
        XCTAssertFalse(SparseRowGradient.pays(tableRows: 384, hidden: 64, tokensPerMicrobatch: 128, dataParallel: 3))
    }

    func testConfigRefusesTheSparseEndingWithAPipeline() throws {
        func validate(_ flags: [String]) throws {
            _ = try ConfigLoader.load(
                path: nil,
                flags: [
                    "--num-layers", "2", "--hidden-size", "32", "--num-attention-heads", "2", "--seq-length", "16",
                    "--max-position-embeddings", "16", "--micro-batch-size", "2", "--lr", "1e-3", "--train-iters", "2",
                ] + flags, worldSize: 2)
        }
        XCTAssertNoThrow(try validate(["--pipeline-model-parallel-size", "2"]), "auto simply does not apply")
        XCTAssertNoThrow(try validate(["--ddp-sparse-embedding-ending", "on"]))
        XCTAssertThrowsError(
            try validate(["--pipeline-model-parallel-size", "2", "--ddp-sparse-embedding-ending", "on"])
        ) { error in
            let text = "\(error)"
            XCTAssertTrue(
                text.contains("ddp_sparse_embedding_ending") && text.contains("pipeline_model_parallel_size"), text)
        }
        XCTAssertThrowsError(try validate(["--ddp-sparse-embedding-ending", "sometimes"])) { error in
            XCTAssertTrue("\(error)".contains("ddp_sparse_embedding_ending"), "\(error)")
        }
    }
}

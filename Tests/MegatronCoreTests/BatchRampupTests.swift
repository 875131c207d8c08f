// BatchRampupTests.swift — Megatron's batch-size ramp-up arithmetic, against values worked by hand
// from its rules (RampupBatchsizeNumMicroBatches.update and update_train_iters), and the config
// rules that refuse a ramp Megatron would refuse.
import MegatronCore
import XCTest

final class BatchRampupTests: XCTestCase {
    func testBatchSizesFollowMegatronsFormula() throws {
        // 16 → 64 by 16 over 300 samples: three increments, one per 100 samples.
        let ramp = try BatchRampup(values: ["16", "16", "300"], globalBatchSize: 64)
        XCTAssertEqual(ramp.batchSizes, [16, 32, 48, 64])
        let expected = [
            (0, 16), (99, 16), (100, 32), (199, 32), (200, 48), (299, 48), (300, 64), (301, 64), (10_000, 64),
        ]
        for (consumed, batch) in expected {
            XCTAssertEqual(ramp.batchSize(consumed: consumed), batch, "after \(consumed) samples")
        }
        // Fractional samples per increment (Megatron divides as floats): 10 samples over 3 increments.
        let odd = try BatchRampup(values: ["2", "2", "10"], globalBatchSize: 8)
        XCTAssertEqual([0, 3, 4, 6, 7, 9, 10, 11].map { odd.batchSize(consumed: $0) }, [2, 2, 4, 4, 6, 6, 8, 8])
        // A ramp that starts at the final size is a constant batch.
        let flat = try BatchRampup(values: ["8", "4", "100"], globalBatchSize: 8)
        XCTAssertEqual(flat.batchSize(consumed: 0), 8)
    }

    func testTrainIterationsCountTheRampThenWholeBatches() throws {
        // Worked by hand: batch 16 while consumed < 100 (0, 16, …, 96: 7 iterations, to 112), 32 below
        // 200 (112, 144, 176: 3, to 208), 48 below 300 (208, 256: 2, to 304); 304 > 300 ends the ramp
        // after 12 iterations; then (1000 − 304) ÷ 64 = 10 whole batches (a partial last one dropped).
        let ramp = try BatchRampup(values: ["16", "16", "300"], globalBatchSize: 64)
        XCTAssertEqual(ramp.consumedSamples(afterIterations: 12), 304)
        XCTAssertEqual(ramp.trainIterations(trainSamples: 1000), 22)
        XCTAssertEqual(ramp.consumedSamples(afterIterations: 22), 304 + 640)
        // Training shorter than the ramp stops once train_samples is passed: 16, 32, 48 > 40.
        XCTAssertEqual(ramp.trainIterations(trainSamples: 40), 3)
    }

    func testConfigRulesRefuseWhatMegatronRefuses() throws {
        func config(_ flags: [String]) throws -> TrainingConfig {
            try ConfigLoader.load(
                path: nil,
                flags: [
                    "--num-layers", "2", "--hidden-size", "32", "--num-attention-heads", "2", "--seq-length", "16",
                    "--max-position-embeddings", "16", "--micro-batch-size", "2", "--global-batch-size", "16",
                    "--lr", "1e-3",
                ] + flags)
        }
        func message(_ flags: [String], worldSize: Int = 1) -> String {
            do {
                try ConfigValidation.validate(try config(flags), worldSize: worldSize)
                return "accepted"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(message(["--train-samples", "160", "--rampup-batch-size", "4", "4", "40"]), "accepted")
        let c = try config(["--train-samples", "160", "--rampup-batch-size", "4", "4", "40"])
        XCTAssertEqual(c.rampupBatchSize, ["4", "4", "40"], "a list flag takes every value up to the next flag")
        XCTAssertEqual(
            c.trainIters,
            try BatchRampup(values: ["4", "4", "40"], globalBatchSize: 16).trainIterations(trainSamples: 160))
        XCTAssertTrue(
            message(["--train-iters", "10", "--rampup-batch-size", "4", "4", "40"]).contains("sample-based training"))
        XCTAssertTrue(message(["--train-samples", "160", "--rampup-batch-size", "4", "5", "40"]).contains("multiple"))
        XCTAssertTrue(message(["--train-samples", "160", "--rampup-batch-size", "4", "4"]).contains("three integers"))
        // A ramp that starts at the final size has one batch size; its increment does not matter.
        XCTAssertEqual(message(["--train-samples", "160", "--rampup-batch-size", "16", "3", "40"]), "accepted")
        // d = 2 with micro-batch 2: every ramp batch must be a multiple of 4.
        XCTAssertTrue(
            message(["--train-samples", "160", "--rampup-batch-size", "2", "2", "40"], worldSize: 2).contains(
                "micro_batch_size × data-parallel size = 4"))
    }
}

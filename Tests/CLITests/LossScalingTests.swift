// LossScalingTests.swift — the loss-scaling hooks of the training step. A power-of-two scale is
// exact in fp32, so `loss_scale 1024` trains bitwise like no scaling. An overflow (injected through
// the MEGATRON_TEST_INJECT_OVERFLOW test hook on one rank of each replica) skips the step on every
// rank — no update, the LR schedule holds, the log counts it — and the run continues identically
// on one rank and on d = 2 with the distributed optimizer. Without a scaler it is a divergence error.
import Foundation
import TestSupport
import XCTest

final class LossScalingTests: XCTestCase {
    func testScaledTrainingAndSkippedSteps() throws {
        let dir = CLI.scratch("loss-scale")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "8", "--eval-iters", "0",
            "--num-threads", "1", "--micro-batch-size", "4", "--lr-warmup-iters", "0",
        ]
        XCTAssertEqual(try CLI.run(common + ["--metrics-file", "plain.jsonl"], in: dir).code, 0)
        XCTAssertEqual(
            try CLI.run(common + ["--loss-scale", "1024", "--metrics-file", "scaled.jsonl"], in: dir).code, 0)
        let plain = try CLI.jsonLines(dir.appendingPathComponent("plain.jsonl"))
        let scaled = try CLI.jsonLines(dir.appendingPathComponent("scaled.jsonl"))
        XCTAssertEqual(
            plain.map { $0["lm_loss"] as? Double }, scaled.map { $0["lm_loss"] as? Double },
            "a power-of-two scale is exact")
        XCTAssertEqual(scaled[0]["loss_scale"] as? Double, 1024)

        let inject = ["MEGATRON_TEST_INJECT_OVERFLOW": "3,4"]
        let one = try CLI.run(
            common + ["--loss-scale", "1024", "--metrics-file", "one.jsonl"], in: dir, environment: inject)
        XCTAssertEqual(one.code, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("number of skipped iterations:   2"), one.stdout)
        let two = try CLI.mpirun(
            ranks: 2, common + ["--loss-scale", "1024", "--use-distributed-optimizer", "--metrics-file", "two.jsonl"],
            in: dir, environment: inject)
        XCTAssertEqual(two.code, 0, two.stderr)
        for name in ["one", "two"] {
            let lines = try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
            XCTAssertEqual(lines.map { $0["skipped_iterations"] as? Int }, [0, 0, 1, 1, 0, 0, 0, 0], name)
            XCTAssertTrue(lines[2]["grad_norm"] is NSNull, "\(name): a skipped step has no grad norm")
            XCTAssertEqual(
                lines[2]["lr"] as? Double, lines[4]["lr"] as? Double,
                "\(name): the LR schedule holds over skipped steps")
            XCTAssertEqual(
                lines[2]["lm_loss"] as? Double ?? 0, plain[2]["lm_loss"] as? Double ?? 1, accuracy: 1e-6,
                "\(name): the skipped step's forward is unchanged")
            XCTAssertNotEqual(
                lines[3]["lm_loss"] as? Double, plain[3]["lm_loss"] as? Double, "\(name): no update happened at step 3")
        }
        assertLossesMatch(
            try CLI.losses(dir, "two"), try CLI.losses(dir, "one"), count: 8, relativeTolerance: 1e-5,
            "every rank skipped the same steps")

        let unscaled = try CLI.run(common, in: dir, environment: inject)
        XCTAssertEqual(unscaled.code, 1)
        XCTAssertTrue(unscaled.stderr.contains("gradient norm is not finite at iteration 3"), unscaled.stderr)
    }
}

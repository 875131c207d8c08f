// LayerWiseDecayCLITests.swift — layer-wise learning-rate decay through the real binary.
import Foundation
import TestSupport
import XCTest

/// Layer-wise learning-rate decay through the binary: γ = 1 is bitwise no decay; γ = 0.7 prints
/// its multipliers, trains differently, gives one rank's losses with the distributed optimizer at
/// d = 2 and under pipelining, and resumes bitwise.
final class LayerWiseDecayCLITests: XCTestCase {
    func testDecayOnGridsAndResume() throws {
        let dir = CLI.scratch("layer-wise-decay")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--lr-decay-iters", "20", "--eval-iters", "0",
            "--num-threads", "1",
        ]
        func train(_ name: String, _ extra: [String], ranks: Int = 1) throws -> [Double] {
            let args = common + ["--train-iters", "20"] + extra + ["--metrics-file", "\(name).jsonl"]
            let r = ranks == 1 ? try CLI.run(args, in: dir) : try CLI.mpirun(ranks: ranks, args, in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            if name == "decay" { XCTAssertTrue(r.stdout.contains("layer-wise learning-rate decay γ = 0.7"), r.stdout) }
            return try CLI.losses(dir, name)
        }
        let plain = try train("plain", [])
        XCTAssertEqual(try train("one", ["--layer-wise-lr-decay", "1"]), plain, "γ = 1 is no decay, bitwise")
        let decay = try train("decay", ["--layer-wise-lr-decay", "0.7"])
        XCTAssertNotEqual(decay, plain)
        let d2 = try train(
            "d2", ["--layer-wise-lr-decay", "0.7", "--use-distributed-optimizer", "--global-batch-size", "16"], ranks: 2
        )
        assertLossesMatch(d2, decay, count: 20, relativeTolerance: 1e-5, "γ 0.7, d = 2 distributed optimizer")
        let p2 = try train("p2", ["--layer-wise-lr-decay", "0.7", "--pipeline-model-parallel-size", "2"], ranks: 2)
        assertLossesMatch(p2, decay, count: 20, relativeTolerance: 1e-5, "γ 0.7, p = 2")
        // Resume: ten iterations saved, then ten more from the checkpoint.
        let half = common + ["--train-iters", "10", "--layer-wise-lr-decay", "0.7", "--save", "ckpt"]
        XCTAssertEqual(try CLI.run(half, in: dir).code, 0)
        let resumed =
            common + [
                "--train-iters", "20", "--layer-wise-lr-decay", "0.7", "--load", "ckpt", "--metrics-file",
                "resumed.jsonl",
            ]
        XCTAssertEqual(try CLI.run(resumed, in: dir).code, 0)
        XCTAssertEqual(try CLI.losses(dir, "resumed"), Array(decay.suffix(10)), "resumed bitwise")
    }
}

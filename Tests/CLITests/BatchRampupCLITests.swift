// BatchRampupCLITests.swift — `--rampup-batch-size START INCREMENT SAMPLES` through the binary: the
// global batch of each iteration, the consumed samples and the learning rate (which advances by the
// samples each iteration consumed) are Megatron's, worked by hand; and training with the ramp on
// other grids — t = 2 × p = 2, p = 2 × d = 2 (one micro-batch per replica at the start), the
// interleaved schedule, d = 2 with the distributed optimizer — gives one rank's losses.
import Foundation
import TestSupport
import XCTest

final class BatchRampupCLITests: XCTestCase {
    func testRampFollowsMegatronAndEveryGridEqualsOneRank() throws {
        let dir = CLI.scratch("rampup")
        var json =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: CLI.config("gpt2-tiny.json")))) as? [String: Any] ?? [:]
        json["train_iters"] = nil
        json["lr_warmup_iters"] = nil
        let config = dir.appendingPathComponent("ramp.json")
        try JSONSerialization.data(withJSONObject: json).write(to: config)
        // 4 → 12 by 4 over 24 samples (one increment per 12 samples), then batches of 12 up to 96 samples.
        let common = [
            "train", "--config", config.path, "--eval-iters", "0", "--num-threads", "1", "--micro-batch-size", "2",
            "--global-batch-size", "12", "--train-samples", "96", "--rampup-batch-size", "4", "4", "24",
        ]
        let ref = try CLI.run(common + ["--metrics-file", "ref.jsonl"], in: dir)
        XCTAssertEqual(ref.code, 0, ref.stderr)
        let lines = try CLI.jsonLines(dir.appendingPathComponent("ref.jsonl"))
        // Consumed 0, 4, 8 (< 12): batch 4; 12, 20 (< 24): 8; 28 > 24 ends the ramp after 5 iterations;
        // then (96 − 28) ÷ 12 = 5 batches of 12.
        let batches = [4, 4, 4, 8, 8, 12, 12, 12, 12, 12]
        XCTAssertEqual(lines.map { $0["global_batch_size"] as? Int }, batches)
        var consumed = 0, before: [Int] = []
        for b in batches { before.append(consumed); consumed += b }
        XCTAssertEqual(lines.map { $0["consumed_samples"] as? Int }, before.indices.map { before[$0] + batches[$0] })
        // Cosine decay over train_samples, no warm-up: iteration k runs at the LR of the samples before it.
        let (lr, minLR) = (json["lr"] as? Double ?? 0, json["min_lr"] as? Double ?? 0)
        for (k, line) in lines.enumerated() {
            let expected = minLR + (lr - minLR) * 0.5 * (1 + cos(Double.pi * Double(before[k]) / 96))
            XCTAssertEqual(line["lr"] as? Double ?? 0, expected, accuracy: 1e-12, "iteration \(k + 1)")
        }
        XCTAssertTrue(ref.stdout.contains("batch-size ramp-up: global batch 4 growing by 4 up to 12"), ref.stdout)
        let reference = try CLI.losses(dir, "ref")
        let grids: [(String, Int, [String])] = [
            ("t2p2", 4, ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"]),
            ("p2d2", 4, ["--pipeline-model-parallel-size", "2"]),
            ("p2v2", 2, ["--pipeline-model-parallel-size", "2", "--num-layers-per-virtual-pipeline-stage", "1"]),
            ("d2-distopt", 2, ["--use-distributed-optimizer"]),
        ]
        for (name, ranks, args) in grids {
            let r = try CLI.mpirun(ranks: ranks, common + args + ["--metrics-file", "\(name).jsonl"], in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            assertLossesMatch(try CLI.losses(dir, name), reference, count: 10, relativeTolerance: 1e-5, name)
            let got = try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
            XCTAssertEqual(got.map { $0["global_batch_size"] as? Int }, batches, name)
        }
        // Iteration-based training with a ramp is refused, as in Megatron.
        let iters = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--rampup-batch-size", "4", "4", "24"], in: dir)
        XCTAssertEqual(iters.code, 2)
        XCTAssertTrue(iters.stderr.contains("give train_samples instead of train_iters"), iters.stderr)
    }
}

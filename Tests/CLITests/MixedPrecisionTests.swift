// MixedPrecisionTests.swift — bf16 and fp16 training through the real binary.
// - bf16 tracks fp32 over 200 iterations of the tiny model (8 layers), on one rank and on the
//   (t, p, d) = (2, 2, 2) grid with v = 2: every iteration's loss within 2% of fp32's, the mean of the
//   last 20 within 0.5%, and the grid within 1% of one rank in bf16.
// - fp16's dynamic loss scaler: from 2^32 the first steps overflow and are skipped, and the scale
//   follows Megatron's rule (hysteresis 2, then halving on every overflow) step by step, identically
//   on one rank and on the (2, 2, 2) grid with the distributed optimizer; an injected
//   overflow is skipped and halves the scale, and the scale doubles after loss_scale_window clean steps.
// - Checkpoints: 16-bit weights that h5py reads as floats, each the rounding of its stored fp32 main
//   parameter (Tests/Scripts/half_checkpoint_check.py); bf16 resumes bit for bit; bf16 → fp32,
//   fp32 → bf16 and bf16 → a resharded t = 2 run all continue from the same main parameters.
import Foundation
import TestSupport
import XCTest

final class MixedPrecisionTests: XCTestCase {
    static func losses(_ dir: URL, _ name: String) throws -> [Double] { try CLI.losses(dir, name) }

    func testBF16TracksFP32OnOneRankAndTheGrid() throws {
        let dir = CLI.scratch("bf16-track")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "200", "--eval-iters", "0",
            "--num-layers", "8", "--micro-batch-size", "2", "--global-batch-size", "16", "--num-threads", "1",
        ]
        XCTAssertEqual(try CLI.run(common + ["--metrics-file", "fp32.jsonl"], in: dir).code, 0)
        let one = try CLI.run(common + ["--bf16", "--metrics-file", "bf16.jsonl"], in: dir)
        XCTAssertEqual(one.code, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("mixed precision: bf16"), one.stdout)
        let grid = try CLI.mpirun(
            ranks: 8,
            common + [
                "--bf16", "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2",
                "--num-layers-per-virtual-pipeline-stage", "2", "--metrics-file", "grid.jsonl",
            ], in: dir)
        XCTAssertEqual(grid.code, 0, grid.stderr)
        let fp32 = try Self.losses(dir, "fp32"), bf16 = try Self.losses(dir, "bf16"),
            onGrid = try Self.losses(dir, "grid")
        XCTAssertEqual(fp32.count, 200)
        XCTAssertLessThan(fp32.suffix(20).reduce(0, +) / 20, fp32[0] - 2, "the model learns")
        for (name, run) in [("bf16 on one rank", bf16), ("bf16 at (2,2,2)", onGrid)] {
            assertLossesMatch(run, fp32, count: 200, relativeTolerance: 0.02, name)
            let meanA = fp32.suffix(20).reduce(0, +) / 20, meanB = run.suffix(20).reduce(0, +) / 20
            XCTAssertEqual(meanB, meanA, accuracy: 0.005 * meanA, "\(name): mean of the last 20 iterations")
            XCTAssertTrue(
                run.count == fp32.count && !run.isEmpty && zip(fp32, run).contains { abs($0 - $1) > 1e-5 * $0 },
                "\(name) computes in fp32: the bf16 path is not active")
        }
        assertLossesMatch(onGrid, bf16, count: 200, relativeTolerance: 0.01, "grid vs one rank in bf16")
    }

    /// Megatron's dynamic scaler replayed from the observed overflow pattern: the scale each step used.
    static func expectedScales(skipped: [Bool], initial: Double, window: Int, hysteresis: Int, minimum: Double = 1)
        -> [Double]
    {
        var scale = initial, growth = 0, left = hysteresis
        var used: [Double] = []
        for overflow in skipped {
            used.append(scale)
            if overflow {
                growth = 0; left -= 1
                if left <= 0 { scale = max(scale / 2, minimum) }
            } else {
                growth += 1
                if growth == window { growth = 0; left = hysteresis; scale *= 2 }
            }
        }
        return used
    }

    func testFP16DynamicLossScaling() throws {
        let dir = CLI.scratch("fp16-scaler")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--eval-iters", "0", "--num-threads", "1", "--fp16",
            "--num-layers", "8", "--micro-batch-size", "2", "--global-batch-size", "16",
        ]
        // Megatron's defaults: 2^32, hysteresis 2, window 1000.
        let natural = try CLI.run(
            common + ["--train-iters", "30", "--log-interval", "30", "--metrics-file", "natural.jsonl"], in: dir)
        XCTAssertEqual(natural.code, 0, natural.stderr)
        let lines = try CLI.jsonLines(dir.appendingPathComponent("natural.jsonl"))
        let skipped = lines.map { ($0["skipped_iterations"] as? Int ?? 0) == 1 },
            scales = lines.map { $0["loss_scale"] as? Double ?? 0 }
        XCTAssertEqual(Array(skipped.prefix(2)), [true, true], "2^32 overflows fp16 gradients")
        XCTAssertEqual(
            Array(scales.prefix(3)), [0x1p32, 0x1p32, 0x1p31],
            "hysteresis 2: the first overflow keeps the scale, the second halves it")
        XCTAssertEqual(scales, Self.expectedScales(skipped: skipped, initial: 0x1p32, window: 1000, hysteresis: 2))
        let firstClean = try XCTUnwrap(skipped.firstIndex(of: false), "no step ever fit fp16")
        XCTAssertLessThan(
            lines.last!["lm_loss"] as? Double ?? 9, lines[firstClean]["lm_loss"] as? Double ?? 0, "training proceeds")
        let total = skipped.filter { $0 }.count
        XCTAssertTrue(
            natural.stdout.contains(String(format: "number of skipped iterations: %3d", total)), natural.stdout)
        // The same run on the (2,2,2) grid with the distributed optimizer: every rank finds the
        // same overflows (found-inf is reduced over the world), so skips and losses match.
        let grid = try CLI.mpirun(
            ranks: 8,
            common + [
                "--train-iters", "30", "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2",
                "--use-distributed-optimizer", "--metrics-file", "grid.jsonl",
            ], in: dir)
        XCTAssertEqual(grid.code, 0, grid.stderr)
        let onGrid = try CLI.jsonLines(dir.appendingPathComponent("grid.jsonl"))
        XCTAssertEqual(
            onGrid.map { $0["skipped_iterations"] as? Int }, lines.map { $0["skipped_iterations"] as? Int },
            "the grid skips the same steps")
        XCTAssertEqual(onGrid.map { $0["loss_scale"] as? Double }, scales)
        assertLossesMatch(
            try CLI.losses(dir, "grid"), try CLI.losses(dir, "natural"), count: 30, relativeTolerance: 1e-5,
            "fp16 at (2,2,2) vs one rank")

        // An injected overflow at step 6, with growth after 4 clean steps.
        let injected = try CLI.run(
            common + [
                "--train-iters", "12", "--initial-loss-scale", "1024", "--loss-scale-window", "4",
                "--hysteresis", "1", "--metrics-file", "injected.jsonl",
            ],
            in: dir, environment: ["MEGATRON_TEST_INJECT_OVERFLOW": "6"])
        XCTAssertEqual(injected.code, 0, injected.stderr)
        let l2 = try CLI.jsonLines(dir.appendingPathComponent("injected.jsonl"))
        XCTAssertEqual(l2.map { $0["skipped_iterations"] as? Int }, [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(
            l2.map { $0["loss_scale"] as? Double },
            [1024, 1024, 1024, 1024, 2048, 2048, 1024, 1024, 1024, 1024, 2048, 2048],
            "doubles after 4 clean steps, halves on the overflow, doubles again 4 clean steps later")
    }

    func testCheckpointsAcrossPrecisions() throws {
        let dir = CLI.scratch("precision-ckpt")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--eval-iters", "0", "--num-threads", "1",
            "--train-iters", "6",
        ]
        for (name, flags) in [
            ("bf16", ["--bf16"]), ("fp32", []), ("fp16", ["--fp16", "--initial-loss-scale", "1024"]),
        ] {
            let r = try CLI.run(
                common + flags + ["--save", "ck-\(name)", "--save-interval", "3", "--metrics-file", "\(name).jsonl"],
                in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
        }
        // An independent reader: h5py sees 16-bit floats equal to the rounded fp32 main parameters.
        let python = "/usr/bin/python3"
        let hasH5py = (try? CLI.run(["-c", "import h5py"], in: dir, program: python))?.code == 0
        if hasH5py {
            for name in ["bf16", "fp16"] {
                let check = try CLI.run(
                    [
                        CLI.repoRoot.appendingPathComponent("Tests/Scripts/half_checkpoint_check.py").path,
                        dir.appendingPathComponent("ck-\(name)/iter_0000003/mp_rank_00_000.h5").path, name,
                    ],
                    in: dir, program: python)
                XCTAssertEqual(check.code, 0, "\(name): \(check.stdout)\(check.stderr)")
            }
        } else {
            print("skipping the h5py check: python3-h5py is not installed (scripts/test.sh installs it)")
        }
        // Resumes from iteration 3 (the pointer moved back; the resumed runs save nothing).
        func resume(_ from: String, _ flags: [String], _ name: String) throws -> [Double] {
            try "3\n".write(
                to: dir.appendingPathComponent("ck-\(from)/latest_checkpointed_iteration.txt"), atomically: true,
                encoding: .utf8)
            let r = try CLI.run(common + flags + ["--load", "ck-\(from)", "--metrics-file", "\(name).jsonl"], in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            return try Self.losses(dir, name)
        }
        let bf16 = try Self.losses(dir, "bf16"), fp32 = try Self.losses(dir, "fp32")
        XCTAssertEqual(try resume("bf16", ["--bf16"], "bf16-again"), Array(bf16[3...]), "bf16 resumes bit for bit")
        let rest = 3  // iterations 4...6
        guard bf16.count == 6, fp32.count == 6 else {
            return XCTFail("the 6-iteration runs wrote \(bf16.count) and \(fp32.count) lines")
        }
        assertLossesMatch(
            try resume("bf16", [], "bf16-to-fp32"), Array(bf16[3...]), count: rest, relativeTolerance: 0.01,
            "bf16 → fp32")
        assertLossesMatch(
            try resume("fp32", ["--bf16"], "fp32-to-bf16"), Array(fp32[3...]), count: rest, relativeTolerance: 0.01,
            "fp32 → bf16")
        // Resharded to t = 2 by convert-checkpoint (which keeps the main parameters), then bf16 on two ranks.
        let convert = try CLI.run(
            ["convert-checkpoint", "--load", "ck-bf16", "--save", "ck-bf16-t2", "--target-tensor-parallel-size", "2"],
            in: dir)
        XCTAssertEqual(convert.code, 0, convert.stderr)
        let t2 = try CLI.mpirun(
            ranks: 2,
            common + [
                "--bf16", "--tensor-model-parallel-size", "2", "--load", "ck-bf16-t2",
                "--metrics-file", "t2.jsonl",
            ], in: dir)
        XCTAssertEqual(t2.code, 0, t2.stderr)
        assertLossesMatch(
            try Self.losses(dir, "t2"), Array(bf16[3...]), count: 3, relativeTolerance: 0.01,
            "bf16 resharded to t = 2, from iteration 3")
    }
}

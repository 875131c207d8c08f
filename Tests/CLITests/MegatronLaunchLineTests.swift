// MegatronLaunchLineTests.swift — Megatron-LM launch lines: the ignored arguments are accepted and
// named once at start-up with their reasons; `--checkpoint-activations` equals the explicit full
// uniform recomputation (bitwise losses, the same activation plan); refused arguments and unknown
// flags are all reported in one error, suggestions only for near misses; `exit_interval` saves and
// stops, and the resumed run continues bitwise; `exit_duration_in_mins` stops and saves; on resume a
// changed schedule is refused naming both values unless overridden, and the checkpoint's schedule
// kept on request continues bitwise like a run that had it all along; `finetune` loads only the
// weights (iterations, schedule and optimizer from zero), `no_load_optim` resumes the iteration with a
// fresh optimizer and a restarted schedule (Megatron's behaviour), `no_save_optim` writes no moments;
// sample-based training equals the iteration-based run it corresponds to, bitwise; log_params_norm
// and log_num_zeros_in_grad give the same values on one rank, at t = 2 × p = 2, and (zeros) at d = 2
// with the distributed optimizer (every parameter
// counted once, the tied LM head copy not at all) when both pad the vocabulary alike.
import Foundation
import TestSupport
import XCTest

final class MegatronLaunchLineTests: XCTestCase {
    let tiny = ["train", "--config", CLI.config("gpt2-tiny.json"), "--eval-iters", "0", "--num-threads", "1"]

    func testIgnoredArgumentsAreNamedOnceAndTrainingRuns() throws {
        let dir = CLI.scratch("launch-ignored")
        let megatronFlags = [
            "--use-flash-attn", "--no-masked-softmax-fusion", "--no-bias-gelu-fusion", "--transformer-impl", "local",
            "--distributed-backend", "nccl", "--DDP-impl", "local", "--num-workers", "2", "--data-impl", "mmap",
            "--overlap-grad-reduce", "--accumulate-allreduce-grads-in-fp32", "--attention-softmax-in-fp32",
            "--fp32-residual-connection", "--tensorboard-queue-size", "1000", "--optimizer", "adam",
            "--position-embedding-type", "learned_absolute", "--normalization", "LayerNorm",
            "--apply-query-key-layer-scaling",
        ]
        let r = try CLI.run(tiny + ["--train-iters", "2"] + megatronFlags, in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let notes = r.stdout.split(separator: "\n").filter { $0.contains("ignored Megatron-LM arguments") }
        XCTAssertEqual(notes.count, 1, "one start-up line: \(r.stdout)")
        let fixed = ["--optimizer", "--position-embedding-type", "--normalization"]  // keys or fixed choices
        for flag in megatronFlags where flag.hasPrefix("--") && !fixed.contains(flag) {
            XCTAssertTrue(notes.first?.contains(flag) ?? false, "\(flag) missing from \(notes)")
        }
        XCTAssertTrue(notes.first?.contains("MPI is the only backend") ?? false, "reasons are given")
        XCTAssertTrue(r.stdout.contains("iteration        2/"), "training ran")
    }

    func testCheckpointActivationsEqualsFullUniformRecomputation() throws {
        let dir = CLI.scratch("launch-alias")
        let common = tiny + ["--train-iters", "4", "--num-layers", "4", "--hidden-dropout", "0.1"]
        for (name, flags) in [
            ("alias", ["--checkpoint-activations"]),
            (
                "explicit",
                ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
            ),
            ("none", []),
        ] {
            let r = try CLI.run(common + flags + ["--metrics-file", "\(name).jsonl"], in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
        }
        let alias = try CLI.jsonLines(dir.appendingPathComponent("alias.jsonl"))
        let explicit = try CLI.jsonLines(dir.appendingPathComponent("explicit.jsonl"))
        let none = try CLI.jsonLines(dir.appendingPathComponent("none.jsonl"))
        XCTAssertEqual(alias.count, 4)
        XCTAssertEqual(alias.map { $0["lm_loss"] as? Double }, explicit.map { $0["lm_loss"] as? Double })
        XCTAssertEqual(alias.first?["activation_bytes"] as? Int, explicit.first?["activation_bytes"] as? Int)
        XCTAssertNotEqual(
            alias.first?["activation_bytes"] as? Int, none.first?["activation_bytes"] as? Int,
            "the alias must change the activation plan, as the explicit keys do")
    }

    func testEveryProblemOfALineIsReportedTogether() throws {
        let dir = CLI.scratch("launch-problems")
        let r = try CLI.run(
            tiny + [
                "--apply-layernorm-1p", "--num-experts", "8", "--frobnicate-widgets", "3", "--train-iter", "5",
                "--context-parallel-size", "2", "--ckpt-format", "zarr",
            ], in: dir)
        XCTAssertEqual(r.code, 2, r.stderr)
        for m in [
            "6 problems", "--ckpt-format zarr is not available here", "checkpoints are always HDF5 here",
            "--apply-layernorm-1p is not available here", "a transformer option this trainer does not build",
            "--num-experts",
            "unknown config key '--frobnicate-widgets'", "did you mean '--train-iters'", "--context-parallel-size",
        ] {
            XCTAssertTrue(r.stderr.contains(m), "stderr lacks '\(m)': \(r.stderr)")
        }
        let widgetLine = r.stderr.split(separator: "\n").first { $0.contains("frobnicate") } ?? ""
        XCTAssertFalse(widgetLine.contains("did you mean"), "no suggestion for a far-off name: \(widgetLine)")
        XCTAssertFalse(r.stdout.contains("iteration"), "no work may start")
    }

    func testExitIntervalSavesStopsAndResumesBitwise() throws {
        let dir = CLI.scratch("launch-exit")
        let common = tiny + ["--train-iters", "8", "--log-interval", "1"]
        let full = try CLI.run(common + ["--metrics-file", "full.jsonl"], in: dir)
        XCTAssertEqual(full.code, 0, full.stderr)
        let first = try CLI.run(
            common + ["--exit-interval", "3", "--save", "ck", "--load", "ck", "--metrics-file", "part.jsonl"], in: dir)
        XCTAssertEqual(first.code, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("exiting at iteration 3: exit_interval 3"), first.stdout)
        XCTAssertEqual(
            try String(contentsOf: dir.appendingPathComponent("ck/latest_checkpointed_iteration.txt"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines), "3")
        let second = try CLI.run(common + ["--save", "ck", "--load", "ck", "--metrics-file", "part.jsonl"], in: dir)
        XCTAssertEqual(second.code, 0, second.stderr)
        XCTAssertEqual(try CLI.losses(dir, "part"), try CLI.losses(dir, "full"), "3 + 5 iterations equal 8, bitwise")
    }

    func testExitDurationStopsAndSaves() throws {
        let dir = CLI.scratch("launch-duration")
        let r = try CLI.run(tiny + ["--train-iters", "50", "--exit-duration-in-mins", "0", "--save", "ck"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("exiting at iteration 1: exit_duration_in_mins 0 reached"), r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("ck/iter_0000001").path))
    }

    func testResumeRefusesAChangedScheduleUnlessTold() throws {
        let dir = CLI.scratch("launch-schedule")
        let short = tiny + ["--train-iters", "4", "--save", "ck"]
        XCTAssertEqual(try CLI.run(short, in: dir).code, 0)
        let longer = tiny + ["--train-iters", "8", "--load", "ck", "--log-interval", "1"]
        let refused = try CLI.run(longer, in: dir)
        XCTAssertNotEqual(refused.code, 0)
        for m in [
            "would change the learning-rate schedule", "decay length", "checkpoint 64, this run 128",
            "--override-opt-param-scheduler",
        ] {
            XCTAssertTrue(refused.stderr.contains(m), "stderr lacks '\(m)': \(refused.stderr)")
        }
        XCTAssertFalse(refused.stdout.contains("iteration        5/"), "no iteration may run")
        let overridden = try CLI.run(longer + ["--override-opt-param-scheduler"], in: dir)
        XCTAssertEqual(overridden.code, 0, overridden.stderr)
        XCTAssertTrue(overridden.stdout.contains("iteration        8/"))
        // Keeping the checkpoint's schedule (decay over 4 iterations) equals a run that had it all along.
        let kept = try CLI.run(
            longer + ["--use-checkpoint-opt-param-scheduler", "--metrics-file", "kept.jsonl"], in: dir)
        XCTAssertEqual(kept.code, 0, kept.stderr)
        let straight = try CLI.run(
            tiny + ["--train-iters", "8", "--lr-decay-iters", "4", "--metrics-file", "straight.jsonl"], in: dir)
        XCTAssertEqual(straight.code, 0, straight.stderr)
        XCTAssertEqual(try CLI.losses(dir, "kept"), Array(try CLI.losses(dir, "straight").suffix(4)))
        XCTAssertEqual(try CLI.losses(dir, "kept").count, 4)
    }

    func testFinetuneNoLoadOptimAndNoSaveOptim() throws {
        let dir = CLI.scratch("launch-optim")
        func lines(_ name: String) throws -> [[String: Any]] {
            try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
        }
        XCTAssertEqual(try CLI.run(tiny + ["--train-iters", "6", "--save", "ck"], in: dir).code, 0)
        let fresh = try CLI.run(tiny + ["--train-iters", "10", "--metrics-file", "fresh.jsonl"], in: dir)
        XCTAssertEqual(fresh.code, 0, fresh.stderr)

        let ft = try CLI.run(
            tiny + ["--train-iters", "10", "--load", "ck", "--finetune", "--save", "ft", "--metrics-file", "ft.jsonl"],
            in: dir)
        XCTAssertEqual(ft.code, 0, ft.stderr)
        XCTAssertTrue(ft.stdout.contains("finetune: loaded the weights"), ft.stdout)
        XCTAssertEqual(try lines("ft").map { $0["iteration"] as? Int }, Array(1...10), "iterations restart at 1")
        XCTAssertEqual(try lines("ft").map { $0["lr"] as? Double }, try lines("fresh").map { $0["lr"] as? Double })
        let ftLoss = try XCTUnwrap(try lines("ft").first?["lm_loss"] as? Double)
        let freshLoss = try XCTUnwrap(try lines("fresh").first?["lm_loss"] as? Double)
        XCTAssertLessThan(ftLoss, freshLoss - 0.1, "the trained weights were loaded")

        let nlo = try CLI.run(
            tiny + ["--train-iters", "10", "--load", "ck", "--no-load-optim", "--metrics-file", "nlo.jsonl"], in: dir)
        XCTAssertEqual(nlo.code, 0, nlo.stderr)
        XCTAssertEqual(try lines("nlo").map { $0["iteration"] as? Int }, Array(7...10), "the iteration is resumed")
        XCTAssertEqual(
            try lines("nlo").map { $0["lr"] as? Double }, try lines("fresh").prefix(4).map { $0["lr"] as? Double },
            "the schedule restarts, as in Megatron")

        let nso = try CLI.run(tiny + ["--train-iters", "2", "--save", "nso", "--no-save-optim"], in: dir)
        XCTAssertEqual(nso.code, 0, nso.stderr)
        let listing = try CLI.run(
            ["-r", "nso/iter_0000002/mp_rank_00_000.h5"], in: dir, program: "/usr/bin/h5ls")
        XCTAssertEqual(listing.code, 0, listing.stderr)
        XCTAssertTrue(listing.stdout.contains("/model"), listing.stdout)
        XCTAssertFalse(listing.stdout.contains("exp_avg"), "no Adam moments: \(listing.stdout)")
        let resumed = try CLI.run(tiny + ["--train-iters", "4", "--load", "nso"], in: dir)
        XCTAssertEqual(resumed.code, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("iteration        4/"), resumed.stdout)
    }

    func testSampleBasedScheduleEqualsIterationBased() throws {
        let dir = CLI.scratch("launch-samples")
        var tinyJSON =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: CLI.config("gpt2-tiny.json")))) as? [String: Any] ?? [:]
        tinyJSON["train_iters"] = nil
        tinyJSON["lr_warmup_iters"] = nil
        let config = dir.appendingPathComponent("no-iters.json")
        try JSONSerialization.data(withJSONObject: tinyJSON).write(to: config)
        let base = [
            "train", "--config", config.path, "--eval-iters", "0", "--num-threads", "1", "--global-batch-size", "16",
        ]
        let bySamples = try CLI.run(
            base + [
                "--train-samples", "175", "--lr-decay-samples", "192", "--lr-warmup-samples", "48", "--metrics-file",
                "samples.jsonl",
            ], in: dir)
        XCTAssertEqual(bySamples.code, 0, bySamples.stderr)
        let byIters = try CLI.run(
            base + [
                "--train-iters", "10", "--lr-decay-iters", "12", "--lr-warmup-iters", "3", "--metrics-file",
                "iters.jsonl",
            ], in: dir)
        XCTAssertEqual(byIters.code, 0, byIters.stderr)
        let samples = try CLI.jsonLines(dir.appendingPathComponent("samples.jsonl"))
        let iters = try CLI.jsonLines(dir.appendingPathComponent("iters.jsonl"))
        XCTAssertEqual(samples.count, 10, "175 samples ÷ 16 = 10 iterations (floor, as Megatron)")
        XCTAssertEqual(samples.map { $0["lr"] as? Double }, iters.map { $0["lr"] as? Double })
        XCTAssertEqual(samples.map { $0["lm_loss"] as? Double }, iters.map { $0["lm_loss"] as? Double })
        let wsd = try CLI.run(base + ["--train-iters", "4", "--lr-decay-style", "WSD"], in: dir)
        XCTAssertEqual(wsd.code, 2)
        XCTAssertTrue(wsd.stderr.contains("WSD needs lr_wsd_decay_iters"), wsd.stderr)
        let wsdRun = try CLI.run(
            base + [
                "--train-iters", "4", "--lr-decay-style", "WSD", "--lr-wsd-decay-iters", "2", "--lr-wsd-decay-style",
                "linear", "--metrics-file", "wsd.jsonl",
            ], in: dir)
        XCTAssertEqual(wsdRun.code, 0, wsdRun.stderr)
        let lrs = try CLI.jsonLines(dir.appendingPathComponent("wsd.jsonl")).compactMap { $0["lr"] as? Double }
        // No warm-up: LR at iteration k is the schedule at (k−1)·16 samples; the decay covers samples 32…64.
        let (lr, minLR) = (tinyJSON["lr"] as? Double ?? 0, tinyJSON["min_lr"] as? Double ?? 0)
        XCTAssertEqual(lrs.count, 4)
        for (k, coeff) in [1.0, 1.0, 1.0, 0.5].enumerated() {
            XCTAssertEqual(lrs[k], minLR + coeff * (lr - minLR), accuracy: 1e-12, "iteration \(k + 1)")
        }
        let mixed = try CLI.run(base + ["--train-samples", "160", "--train-iters", "10"], in: dir)
        XCTAssertEqual(mixed.code, 2)
        XCTAssertTrue(mixed.stderr.contains("'train_samples' and 'train_iters'"), mixed.stderr)
    }

    func testParamsNormCountsEveryParameterOnceOnAnyGrid() throws {
        let dir = CLI.scratch("launch-params-norm")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--eval-iters", "0", "--num-threads", "1",
            "--train-iters", "3", "--log-interval", "1", "--hidden-dropout", "0", "--attention-dropout", "0",
            // The padded vocabulary is the same 512 rows at t = 1 and t = 2 (257 → 256·t multiples);
            // the norm includes the padding rows, as Megatron's does, so it depends on t otherwise.
            "--log-params-norm", "--log-num-zeros-in-grad", "--make-vocab-size-divisible-by", "256",
        ]
        let one = try CLI.run(common + ["--metrics-file", "one.jsonl"], in: dir)
        XCTAssertEqual(one.code, 0, one.stderr)
        XCTAssertNotNil(
            one.stdout.range(
                of: #"grad norm: [0-9.]+ \| num zeros: [0-9.]+ \| params norm: [0-9.]+ \| number of skipped"#,
                options: .regularExpression),
            "Megatron's place for it, after the grad norm: \(one.stdout)")
        let grid = try CLI.mpirun(
            ranks: 4,
            common + [
                "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2", "--metrics-file",
                "grid.jsonl",
            ], in: dir)
        XCTAssertEqual(grid.code, 0, grid.stderr)
        let a = try CLI.losses(dir, "one", key: "params_norm"), b = try CLI.losses(dir, "grid", key: "params_norm")
        assertLossesMatch(b, a, count: 3, relativeTolerance: 1e-6, "params norm, t = 2 × p = 2 against one rank")
        XCTAssertGreaterThan(a.first ?? 0, 1, "a norm over every parameter")
        // Zero gradients: the padding rows and the rows of bytes absent from a batch, the same count on both grids.
        let zerosOne = try CLI.losses(dir, "one", key: "num_zeros")
        XCTAssertEqual(zerosOne, try CLI.losses(dir, "grid", key: "num_zeros"))
        XCTAssertGreaterThanOrEqual(zerosOne.first ?? 0, Double((512 - 257) * 64), "at least the padding rows")
        // The distributed optimizer counts over its gradient shards (d = 2): the same count.
        let sharded = try CLI.mpirun(
            ranks: 2, common + ["--use-distributed-optimizer", "--metrics-file", "sharded.jsonl"], in: dir)
        XCTAssertEqual(sharded.code, 0, sharded.stderr)
        XCTAssertEqual(try CLI.losses(dir, "sharded", key: "num_zeros"), zerosOne)
    }
}

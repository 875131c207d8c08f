// PipelineBalanceTests.swift — uneven stages and the zero-bubble schedule equal one rank: under
// `mpirun`, 40 iterations of an 8-layer tiny GPT (dropout 0) give one rank's lm_loss at every
// iteration within 1e-5 relative with the first stage one layer short, the last stage two short,
// the automatic balance (with and without virtual stages), and ZB-H1 at p = 2 and 4 with m = 4
// and 8, with t = 2, and with d = 2 plus the distributed optimizer; ZB-H1 equals 1F1B bit for
// bit, for GPT and for BERT in both LayerNorm arrangements (BERT also in bf16). Stage boundaries
// inside a layer (pipeline_balance_unit "sublayer") equal one rank the same ways, for GPT and for
// BERT in both arrangements. A checkpoint saved under one split resumes bitwise under it and within
// 1e-5 under another, one that cuts a layer included. The start-up log names the schedule and
// the layers per stage (and the automatic balance's measured costs); the log line and metrics give ZB-H1's measured bubble beside its
// simulated theory, and its traces show B and W apart.
import Foundation
import TestSupport
import XCTest

final class PipelineBalanceTests: XCTestCase {
    static let iterations = 40

    func train(ranks: Int, _ args: [String], in dir: URL, name: String) throws -> (lines: [[String: Any]], log: String)
    {
        let full =
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "\(Self.iterations)",
                "--eval-iters", "0", "--num-layers", "8", "--num-threads", "1", "--metrics-file", "\(name).jsonl",
            ] + args
        let r = ranks == 1 ? try CLI.run(full, in: dir) : try CLI.mpirun(ranks: ranks, full, in: dir)
        XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
        return (try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl")), r.stdout)
    }

    func losses(_ lines: [[String: Any]]) throws -> [Double] {
        try lines.map { try XCTUnwrap($0["lm_loss"] as? Double) }
    }

    func testUnevenStagesAndZeroBubbleEqualOneRank() throws {
        let dir = CLI.scratch("ppbalance")
        let p2 = ["--pipeline-model-parallel-size", "2"], p4 = ["--pipeline-model-parallel-size", "4"]
        let zb = ["--pipeline-schedule", "zb-h1"]
        // Balanced by modelled costs in sub-layers: every one of these cuts a layer (checked below).
        let sub = [
            "--pipeline-auto-balance", "true", "--pipeline-balance-unit", "sublayer", "--pipeline-balance-costs",
            "flops",
        ]
        // (name, ranks, arguments, expected pipeline line)
        let runs: [Int: [(String, Int, [String], String)]] = [
            4: [  // micro-batch 4: m = 4
                (
                    "first-short", 2, p2 + ["--decoder-first-pipeline-num-layers", "3"],
                    "1f1b schedule, 2 stages; layers per stage 3, 5"
                ),
                ("1f1b-p2", 2, p2, "1f1b schedule, 2 stages; layers per stage 4, 4"),
                ("zb-p2", 2, p2 + zb, "zb-h1 schedule, 2 stages; layers per stage 4, 4"),
                ("zb-p4", 4, p4 + zb, "zb-h1 schedule, 4 stages; layers per stage 2, 2, 2, 2"),
            ],
            2: [  // micro-batch 2: m = 8 (4 per replica at d = 2)
                (
                    "last-short-zb", 2, p2 + zb + ["--decoder-last-pipeline-num-layers", "2"],
                    "zb-h1 schedule, 2 stages; layers per stage 6, 2"
                ),
                (
                    "auto-zb-p4", 4, p4 + zb + ["--pipeline-auto-balance", "true"],
                    "zb-h1 schedule, 4 stages; layers per stage"
                ),
                ("zb-p4", 4, p4 + zb, "zb-h1 schedule, 4 stages"),
                (
                    "auto-interleaved", 2,
                    p2 + ["--pipeline-auto-balance", "true", "--num-layers-per-virtual-pipeline-stage", "2"],
                    "interleaved schedule, 2 stages; layers per stage"
                ),
                ("zb-t2p2", 4, p2 + zb + ["--tensor-model-parallel-size", "2"], "zb-h1 schedule, 2 stages"),
                (
                    "zb-p2d2-distopt", 4, p2 + zb + ["--use-distributed-optimizer", "true"],
                    "zb-h1 schedule, 2 stages"
                ),
                ("sublayer-1f1b", 2, p2 + sub, "1f1b schedule, 2 stages; layers per stage 4.5, 3.5"),
                (
                    "sublayer-interleaved", 2, p2 + sub + ["--num-layers-per-virtual-pipeline-stage", "2"],
                    "interleaved schedule, 2 stages; layers per stage 4.5, 3.5 (per virtual stage 2, 2, 2.5, 1.5)"
                ),
                ("sublayer-zb-p4", 4, p4 + zb + sub, "zb-h1 schedule, 4 stages; layers per stage"),
                (
                    "sublayer-zb-t2sp", 4,
                    p2 + zb + sub + ["--tensor-model-parallel-size", "2", "--sequence-parallel", "true"],
                    "zb-h1 schedule, 2 stages"
                ),
                (
                    "sublayer-zb-p2d2-distopt", 4, p2 + zb + sub + ["--use-distributed-optimizer", "true"],
                    "zb-h1 schedule, 2 stages"
                ),
            ],
        ]
        var byName: [String: [Double]] = [:]
        for microBatch in [4, 2] {
            let mb = ["--micro-batch-size", "\(microBatch)"]
            let reference = try losses(train(ranks: 1, mb, in: dir, name: "ref\(microBatch)").lines)
            XCTAssertEqual(reference.count, Self.iterations)
            for (name, ranks, args, expected) in runs[microBatch] ?? [] {
                let (lines, log) = try train(ranks: ranks, args + mb, in: dir, name: "\(name)-\(microBatch)")
                byName["\(name)-\(microBatch)"] = try losses(lines)
                assertLossesMatch(
                    try losses(lines), reference, count: Self.iterations, relativeTolerance: 1e-5,
                    "\(name), micro-batch \(microBatch)")
                XCTAssertTrue(log.contains(" > pipeline: " + expected), "\(name): no '\(expected)' in\n\(log)")
                XCTAssertEqual(
                    log.contains("a boundary cuts a layer between its attention and its MLP"),
                    name.hasPrefix("sublayer"),
                    "\(name): \(log)")
            }
        }
        // W passes accumulate in 1F1B's micro-batch order: the same losses bit for bit.
        XCTAssertEqual(byName["zb-p2-4"], byName["1f1b-p2-4"], "ZB-H1 must be bitwise 1F1B")
        XCTAssertEqual(byName["zb-p2-4"]?.count, Self.iterations)
    }

    /// pipeline_balance_costs: measured (the default) times a one-layer probe on every rank and logs
    /// what it found; flops places the layers by the model alone (no probe, no note). GPT and BERT
    /// (whose probe masks mask_prob of its positions) both train on the measured split.
    func testAutomaticBalanceMeasuresItsCostsOrUsesTheFlopModel() throws {
        let dir = CLI.scratch("ppmeasured")
        let auto = [
            "--pipeline-model-parallel-size", "2", "--pipeline-auto-balance", "true", "--train-iters", "2",
            "--eval-iters", "0", "--num-threads", "1", "--micro-batch-size", "2",
        ]
        let figure = #"([0-9.]+) (ms|s)"#
        let pattern = try NSRegularExpression(
            pattern: "balanced on measured costs per micro-batch: layer " + figure + #" \(attention core "# + figure
                + ", attention sub-layer " + figure + #"\), head "# + figure + ", embedding " + figure + "; probe "
                + figure)
        for model in ["gpt2-tiny.json", "bert-tiny.json"] {
            let r = try CLI.mpirun(ranks: 2, ["train", "--config", CLI.config(model)] + auto, in: dir)
            XCTAssertEqual(r.code, 0, "\(model): \(r.stderr)")
            let match = try XCTUnwrap(
                pattern.firstMatch(in: r.stdout, range: NSRange(r.stdout.startIndex..., in: r.stdout)),
                "\(model): no measured costs in\n\(r.stdout)")
            let seconds = (0..<6).map { i -> Double in
                let value = Double((r.stdout as NSString).substring(with: match.range(at: 2 * i + 1)))!
                return (r.stdout as NSString).substring(with: match.range(at: 2 * i + 2)) == "ms" ? value / 1e3 : value
            }
            let (layer, attention, attentionSublayer, head, embedding, probe) = (
                seconds[0], seconds[1], seconds[2], seconds[3], seconds[4], seconds[5]
            )
            XCTAssertTrue(layer > 0 && head > 0 && attention > 0 && attention <= layer, "\(model): \(seconds)")
            XCTAssertTrue(
                attentionSublayer > attention && attentionSublayer < layer, "\(model): attention sub-layer \(seconds)")
            XCTAssertTrue(embedding >= 0 && probe >= layer + head + embedding, "\(model): \(seconds)")
        }
        let flops = try CLI.mpirun(
            ranks: 2,
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--pipeline-balance-costs", "flops"] + auto, in: dir)
        XCTAssertEqual(flops.code, 0, flops.stderr)
        XCTAssertTrue(
            flops.stdout.contains(" > pipeline: 1f1b schedule, 2 stages; layers per stage 2, 2\n"), flops.stdout)
        XCTAssertFalse(flops.stdout.contains("measured costs"), flops.stdout)
    }

    /// Also in bf16, where the layers keep their GEMM inputs as 16-bit words and each deferred W pass
    /// restores its input from them long after the B pass (HeldTensor).
    func testZeroBubbleIsBitwiseOneFOneBForBertInBothArrangements() throws {
        let dir = CLI.scratch("ppzbbert")
        for arrangement in ["pre_ln", "post_ln"] {
            for precision in [[], ["--bf16"]] {
                var byKind: [String: [Double]] = [:]
                for kind in ["1f1b", "zb-h1"] {
                    let name = "\(arrangement)-\(kind)\(precision.isEmpty ? "" : "-bf16")"
                    let r = try CLI.mpirun(
                        ranks: 2,
                        [
                            "train", "--config", CLI.config("bert-tiny.json"), "--train-iters", "10", "--eval-iters",
                            "0", "--num-threads", "1", "--micro-batch-size", "2", "--layernorm-arrangement",
                            arrangement, "--pipeline-model-parallel-size", "2", "--pipeline-schedule", kind,
                            "--metrics-file", "\(name).jsonl",
                        ] + precision, in: dir)
                    XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
                    byKind[kind] = try CLI.losses(dir, name)
                }
                XCTAssertEqual(byKind["zb-h1"]?.count, 10, arrangement)
                XCTAssertEqual(
                    byKind["zb-h1"], byKind["1f1b"], "\(arrangement) \(precision): ZB-H1 must be bitwise 1F1B")
            }
        }
    }

    /// Stage boundaries between a layer's attention and its MLP, in both LayerNorm arrangements (the
    /// post-LN sub-layers hand over LN1's output): 20 iterations of a 5-layer bert-tiny at p = 2 (2.5
    /// layers per stage) equal one rank.
    func testSublayerBoundariesEqualOneRankForBertInBothArrangements() throws {
        let dir = CLI.scratch("ppsubbert")
        for arrangement in ["pre_ln", "post_ln"] {
            var byGrid: [String: [Double]] = [:]
            for (grid, ranks, args) in [
                ("one", 1, [String]()),
                (
                    "p2-sublayer", 2,
                    [
                        "--pipeline-model-parallel-size", "2", "--pipeline-schedule", "zb-h1",
                        "--pipeline-auto-balance",
                        "true", "--pipeline-balance-unit", "sublayer", "--pipeline-balance-costs", "flops",
                    ]
                ),
            ] {
                let name = "\(arrangement)-\(grid)"
                let full =
                    [
                        "train", "--config", CLI.config("bert-tiny.json"), "--train-iters", "20", "--eval-iters", "0",
                        "--num-threads", "1", "--micro-batch-size", "2", "--num-layers", "5",
                        "--layernorm-arrangement", arrangement, "--metrics-file", "\(name).jsonl",
                    ] + args
                let r = ranks == 1 ? try CLI.run(full, in: dir) : try CLI.mpirun(ranks: ranks, full, in: dir)
                XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
                if ranks > 1 { XCTAssertTrue(r.stdout.contains("a boundary cuts a layer"), "\(name): \(r.stdout)") }
                byGrid[grid] = try CLI.losses(dir, name)
            }
            assertLossesMatch(
                try XCTUnwrap(byGrid["p2-sublayer"]), try XCTUnwrap(byGrid["one"]), count: 20, relativeTolerance: 1e-5,
                arrangement)
        }
    }

    func testZeroBubbleTraceAndBubbleAccounting() throws {
        let dir = CLI.scratch("ppzbtrace")
        let (lines, log) = try train(
            ranks: 2,
            [
                "--pipeline-model-parallel-size", "2", "--pipeline-schedule", "zb-h1", "--train-iters", "4",
                "--log-interval", "2", "--micro-batch-size", "2", "--trace-dir", "traces",
            ], in: dir, name: "zb")
        XCTAssertTrue(log.contains("pipeline bubble: measured "), log)
        XCTAssertTrue(log.contains(" vs theory simulated with measured F, B, W = "), log)
        for line in lines {
            let measured = try XCTUnwrap(line["pipeline_bubble"] as? Double)
            let theory = try XCTUnwrap(line["pipeline_bubble_theory"] as? Double)
            XCTAssertTrue(measured >= 0 && theory >= 0 && theory < 1, "bubble \(measured), theory \(theory)")
        }
        // m = 8: every rank's trace holds 8 forwards, 8 B passes and 8 W passes, each as its own span.
        for rank in 0..<2 {
            let trace =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: dir.appendingPathComponent("traces/rank_\(rank).json"))) as? [String: Any]
            let events = try XCTUnwrap(trace?["traceEvents"] as? [[String: Any]])
            var count: [String: Int] = [:]
            for e in events where e["ph"] as? String == "X" { count[e["cat"] as? String ?? "", default: 0] += 1 }
            for category in ["forward", "backward", "weight"] {
                XCTAssertEqual(count[category], 4 * 8, "rank \(rank): \(category) spans over 4 iterations: \(count)")
            }
        }
    }

    func testCheckpointResumesUnderTheSameAndAnotherSplit() throws {
        let dir = CLI.scratch("ppsplitresume")
        let first3 = ["--pipeline-model-parallel-size", "2", "--decoder-first-pipeline-num-layers", "3"]
        let whole = try train(
            ranks: 2, first3 + ["--save", "ckpt", "--save-interval", "20", "--micro-batch-size", "4"], in: dir,
            name: "whole")
        let tail = try losses(whole.lines).suffix(20)
        XCTAssertEqual(tail.count, 20)
        // Resume from iteration 20: drop the final checkpoint and point the tracker back.
        let ckpt = dir.appendingPathComponent("ckpt")
        try FileManager.default.removeItem(at: ckpt.appendingPathComponent("iter_0000040"))
        try "20".write(
            to: ckpt.appendingPathComponent("latest_checkpointed_iteration.txt"), atomically: true, encoding: .utf8)
        let resumes: [(String, [String], Double)] = [
            ("same", first3, 0),
            (
                "last2-zb",
                [
                    "--pipeline-model-parallel-size", "2", "--decoder-last-pipeline-num-layers", "2",
                    "--pipeline-schedule", "zb-h1",
                ], 1e-5
            ),
            ("even-p4", ["--pipeline-model-parallel-size", "4"], 1e-5),
            (
                "sublayer",
                [
                    "--pipeline-model-parallel-size", "2", "--pipeline-auto-balance", "true",
                    "--pipeline-balance-unit", "sublayer", "--pipeline-balance-costs", "flops",
                ], 1e-5
            ),
        ]
        for (name, args, tolerance) in resumes {
            let ranks = args.contains("4") ? 4 : 2
            let resumed = try losses(
                train(ranks: ranks, args + ["--load", "ckpt", "--micro-batch-size", "4"], in: dir, name: name).lines)
            XCTAssertEqual(resumed.count, 20, name)
            if tolerance == 0 {
                XCTAssertEqual(resumed, Array(tail), "\(name): a resume under the same split is bitwise")
            } else {
                assertLossesMatch(resumed, Array(tail), count: 20, relativeTolerance: tolerance, name)
            }
        }
    }
}

// PlanTests.swift — `megatron plan` as a user runs it: `--calibrate` on a tiny GPT (and a tiny BERT)
// starts copies of the binary under mpirun and writes a profile with GEMM rates per thread count,
// attention (causal for GPT, bidirectional for BERT), the LM head's row pass, memory bandwidth,
// fitted links and the resident baseline; the ranking lists valid layouts only, fitting ones fastest
// first, each with a `megatron train` line that runs as printed; `--explain` predicts one layout;
// model overrides plan the overridden model and reach the printed command; a missing profile, a bad
// layout, a layout flag given as an override and a BERT config whose vocabulary file is missing are
// clear errors.
import Foundation
import TestSupport
import XCTest

final class PlanTests: XCTestCase {
    func testCalibratePlanAndRunThePrintedCommand() throws {
        try calibratePlanAndRun(config: CLI.config("gpt2-tiny.json"), scratch: "plan", causal: true)
    }

    func testCalibratePlanAndRunThePrintedCommandForBERT() throws {
        try calibratePlanAndRun(config: CLI.config("bert-tiny.json"), scratch: "plan-bert", causal: false)
    }

    func calibratePlanAndRun(config: String, scratch: String, causal: Bool) throws {
        let dir = CLI.scratch(scratch)
        let cal = try CLI.run(
            ["plan", "--calibrate", "--config", config, "--max-ranks", "2", "--profile", "p.json"], in: dir,
            environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"])
        XCTAssertEqual(cal.code, 0, cal.stdout + cal.stderr)
        let profile = try CLI.jsonObject(dir.appendingPathComponent("p.json"))
        let gemm = try XCTUnwrap(profile["gemm"] as? [[String: Any]])
        let threads = Set(gemm.compactMap { $0["threads"] as? Int })
        XCTAssertEqual(
            threads,
            Set([
                ProcessInfo.processInfo.activeProcessorCount, max(1, ProcessInfo.processInfo.activeProcessorCount / 2),
            ]))
        XCTAssertTrue(gemm.allSatisfy { ($0["flopsPerSecond"] as? Double ?? 0) > 1e6 })
        let links = try XCTUnwrap(profile["links"] as? [[String: Any]])
        XCTAssertEqual(
            Set(links.compactMap { $0["op"] as? String }), ["allreduce", "allgather", "reducescatter", "p2p"])
        XCTAssertTrue(links.allSatisfy { ($0["bandwidth"] as? Double ?? 0) > 1e6 })
        let attention = try XCTUnwrap(profile["attention"] as? [[String: Any]])
        XCTAssertFalse(attention.isEmpty)
        XCTAssertTrue(attention.allSatisfy { $0["causal"] as? Bool == causal }, "\(attention)")
        // The LM head's row pass at each thread count, for the vocabulary columns of t = 1 and t = 2.
        let rows = try XCTUnwrap(profile["logitRows"] as? [[String: Any]])
        XCTAssertEqual(Set(rows.compactMap { $0["threads"] as? Int }), threads)
        XCTAssertEqual(Set(rows.compactMap { $0["width"] as? Int }).count, 2, "\(rows)")
        XCTAssertTrue(rows.allSatisfy { ($0["elementsPerSecond"] as? Double ?? 0) > 1e6 }, "\(rows)")
        XCTAssertEqual((profile["residentBaseline"] as? [Any])?.count, 2)

        let plan = try CLI.run(
            [
                "plan", "--config", config, "--world-size", "2", "--profile", "p.json", "--json", "all.jsonl", "--top",
                "3",
            ],
            in: dir)
        XCTAssertEqual(plan.code, 0, plan.stderr)
        XCTAssertTrue(plan.stdout.contains("valid layouts considered"), plan.stdout)
        let all = try CLI.jsonLines(dir.appendingPathComponent("all.jsonl"))
        XCTAssertGreaterThan(all.count, 10)
        let steps = all.filter { $0["fits"] as? Bool == true }.compactMap { $0["step_seconds"] as? Double }
        XCTAssertEqual(steps, steps.sorted(), "fitting layouts fastest first")
        for x in all {
            let (t, p, d) = (x["t"] as? Int ?? 0, x["p"] as? Int ?? 0, x["d"] as? Int ?? 0)
            XCTAssertEqual(t * p * d, 2, "\(x)")
            XCTAssertEqual(4 % (p * (x["v"] as? Int ?? 1)), 0, "whole layers per virtual stage: \(x)")
        }
        // The best layout's printed command runs as printed (two iterations added).
        let command = try XCTUnwrap(all.first?["command"] as? String)
        XCTAssertTrue(plan.stdout.contains(command))
        var words = command.split(separator: " ").map(String.init)
        let train = try XCTUnwrap(words.firstIndex(of: "megatron"))
        words = Array(words[(train + 1)...]) + ["--train-iters", "2", "--eval-iters", "0"]
        let run =
            command.hasPrefix("mpirun -np 2") ? try CLI.mpirun(ranks: 2, words, in: dir) : try CLI.run(words, in: dir)
        XCTAssertEqual(run.code, 0, command + "\n" + run.stderr)
        XCTAssertTrue(run.stdout.contains("iteration        2/"), run.stdout)

        let explain = try CLI.run(
            ["plan", "--config", config, "--world-size", "2", "--profile", "p.json", "--explain", "t=2,mbs=4"], in: dir)
        XCTAssertEqual(explain.code, 0, explain.stderr)
        XCTAssertTrue(explain.stdout.contains("t=2,p=1,d=1,v=1,mbs=4"), explain.stdout)
        XCTAssertTrue(explain.stdout.contains("--tensor-model-parallel-size 2"), explain.stdout)
        XCTAssertTrue(explain.stdout.contains("memory of the fullest rank"), explain.stdout)
    }

    func testBadInputsAreClearErrors() throws {
        let dir = CLI.scratch("plan-errors")
        let config = CLI.config("gpt2-tiny.json")
        let missing = try CLI.run(["plan", "--config", config, "--profile", "nowhere.json"], in: dir)
        XCTAssertEqual(missing.code, 2)
        XCTAssertTrue(missing.stderr.contains("nowhere.json") && missing.stderr.contains("--calibrate"), missing.stderr)
        let cluster = CLI.config("clusters/dgx-a100.json")
        for (layout, words) in [("t=3", "world size"), ("t=2,q=1", "unknown key"), ("t=2,p=2,d=1", "world size")] {
            let r = try CLI.run(
                ["plan", "--config", config, "--cluster", cluster, "--world-size", "2", "--explain", layout], in: dir)
            XCTAssertEqual(r.code, 2, layout)
            XCTAssertTrue(r.stderr.contains(words), "\(layout): \(r.stderr)")
        }
        // t = 4 on a 4-head model with 64 hidden is valid; t = 8 is not (heads): the config's own rule.
        let heads = try CLI.run(
            ["plan", "--config", config, "--cluster", cluster, "--world-size", "8", "--explain", "t=8,p=1"], in: dir)
        XCTAssertEqual(heads.code, 2)
        XCTAssertTrue(heads.stderr.contains("num_attention_heads"), heads.stderr)
        for bad in [
            ["--world-size", "0"], ["--global-batch-size", "0"], ["--num-layers", "0"], ["--memory-headroom", "1"],
            ["--memory-headroom", "0.95"], ["--world-size", "\(1 << 40)"],
        ] {
            let args = bad[0] == "--num-layers" ? ["--cluster", cluster] : ["--cluster", cluster] + bad
            var config = config
            if bad[0] == "--num-layers" {
                let broken = dir.appendingPathComponent("broken.json")
                let text = try String(contentsOfFile: config, encoding: .utf8)
                    .replacingOccurrences(of: "\"num_layers\": 4", with: "\"num_layers\": 0")
                try text.write(to: broken, atomically: true, encoding: .utf8)
                config = broken.path
            }
            let r = try CLI.run(["plan", "--config", config] + args, in: dir)
            XCTAssertEqual(r.code, 2, "\(bad)")
            XCTAssertTrue(
                r.stderr.contains(bad[0].replacingOccurrences(of: "--num-layers", with: "num_layers")),
                "\(bad): \(r.stderr)")
        }
        // Model overrides as `megatron train` takes them: the plan is for the overridden model and its
        // printed command carries them (and runs); layout flags are the planner's to choose.
        let deeper = try CLI.run(
            [
                "plan", "--config", config, "--cluster", cluster, "--top", "1", "--num-layers", "2", "--hidden-size",
                "32",
            ],
            in: dir)
        XCTAssertEqual(deeper.code, 0, deeper.stderr)
        XCTAssertTrue(deeper.stdout.contains("GPT 2 layers, hidden 32"), deeper.stdout)
        let line = try XCTUnwrap(deeper.stdout.split(separator: "\n").first { $0.contains("megatron train") })
        XCTAssertTrue(line.contains("--config \(config) --num-layers 2 --hidden-size 32 --tensor-model"), String(line))
        let printed = line.split(separator: " ").map(String.init)
        let runs = try CLI.run(
            Array(printed[(try XCTUnwrap(printed.firstIndex(of: "train")))...]) + [
                "--train-iters", "1", "--eval-iters", "0",
            ], in: dir)
        XCTAssertEqual(runs.code, 0, runs.stderr)
        for (flag, words) in [
            ("--tensor-model-parallel-size", ["--tensor-model-parallel-size", "2"]),
            ("--micro-batch-size", ["--micro-batch-size=2"]), ("--bf16", ["--bf16"]),
        ] {
            let r = try CLI.run(["plan", "--config", config, "--cluster", cluster] + words, in: dir)
            XCTAssertEqual(r.code, 2, flag)
            XCTAssertTrue(r.stderr.contains(flag) && r.stderr.contains("layout"), "\(flag): \(r.stderr)")
        }
        // A BERT plans on the cluster file; with WordPiece named but its vocabulary file missing, the
        // error names the file.
        let bert = try CLI.run(
            ["plan", "--config", CLI.config("bert-tiny.json"), "--cluster", cluster, "--world-size", "8"], in: dir)
        XCTAssertEqual(bert.code, 0, bert.stderr)
        XCTAssertTrue(bert.stdout.contains("BERT 4 layers"), bert.stdout)
        let wordPieceConfig = dir.appendingPathComponent("bert-wordpiece.json")
        try String(contentsOfFile: CLI.config("bert-tiny.json"), encoding: .utf8)
            .replacingOccurrences(
                of: "\"tokenizer_type\": \"ByteLevelTokenizer\"",
                with: "\"tokenizer_type\": \"BertWordPieceLowerCase\", \"vocab_file\": \"no-such-vocab.txt\""
            )
            .write(to: wordPieceConfig, atomically: true, encoding: .utf8)
        let wordPiece = try CLI.run(["plan", "--config", wordPieceConfig.path, "--cluster", cluster], in: dir)
        XCTAssertEqual(wordPiece.code, 2)
        XCTAssertTrue(wordPiece.stderr.contains("no-such-vocab.txt"), wordPiece.stderr)
    }
}

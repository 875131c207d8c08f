// HFLlama3RopeTests.swift — Llama 3.1's scaled rope (Megatron's use_rope_scaling, Hugging Face's
// rope_type llama3) on the committed tiny LlamaForCausalLM of scripts/make_hf_llama_fixture.py
// (rope_theta 5e5, factor 8, 256 positions; its head width puts frequencies in all three bands —
// kept, blended, divided): the rescaled frequencies equal transformers'; the import records the
// scaling and scores every next token of two 256-token sequences as transformers does, where plain
// rope does not; a config.json in transformers 4's spelling imports alike; other scalings are
// refused naming the key; the export writes rope_scaling back and transformers reloads it; and
// Megatron's flags train with it, resuming only with the same scaling.
import Checkpoint
import Foundation
import MegatronCore
import TestSupport
import XCTest

final class HFLlama3RopeTests: XCTestCase {
    let fixture = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_llama3_rope")

    var expected: [String: Any] {
        get throws {
            try CLI.jsonObject(fixture.appendingPathComponent("expected.json"))
        }
    }

    func testScaledFrequenciesEqualTransformers() throws {
        let want = try XCTUnwrap(try expected["inv_freq"] as? [Double])
        XCTAssertEqual(want.count, 8, "head width 16: eight frequencies")
        let scaling = RopeScaling(factor: 8)
        var bands = Set<String>()
        for (i, theirs) in want.enumerated() {
            let plain = pow(500_000.0, -Double(2 * i) / 16)
            let ours = scaling.scaled(plain)
            XCTAssertEqual(ours, theirs, accuracy: 1e-6 * theirs, "frequency \(i)")
            bands.insert(ours == plain ? "kept" : abs(ours - plain / 8) < 1e-15 ? "divided" : "blended")
        }
        XCTAssertEqual(bands, ["kept", "divided", "blended"], "the fixture must reach every band")
        // The table rotates by the scaled angle: position p, frequency i → cos(p·θᵢ), sin(p·θᵢ).
        let table = RotaryEmbedding(rotaryDim: 16, base: 500_000, positions: 256, scaling: scaling)
        for (p, i) in [(255, 4), (255, 5), (100, 7), (3, 1)] {
            let angle = Double(p) * scaling.scaled(pow(500_000.0, -Double(2 * i) / 16))
            XCTAssertEqual(Double(table.cos[p * 8 + i]), cos(angle), accuracy: 1e-7)
            XCTAssertEqual(Double(table.sin[p * 8 + i]), sin(angle), accuracy: 1e-7)
        }
    }

    /// Imports `directory` into `dir/ckpt` and checks every next-token score of the fixture's two
    /// sequences against transformers'; with plain rope instead the scores must be off.
    func assertImportScoresAsTransformers(_ directory: URL, in dir: URL) throws {
        let r = try CLI.run(["convert-checkpoint", "--from", "hf", directory.path, "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("rope_scaling_factor 8.0"), r.stdout)
        let cfg = try storedTrainingConfig(dir.appendingPathComponent("ckpt"))
        XCTAssertTrue(cfg.useRopeScaling)
        XCTAssertEqual(cfg.ropeScalingFactor, 8)
        XCTAssertEqual(cfg.rotaryBase, 500_000)
        let root = try expected
        let ids = try XCTUnwrap(root["input_ids"] as? [[Int]])
        let logprob = try XCTUnwrap(root["next_token_logprob"] as? [[Double]])
        guard ids.count == 2, logprob.count == 2, ids.allSatisfy({ $0.count == 256 }) else {
            return XCTFail("expected.json holds \(ids.count) sequences (the fixture has 2 of 256 tokens)")
        }
        let plainRopeError = try assertScoresMatch(
            checkpoint: dir.appendingPathComponent("ckpt"), sequences: ids, logprob: logprob, vocab: 61
        ) { $0.useRopeScaling = false }
        XCTAssertGreaterThan(plainRopeError, 1e-3, "plain rope must not pass the same check")
    }

    func testImportScoresAsTransformersInBothConfigSpellings() throws {
        try assertImportScoresAsTransformers(fixture, in: CLI.scratch("hf-llama3-import"))
        // transformers 4 (and Meta's Llama 3.1 config.json): rope_theta at the top, rope_scaling.
        let dir = CLI.scratch("hf-llama3-import-v4")
        let old = dir.appendingPathComponent("hf")
        try FileManager.default.createDirectory(at: old, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: fixture.appendingPathComponent("model.safetensors"), to: old.appendingPathComponent("model.safetensors")
        )
        var config = try CLI.jsonObject(fixture.appendingPathComponent("config.json"))
        var rope = try XCTUnwrap(config.removeValue(forKey: "rope_parameters") as? [String: Any])
        config["rope_theta"] = rope.removeValue(forKey: "rope_theta")
        config["rope_scaling"] = rope
        try JSONSerialization.data(withJSONObject: config).write(to: old.appendingPathComponent("config.json"))
        try assertImportScoresAsTransformers(old, in: dir)
    }

    func testOtherScalingsAreRefusedNamingTheKey() throws {
        let dir = CLI.scratch("hf-llama3-refuse")
        for (key, value, message) in [
            ("rope_type", "yarn" as Any, "rope_type 'yarn' is not built"),
            ("original_max_position_embeddings", 4096 as Any, "original_max_position_embeddings 4096"),
            ("high_freq_factor", 2.0 as Any, "high_freq_factor 2"),
            ("factor", 0.5 as Any, "factor of at least 1"),
        ] {
            let hf = dir.appendingPathComponent(key)
            try FileManager.default.createDirectory(at: hf, withIntermediateDirectories: true)
            var config = try CLI.jsonObject(fixture.appendingPathComponent("config.json"))
            var rope = try XCTUnwrap(config["rope_parameters"] as? [String: Any])
            rope[key] = value
            config["rope_parameters"] = rope
            try JSONSerialization.data(withJSONObject: config).write(to: hf.appendingPathComponent("config.json"))
            try FileManager.default.copyItem(
                at: fixture.appendingPathComponent("model.safetensors"),
                to: hf.appendingPathComponent("model.safetensors"))
            let r = try CLI.run(["convert-checkpoint", "--from", "hf", key, "--save", "out-\(key)"], in: dir)
            XCTAssertNotEqual(r.code, 0, key)
            XCTAssertTrue(r.stderr.contains(message) && r.stderr.contains("config.json"), "\(key): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out-\(key)").path))
        }
    }

    func testExportWritesTheScalingBack() throws {
        let dir = CLI.scratch("hf-llama3-export")
        XCTAssertEqual(
            try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir).code, 0)
        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        let rope = try XCTUnwrap(
            try CLI.jsonObject(dir.appendingPathComponent("hf").appendingPathComponent("config.json"))["rope_scaling"]
                as? [String: Any])
        XCTAssertEqual(rope["rope_type"] as? String, "llama3")
        XCTAssertEqual(rope["factor"] as? Double, 8)
        XCTAssertEqual(rope["original_max_position_embeddings"] as? Int, 8192)
        try CLI.pythonCheck(
            "make_hf_llama_fixture.py", ["--check-export-rope", "hf"], in: dir,
            expect: "export reloaded by transformers",
            skipped: "torch/transformers are not installed; transformers' side of the export not checked")
    }

    /// Megatron's spelling trains a scaled-rope model; resuming without the scaling is refused.
    func testMegatronFlagsTrainAndResumeOnlyWithTheSameScaling() throws {
        let dir = CLI.scratch("llama3-rope-train")
        let base = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--eval-iters", "0", "--position-embedding-type",
            "rope", "--rotary-base", "500000", "--normalization", "RMSNorm", "--swiglu", "--disable-bias-linear",
        ]
        let first = try CLI.run(
            base + ["--use-rope-scaling", "--rope-scaling-factor", "32", "--train-iters", "2", "--save", "ckpt"],
            in: dir)
        XCTAssertEqual(first.code, 0, first.stderr)
        let cfg = try storedTrainingConfig(dir.appendingPathComponent("ckpt"))
        XCTAssertTrue(cfg.useRopeScaling)
        XCTAssertEqual(cfg.ropeScalingFactor, 32)
        let resumed = try CLI.run(base + ["--train-iters", "3", "--load", "ckpt"], in: dir)
        XCTAssertNotEqual(resumed.code, 0)
        XCTAssertTrue(resumed.stderr.contains("use_rope_scaling"), resumed.stderr)
        let learned = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "1", "--eval-iters", "0",
                "--use-rope-scaling",
            ], in: dir)
        XCTAssertNotEqual(learned.code, 0)
        XCTAssertTrue(
            learned.stderr.contains("use_rope_scaling") && learned.stderr.contains("position_embedding_type"),
            learned.stderr)
    }
}

// HFTokenizerCLITests.swift — HuggingFaceTokenizer end to end with the built binary: a tiny Llama 3
// made by transformers (Tests/CLITests/Fixtures/hf_llama3_tok, scripts/make_hf_llama_fixture.py:
// Llama 3.2's scaled rope, tied embeddings, a Llama-3-layout tokenizer.json) imports with its
// tokenizer and its rope scaling, and `generate` from text prompts gives transformers' prompt ids,
// greedy tokens and text on one rank and at t = 2 × p = 2; the export carries tokenizer.json and
// tokenizer_config.json (read back by transformers when it is installed); `preprocess-data` with
// Megatron's `--tokenizer-type HuggingFaceTokenizer --tokenizer-model DIR` writes BOS + ids + eod per
// document and `train` reads it; a tokenizer_model without a tokenizer.json, or a vocab_size below
// its ids, is refused by key. A tiny Qwen 2 with a Qwen-2-layout tokenizer.json (and more embedding
// rows than tokenizer ids, as Qwen 2.5) scores, generates and exports as transformers.
import Checkpoint
import Foundation
import MegatronCore
import TestSupport
import XCTest

final class HFTokenizerCLITests: XCTestCase {
    let fixture = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_llama3_tok")
    let tokenizerDirectory = CLI.repoRoot.appendingPathComponent("Tests/MegatronCoreTests/Fixtures/hf_tokenizer/llama3")

    func testLlama3WithTokenizerGeneratesTransformersTextOnAGrid() throws {
        let dir = CLI.scratch("hf-tokenizer-generate")
        let r = try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("vocabulary 1011, positions 128, tokenizer HuggingFaceTokenizer"), r.stdout)
        XCTAssertTrue(r.stdout.contains("rope_scaling_factor 32.0"), r.stdout)
        try assertGeneratesAsTransformers(
            PromptCase.load(fixture.appendingPathComponent("expected.json"), textKey: "continuation"),
            tokenizer: "HuggingFaceTokenizer", wholeText: false, in: dir)
    }

    /// A tiny Qwen 2 (biases in q, k and v alone; a sliding_window it does not use; 960 embedding rows
    /// over its Qwen-2-layout tokenizer.json's 900 ids, as Qwen 2.5 has) imports with that tokenizer
    /// and vocab_size 960, as add_qkv_bias without add_bias_linear and without a window, scores two
    /// 100-token sequences as transformers does, generates transformers' ids, tokens and text
    /// from text prompts on one rank and at t = 2 × p = 2, and exports as Qwen2ForCausalLM bit for bit.
    func testQwen2WithTokenizerScoresGeneratesAndExports() throws {
        let dir = CLI.scratch("hf-qwen2")
        let qwen2 = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_qwen2_tok")
        let r = try CLI.run(["convert-checkpoint", "--from", "hf", qwen2.path, "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("vocabulary 960, positions 128, tokenizer HuggingFaceTokenizer"), r.stdout)
        let cfg = try storedTrainingConfig(dir.appendingPathComponent("ckpt"))
        XCTAssertTrue(cfg.addQKVBias && !cfg.addBiasLinear && cfg.windowSize == nil)
        let original = try Safetensors.read(qwen2.appendingPathComponent("model.safetensors").path)
        let qBias = try XCTUnwrap(original["model.layers.0.self_attn.q_proj.bias"])
        XCTAssertTrue(qBias.values.contains { $0 != 0 }, "the fixture's q bias must carry something")
        let root = try CLI.jsonObject(qwen2.appendingPathComponent("expected.json"))
        let sequences = try XCTUnwrap(root["input_ids"] as? [[Int]])
        XCTAssertEqual(sequences.map(\.count), [100, 100])
        try assertScoresMatch(
            checkpoint: dir.appendingPathComponent("ckpt"), sequences: sequences,
            logprob: try XCTUnwrap(root["next_token_logprob"] as? [[Double]]), vocab: 960)
        try assertGeneratesAsTransformers(
            PromptCase.load(qwen2.appendingPathComponent("expected.json"), textKey: "continuation"),
            tokenizer: "HuggingFaceTokenizer", wholeText: false, in: dir)
        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        XCTAssertTrue(export.stdout.contains("Qwen2ForCausalLM"), export.stdout)
        let written = try Safetensors.read(dir.appendingPathComponent("hf/model.safetensors").path)
        XCTAssertEqual(Set(written.keys), Set(original.keys))
        for (name, t) in original { XCTAssertEqual(written[name]?.values, t.values, "\(name) bit for bit") }
        let config = try CLI.jsonObject(dir.appendingPathComponent("hf/config.json"))
        XCTAssertEqual(config["model_type"] as? String, "qwen2")
    }

    func testExportCarriesTheTokenizer() throws {
        let dir = CLI.scratch("hf-tokenizer-export")
        XCTAssertEqual(
            try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir).code, 0)
        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        XCTAssertFalse(export.stdout.contains("no tokenizer files"), export.stdout)
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            XCTAssertEqual(
                try Data(contentsOf: dir.appendingPathComponent("hf/\(name)")),
                try Data(contentsOf: fixture.appendingPathComponent(name)), name)
        }
        let generation = try CLI.jsonObject(dir.appendingPathComponent("hf/generation_config.json"))
        XCTAssertEqual(generation["bos_token_id"] as? Int, 1000)
        XCTAssertEqual(generation["eos_token_id"] as? Int, 1001)
        try CLI.pythonCheck(
            "make_hf_llama_fixture.py", ["--check-tokenizer-json", "hf"], in: dir,
            expect: "3 of 3 prompts give the same ids",
            skipped: "transformers is not installed; its reading of the exported tokenizer not checked")
    }

    func testPreprocessAndTrainWithMegatronsFlags() throws {
        let tok = try HuggingFaceTokenizer(path: tokenizerDirectory.path)
        XCTAssertEqual(tok.prefix, [1000], "each document starts with <|begin_of_text|>")
        let stdout = try assertPreprocessAndTrain(
            tokenizer: ["--tokenizer-type", "HuggingFaceTokenizer", "--tokenizer-model", tokenizerDirectory.path],
            encode: tok.encode, eod: 1001, in: CLI.scratch("hf-tokenizer-preprocess"))
        XCTAssertTrue(stdout.contains("vocab 1011 (padded 1024)"), stdout)
    }

    /// A tokenizer_model without a tokenizer.json, or a vocab_size below the tokenizer's ids, is
    /// refused naming the key.
    func testBadTokenizerModelOrVocabularyIsRefusedByKey() throws {
        let dir = CLI.scratch("hf-tokenizer-refuse")
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("empty"), withIntermediateDirectories: true)
        let hf = ["--tokenizer-type", "HuggingFaceTokenizer"]
        for (args, needles) in [
            (hf, ["tokenizer_model", "tokenizer.json"]),
            (hf + ["--tokenizer-model", "empty"], ["tokenizer_model", "tokenizer.json"]),
            (
                hf + ["--tokenizer-model", tokenizerDirectory.path, "--vocab-size", "500"],
                ["vocab_size", "at least the 1011 ids"]
            ),
        ] {
            let r = try CLI.run(
                ["train", "--config", CLI.config("llama-tiny.json"), "--train-iters", "1"] + args, in: dir)
            XCTAssertNotEqual(r.code, 0, "\(args)")
            XCTAssertTrue(needles.allSatisfy(r.stderr.contains), "\(args): \(r.stderr)")
        }
    }
}

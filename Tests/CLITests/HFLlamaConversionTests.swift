// HFLlamaConversionTests.swift — `convert-checkpoint --from hf` and `--to hf` for Llama on the
// committed tiny LlamaForCausalLM (grouped-query attention, untied head; written by
// scripts/make_hf_llama_fixture.py): the imported model gives transformers' log-probability of
// every next token within 1e-4 and its arg-max predictions; generation from token ids is the same
// at t = 2 × p = 2; the export writes every tensor of the original bit for bit with a config.json
// transformers reads (checked by transformers itself when it is installed); a tied Llama trained
// here round-trips bit for bit; a GPT that is neither GPT-2 nor Llama is refused naming what differs;
// a tiny MistralForCausalLM imports with its sliding window, scores and generates as transformers
// past the window, and exports as MistralForCausalLM.
import Checkpoint
import Foundation
import MegatronCore
import Tensor
import TestSupport
import XCTest

final class HFLlamaConversionTests: XCTestCase {
    let fixture = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_llama_tiny")

    struct Expected { let ids: [[Int]]; let logprob: [[Double]]; let argmax: [[Int]] }

    var expected: Expected {
        get throws {
            let data = try Data(contentsOf: fixture.appendingPathComponent("expected.json"))
            let root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            return Expected(
                ids: try XCTUnwrap(root["input_ids"] as? [[Int]]),
                logprob: try XCTUnwrap(root["next_token_logprob"] as? [[Double]]),
                argmax: try XCTUnwrap(root["argmax"] as? [[Int]]))
        }
    }

    func testImportScoresAsTransformersAndGeneratesAlikeOnAGrid() throws {
        let dir = CLI.scratch("hf-llama-import")
        let r = try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let cfg = try storedTrainingConfig(dir.appendingPathComponent("ckpt"))
        XCTAssertEqual(cfg.positionEmbeddingType, .rope)
        XCTAssertEqual(cfg.normalization, .rmsNorm)
        XCTAssertTrue(cfg.swiglu && !cfg.addBiasLinear && cfg.untieEmbeddingsAndOutputWeights)
        XCTAssertTrue(cfg.groupQueryAttention)
        XCTAssertEqual(cfg.numQueryGroups, 2)
        let want = try expected
        guard want.ids.count == 2, want.logprob.count == 2, want.argmax.count == 2 else {
            return XCTFail("expected.json holds \(want.ids.count) sequences (the fixture has 2)")
        }
        for (k, ids) in want.ids.enumerated() {
            let (losses, isArgmax) = try trainingForwardScores(
                checkpoint: dir.appendingPathComponent("ckpt"), ids: ids.map(Int32.init), vocab: 61)
            for i in 0..<(ids.count - 1) {
                XCTAssertEqual(-losses[i], want.logprob[k][i], accuracy: 1e-4, "sequence \(k) position \(i)")
                XCTAssertEqual(isArgmax[i], want.argmax[k][i] == ids[i + 1], "sequence \(k) position \(i)")
            }
        }
        // Greedy generation from token ids: one rank and t = 2 × p = 2 give the same tokens.
        let prompts = want.ids.map { "{\"prompt_tokens\": \($0.prefix(5).map(String.init).joined(separator: ", ")) ]}" }
        try prompts.map { $0.replacingOccurrences(of: "\": ", with: "\": [") }.joined(separator: "\n").write(
            to: dir.appendingPathComponent("prompts.jsonl"), atomically: true, encoding: .utf8)
        let outputs = try generateOnOneRankAndT2P2(tokens: 10, in: dir).map { run in
            run.lines.map { $0["tokens"] as? [Int] ?? [] }
        }
        XCTAssertEqual(outputs[0].count, 2)
        XCTAssertEqual(outputs[0], outputs[1])
    }

    /// Mistral (Llama's architecture with a sliding window) imports with its 64 positions and window
    /// 16 as window_size (15, 0); over sequences four windows long it scores as transformers does (and
    /// full causal attention does not), greedy generation with the KV cache across the window gives
    /// transformers' tokens on one rank and at t = 2 × p = 2, and it exports as MistralForCausalLM
    /// with every tensor bit for bit.
    func testMistralScoresGeneratesAndExportsWithItsSlidingWindow() throws {
        let dir = CLI.scratch("hf-mistral-import")
        let config = try assertImportScoresGeneratesAndExports(
            fixture: "hf_mistral_tiny", length: 64, architecture: "MistralForCausalLM", in: dir,
            without: (
                "full causal attention",
                {
                    XCTAssertEqual($0.windowSize, "15,0"); $0.windowSize = nil
                }
            ))
        XCTAssertEqual(config["model_type"] as? String, "mistral")
        XCTAssertEqual(config["sliding_window"] as? Int, 16)
    }

    /// A tiny Qwen 3 made by transformers (q_norm and k_norm over each query and key head, norm weights
    /// drawn around 1, tied embeddings, heads of head_dim 24 where hidden / heads is 16) imports with
    /// qk_layernorm and kv_channels 24, scores two 32-token sequences as
    /// transformers does within 1e-4 (the same model without the norms misses by more than 1e-3),
    /// generates transformers' 16 greedy tokens on one rank and at t = 2 × p = 2, and exports as
    /// Qwen3ForCausalLM bit for bit (read back by transformers when it is installed).
    func testQwen3ScoresGeneratesAndExportsWithItsQueryKeyNorms() throws {
        let dir = CLI.scratch("hf-qwen3-import")
        let config = try assertImportScoresGeneratesAndExports(
            fixture: "hf_qwen3_tiny", length: 32, architecture: "Qwen3ForCausalLM", in: dir,
            without: (
                "the model without its query/key norms",
                {
                    XCTAssertTrue($0.qkLayernorm); $0.qkLayernorm = false
                }
            )
        )
        XCTAssertEqual(config["model_type"] as? String, "qwen3")
        XCTAssertEqual(config["head_dim"] as? Int, 24)
        let stored = try storedTrainingConfig(dir.appendingPathComponent("ckpt"))
        XCTAssertEqual(stored.kvChannels, 24, "head_dim 24 is kv_channels")
        try CLI.pythonCheck(
            "make_hf_llama_fixture.py", ["--check-export-qwen3", "hf"], in: dir,
            expect: "export reloaded by transformers",
            skipped: "torch or transformers not installed: the export was compared tensor by tensor, not loaded")
    }

    func testExportWritesTheOriginalBackBitForBit() throws {
        let dir = CLI.scratch("hf-llama-export")
        XCTAssertEqual(
            try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir).code, 0)
        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        XCTAssertTrue(export.stdout.contains("LlamaForCausalLM"), export.stdout)
        let original = try Safetensors.read(fixture.appendingPathComponent("model.safetensors").path)
        let written = try Safetensors.read(dir.appendingPathComponent("hf/model.safetensors").path)
        XCTAssertEqual(Set(written.keys), Set(original.keys))
        for (name, t) in original {
            XCTAssertEqual(written[name]?.shape, t.shape, name)
            XCTAssertEqual(written[name]?.values, t.values, "\(name) bit for bit")
        }
        let config = try CLI.jsonObject(dir.appendingPathComponent("hf/config.json"))
        XCTAssertEqual(config["num_key_value_heads"] as? Int, 2)
        XCTAssertEqual(config["tie_word_embeddings"] as? Bool, false)
        try CLI.pythonCheck(
            "make_hf_llama_fixture.py", ["--check-export", "hf"], in: dir, expect: "export reloaded by transformers",
            skipped: "torch/transformers are not installed; transformers' side of the export not checked")
    }

    /// A Llama trained here with a tied head: exported without lm_head.weight (tie_word_embeddings
    /// true), imported back with every parameter bit for bit.
    func testATiedLlamaTrainedHereRoundTrips() throws {
        let dir = CLI.scratch("hf-llama-tied")
        let train = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "3", "--eval-iters", "0",
                "--position-embedding-type", "rope", "--normalization", "RMSNorm", "--swiglu", "--disable-bias-linear",
                "--save", "ckpt",
            ], in: dir)
        XCTAssertEqual(train.code, 0, train.stderr)
        XCTAssertEqual(try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf"], in: dir).code, 0)
        let written = try Safetensors.read(dir.appendingPathComponent("hf/model.safetensors").path)
        XCTAssertNil(written["lm_head.weight"])
        let config = try CLI.jsonObject(dir.appendingPathComponent("hf/config.json"))
        XCTAssertEqual(config["tie_word_embeddings"] as? Bool, true)
        XCTAssertEqual(config["num_key_value_heads"] as? Int, 4)
        let back = try CLI.run(["convert-checkpoint", "--from", "hf", "hf", "--save", "back"], in: dir)
        XCTAssertEqual(back.code, 0, back.stderr)
        func weights(_ name: String) throws -> GPTModel {
            let cfg = try storedTrainingConfig(dir.appendingPathComponent(name))
            let model = GPTModel(config: GPTConfig(training: cfg, vocabSize: 257), microBatch: 1, threads: 1)
            _ = try ModelCheckpoint.loadWeights(
                from: CheckpointDirectory(root: dir.appendingPathComponent(name).path), chunks: [model])
            return model
        }
        let a = try weights("ckpt"), b = try weights("back")
        XCTAssertEqual(a.table.specs.map(\.name), b.table.specs.map(\.name))
        for (slot, spec) in a.table.specs.enumerated() {
            // The padded vocabulary rows (257 of 384 are real) are not part of the Hugging Face model.
            let count = spec.name == GPTSlots.wordEmbeddingsName ? 257 * spec.shape[1] : spec.count
            let x = Array(UnsafeBufferPointer(start: a.params.pointer(slot), count: count))
            let y = Array(UnsafeBufferPointer(start: b.params.pointer(slot), count: count))
            XCTAssertTrue(x == y, "\(spec.name) bit for bit: \(zip(x, y).filter { $0 != $1 }.count) values differ")
        }
    }

    func testAGPTThatIsNeitherGPT2NorLlamaIsRefusedNamingWhatDiffers() throws {
        let dir = CLI.scratch("hf-llama-refuse")
        let train = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "1", "--eval-iters", "0",
                "--position-embedding-type", "rope", "--save", "ckpt",
            ], in: dir)
        XCTAssertEqual(train.code, 0, train.stderr)
        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf"], in: dir)
        XCTAssertNotEqual(export.code, 0)
        XCTAssertTrue(
            export.stderr.contains("cannot be written as LlamaForCausalLM")
                && export.stderr.contains("normalization LayerNorm") && export.stderr.contains("no swiglu"),
            export.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("hf").path))
    }
}

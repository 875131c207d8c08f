// HFExportTokenizerTests.swift — `convert-checkpoint --to hf` writes what Hugging Face needs to use
// the export as it is: tokenizer files (vocab.json, merges.txt, tokenizer_config.json,
// special_tokens_map.json) and generation_config.json, for a byte-level model trained here and for
// a GPT-2 BPE model whose config names its files; without readable files it says so. With torch and
// transformers installed, AutoTokenizer and pipeline("text-generation") on the export give GPT-2's
// or the byte-level ids and the same greedy text as `megatron generate` (Tests/Scripts/hf_generate_check.py).
import Foundation
import TestSupport
import XCTest

final class HFExportTokenizerTests: XCTestCase {
    let fixture = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_gpt2_tiny")

    /// hf_generate_check.py's JSON result, or nil when torch/transformers are not installed.
    func transformersCheck(_ dir: URL, export: String, prompts: [String], newTokens: Int, encode: [String]) throws
        -> [String: Any]?
    {
        let script = CLI.repoRoot.appendingPathComponent("Tests/Scripts/hf_generate_check.py").path
        let args =
            [script, export, "--new-tokens", "\(newTokens)"] + prompts.flatMap { ["--prompt", $0] }
            + encode.flatMap { ["--encode", $0] }
        let r = try CLI.run(
            ["python3"] + args, in: dir, program: "/usr/bin/env", environment: ["PYTHONWARNINGS": "ignore"])
        if r.code == 3 { return nil }
        XCTAssertEqual(r.code, 0, r.stderr)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").last)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    func files(_ url: URL) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: url.path).sorted()) ?? []
    }

    func testByteLevelModelTrainedHereExportsItsTokenizer() throws {
        let dir = CLI.scratch("hf-export-bytes")
        let train = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "150", "--save", "ckpt",
                "--save-interval", "150", "--num-threads", "2", "--log-interval", "50",
            ], in: dir)
        XCTAssertEqual(train.code, 0, train.stderr)
        let prompts = ["The ", "Licensed under"]
        var ours: [String] = []
        for prompt in prompts {
            let g = try CLI.run(
                [
                    "generate", "--load", "ckpt", "--prompt", prompt, "--temperature", "0", "--tokens-to-generate",
                    "24", "--output", "out.jsonl", "--ignore-eod",
                ], in: dir)
            XCTAssertEqual(g.code, 0, g.stderr)
            XCTAssertTrue(g.stdout.hasPrefix(prompt), "the prompt and its continuation are streamed: \(g.stdout)")
            ours.append(try XCTUnwrap(CLI.jsonLines(dir.appendingPathComponent("out.jsonl")).first?["text"] as? String))
        }
        let r = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "export"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let export = dir.appendingPathComponent("export")
        XCTAssertEqual(
            files(export),
            [
                "config.json", "generation_config.json", "merges.txt", "model.safetensors", "special_tokens_map.json",
                "tokenizer_config.json", "vocab.json",
            ])
        let vocab = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: export.appendingPathComponent("vocab.json")))
                as? [String: Int])
        XCTAssertEqual(vocab.count, 257)
        XCTAssertEqual(vocab["<|endoftext|>"], 256)
        XCTAssertEqual(vocab["Ġ"], 32, "GPT-2's byte-to-unicode character for the space byte")
        XCTAssertEqual(vocab["A"], 65)
        let generation = try XCTUnwrap(
            JSONSerialization.jsonObject(
                with: Data(contentsOf: export.appendingPathComponent("generation_config.json")))
                as? [String: Int])
        XCTAssertEqual(generation["eos_token_id"], 256)
        guard
            let hf = try transformersCheck(
                dir, export: export.path, prompts: prompts, newTokens: 24, encode: ["Hello world"])
        else { throw XCTSkip("torch or transformers not installed: the files were checked, not loaded") }
        XCTAssertEqual((hf["encoded"] as? [[Int]])?.first, Array("Hello world".utf8).map(Int.init))
        XCTAssertEqual(hf["generated"] as? [String], ours, "transformers' greedy text equals megatron generate's")
    }

    func testGPT2BPEExportCarriesTheVocabularyAndMergesItsConfigNames() throws {
        let shared = CLI.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data/tokenizers/gpt2")
        guard FileManager.default.fileExists(atPath: shared.appendingPathComponent("vocab.json").path) else {
            throw XCTSkip("needs ../shared/data/tokenizers/gpt2 (GPT-2's vocab.json and merges.txt)")
        }
        let dir = CLI.scratch("hf-export-bpe")
        // Without tokenizer files the export says what is missing.
        let plain = try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "plain"], in: dir)
        XCTAssertEqual(plain.code, 0, plain.stderr)
        let bare = try CLI.run(["convert-checkpoint", "--load", "plain", "--to", "hf", "bare"], in: dir)
        XCTAssertEqual(bare.code, 0, bare.stderr)
        XCTAssertTrue(bare.stdout.contains("no tokenizer files written"), bare.stdout)
        XCTAssertEqual(files(dir.appendingPathComponent("bare")), ["config.json", "model.safetensors"])
        // A Hugging Face directory with GPT-2's files: the import records them, the export carries them.
        let source = dir.appendingPathComponent("source")
        try FileManager.default.copyItem(at: fixture, to: source)
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(
                at: shared.appendingPathComponent(name), to: source.appendingPathComponent(name))
        }
        let imported = try CLI.run(["convert-checkpoint", "--from", "hf", "source", "--save", "ckpt"], in: dir)
        XCTAssertEqual(imported.code, 0, imported.stderr)
        let g = try CLI.run(
            [
                "generate", "--load", "ckpt", "--prompt", "It was", "--temperature", "0", "--tokens-to-generate", "16",
                "--output", "out.jsonl",
            ], in: dir)
        XCTAssertEqual(g.code, 0, "the imported checkpoint generates without tokenizer flags: \(g.stderr)")
        let ours = try XCTUnwrap(CLI.jsonLines(dir.appendingPathComponent("out.jsonl")).first?["text"] as? String)
        let r = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "export"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let export = dir.appendingPathComponent("export")
        XCTAssertEqual(
            try Data(contentsOf: export.appendingPathComponent("merges.txt")),
            try Data(contentsOf: shared.appendingPathComponent("merges.txt")))
        guard
            let hf = try transformersCheck(
                dir, export: export.path, prompts: ["It was"], newTokens: 16, encode: ["Hello world"])
        else { throw XCTSkip("torch or transformers not installed: the files were checked, not loaded") }
        XCTAssertEqual((hf["encoded"] as? [[Int]])?.first, [15496, 995], "GPT-2's ids for 'Hello world'")
        XCTAssertEqual(hf["generated"] as? [String], [ours])
    }
}

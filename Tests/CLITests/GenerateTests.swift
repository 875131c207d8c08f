// GenerateTests.swift — `megatron generate` on the committed tiny GPT-2 (imported from its Hugging
// Face files): greedy decoding equals transformers' greedy `generate` token for token
// (generate.json, scripts/make_generation_fixture.py) on one rank, at t = 2 × p = 2 and at p = 2
// with virtual stages; the KV cache gives what recomputing the whole prefix gives (every token's
// log-probability against a full forward pass of the training model); sampling with a seed is the
// same on every grid; bad options are refused naming them. The prompts are GPT-2 BPE text, so the
// tests need ../shared's GPT-2 vocabulary (skipped with the reason when it is absent).
import Checkpoint
import Foundation
import MegatronCore
import Tensor
import TestSupport
import XCTest

final class GenerateTests: XCTestCase {
    let fixture = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_gpt2_tiny")

    struct Case { let prompt: String; let promptTokens: [Int]; let tokens: [Int] }

    var expected: [Case] {
        get throws {
            let data = try Data(contentsOf: fixture.appendingPathComponent("generate.json"))
            let root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            return try XCTUnwrap(root["cases"] as? [[String: Any]]).map {
                Case(
                    prompt: $0["prompt"] as! String, promptTokens: $0["prompt_tokens"] as! [Int],
                    tokens: $0["tokens"] as! [Int])
            }
        }
    }

    /// The GPT-2 tokenizer flags, or a skip when ../shared is absent.
    func tokenizerFlags() throws -> [String] {
        let dir = CLI.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data/tokenizers/gpt2")
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("vocab.json").path) else {
            throw XCTSkip("needs ../shared/data/tokenizers/gpt2 (GPT-2's vocab.json and merges.txt) for the prompts")
        }
        return [
            "--tokenizer-type", "GPT2BPETokenizer", "--vocab-file", dir.appendingPathComponent("vocab.json").path,
            "--merge-file", dir.appendingPathComponent("merges.txt").path,
        ]
    }

    /// A scratch directory holding the imported fixture (`ckpt`) and the prompts (`prompts.txt`).
    func prepare(_ name: String) throws -> URL {
        let dir = CLI.scratch(name)
        let r = try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        try (try expected.map(\.prompt).joined(separator: "\n") + "\n").write(
            to: dir.appendingPathComponent("prompts.txt"), atomically: true, encoding: .utf8)
        return dir
    }

    func generate(
        _ dir: URL, ranks: Int = 1, output: String, flags: [String], grid: [String] = []
    ) throws -> [[String: Any]] {
        let args =
            ["generate", "--load", "ckpt", "--prompts-file", "prompts.txt", "--output", output] + flags + grid
            + ["--num-threads", "1"]
        let r = ranks == 1 ? try CLI.run(args, in: dir) : try CLI.mpirun(ranks: ranks, args, in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("decoding:"), "prints the decoding rate: \(r.stderr)")
        return try CLI.jsonLines(dir.appendingPathComponent(output))
    }

    func testGreedyEqualsTransformersAndTheKVCacheEqualsRecomputation() throws {
        let flags = try tokenizerFlags()
        let dir = try prepare("generate-greedy")
        let cases = try expected
        // Batches of 3 and 2 prompts of different lengths: left-aligned, decoded together.
        let lines = try generate(
            dir, output: "greedy.jsonl",
            flags: flags + ["--temperature", "0", "--tokens-to-generate", "40", "--max-batch", "3", "--logprobs"])
        guard lines.count == cases.count, cases.count == 5 else {
            return XCTFail("\(lines.count) answers for \(cases.count) prompts (the fixture has 5)")
        }
        for (line, want) in zip(lines, cases) {
            XCTAssertEqual(line["prompt_tokens"] as? [Int], want.promptTokens, want.prompt)
            XCTAssertEqual(line["tokens"] as? [Int], want.tokens, "transformers' greedy tokens for \(want.prompt)")
        }
        // Recompute: the training model's full forward over each whole sequence scores every token as
        // the KV-cache run did, and each generated token is its arg-max.
        for line in lines {
            let prompt = try XCTUnwrap(line["prompt_tokens"] as? [Int]), new = try XCTUnwrap(line["tokens"] as? [Int])
            let logprobs = try XCTUnwrap(line["logprobs"] as? [Double])
            let ids = (prompt + new).map(Int32.init)
            XCTAssertEqual(logprobs.count, ids.count - 1, "one log-probability per token after the first")
            let (losses, isArgmax) = try trainingForwardScores(
                checkpoint: dir.appendingPathComponent("ckpt"), ids: ids, vocab: 50257)
            for i in 0..<(ids.count - 1) {
                XCTAssertEqual(logprobs[i], -losses[i], accuracy: 1e-4, "token \(i + 1) of \(line["prompt"] ?? "")")
                if i + 1 >= prompt.count { XCTAssertTrue(isArgmax[i], "generated token \(i + 1) is the arg-max") }
            }
        }
    }

    func testEveryGridGivesTheSameTokensGreedyAndSampled() throws {
        let flags = try tokenizerFlags()
        let dir = try prepare("generate-grids")
        let cases = try expected
        let greedy = flags + ["--temperature", "0", "--tokens-to-generate", "40", "--max-batch", "2"]
        let grids: [[String]] = [
            ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"],
            [
                "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2",
                "--num-layers-per-virtual-pipeline-stage", "1",
            ],
        ]
        for (k, grid) in grids.enumerated() {
            let lines = try generate(dir, ranks: 4, output: "greedy\(k).jsonl", flags: greedy, grid: grid)
            XCTAssertEqual(lines.map { $0["tokens"] as? [Int] ?? [] }, cases.map(\.tokens), "grid \(grid)")
        }
        let sampled =
            flags + ["--temperature", "0.9", "--top-p", "0.95", "--seed", "11", "--tokens-to-generate", "24"]
        let one = try generate(dir, output: "sampled1.jsonl", flags: sampled)
        let four = try generate(dir, ranks: 4, output: "sampled4.jsonl", flags: sampled, grid: grids[0])
        XCTAssertEqual(one.map { $0["tokens"] as? [Int] ?? [] }, four.map { $0["tokens"] as? [Int] ?? [] })
        XCTAssertNotEqual(
            one.map { $0["tokens"] as? [Int] ?? [] }, cases.map(\.tokens), "sampling differs from greedy decoding")
        let other = try generate(dir, output: "sampled-seed.jsonl", flags: sampled.map { $0 == "11" ? "12" : $0 })
        XCTAssertNotEqual(one.map { $0["tokens"] as? [Int] ?? [] }, other.map { $0["tokens"] as? [Int] ?? [] })
    }

    func testBadOptionsAreRefusedNamingThem() throws {
        let flags = try tokenizerFlags()
        let dir = CLI.scratch("generate-bad")
        let r0 = try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir)
        XCTAssertEqual(r0.code, 0, r0.stderr)
        let both = try CLI.run(
            ["generate", "--load", "ckpt", "--prompt", "hi", "--top-k", "5", "--top-p", "0.9"] + flags, in: dir)
        XCTAssertEqual(both.code, 2)
        XCTAssertTrue(both.stderr.contains("top_k and top_p cannot both be set"), both.stderr)
        let long = try CLI.run(
            ["generate", "--load", "ckpt", "--prompt", "hi", "--tokens-to-generate", "1000"] + flags, in: dir)
        XCTAssertEqual(long.code, 2)
        XCTAssertTrue(long.stderr.contains("max_position_embeddings 256"), long.stderr)
        // The largest count there is: refused the same way, not an arithmetic trap.
        let huge = try CLI.run(
            ["generate", "--load", "ckpt", "--prompt", "hi", "--tokens-to-generate", "\(Int.max)"] + flags, in: dir)
        XCTAssertEqual(huge.code, 2, huge.stderr)
        XCTAssertTrue(
            huge.stderr.contains("needs more positions than the model's max_position_embeddings 256"), huge.stderr)
        let none = try CLI.run(["generate", "--load", "nowhere", "--prompt", "hi"], in: dir)
        XCTAssertEqual(none.code, 2)
        XCTAssertTrue(none.stderr.contains("nowhere"), none.stderr)
    }
}

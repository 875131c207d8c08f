// ImportedModelChecks.swift — what the tests of imported Hugging Face models and their tokenizers
// share: greedy `generate` from a checkpoint on one rank and at t = 2 × p = 2 (each run's output
// lines, or checked against transformers' ids, tokens and text), an imported model's next-token
// scores held against transformers' (then with one option changed, to show that the check can fail
// without it), a fixture's import, scores, generation and bit-for-bit export in one, and
// `preprocess-data` then `train` with a tokenizer given by flags.
import Checkpoint
import Foundation
import MegatronCore
import TestSupport
import XCTest

/// A text prompt and what transformers made of it (expected.json's "cases"): its ids, the greedy
/// tokens after them, and their text — the whole decoded output ("text") or the new tokens' alone
/// ("continuation").
struct PromptCase {
    let prompt: String, ids: [Int], generated: [Int], text: String

    static func load(_ expected: URL, textKey: String) throws -> [PromptCase] {
        let root = try CLI.jsonObject(expected)
        return try XCTUnwrap(root["cases"] as? [[String: Any]]).map {
            PromptCase(
                prompt: try XCTUnwrap($0["prompt"] as? String), ids: try XCTUnwrap($0["ids"] as? [Int]),
                generated: try XCTUnwrap($0["generated"] as? [Int]), text: try XCTUnwrap($0[textKey] as? String))
        }
    }
}

extension XCTestCase {
    /// Writes `cases`' prompts to prompts.jsonl, generates from `dir/ckpt` on one rank and at
    /// t = 2 × p = 2, and checks each run names `tokenizer` and gives every case's ids, tokens and
    /// text (`wholeText`: the case's text is the prompt's followed by the generated text).
    func assertGeneratesAsTransformers(_ cases: [PromptCase], tokenizer: String, wholeText: Bool, in dir: URL) throws {
        XCTAssertEqual(cases.count, 3, "the fixtures hold three prompts")
        try cases.map {
            String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": $0.prompt]), as: UTF8.self)
        }.joined(separator: "\n").write(
            to: dir.appendingPathComponent("prompts.jsonl"), atomically: true, encoding: .utf8)
        for (name, lines, output) in try generateOnOneRankAndT2P2(tokens: 12, in: dir) {
            XCTAssertTrue(output.contains(tokenizer), output)
            XCTAssertEqual(lines.count, cases.count, name)
            for (line, c) in zip(lines, cases) {
                let text = line["text"] as? String ?? "?"
                XCTAssertEqual(line["prompt_tokens"] as? [Int], c.ids, "\(name): ids of \(c.prompt)")
                XCTAssertEqual(line["tokens"] as? [Int], c.generated, "\(name): tokens after \(c.prompt)")
                XCTAssertEqual(wholeText ? c.prompt + text : text, c.text, "\(name): text after \(c.prompt)")
            }
        }
    }

    /// Runs `generate --load ckpt --prompts-file prompts.jsonl` greedily for `tokens` tokens (eod
    /// ignored, one thread) in `dir`, on one rank and at t = 2 × p = 2; returns each run's name,
    /// output lines and stdout + stderr.
    func generateOnOneRankAndT2P2(tokens: Int, in dir: URL) throws -> [(
        name: String, lines: [[String: Any]], output: String
    )] {
        try [
            ("one", 1, [String]()),
            ("t2p2", 4, ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"]),
        ].map { name, ranks, grid in
            let args =
                [
                    "generate", "--load", "ckpt", "--prompts-file", "prompts.jsonl", "--output", "\(name).jsonl",
                    "--temperature", "0", "--tokens-to-generate", "\(tokens)", "--ignore-eod", "--num-threads", "1",
                ] + grid
            let g = ranks == 1 ? try CLI.run(args, in: dir) : try CLI.mpirun(ranks: ranks, args, in: dir)
            XCTAssertEqual(g.code, 0, "\(name): \(g.stderr)")
            return (name, try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl")), g.stdout + g.stderr)
        }
    }

    /// Checks every next-token log-probability of `sequences` under the GPT in `checkpoint` against
    /// `logprob` within 1e-4, and returns the largest difference with the config changed by
    /// `without` (which the caller expects to be large; 0 without it).
    @discardableResult
    func assertScoresMatch(
        checkpoint: URL, sequences: [[Int]], logprob: [[Double]], vocab: Int,
        without: ((inout TrainingConfig) -> Void)? = nil
    ) throws -> Double {
        XCTAssertEqual(sequences.count, logprob.count)
        var changedError = 0.0
        for (k, sequence) in sequences.enumerated() {
            let tokens = sequence.map(Int32.init)
            let (losses, _) = try trainingForwardScores(checkpoint: checkpoint, ids: tokens, vocab: vocab)
            for i in 0..<(sequence.count - 1) {
                XCTAssertEqual(-losses[i], logprob[k][i], accuracy: 1e-4, "sequence \(k) position \(i)")
            }
            guard let without else { continue }
            let (changed, _) = try trainingForwardScores(
                checkpoint: checkpoint, ids: tokens, vocab: vocab, adjust: without)
            changedError = max(changedError, zip(changed, logprob[k]).map { abs(-$0 - $1) }.max() ?? 0)
        }
        return changedError
    }

    /// A Llama-family fixture made by transformers (Tests/CLITests/Fixtures/`fixture`, vocabulary 61,
    /// expected.json with two sequences of `length` tokens and a 16-token greedy generation) imported
    /// into `dir`/ckpt: every next-token log-probability within 1e-4 of transformers' (the model
    /// changed by `without` misses by more than 1e-3), the greedy tokens on one rank and at t = 2 × p = 2,
    /// and the export to `dir`/hf written as `architecture` with every tensor bit for bit. Returns the
    /// export's config.json.
    func assertImportScoresGeneratesAndExports(
        fixture name: String, length: Int, architecture: String, in dir: URL,
        without: (what: String, change: (inout TrainingConfig) -> Void)
    ) throws -> [String: Any] {
        let fixture = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/\(name)")
        let r = try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let root = try CLI.jsonObject(fixture.appendingPathComponent("expected.json"))
        let ids = try XCTUnwrap(root["input_ids"] as? [[Int]])
        let logprob = try XCTUnwrap(root["next_token_logprob"] as? [[Double]])
        guard ids.count == 2, logprob.count == 2, ids[0].count == length else {
            XCTFail("expected.json holds \(ids.count) sequences (the fixture has 2 of \(length) tokens)")
            return [:]
        }
        let changedError = try assertScoresMatch(
            checkpoint: dir.appendingPathComponent("ckpt"), sequences: ids, logprob: logprob, vocab: 61,
            without: without.change)
        XCTAssertGreaterThan(changedError, 1e-3, "\(without.what) must not pass the same check")
        let prompt = try XCTUnwrap(root["prompt_tokens"] as? [Int]), want = try XCTUnwrap(root["generated"] as? [Int])
        XCTAssertEqual(want.count, 16)
        try "{\"prompt_tokens\": \(prompt)}".write(
            to: dir.appendingPathComponent("prompts.jsonl"), atomically: true, encoding: .utf8)
        for (grid, lines, _) in try generateOnOneRankAndT2P2(tokens: 16, in: dir) {
            XCTAssertEqual(lines.first?["tokens"] as? [Int], want, "\(grid): greedy tokens")
        }
        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        XCTAssertTrue(export.stdout.contains(architecture), export.stdout)
        let original = try Safetensors.read(fixture.appendingPathComponent("model.safetensors").path)
        let written = try Safetensors.read(dir.appendingPathComponent("hf/model.safetensors").path)
        XCTAssertEqual(Set(written.keys), Set(original.keys))
        for (tensor, t) in original { XCTAssertEqual(written[tensor]?.values, t.values, "\(tensor) bit for bit") }
        return try CLI.jsonObject(dir.appendingPathComponent("hf/config.json"))
    }

    /// Runs `preprocess-data --append-eod` with `tokenizer` (flags) on two short documents written 40
    /// times, checks each document is stored as `encode(document)` followed by `eod`, then trains
    /// llama-tiny on the result for 4 iterations with the same flags; returns the training stdout.
    func assertPreprocessAndTrain(tokenizer: [String], encode: ([UInt8]) -> [Int32], eod: Int32, in dir: URL) throws
        -> String
    {
        let docs = ["First Citizen:\nBefore we proceed any further, hear me speak.", "All:\nSpeak, speak."]
        let jsonl = try docs.map {
            String(decoding: try JSONSerialization.data(withJSONObject: ["text": $0]), as: UTF8.self)
        }.joined(separator: "\n")
        try (String(repeating: jsonl + "\n", count: 40)).write(
            to: dir.appendingPathComponent("docs.jsonl"), atomically: true, encoding: .utf8)
        let p = try CLI.run(
            ["preprocess-data", "--input", "docs.jsonl", "--append-eod", "--output-prefix", "docs", "--workers", "1"]
                + tokenizer, in: dir)
        XCTAssertEqual(p.code, 0, p.stderr)
        let dataset = try IndexedDataset(prefix: dir.appendingPathComponent("docs_text_document").path)
        XCTAssertEqual(dataset.sequenceCount, 80)
        for (k, doc) in docs.enumerated() {
            var ids = [Int32](repeating: -1, count: dataset.length(k))
            ids.withUnsafeMutableBufferPointer {
                dataset.read(sequence: k, offset: 0, count: $0.count, into: $0.baseAddress!)
            }
            XCTAssertEqual(ids, encode(Array(doc.utf8)) + [eod], "document \(k)")
        }
        let train = try CLI.run(
            [
                "train", "--config", CLI.config("llama-tiny.json"), "--data-path", "docs_text_document", "--split",
                "90,10,0", "--train-iters", "4", "--seq-length", "32", "--max-position-embeddings", "32",
            ] + tokenizer, in: dir)
        XCTAssertEqual(train.code, 0, train.stderr)
        return train.stdout
    }
}

// ImportedModelChecks.swift — what the tests of imported Hugging Face models and their tokenizers
// share: greedy `generate` from a checkpoint on one rank and at t = 2 × p = 2 (each run's output
// lines, or checked against transformers' ids, tokens and text), an imported model's next-token
// scores held against transformers' (then with one option changed, to show that the check can fail
// without it), and `preprocess-data` then `train` with a tokenizer given by flags.
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

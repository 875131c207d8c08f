// TikTokenizerCLITests.swift — TikTokenizer end to end with the built binary, on the committed rank file
// (Tests/MegatronCoreTests/Fixtures/tiktoken, scripts/make_tiktoken_fixture.py): `preprocess-data` with
// Megatron's flags (`--tokenizer-type TikTokenizer --tokenizer-model F --tiktoken-pattern v2
// --vocab-size N`) writes each document's ids + </s>, `train` reads them with the same flags and
// saves, and `generate` decodes text with the tokenizer the checkpoint's config names; a missing
// pattern and a vocab_size the file cannot fill are refused naming the key.
import Foundation
import MegatronCore
import TestSupport
import XCTest

final class TikTokenizerCLITests: XCTestCase {
    let rankFile = CLI.repoRoot.appendingPathComponent("Tests/MegatronCoreTests/Fixtures/tiktoken/vocab.json")

    func testPreprocessTrainAndGenerateWithMegatronsFlags() throws {
        let dir = CLI.scratch("tiktoken-preprocess")
        let flags = [
            "--tokenizer-type", "TikTokenizer", "--tokenizer-model", rankFile.path, "--tiktoken-pattern", "v2",
            "--vocab-size", "2160",
        ]
        let tok = try TikTokenizer(path: rankFile.path, settings: TikTokenSettings(pattern: .v2, vocabSize: 2160))
        let stdout = try assertPreprocessAndTrain(tokenizer: flags, encode: tok.encode, eod: 2, in: dir)
        XCTAssertTrue(stdout.contains("vocab 2160 (padded 2176)"), stdout)
        let train = try CLI.run(
            [
                "train", "--config", CLI.config("llama-tiny.json"), "--data-path", "docs_text_document", "--split",
                "90,10,0", "--train-iters", "2", "--seq-length", "32", "--max-position-embeddings", "32", "--save",
                "ckpt",
            ] + flags, in: dir)
        XCTAssertEqual(train.code, 0, train.stderr)
        let generate = try CLI.run(
            [
                "generate", "--load", "ckpt", "--prompt", "First Citizen:", "--temperature", "0",
                "--tokens-to-generate", "4", "--ignore-eod", "--output", "out.jsonl",
            ], in: dir)
        XCTAssertEqual(generate.code, 0, generate.stderr)
        let line = try XCTUnwrap(try CLI.jsonLines(dir.appendingPathComponent("out.jsonl")).first)
        let prompt = try XCTUnwrap(line["prompt_tokens"] as? [Int]).map(Int32.init)
        XCTAssertEqual(prompt, tok.encode(Array("First Citizen:".utf8)), "\(line)")
        let ids = try XCTUnwrap(line["tokens"] as? [Int]).map(Int32.init)
        XCTAssertEqual(ids.count, 4, "\(line)")
        XCTAssertEqual(line["text"] as? String, String(decoding: tok.decode(ids), as: UTF8.self), "\(line)")
    }

    func testMissingPatternOrShortFileIsRefusedByKey() throws {
        let dir = CLI.scratch("tiktoken-refuse")
        try Data(#"{"text": "hello"}"#.utf8).write(to: dir.appendingPathComponent("d.jsonl"))
        let noPattern = try CLI.run(
            [
                "preprocess-data", "--input", "d.jsonl", "--output-prefix", "d", "--tokenizer-type", "TikTokenizer",
                "--tokenizer-model", rankFile.path,
            ], in: dir)
        XCTAssertEqual(noPattern.code, 2, noPattern.stderr)
        XCTAssertTrue(noPattern.stderr.contains("tiktoken_pattern"), noPattern.stderr)
        let short = try CLI.run(
            [
                "train", "--config", CLI.config("llama-tiny.json"), "--tokenizer-type", "TikTokenizer",
                "--tokenizer-model", rankFile.path, "--tiktoken-pattern", "v1", "--train-iters", "1",
            ], in: dir)
        XCTAssertNotEqual(short.code, 0)
        XCTAssertTrue(
            short.stderr.contains("vocab_size") && short.stderr.contains("set vocab_size to at most 2212"),
            short.stderr)
    }
}

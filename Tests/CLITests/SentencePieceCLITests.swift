// SentencePieceCLITests.swift — the SentencePiece tokenizers end to end with the built binary: a
// Hugging Face Llama with a tokenizer.model (Tests/CLITests/Fixtures/hf_llama_sp, made by
// scripts/make_hf_llama_fixture.py) imports as Llama2Tokenizer, and `generate` from its text
// prompts gives transformers' ids, greedy tokens and text, on one rank and at t = 2 × p = 2; the
// export carries tokenizer.model and LlamaTokenizer's files (reloaded by transformers when it is
// installed); `preprocess-data` with Llama2Tokenizer writes each document as its BOS and the
// tokenizer's ids, and `train` reads that data; BERT trains with SentencePieceTokenizer on
// sentence-split data, t = 2 equal to one rank; a bad or missing tokenizer_model is refused by key.
import Foundation
import MegatronCore
import TestSupport
import XCTest

final class SentencePieceCLITests: XCTestCase {
    let fixture = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_llama_sp")
    let spModel = CLI.repoRoot.appendingPathComponent("Tests/MegatronCoreTests/Fixtures/sentencepiece/llama_bpe.model")

    func testLlamaWithTokenizerGeneratesTransformersTextOnAGrid() throws {
        let dir = CLI.scratch("sp-llama-generate")
        let r = try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("vocabulary 1000, positions 64, tokenizer Llama2Tokenizer"), r.stdout)
        try assertGeneratesAsTransformers(
            PromptCase.load(fixture.appendingPathComponent("expected.json"), textKey: "text"),
            tokenizer: "Llama2Tokenizer", wholeText: true, in: dir)
    }

    func testExportCarriesTheTokenizer() throws {
        let dir = CLI.scratch("sp-llama-export")
        XCTAssertEqual(
            try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir).code, 0)
        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        XCTAssertFalse(export.stdout.contains("no tokenizer files"), export.stdout)
        XCTAssertEqual(
            try Data(contentsOf: dir.appendingPathComponent("hf/tokenizer.model")),
            try Data(contentsOf: fixture.appendingPathComponent("tokenizer.model")))
        let config = try CLI.jsonObject(dir.appendingPathComponent("hf/tokenizer_config.json"))
        XCTAssertEqual(config["tokenizer_class"] as? String, "LlamaTokenizer")
        XCTAssertEqual(config["add_bos_token"] as? Bool, true)
        XCTAssertEqual(config["bos_token"] as? String, "<s>")
        try CLI.pythonCheck(
            "make_hf_llama_fixture.py", ["--check-tokenizer", "hf"], in: dir,
            expect: "3 of 3 prompts give the same ids",
            skipped: "transformers is not installed; its reading of the exported tokenizer not checked")
    }

    /// A tokenizer.model whose pieces are not the model's vocabulary is not taken, and the import says why.
    func testATokenizerOfAnotherVocabularyIsLeftOutSayingWhy() throws {
        let dir = CLI.scratch("sp-llama-mismatch")
        let hf = dir.appendingPathComponent("hf")
        try FileManager.default.copyItem(
            at: CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_llama_tiny"), to: hf)
        try FileManager.default.copyItem(at: spModel, to: hf.appendingPathComponent("tokenizer.model"))
        let r = try CLI.run(["convert-checkpoint", "--from", "hf", "hf", "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("tokenizer NullTokenizer"), r.stdout)
        XCTAssertTrue(r.stdout.contains("has 1000 pieces where config.json's vocab_size is 61"), r.stdout)
    }

    func testPreprocessAndTrainWithLlama2Tokenizer() throws {
        let tok = try SentencePieceTokenizer(modelFile: spModel.path, flavour: .llama2)
        XCTAssertEqual(tok.encode(Array("x".utf8)).first, 1, "each document starts with the BOS")
        let stdout = try assertPreprocessAndTrain(
            tokenizer: ["--tokenizer-type", "Llama2Tokenizer", "--tokenizer-model", spModel.path],
            encode: tok.encode, eod: tok.eod, in: CLI.scratch("sp-preprocess"))
        XCTAssertTrue(stdout.contains("vocab 1000 (padded 1024)"), stdout)
    }

    /// BERT with Megatron's SentencePieceTokenizer: sentence-split data written by preprocess-data,
    /// the added <CLS> <SEP> <MASK> <PAD> in the vocabulary (1,005 ids), and t = 2 with sequence
    /// parallelism gives one rank's losses.
    func testBertTrainsWithSentencePieceTokenizerOnAGrid() throws {
        let dir = CLI.scratch("sp-bert")
        let lines = (0..<60).map { k in
            "Sentence \(k) of the play. Now is the winter of our discontent \(k % 7). Made glorious summer by this sun."
        }
        try lines.joined(separator: "\n\n").write(
            to: dir.appendingPathComponent("docs.txt"), atomically: true, encoding: .utf8)
        let p = try CLI.run(
            [
                "preprocess-data", "--input", "docs.txt", "--tokenizer-type", "SentencePieceTokenizer",
                "--tokenizer-model", spModel.path, "--split-sentences", "--output-prefix", "bert", "--workers", "1",
            ], in: dir)
        XCTAssertEqual(p.code, 0, p.stderr)
        let common = [
            "train", "--config", CLI.config("bert-tiny.json"), "--tokenizer-type", "SentencePieceTokenizer",
            "--tokenizer-model", spModel.path, "--data-path", "bert_text_sentence", "--split", "90,10,0",
            "--train-iters", "10", "--log-interval", "1", "--eval-iters", "0", "--hidden-dropout", "0",
            "--attention-dropout", "0", "--num-threads", "1",
        ]
        let one = try CLI.run(common + ["--metrics-file", "one.jsonl"], in: dir)
        XCTAssertEqual(one.code, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("vocab 1005"), one.stdout)
        let t2 = try CLI.mpirun(
            ranks: 2,
            common + ["--metrics-file", "t2.jsonl", "--tensor-model-parallel-size", "2", "--sequence-parallel"],
            in: dir)
        XCTAssertEqual(t2.code, 0, t2.stderr)
        assertLossesMatch(
            try CLI.losses(dir, "t2"), try CLI.losses(dir, "one"), count: 10, relativeTolerance: 1e-5, "t2")
    }

    func testBadTokenizerModelIsRefusedByKey() throws {
        let dir = CLI.scratch("sp-refuse")
        try Data("not a model".utf8).write(to: dir.appendingPathComponent("bad.model"))
        for (args, needle) in [
            (["--tokenizer-type", "Llama2Tokenizer"], "tokenizer_model"),
            (["--tokenizer-type", "Llama2Tokenizer", "--tokenizer-model", "absent.model"], "tokenizer_model"),
            (["--tokenizer-type", "Llama2Tokenizer", "--tokenizer-model", "bad.model"], "bad.model"),
            (["--tokenizer-model", spModel.path], "tokenizer_type"),
        ] {
            let r = try CLI.run(
                ["train", "--config", CLI.config("llama-tiny.json"), "--train-iters", "1"] + args, in: dir)
            XCTAssertNotEqual(r.code, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(needle), "\(args): \(r.stderr)")
        }
    }
}

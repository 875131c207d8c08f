// MegatronExampleLinesTests.swift — Megatron-LM's own GPT launch scripts, their arguments copied as
// written (examples/gpt3/train_gpt3_857m_distributed.sh at t = 8, and the older
// examples/pretrain_gpt.sh with --data-impl, --distributed-backend, --checkpoint-activations), with
// the script's placeholders filled in (a GPT-2 BPE dataset made by preprocess-data, a checkpoint
// and a TensorBoard directory). Only size flags are appended (a later flag wins, as in Megatron), so
// the 857M and 345M models become tiny and three iterations finish in a test: every flag of the
// scripts is parsed and acted on as written. Each run trains, logs the ignored flags on one line,
// picks GPT-2 BPE from the vocab and merge files, starts from scratch in the empty --load directory
// with a warning, writes TensorBoard events and saves a checkpoint the next run resumes from.
import Foundation
import TestSupport
import XCTest

final class MegatronExampleLinesTests: XCTestCase {
    var shared: URL? {
        let s = CLI.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
        return FileManager.default.fileExists(atPath: s.path) ? s : nil
    }

    /// Appended to each script's arguments: the model and the run made small, nothing else.
    let small = [
        "--num-layers", "2", "--hidden-size", "64", "--seq-length", "64", "--max-position-embeddings", "64",
        "--micro-batch-size", "1", "--global-batch-size", "8", "--train-iters", "3", "--lr-decay-iters", "3",
        "--log-interval", "1", "--eval-interval", "3", "--eval-iters", "1", "--save-interval", "3",
    ]

    func testMegatronsGPTExampleScriptsRunAsWritten() throws {
        guard let shared else { throw XCTSkip("../shared/data is absent: no GPT-2 vocabulary to run the scripts with") }
        let dir = CLI.scratch("megatron-examples")
        let vocab = shared.appendingPathComponent("tokenizers/gpt2/vocab.json").path
        let merges = shared.appendingPathComponent("tokenizers/gpt2/merges.txt").path
        let pre = try CLI.run(
            [
                "preprocess-data", "--input", shared.appendingPathComponent("lambada/lambada_test.jsonl").path,
                "--tokenizer-type", "GPT2BPETokenizer", "--vocab-file", vocab, "--merge-file", merges,
                "--append-eod", "--output-prefix", "lambada",
            ], in: dir)
        XCTAssertEqual(pre.code, 0, pre.stderr)
        let dataPath = "lambada_text_document"
        // examples/gpt3/train_gpt3_857m_distributed.sh: GPT_MODEL_ARGS, TRAINING_ARGS,
        // MODEL_PARALLEL_ARGS, DATA_ARGS, EVAL_AND_LOGGING_ARGS.
        let gpt3 = [
            "--num-layers", "24", "--hidden-size", "1024", "--num-attention-heads", "16", "--seq-length", "2048",
            "--max-position-embeddings", "2048", "--attention-backend", "auto",
            "--micro-batch-size", "8", "--global-batch-size", "128", "--train-iters", "500000", "--weight-decay", "0.1",
            "--adam-beta1", "0.9", "--adam-beta2", "0.95", "--init-method-std", "0.006", "--clip-grad", "1.0",
            "--fp16", "--lr", "6.0e-5", "--lr-decay-style", "cosine", "--min-lr", "6.0e-6",
            "--lr-warmup-fraction", ".001", "--lr-decay-iters", "430000",
            "--tensor-model-parallel-size", "8", "--pipeline-model-parallel-size", "1",
            "--data-path", dataPath, "--vocab-file", vocab, "--merge-file", merges, "--split", "949,50,1",
            "--log-interval", "100", "--save-interval", "10000", "--eval-interval", "1000", "--save", "ck-gpt3",
            "--load", "ck-gpt3", "--eval-iters", "10", "--tensorboard-dir", "tb-gpt3",
        ]
        // examples/pretrain_gpt.sh (the 345M model, one process).
        let pretrain = [
            "--num-layers", "24", "--hidden-size", "1024", "--num-attention-heads", "16", "--micro-batch-size", "4",
            "--global-batch-size", "8", "--seq-length", "1024", "--max-position-embeddings", "1024",
            "--train-iters", "500000", "--lr-decay-iters", "320000", "--save", "ck-345m", "--load", "ck-345m",
            "--data-path", dataPath, "--vocab-file", vocab, "--merge-file", merges, "--data-impl", "mmap",
            "--split", "949,50,1", "--distributed-backend", "nccl", "--lr", "0.00015", "--min-lr", "1.0e-5",
            "--lr-decay-style", "cosine", "--weight-decay", "1e-2", "--clip-grad", "1.0", "--lr-warmup-fraction",
            ".01", "--checkpoint-activations", "--log-interval", "100", "--save-interval", "10000",
            "--eval-interval", "1000", "--eval-iters", "10", "--fp16",
        ]
        for (name, ranks, args, ignored) in [
            ("gpt3", 8, gpt3, ["--attention-backend"]),
            ("345m", 1, pretrain, ["--data-impl", "--distributed-backend"]),
        ] {
            let line = ["train"] + args + small + ["--num-threads", "1"]
            let r = ranks == 1 ? try CLI.run(line, in: dir) : try CLI.mpirun(ranks: ranks, line, in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            let notes = r.stdout.split(separator: "\n").filter { $0.contains("ignored Megatron-LM arguments") }
            XCTAssertEqual(notes.count, 1, "\(name): one start-up line names the ignored flags: \(r.stdout)")
            for flag in ignored { XCTAssertTrue(notes.first?.contains(flag) ?? false, "\(name): \(flag) in \(notes)") }
            XCTAssertTrue(r.stdout.contains("tokenizer_type not given: GPT2BPETokenizer"), "\(name): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains("no checkpoint in ck-\(name)"), "\(name): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains("mixed precision: fp16"), "\(name): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains("iteration        3/       3"), "\(name): \(r.stdout)")
            let latest = try String(
                contentsOf: dir.appendingPathComponent("ck-\(name)/latest_checkpointed_iteration.txt"), encoding: .utf8)
            XCTAssertEqual(latest.trimmingCharacters(in: .whitespacesAndNewlines), "3", name)
            // The same line again resumes (Megatron's --save X --load X idiom) and, at train_iters, stops.
            let again = ranks == 1 ? try CLI.run(line, in: dir) : try CLI.mpirun(ranks: ranks, line, in: dir)
            XCTAssertEqual(again.code, 0, "\(name): \(again.stderr)")
            XCTAssertTrue(again.stdout.contains("loaded checkpoint from ck-\(name) at iteration 3"), again.stdout)
        }
        let events = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("tb-gpt3").path)
        XCTAssertTrue(events.contains { $0.hasPrefix("events.out.tfevents.") }, "\(events)")
    }
}

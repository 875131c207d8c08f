// ParallelConfigTests.swift — every grid rule (uneven splits and the zero-bubble schedule's
// included), checked on every rank before the first collective:
// at 4 ranks the job exits 2 within seconds with one message naming the keys and values — also
// when only some ranks find the error (ranks started with different configs).
import Foundation
import TestSupport
import XCTest

final class ParallelConfigTests: XCTestCase {
    func expectGridError(
        _ args: [String], ranks: Int = 4, mentions: [String], file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let dir = CLI.scratch("grid")
        let start = Date()
        let r = try CLI.mpirun(
            ranks: ranks, ["train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "2"] + args, in: dir)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(r.code, 2, "exit code; stderr: \(r.stderr)", file: file, line: line)
        XCTAssertLessThan(seconds, 20, "the job must end promptly", file: file, line: line)
        for m in mentions {
            XCTAssertTrue(r.stderr.contains(m), "stderr lacks '\(m)': \(r.stderr)", file: file, line: line)
        }
        XCTAssertEqual(
            r.stderr.components(separatedBy: "error (rank").count - 1, 1, "one message, not one per rank: \(r.stderr)",
            file: file, line: line)
        XCTAssertFalse(r.stdout.contains("iteration "), "no work may start", file: file, line: line)
    }

    func testWorldNotAMultipleOfTP() throws {
        try expectGridError(
            ["--tensor-model-parallel-size", "3"], mentions: ["'tensor_model_parallel_size'", "world size 4", "3"])
    }

    func testHeadsNotDivisibleByTP() throws {
        try expectGridError(
            ["--tensor-model-parallel-size", "4", "--num-attention-heads", "2", "--hidden-size", "64"],
            mentions: [
                "'num_attention_heads'", "'tensor_model_parallel_size'", "num_attention_heads 2",
                "try tensor_model_parallel_size 2",
            ])
    }

    func testFFNNotDivisibleByTP() throws {
        try expectGridError(
            ["--tensor-model-parallel-size", "4", "--ffn-hidden-size", "130"], mentions: ["'ffn_hidden_size'", "130"])
    }

    func testSequenceLengthNotDivisibleWithSequenceParallel() throws {
        try expectGridError(
            ["--tensor-model-parallel-size", "4", "--sequence-parallel", "--seq-length", "62"],
            mentions: ["'seq_length'", "'sequence_parallel'", "seq_length 62", "try seq_length 60"])
    }

    func testGlobalBatchNotAMultipleOfMicroBatchTimesDataParallel() throws {
        try expectGridError(
            ["--tensor-model-parallel-size", "2", "--global-batch-size", "8"],
            mentions: ["'global_batch_size'", "'micro_batch_size'", "data-parallel size 2"])
    }

    func testLayersNotDivisibleByPipelineStagesAreNeverDropped() throws {
        try expectGridError(
            ["--pipeline-model-parallel-size", "4", "--num-layers", "6"],
            mentions: ["'num_layers'", "'pipeline_model_parallel_size'", "num_layers 6", "no layer is ever dropped"])
    }

    func testInterleavingNeedsMicrobatchesDivisibleByStages() throws {
        try expectGridError(
            [
                "--pipeline-model-parallel-size", "4", "--num-layers", "8", "--num-layers-per-virtual-pipeline-stage",
                "1",
                "--micro-batch-size", "8",
            ],
            mentions: [
                "'global_batch_size'", "'pipeline_model_parallel_size'", "micro-batches 2", "try global_batch_size 32",
            ])
    }

    func testZeroBubbleAndUnevenSplitRules() throws {
        try expectGridError(
            [
                "--pipeline-model-parallel-size", "2", "--pipeline-schedule", "zb-h1",
                "--num-layers-per-virtual-pipeline-stage", "1",
            ], ranks: 2, mentions: ["'pipeline_schedule'", "zb-h1 runs one chunk per stage"])
        try expectGridError(
            [
                "--pipeline-model-parallel-size", "2", "--pipeline-schedule", "zb-h1", "--recompute-granularity",
                "full",
                "--recompute-method", "uniform", "--recompute-num-layers", "1",
            ], ranks: 2, mentions: ["'recompute_granularity'", "use recompute_granularity selective or 1f1b"])
        try expectGridError(
            [
                "--pipeline-model-parallel-size", "2", "--decoder-first-pipeline-num-layers", "3",
                "--decoder-last-pipeline-num-layers", "2",
            ], ranks: 2,
            mentions: ["'decoder_first_pipeline_num_layers'", "add up to num_layers 4"])
        try expectGridError(
            ["--pipeline-model-parallel-size", "2", "--pipeline-schedule", "zb-h2"], ranks: 2,
            mentions: ["pipeline_schedule", "1f1b", "zb-h1"])
    }

    func testErrorFoundOnlyBySomeRanks() throws {
        // Rank 0 gets a valid config, ranks 1–3 a missing file: all four exit 2, promptly.
        let dir = CLI.scratch("mpmd")
        let good = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "2", "--tensor-model-parallel-size",
            "4",
        ]
        let bad = ["train", "--config", "missing.json"]
        let start = Date()
        let r = try CLI.mpirun(ranks: 1, good + [":", "-np", "3", CLI.binary] + bad, in: dir)
        XCTAssertEqual(r.code, 2, r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(start), 20)
        XCTAssertTrue(r.stderr.contains("error (rank 1)") && r.stderr.contains("missing.json"), r.stderr)
    }
}

// PipelineParallelTests.swift — pipeline parallelism equals one rank: under `mpirun`, 40 iterations
// of an 8-layer tiny GPT give the lm_loss of one rank at every iteration within 1e-5 relative for
// (p=2, v=1), (p=2, v=2), (p=4, v=1), (p=4, v=2), and t=2 × p=2 × v=2 with the scatter/gather
// optimisation on and off — each at two micro-batch counts (4 and 8). The tied word embedding stays
// bitwise equal on the first and last stage; `trace_dir` writes every rank's measured timeline.
import Checkpoint
import Foundation
import TestSupport
import XCTest

final class PipelineParallelTests: XCTestCase {
    static let iterations = 40

    func train(ranks: Int, _ args: [String], in dir: URL, name: String) throws -> [[String: Any]] {
        let full =
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "\(Self.iterations)",
                "--eval-iters", "0",
                "--num-layers", "8", "--num-threads", "1", "--metrics-file", "\(name).jsonl",
            ] + args
        let r = ranks == 1 ? try CLI.run(full, in: dir) : try CLI.mpirun(ranks: ranks, full, in: dir)
        XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
        return try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
    }

    func testPipelineSchedulesEqualOneRank() throws {
        let dir = CLI.scratch("pp")
        let layouts: [(String, Int, [String])] = [
            ("p2v1", 2, ["--pipeline-model-parallel-size", "2"]),
            ("p2v2", 2, ["--pipeline-model-parallel-size", "2", "--num-layers-per-virtual-pipeline-stage", "2"]),
            ("p4v1", 4, ["--pipeline-model-parallel-size", "4"]),
            ("p4v2", 4, ["--pipeline-model-parallel-size", "4", "--num-layers-per-virtual-pipeline-stage", "1"]),
            (
                "t2p2v2-sg", 4,
                [
                    "--pipeline-model-parallel-size", "2", "--num-layers-per-virtual-pipeline-stage", "2",
                    "--tensor-model-parallel-size", "2",
                ]
            ),
            (
                "t2p2v2-nosg", 4,
                [
                    "--pipeline-model-parallel-size", "2", "--num-layers-per-virtual-pipeline-stage", "2",
                    "--tensor-model-parallel-size", "2", "--scatter-gather-tensors-in-pipeline", "false",
                ]
            ),
        ]
        for microBatch in [4, 2] {  // global batch 16: m = 4 and m = 8 micro-batches
            let mb = ["--micro-batch-size", "\(microBatch)"]
            let reference = try train(ranks: 1, mb, in: dir, name: "ref\(microBatch)")
            XCTAssertEqual(reference.count, Self.iterations)
            var stageBytes: [String: Int] = [:]
            for (name, ranks, args) in layouts {
                let lines = try train(ranks: ranks, args + mb, in: dir, name: "\(name)-\(microBatch)")
                assertLossesMatch(
                    try lines.map { try XCTUnwrap($0["lm_loss"] as? Double) },
                    try reference.map { try XCTUnwrap($0["lm_loss"] as? Double) },
                    count: Self.iterations, relativeTolerance: 1e-5, "\(name), m = \(16 / microBatch)")
                XCTAssertNotNil(lines[0]["pipeline_idle_fraction"], "\(name) reports no pipeline idle fractions")
                stageBytes[name] = lines[0]["comm_bytes_pp"] as? Int
            }
            // Scatter/gather: each tensor rank sends half of every stage boundary.
            let sg = try XCTUnwrap(stageBytes["t2p2v2-sg"]), full = try XCTUnwrap(stageBytes["t2p2v2-nosg"])
            XCTAssertLessThan(
                abs(2 * sg - full), 64, "scatter/gather should halve the bytes between stages: \(sg) vs \(full)")
        }
    }

    func testTiedEmbeddingStaysEqualOnFirstAndLastStage() throws {
        let dir = CLI.scratch("pptied")
        _ = try train(
            ranks: 2,
            [
                "--pipeline-model-parallel-size", "2", "--train-iters", "10", "--save", "ckpt",
                "--trace-dir", "traces",
            ], in: dir, name: "tied")
        let first = try HDF5File.openReadOnly(dir.appendingPathComponent("ckpt/iter_0000010/mp_rank_00_000.h5").path)
        let last = try HDF5File.openReadOnly(dir.appendingPathComponent("ckpt/iter_0000010/mp_rank_00_001.h5").path)
        let a = try first.readFloats("model/embedding.word_embeddings.weight")
        let b = try last.readFloats("model/output_layer.weight")
        XCTAssertEqual(a.shape, b.shape)
        XCTAssertTrue(a.values == b.values, "the tied embedding copies differ after training")
        XCTAssertFalse(last.exists("model/embedding.word_embeddings.weight"), "the last stage holds no input embedding")
        XCTAssertFalse(
            first.exists("model/decoder.layers.4.mlp.linear_fc1.weight"), "layers 4–7 belong to the second stage")
        XCTAssertTrue(last.exists("model/decoder.layers.4.mlp.linear_fc1.weight"))
        // Measured timelines: one Chrome trace per rank with forward, backward, send, wait and optimizer spans.
        for rank in 0..<2 {
            let trace =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: dir.appendingPathComponent("traces/rank_\(rank).json"))) as? [String: Any]
            let cats = Set((trace?["traceEvents"] as? [[String: Any]] ?? []).compactMap { $0["cat"] as? String })
            XCTAssertTrue(cats.isSuperset(of: ["forward", "backward", "send", "optimizer"]), "rank \(rank): \(cats)")
        }
    }
}

// DecoupledLRTests.swift — Megatron's decoupled_lr / decoupled_min_lr through the binary: one SGD step
// (no momentum, constant schedule) with decoupled_lr moves the word embedding exactly as a run whose
// lr is decoupled_lr does and every other parameter exactly as a run without it, bit for bit; the log
// line shows the decoupled rate on Megatron's schedule; the tied copy on the last pipeline stage and the
// distributed optimizer's shards follow it (p = 2 and d = 2 equal one rank); and a floor without a
// peak is refused by key.
import Checkpoint
import Foundation
import TestSupport
import XCTest

final class DecoupledLRTests: XCTestCase {
    func testTheWordEmbeddingTakesTheDecoupledRate() throws {
        let dir = CLI.scratch("decoupled-lr")
        let step = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "1", "--eval-iters", "0",
            "--num-threads", "1", "--optimizer", "sgd", "--sgd-momentum", "0", "--lr-warmup-iters", "0",
            "--lr-decay-style", "constant",
        ]
        for (name, flags) in [
            ("decoupled", ["--lr", "1e-3", "--decoupled-lr", "3e-2"]), ("high", ["--lr", "3e-2"]),
            ("low", ["--lr", "1e-3"]),
        ] {
            let r = try CLI.run(step + flags + ["--save", name], in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
        }
        func tensor(_ run: String, _ name: String) throws -> [Float] {
            try HDF5File.openReadOnly(dir.appendingPathComponent("\(run)/iter_0000001/mp_rank_00_000.h5").path)
                .readFloats("model/" + name).values
        }
        let word = "embedding.word_embeddings.weight"
        XCTAssertEqual(try tensor("decoupled", word), try tensor("high", word), "the word embedding at decoupled_lr")
        XCTAssertNotEqual(try tensor("decoupled", word), try tensor("low", word))
        for name in [
            "embedding.position_embeddings.weight", "decoder.layers.0.self_attention.linear_qkv.weight",
            "decoder.layers.3.mlp.linear_fc2.bias", "decoder.final_layernorm.weight",
        ] {
            XCTAssertEqual(try tensor("decoupled", name), try tensor("low", name), "\(name) at lr")
            XCTAssertNotEqual(try tensor("decoupled", name), try tensor("high", name), name)
        }
    }

    func testTheDecoupledScheduleOnGrids() throws {
        let dir = CLI.scratch("decoupled-lr-grids")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "12", "--lr-decay-iters", "12",
            "--eval-iters", "0", "--num-threads", "1", "--log-interval", "1", "--decoupled-lr", "5e-3",
            "--decoupled-min-lr", "1e-3",
        ]
        func train(_ name: String, _ extra: [String], ranks: Int = 1) throws -> (RunResult, [Double]) {
            let args = common + extra + ["--metrics-file", "\(name).jsonl"]
            let r = ranks == 1 ? try CLI.run(args, in: dir) : try CLI.mpirun(ranks: ranks, args, in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            return (r, try CLI.losses(dir, name))
        }
        let (one, reference) = try train("one", [])
        // Megatron's line: warm-up over 5 iterations from 0 to 5e-3, then cosine down to 1e-3 at 12.
        XCTAssertTrue(
            one.stdout.contains("learning rate: 2.000000E-04 | decoupled learning rate: 1.000000E-03 |"), one.stdout)
        XCTAssertTrue(one.stdout.contains("| decoupled learning rate: 5.000000E-03 |"), one.stdout)
        let (_, plain) = try train("plain", ["--decoupled-lr", "1e-3", "--decoupled-min-lr", "1e-4"])
        XCTAssertNotEqual(plain, reference, "the decoupled rate changes training")
        let (_, p2) = try train("p2", ["--pipeline-model-parallel-size", "2"], ranks: 2)
        assertLossesMatch(p2, reference, count: 12, relativeTolerance: 1e-5, "p = 2: the tied copy follows")
        let (_, d2) = try train(
            "d2", ["--use-distributed-optimizer", "--global-batch-size", "16"], ranks: 2)
        assertLossesMatch(d2, reference, count: 12, relativeTolerance: 1e-5, "d = 2, distributed optimizer")
        let bad = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--decoupled-min-lr", "1e-4"], in: dir)
        XCTAssertEqual(bad.code, 2)
        XCTAssertTrue(bad.stderr.contains("decoupled_min_lr") && bad.stderr.contains("decoupled_lr"), bad.stderr)
    }
}

// RecomputeTests.swift — activation recomputation changes memory, never results: with dropout on,
// full recomputation (uniform groups of 1 and 3, block of 5 of 8 layers) gives bitwise the losses
// and gradient norms of no recomputation, on one rank and at t = 2 with sequence parallelism × p = 2;
// the planned activation memory falls by exactly one per-layer set for every layer that no longer
// keeps its own, and the layers' activations stay within 20% of Korthikanti et al.'s formula
// (Table 2, selective form, tensors at our 4-byte width, 1-byte masks) for each setting: 34·sbh per
// layer (/t with SP) and 2·sbh per kept input at 16 bits. Selective recomputation's promise — no
// s×s attention probabilities held — is checked where they would dominate (s = 256 ≫ h = 64): the
// layers hold at most the selective figure, under half of the figure with probabilities.
import Foundation
import TestSupport
import XCTest

final class RecomputeTests: XCTestCase {
    func testRecomputationIsBitwiseAndSavesWhatThePlanSays() throws {
        let dir = CLI.scratch("recompute")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--num-layers", "8", "--train-iters", "8",
            "--eval-iters", "0",
            "--hidden-dropout", "0.1", "--attention-dropout", "0.1", "--num-threads", "1",
        ]
        let variants: [(String, [String])] = [
            ("none", []),
            (
                "uniform1",
                ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
            ),
            (
                "uniform3",
                ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "3"]
            ),
            (
                "block5",
                ["--recompute-granularity", "full", "--recompute-method", "block", "--recompute-num-layers", "5"]
            ),
            ("selective", ["--recompute-granularity", "selective"]),
        ]
        var runs: [String: [[String: Any]]] = [:]
        for (name, args) in variants {
            let r = try CLI.run(common + args + ["--metrics-file", "\(name).jsonl"], in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            runs[name] = try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
        }
        let reference = try XCTUnwrap(runs["none"])
        for (name, _) in variants where name != "selective" {  // selective is the default here: the same run as none
            let lines = try XCTUnwrap(runs[name])
            XCTAssertEqual(
                lines.map { $0["lm_loss"] as? Double }, reference.map { $0["lm_loss"] as? Double },
                "\(name): losses bitwise")
            XCTAssertEqual(
                lines.map { $0["grad_norm"] as? Double }, reference.map { $0["grad_norm"] as? Double },
                "\(name): grad norms bitwise")
        }
        func bytes(_ name: String) throws -> Int { try XCTUnwrap(runs[name]?.first?["activation_bytes"] as? Int) }
        let perLayer = (try bytes("none") - bytes("uniform1")) / 7
        XCTAssertGreaterThan(perLayer, 0)
        XCTAssertEqual(try bytes("none") - bytes("uniform1"), 7 * perLayer, "8 sets → 1")
        XCTAssertEqual(try bytes("none") - bytes("uniform3"), 5 * perLayer, "8 sets → 3")
        XCTAssertEqual(try bytes("none") - bytes("block5"), 4 * perLayer, "8 sets → 1 shared + 3 own")
        // The paper's count (Table 2: 34·sbh per layer and 2·sbh per layer input at 16 bits, 2 of
        // the 34 being one-byte dropout masks) at 4-byte tensors: 66·sbh and 4·sbh (/t with SP).
        func checkFormula(
            _ lines: [[String: Any]], sbh: Double, t: Double, layers: Double, fullSets: Double, _ name: String
        ) throws {
            let layer = (2 * 34 - 2) * sbh / t, input = 4 * sbh / t
            let expected = layers * input + fullSets * (layer - input)
            let held = Double(try XCTUnwrap(lines.first?["layer_activation_bytes"] as? Int))
            let reported = try XCTUnwrap(lines.first?["layer_activation_formula_bytes"] as? Double)
            XCTAssertEqual(reported, expected, accuracy: 1e-9 * expected, "\(name): the logged formula value")
            XCTAssertEqual(held, expected, accuracy: 0.2 * expected, "\(name): held \(held) vs formula \(expected)")
        }
        let sbh = 64.0 * 8 * 64
        for (name, sets) in [("none", 8.0), ("uniform1", 1), ("uniform3", 3), ("block5", 4), ("selective", 8)] {
            try checkFormula(try XCTUnwrap(runs[name]), sbh: sbh, t: 1, layers: 8, fullSets: sets, name)
        }

        let grid = [
            "--tensor-model-parallel-size", "2", "--sequence-parallel", "--pipeline-model-parallel-size", "2",
            "--micro-batch-size", "4",
        ]
        for (name, args) in [
            ("grid-none", [String]()),
            (
                "grid-uniform2",
                ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "2"]
            ),
        ] {
            let r = try CLI.mpirun(ranks: 4, common + grid + args + ["--metrics-file", "\(name).jsonl"], in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            runs[name] = try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
        }
        // Rank 0 holds 4 layers of micro-batch 4, split over t = 2 with SP.
        try checkFormula(
            try XCTUnwrap(runs["grid-none"]), sbh: 64 * 4 * 64, t: 2, layers: 4, fullSets: 4, "t=2 + SP, none")
        try checkFormula(
            try XCTUnwrap(runs["grid-uniform2"]), sbh: 64 * 4 * 64, t: 2, layers: 4, fullSets: 2, "t=2 + SP, uniform 2")
        XCTAssertEqual(
            try XCTUnwrap(runs["grid-uniform2"]).map { $0["lm_loss"] as? Double },
            try XCTUnwrap(runs["grid-none"]).map { $0["lm_loss"] as? Double }, "t=2 + SP × p=2: bitwise")
    }

    func testSelectiveRecomputationHoldsNoAttentionProbabilities() throws {
        let dir = CLI.scratch("recompute-selective")
        let (s, b, h, a, layers) = (256.0, 2.0, 64.0, 4.0, 4.0)
        let r = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--seq-length", "256", "--max-position-embeddings",
                "256",
                "--micro-batch-size", "2", "--global-batch-size", "2", "--train-iters", "2", "--eval-iters", "0",
                "--num-threads", "1", "--recompute-granularity", "selective", "--metrics-file", "m.jsonl",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let first = try XCTUnwrap(try CLI.jsonLines(dir.appendingPathComponent("m.jsonl")).first)
        let held = Double(try XCTUnwrap(first["layer_activation_bytes"] as? Int))
        // Per layer at 4-byte tensors: (4·4 + 2 + 12·4)·sbh = 66·sbh; the probabilities would add
        // (2·4 + 1)·a·s/h · sbh (softmax output, its dropout output, a 1-byte mask).
        let sbh = s * b * h, selective = layers * 66 * sbh, withProbabilities = selective + layers * 9 * a * s / h * sbh
        XCTAssertEqual(
            try XCTUnwrap(first["layer_activation_formula_bytes"] as? Double), selective, accuracy: 1e-9 * selective,
            "the logged formula is the selective one")
        XCTAssertLessThanOrEqual(held, selective, "held \(held) B exceeds the selective figure \(selective) B")
        XCTAssertGreaterThan(held, 0.9 * selective, "held \(held) B: the accounting misses tensors of the layer")
        XCTAssertLessThan(held, 0.5 * withProbabilities, "held \(held) B: s × s probabilities are being kept")
    }
}

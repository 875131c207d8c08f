// TensorParallelTests.swift — tensor (and sequence) parallelism equals one rank: `mpirun` runs of the
// built binary at t = 2 and t = 4, with and without sequence parallelism, give the lm_loss of t = 1
// at every one of 40 iterations within 1e-5 relative, and the same final parameters (reassembled
// from the per-rank checkpoint shards by their global offsets). The vocabulary (257, byte-level)
// is padded to 384 at t = 1 and 512 at t = 2, 4, so padding must not matter.
import Checkpoint
import Foundation
import TestSupport
import XCTest

final class TensorParallelTests: XCTestCase {
    static let iterations = 40

    func train(t: Int, sequenceParallel: Bool, in dir: URL, name: String, extra: [String] = []) throws -> [[String:
        Any]]
    {
        let args =
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "\(Self.iterations)",
                "--eval-iters", "0",
                "--metrics-file", "\(name).jsonl", "--save", "ckpt-\(name)", "--num-threads", "1",
                "--tensor-model-parallel-size", "\(t)", "--sequence-parallel", "\(sequenceParallel)",
            ] + extra
        let r = t == 1 ? try CLI.run(args, in: dir) : try CLI.mpirun(ranks: t, args, in: dir)
        XCTAssertEqual(r.code, 0, "t=\(t) sp=\(sequenceParallel): \(r.stderr)")
        return try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
    }

    /// The global tensor `name` of a checkpoint, reassembled from its per-rank files.
    func globalTensor(_ dir: URL, t: Int, _ name: String) throws -> (shape: [Int], values: [Float]) {
        var shape: [Int] = [], values: [Float] = []
        for rank in 0..<t {
            let f = try HDF5File.openReadOnly(
                dir.appendingPathComponent(String(format: "iter_%07d/mp_rank_%02d_000.h5", Self.iterations, rank)).path)
            let local = try f.readFloats("model/" + name)
            let offset = try f.intArrayAttribute(of: "model/" + name, "global_offset")
            if rank == 0 {
                shape = try f.intArrayAttribute(of: "model/" + name, "global_shape");
                values = [Float](repeating: 0, count: shape.reduce(1, *))
            }
            let cols = shape.count > 1 ? shape[1] : 1, localCols = local.shape.count > 1 ? local.shape[1] : 1
            for i in 0..<local.values.count {
                let (r, c) = (i / localCols, i % localCols)
                let (gr, gc) = shape.count > 1 ? (r + offset[0], c + offset[1]) : (0, i + offset[0])
                values[gr * cols + gc] = local.values[i]
            }
        }
        return (shape, values)
    }

    func testTensorAndSequenceParallelEqualOneRank() throws {
        let dir = CLI.scratch("tp")
        let reference = try train(t: 1, sequenceParallel: false, in: dir, name: "t1")
        XCTAssertEqual(reference.count, Self.iterations)
        let names = try HDF5File.openReadOnly(
            dir.appendingPathComponent(String(format: "ckpt-t1/iter_%07d/mp_rank_00_000.h5", Self.iterations)).path)
        for (t, sp) in [(2, false), (2, true), (4, false), (4, true)] {
            let name = "t\(t)\(sp ? "sp" : "")"
            let lines = try train(t: t, sequenceParallel: sp, in: dir, name: name)
            assertLossesMatch(
                try lines.map { try XCTUnwrap($0["lm_loss"] as? Double) },
                try reference.map { try XCTUnwrap($0["lm_loss"] as? Double) },
                count: Self.iterations, relativeTolerance: 1e-5, "\(name) lm_loss")
            XCTAssertGreaterThan(
                lines[0]["comm_bytes_tp"] as? Int ?? 0, 0, "\(name) reports no tensor-parallel traffic")
            // Final parameters, over the real vocabulary rows (the padding differs with t).
            for spec in [
                "embedding.word_embeddings.weight", "decoder.layers.0.self_attention.linear_qkv.weight",
                "decoder.layers.3.self_attention.linear_proj.weight", "decoder.layers.1.mlp.linear_fc1.bias",
                "decoder.layers.2.mlp.linear_fc2.weight", "decoder.layers.3.pre_mlp_layernorm.weight",
                "embedding.position_embeddings.weight", "decoder.final_layernorm.bias",
            ] {
                let ref = try names.readFloats("model/" + spec)
                let got = try globalTensor(dir.appendingPathComponent("ckpt-\(name)"), t: t, spec)
                let count = spec.hasPrefix("embedding.word") ? 257 * 64 : ref.values.count
                got.values.withUnsafeBufferPointer { g in
                    assertTensorsClose(
                        g.baseAddress!, Array(ref.values.prefix(count)), tolerance: 1e-5, "\(name) final \(spec)")
                }
            }
        }
    }

    func testDropoutDoesNotDependOnTheTensorParallelSize() throws {
        // Dropout masks are keyed by global element indices, so even with dropout t = 4 + SP equals t = 1.
        let dir = CLI.scratch("tpdrop")
        let extra = ["--hidden-dropout", "0.1", "--attention-dropout", "0.1", "--train-iters", "10"]
        let a = try train(t: 1, sequenceParallel: false, in: dir, name: "d1", extra: extra)
        let b = try train(t: 4, sequenceParallel: true, in: dir, name: "d4", extra: extra)
        assertLossesMatch(
            try b.map { try XCTUnwrap($0["lm_loss"] as? Double) },
            try a.map { try XCTUnwrap($0["lm_loss"] as? Double) },
            count: 10, relativeTolerance: 1e-5, "t = 4 + SP with dropout vs t = 1")
    }
}

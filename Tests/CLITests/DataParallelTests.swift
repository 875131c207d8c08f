// DataParallelTests.swift — data parallelism equals one rank: under `mpirun`, 40 iterations at
// (t, p, d) = (1,1,2), (1,1,3), (2,2,2) with v = 2 and (1,2,3), each with and without the
// distributed optimizer, give the lm_loss of one rank at every iteration within 1e-5 relative, with
// small buckets so several reductions overlap the backward pass. At p = 1 these runs take the sparse
// ending (ddp_sparse_embedding_ending auto: the word embedding's last rows exchanged after the
// backward pass). These ranks share one node, so by default (ddp_reduction auto) the buckets are
// summed through a shared-memory window and no gradient goes through MPI (the distributed optimizer
// still all-gathers the parameters). With `ddp_reduction mpi` and the sparse ending off, the
// data-parallel traffic equals one all-reduce of every gradient (distributed optimizer: a
// reduce-scatter plus an all-gather), and with it on, that plus at most one all-gather of a
// micro-batch's rows.
import Foundation
import TestSupport
import XCTest

final class DataParallelTests: XCTestCase {
    func testDataParallelGridsEqualOneRank() throws {
        let dir = CLI.scratch("dp")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "40", "--eval-iters", "0",
            "--num-layers", "8", "--micro-batch-size", "2", "--global-batch-size", "24", "--num-threads", "1",
            "--ddp-bucket-size", "20000",
        ]
        let reference = try CLI.run(common + ["--metrics-file", "ref.jsonl"], in: dir)
        XCTAssertEqual(reference.code, 0, reference.stderr)
        let ref = try CLI.jsonLines(dir.appendingPathComponent("ref.jsonl"))
        let grids: [(String, Int, [String])] = [
            ("d2", 2, []),
            ("d3", 3, []),
            (
                "t2p2d2v2", 8,
                [
                    "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2",
                    "--num-layers-per-virtual-pipeline-stage", "2",
                ]
            ),
            ("p2d3", 6, ["--pipeline-model-parallel-size", "2"]),
        ]
        let sparseEnding = "--ddp-sparse-embedding-ending", viaMPI = ["--ddp-reduction", "mpi"]
        let more: [(String, Int, [String])] = [
            ("d2-mpi", 2, viaMPI), ("d2-dense-mpi", 2, [sparseEnding, "off"] + viaMPI),
            ("d3-sparse-mpi", 3, [sparseEnding, "on"] + viaMPI), ("d2-dense", 2, [sparseEnding, "off"]),
        ]
        let variants = (grids + more).flatMap {
            [$0, ($0.0 + "-distopt", $0.1, $0.2 + ["--use-distributed-optimizer"])]
        }
        // auto takes it where d·s·b·(h + 1) ≤ vocabulary rows · h: 2·128·65 ≤ 384·64 at d = 2, not at d = 3.
        let expectSparse: Set<String> = [
            "d2", "d2-distopt", "d2-mpi", "d2-mpi-distopt", "d3-sparse-mpi", "d3-sparse-mpi-distopt",
        ]
        for (name, ranks, args) in variants {
            let r = try CLI.mpirun(ranks: ranks, common + args + ["--metrics-file", "\(name).jsonl"], in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            XCTAssertEqual(
                r.stdout.contains("data-parallel sparse ending"), expectSparse.contains(name),
                "\(name): whether the word embedding's last rows are exchanged apart")
            XCTAssertEqual(
                r.stdout.contains("data-parallel gradients are reduced through shared memory"), !name.contains("-mpi"),
                "\(name): whether the buckets are summed through shared memory")
            let lines = try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
            assertLossesMatch(
                try CLI.losses(dir, name), try ref.map { try XCTUnwrap($0["lm_loss"] as? Double) }, count: 40,
                relativeTolerance: 1e-5, name)
            XCTAssertEqual(
                lines.map { $0["consumed_samples"] as? Int }, ref.map { $0["consumed_samples"] as? Int },
                "\(name): consumed_samples stays global")
            XCTAssertGreaterThan(lines[0]["comm_bytes_dp"] as? Int ?? 0, 0, "\(name): no data-parallel traffic")
        }
        // d = 2: one all-reduce of the whole gradient arena (428,672 parameters, 64-byte aligned) plus the loss.
        let arena = 428_672 * 4 + 8
        let d2 = try CLI.jsonLines(dir.appendingPathComponent("d2-dense-mpi.jsonl"))
        XCTAssertEqual(d2[0]["comm_bytes_dp"] as? Int, arena)
        let sharded = try CLI.jsonLines(dir.appendingPathComponent("d2-dense-mpi-distopt.jsonl"))
        XCTAssertEqual(
            sharded[0]["comm_bytes_dp"] as? Int, arena + 428_672 * 4,
            "reduce-scatter + all-gather of the arena, plus the loss")
        // Through shared memory: only the loss (and the distributed optimizer's parameter all-gather).
        let shared = try CLI.jsonLines(dir.appendingPathComponent("d2-dense.jsonl"))
        XCTAssertEqual(shared[0]["comm_bytes_dp"] as? Int, 8, "no gradient through MPI")
        let sharedSharded = try CLI.jsonLines(dir.appendingPathComponent("d2-dense-distopt.jsonl"))
        XCTAssertEqual(sharedSharded[0]["comm_bytes_dp"] as? Int, 8 + 428_672 * 4, "the parameters' all-gather")
        // The sparse ending adds the maximum of the row counts (8 bytes) and one all-gather record of
        // 1 + n + n·h floats per rank, n ≤ s·b = 128 distinct rows, h = 64.
        for (name, base) in [("d2-mpi", arena), ("d2-mpi-distopt", arena + 428_672 * 4)] {
            let bytes = try XCTUnwrap(
                CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))[0]["comm_bytes_dp"] as? Int)
            XCTAssertGreaterThan(bytes, base + 8 + 4 * (1 + 1 + 64), "\(name): rows were exchanged")
            XCTAssertLessThanOrEqual(bytes, base + 8 + 4 * (1 + 128 + 128 * 64), "\(name): at most s·b rows")
        }
    }
}

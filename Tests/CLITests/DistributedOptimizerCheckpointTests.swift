// DistributedOptimizerCheckpointTests.swift — the distributed optimizer's sharded checkpoints load
// on any grid, with or without it: saved at (t, p, d) = (2, 2, 2) with the distributed optimizer
// after 10 iterations, continued to 20 at (1,1,1), (4,1,2) and (1,2,1) without it and at (1,1,3)
// with it (odd d: every shard re-cut), the losses equal the uninterrupted (2,2,2) run within 1e-5
// relative; at (2,2,2) itself the resume is bitwise. A missing shard file is a clear error.
import Foundation
import TestSupport
import XCTest

final class DistributedOptimizerCheckpointTests: XCTestCase {
    func testShardedCheckpointLoadsOnAnyGrid() throws {
        let dir = CLI.scratch("distopt-ckpt")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--num-layers", "8", "--micro-batch-size", "2",
            "--global-batch-size", "24", "--eval-iters", "0", "--num-threads", "1", "--lr-decay-iters", "20",
            "--ddp-bucket-size", "30000",
        ]
        let grid222 = [
            "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2", "--use-distributed-optimizer",
        ]
        var r = try CLI.mpirun(
            ranks: 8, common + grid222 + ["--train-iters", "20", "--metrics-file", "full.jsonl"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        r = try CLI.mpirun(ranks: 8, common + grid222 + ["--train-iters", "10", "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let files = try FileManager.default.contentsOfDirectory(
            atPath: dir.appendingPathComponent("ckpt/iter_0000010").path)
        XCTAssertEqual(
            files.filter { $0.hasPrefix("distrib_optim_") }.count, 8, "one optimizer shard per rank: \(files.sorted())")
        XCTAssertEqual(
            files.filter { $0.hasPrefix("mp_rank_") }.count, 4,
            "one model file per model-parallel rank: \(files.sorted())")

        let full = Array(try CLI.jsonLines(dir.appendingPathComponent("full.jsonl"))[10...])
        let grids: [(String, Int, [String])] = [
            ("t1p1d1", 1, []),
            ("t4p1d2", 8, ["--tensor-model-parallel-size", "4"]),
            ("t1p2d1", 2, ["--pipeline-model-parallel-size", "2"]),
            ("t1p1d3-distopt", 3, ["--use-distributed-optimizer"]),
            ("t2p2d2-distopt", 8, grid222),
        ]
        try CLI.checkResumes(grids, common: common, full: full, sameGrid: "t2p2d2-distopt", in: dir)

        // Without one shard the moments of its elements are unknown: an error naming what is missing.
        try FileManager.default.removeItem(
            at: dir.appendingPathComponent("ckpt/iter_0000010/distrib_optim_01_001_001.h5"))
        let broken = try CLI.run(common + ["--train-iters", "20", "--load", "ckpt"], in: dir)
        XCTAssertNotEqual(broken.code, 0)
        XCTAssertTrue(broken.stderr.contains("a distrib_optim file is missing"), broken.stderr)
    }
}

// ReshardTests.swift — a checkpoint saved on one grid loads on any other with no conversion step:
// saved at (t, p) = (2, 2) after 10 iterations, continued to 20 on (1, 1), (1, 2) and (4, 1), the
// losses equal the uninterrupted (2, 2) run within 1e-5 relative; on (2, 2) itself the resume is bitwise.
import Foundation
import TestSupport
import XCTest

final class ReshardTests: XCTestCase {
    func testCheckpointLoadsOnAnyGrid() throws {
        let dir = CLI.scratch("reshard")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--num-layers", "8", "--micro-batch-size", "4",
            "--eval-iters", "0", "--num-threads", "1", "--lr-decay-iters", "20",
        ]
        let grid22 = ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"]
        XCTAssertEqual(
            try CLI.mpirun(
                ranks: 4, common + grid22 + ["--train-iters", "20", "--metrics-file", "full.jsonl"], in: dir
            ).code, 0)
        XCTAssertEqual(
            try CLI.mpirun(ranks: 4, common + grid22 + ["--train-iters", "10", "--save", "ckpt"], in: dir).code, 0)
        let full = Array(try CLI.jsonLines(dir.appendingPathComponent("full.jsonl"))[10...])
        let grids: [(String, Int, [String])] = [
            ("t1p1", 1, []), ("t1p2", 2, ["--pipeline-model-parallel-size", "2"]),
            ("t4p1", 4, ["--tensor-model-parallel-size", "4"]), ("t2p2", 4, grid22),
        ]
        try CLI.checkResumes(grids, common: common, full: full, sameGrid: "t2p2", in: dir)
    }
}

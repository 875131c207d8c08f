// ReshardTests.swift — a checkpoint saved on one grid loads on any other with no conversion step:
// saved at (t, p) = (2, 2) after 10 iterations, continued to 20 on (1, 1), (1, 2) and (4, 1), the
// losses equal the uninterrupted (2, 2) run within 1e-5 relative; on (2, 2) itself the resume is bitwise.
import Foundation
import XCTest

final class ReshardTests: XCTestCase {
    func testCheckpointLoadsOnAnyGrid() throws {
        let dir = CLI.scratch("reshard")
        let common = ["train", "--config", CLI.config("gpt2-tiny.json"), "--num-layers", "8", "--micro-batch-size", "4",
                      "--eval-iters", "0", "--num-threads", "1", "--lr-decay-iters", "20"]
        let grid22 = ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"]
        XCTAssertEqual(try CLI.mpirun(ranks: 4, common + grid22 + ["--train-iters", "20", "--metrics-file", "full.jsonl"], in: dir).code, 0)
        XCTAssertEqual(try CLI.mpirun(ranks: 4, common + grid22 + ["--train-iters", "10", "--save", "ckpt"], in: dir).code, 0)
        let full = Array(try CLI.jsonLines(dir.appendingPathComponent("full.jsonl"))[10...])
        let grids: [(String, Int, [String])] = [
            ("t1p1", 1, []), ("t1p2", 2, ["--pipeline-model-parallel-size", "2"]),
            ("t4p1", 4, ["--tensor-model-parallel-size", "4"]), ("t2p2", 4, grid22),
        ]
        for (name, ranks, args) in grids {
            let run = common + args + ["--train-iters", "20", "--load", "ckpt", "--metrics-file", "\(name).jsonl"]
            let r = ranks == 1 ? try CLI.run(run, in: dir) : try CLI.mpirun(ranks: ranks, run, in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            let lines = try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
            XCTAssertEqual(lines.map { $0["iteration"] as? Int }, (11...20).map { $0 }, name)
            for (a, b) in zip(full, lines) {
                let la = try XCTUnwrap(a["lm_loss"] as? Double), lb = try XCTUnwrap(b["lm_loss"] as? Double)
                if name == "t2p2" { XCTAssertEqual(lb, la, "same grid resumes bitwise (iteration \(a["iteration"]!))") }
                else { XCTAssertEqual(lb, la, accuracy: 1e-5 * la, "\(name) iteration \(a["iteration"]!)") }
            }
        }
    }
}

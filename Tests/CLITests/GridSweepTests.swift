// GridSweepTests.swift — the central invariant over drawn layouts: `scripts/grid_sweep.py` trains
// 16 random combinations of a tiny GPT or BERT (t, p, d, v, micro-batch size, sequence parallelism,
// the distributed optimizer, recomputation, ZB-H1, uneven and balanced stages, dropout, bf16/fp16,
// post-LN, packed documents with Megatron's EOD options, Megatron's Llama-style GPT options; some
// resumed halfway on another layout)
// under mpirun, each against one rank. The seed is
// fixed so a failure repeats; the script's --perturb run shows the check fails when a layout's
// losses differ (another seed for the layouts' runs only).
import Foundation
import TestSupport
import XCTest

final class GridSweepTests: XCTestCase {
    func sweep(_ extra: [String], in dir: URL) throws -> RunResult {
        let script = CLI.repoRoot.appendingPathComponent("scripts/grid_sweep.py").path
        return try CLI.run(
            [script, "--binary", CLI.binary, "--keep", dir.appendingPathComponent("runs").path] + extra, in: dir,
            program: "/usr/bin/python3", environment: CLI.mpiEnvironment())
    }

    func testDrawnLayoutsEqualOneRank() throws {
        let dir = CLI.scratch("grid-sweep")
        let r = try sweep(["--cases", "16", "--seed", "11"], in: dir)
        XCTAssertEqual(r.code, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("16 of 16 cases equal one rank"), r.stdout)
        XCTAssertTrue(r.stdout.contains("resumed on"), "no case resumed on another layout:\n\(r.stdout)")
        for kind in ["gpt", "bert", "bf16", "fp16", "distopt", "v2", "packed", "llama"] {
            XCTAssertTrue(r.stdout.contains(kind), "seed 11 drew no \(kind) case:\n\(r.stdout)")
        }
    }

    func testTheSweepSeesADifferentRun() throws {
        let dir = CLI.scratch("grid-sweep-perturbed")
        let r = try sweep(["--cases", "2", "--seed", "11", "--perturb"], in: dir)
        XCTAssertEqual(r.code, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("0 of 2 cases equal one rank"), r.stdout)
        // Both ran and were compared (a run that failed would also count against the total).
        XCTAssertEqual(r.stdout.components(separatedBy: ": MISMATCH,").count - 1, 2, r.stdout)
    }
}

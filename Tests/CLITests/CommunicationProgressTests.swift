// CommunicationProgressTests.swift — `communication_progress` changes when MPI moves the
// outstanding operations, never what they compute: under `mpirun`, data-parallel training (d = 2,
// small buckets, so reductions overlap the backward pass) and a ZB-H1 pipeline (p = 2) give
// bit-for-bit the losses and gradient norms of the default (MPI_Test at layer boundaries) with a
// progress thread and with no progress before the wait. The benchmark reports the wait after the
// backward pass and the part of it left after the slowest rank's backward ended. A value outside
// the three is refused with the key named. The data-parallel runs reduce through MPI
// (`ddp_reduction mpi`); at d = 2 the shared-memory reduction (the default on one node) sums each
// element as a + b too, so it also gives the same bits — and so does the fallback to MPI when the
// window's backing directory has no room.
import Foundation
import TestSupport
import XCTest

final class CommunicationProgressTests: XCTestCase {
    private func runs(_ name: String, ranks: Int, _ args: [String], in dir: URL) throws -> [[String: Any]] {
        let r = try CLI.mpirun(ranks: ranks, args + ["--metrics-file", "\(name).jsonl"], in: dir)
        XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
        return try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
    }

    private func assertSameRun(_ a: [[String: Any]], _ b: [[String: Any]], _ name: String) {
        XCTAssertEqual(a.count, b.count, name)
        XCTAssertGreaterThan(a.count, 0, name)
        for (i, (x, y)) in zip(a, b).enumerated() {
            for key in ["lm_loss", "grad_norm"] {
                let u = x[key] as? Double, v = y[key] as? Double
                XCTAssertNotNil(u, "\(name): no \(key) at line \(i)")
                XCTAssertEqual(u, v, "\(name): \(key) at line \(i) differs")
            }
        }
    }

    func testEveryModeTrainsBitForBitTheSame() throws {
        let dir = CLI.scratch("progress")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "12", "--eval-iters", "0",
            "--micro-batch-size", "2", "--num-threads", "1", "--ddp-bucket-size", "20000",
        ]
        let dataParallel = common + ["--global-batch-size", "8", "--ddp-reduction", "mpi"]
        let reference = try runs("d2", ranks: 2, dataParallel, in: dir)
        for mode in ["thread", "off"] {
            let other = try runs("d2-\(mode)", ranks: 2, dataParallel + ["--communication-progress", mode], in: dir)
            assertSameRun(reference, other, "d = 2, \(mode)")
        }
        let shared = try runs("d2-shared", ranks: 2, dataParallel + ["--ddp-reduction", "auto"], in: dir)
        assertSameRun(reference, shared, "d = 2 through shared memory")
        // No room where Open MPI keeps its windows: MPI takes over, and the log says why.
        let r = try CLI.mpirun(
            ranks: 2, dataParallel + ["--ddp-reduction", "auto", "--metrics-file", "d2-no-room.jsonl"], in: dir,
            environment: ["OMPI_MCA_osc_sm_backing_directory": "/nonexistent-shm"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(
            r.stdout.contains("go through MPI, not shared memory: /nonexistent-shm has 0 MiB free"), r.stdout)
        assertSameRun(reference, try CLI.jsonLines(dir.appendingPathComponent("d2-no-room.jsonl")), "d = 2, no room")
        let pipeline =
            common + [
                "--global-batch-size", "8", "--num-layers", "4", "--pipeline-model-parallel-size", "2",
                "--pipeline-schedule", "zb-h1",
            ]
        let pipelined = try runs("p2", ranks: 2, pipeline, in: dir)
        let threaded = try runs("p2-thread", ranks: 2, pipeline + ["--communication-progress", "thread"], in: dir)
        assertSameRun(pipelined, threaded, "p = 2 ZB-H1, thread")
    }

    func testBenchmarkReportsTheExposedPartOfTheWait() throws {
        let dir = CLI.scratch("progress-benchmark")
        let benchmark = [
            "benchmark", "--config", CLI.config("gpt2-tiny.json"), "--steps", "2", "--num-threads", "1",
            "--ddp-bucket-size", "20000",
        ]
        let r = try CLI.mpirun(
            ranks: 2,
            benchmark + ["--communication-progress", "thread", "--ddp-reduction", "mpi", "--json", "dp.json"],
            in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("(progress: thread)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("after the slowest rank's backward ended"), r.stdout)
        let json = try CLI.jsonObject(dir.appendingPathComponent("dp.json"))
        let wait = try XCTUnwrap(json["dp_wait_ms"] as? Double)
        let exposed = try XCTUnwrap(json["dp_exposed_wait_ms"] as? Double)
        XCTAssertTrue(exposed >= 0 && exposed <= wait + 1, "exposed \(exposed) ms of a \(wait) ms wait")
        XCTAssertEqual(json["communication_progress"] as? String, "thread")
        XCTAssertEqual(json["dp_reduction"] as? String, "mpi")
        // The default on one node: summed through shared memory, no gradient bytes through MPI.
        let s = try CLI.mpirun(ranks: 2, benchmark + ["--json", "shared.json"], in: dir)
        XCTAssertEqual(s.code, 0, s.stderr)
        XCTAssertTrue(s.stdout.contains("(progress: layer-boundaries, reduction through shared memory)"), s.stdout)
        let shared = try CLI.jsonObject(dir.appendingPathComponent("shared.json"))
        XCTAssertEqual(shared["dp_reduction"] as? String, "shared-memory")
        XCTAssertEqual(shared["analytic_bytes_dp"] as? Double, 0)
        let sharedWait = try XCTUnwrap(shared["dp_wait_ms"] as? Double)
        let sharedExposed = try XCTUnwrap(shared["dp_exposed_wait_ms"] as? Double)
        XCTAssertTrue(sharedExposed >= 0 && sharedExposed <= sharedWait + 1, "\(sharedExposed) of \(sharedWait) ms")
    }

    func testAnUnknownModeIsRefusedWithTheKeyNamed() throws {
        let dir = CLI.scratch("progress-bad")
        let r = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--communication-progress", "sometimes"], in: dir)
        XCTAssertEqual(r.code, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("communication_progress"), r.stderr)
        XCTAssertTrue(r.stderr.contains("layer-boundaries"), r.stderr)
    }
}

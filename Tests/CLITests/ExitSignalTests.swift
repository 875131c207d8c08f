// ExitSignalTests.swift — Megatron's exit_signal_handler through the built binary under mpirun:
// SIGUSR1 to mpirun (which passes SIGUSR1 and SIGUSR2 on to every rank; SIGTERM it turns into a kill)
// with exit_signal SIGUSR1, or SIGTERM to one rank alone (as a batch system signals each task), ends
// the whole job after the iteration in hand with code 0, every rank at the same iteration, with a
// checkpoint of it that a later run resumes from; a signal name it does not know is refused by key.
import Foundation
import TestSupport
import XCTest

final class ExitSignalTests: XCTestCase {
    /// Starts a t = 2 training run with the handler, waits until it passes iteration 20, sends SIGUSR1
    /// to mpirun (`toOneRank` false) or SIGTERM to its last rank, and returns the exit code and output.
    func interruptedRun(in dir: URL, toOneRank: Bool) throws -> (code: Int32, stdout: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        p.arguments =
            [
                "-np", "2", CLI.binary, "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "100000",
                "--eval-iters", "0", "--tensor-model-parallel-size", "2", "--num-threads", "1", "--save", "ckpt",
                "--log-interval", "10", "--exit-signal-handler", "--metrics-file", "m.jsonl",
            ] + (toOneRank ? [] : ["--exit-signal", "SIGUSR1"])
        p.currentDirectoryURL = dir
        p.environment = CLI.mpiEnvironment(ProcessInfo.processInfo.environment)
        // The output goes to a file, read when the job has ended.
        let log = dir.appendingPathComponent("stdout.txt")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: log)
        p.standardError = FileHandle.nullDevice
        func output() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        try p.run()
        // The metrics file gets a line per iteration as it ends.
        let metrics = dir.appendingPathComponent("m.jsonl")
        func iterations() -> Int {
            ((try? String(contentsOf: metrics, encoding: .utf8)) ?? "").filter { $0 == "\n" }.count
        }
        let deadline = Date().addingTimeInterval(60)
        while iterations() < 20 && Date() < deadline { usleep(50_000) }
        XCTAssertGreaterThanOrEqual(iterations(), 20, "training never reached iteration 20")
        if toOneRank {
            let ranks = try CLI.children(of: p.processIdentifier)
            kill(try XCTUnwrap(ranks.last, "no rank processes found"), SIGTERM)
        } else {
            kill(p.processIdentifier, SIGUSR1)
        }
        p.waitUntilExit()
        return (p.terminationStatus, output())
    }

    func testTheExitSignalSavesAndEndsEveryRankTogether() throws {
        for toOneRank in [false, true] {
            let dir = CLI.scratch("exit-signal-\(toOneRank)")
            let (code, stdout) = try interruptedRun(in: dir, toOneRank: toOneRank)
            let what = toOneRank ? "SIGTERM to one rank" : "SIGUSR1 to mpirun"
            XCTAssertEqual(code, 0, "\(what): \(stdout)")
            let line = try XCTUnwrap(
                stdout.split(separator: "\n").first {
                    $0.contains("\(toOneRank ? "SIGTERM" : "SIGUSR1") received (exit_signal_handler)")
                },
                "\(what): \(stdout)")
            let iteration = try XCTUnwrap(
                line.components(separatedBy: "exiting at iteration ").last?.split(separator: ":").first.flatMap {
                    Int($0)
                })
            XCTAssertGreaterThanOrEqual(iteration, 20)
            let latest = try String(
                contentsOf: dir.appendingPathComponent("ckpt/latest_checkpointed_iteration.txt"), encoding: .utf8)
            XCTAssertEqual(latest, "\(iteration)\n", what)
            for rank in 0..<2 {
                let shard = String(format: "ckpt/iter_%07d/mp_rank_%02d_000.h5", iteration, rank)
                XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(shard).path), shard)
            }
            // The checkpoint resumes at the next iteration (the same schedule, stopped 3 iterations on).
            let resumed = try CLI.mpirun(
                ranks: 2,
                [
                    "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "100000",
                    "--exit-interval", "\(iteration + 3)",
                    "--eval-iters", "0", "--tensor-model-parallel-size", "2", "--num-threads", "1", "--load", "ckpt",
                    "--metrics-file", "resumed.jsonl",
                ], in: dir)
            XCTAssertEqual(resumed.code, 0, resumed.stderr)
            let lines = try CLI.jsonLines(dir.appendingPathComponent("resumed.jsonl"))
            XCTAssertEqual(lines.map { $0["iteration"] as? Int }, (iteration + 1...iteration + 3).map { $0 }, what)
        }
    }

    func testAnUnknownSignalNameIsRefusedByKey() throws {
        let r = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--exit-signal-handler", "--exit-signal", "SIGKILL"],
            in: CLI.scratch("exit-signal-name"))
        XCTAssertEqual(r.code, 2)
        XCTAssertTrue(r.stderr.contains("exit_signal") && r.stderr.contains("SIGUSR1"), r.stderr)
    }
}

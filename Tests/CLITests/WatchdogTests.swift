// WatchdogTests.swift — `distributed_timeout_minutes`: one of 4 ranks stopped with SIGSTOP (alive,
// never arriving) ends the whole job within the timeout + 5 s, with a message naming the operation,
// the group and its world ranks, and naming the stopped rank as the one the job waits on (it does
// not answer the watchdogs' side channel) — where without the watchdog the job would wait forever.
import Foundation
import TestSupport
import XCTest

final class WatchdogTests: XCTestCase {
    func testAStoppedRankEndsTheJobWithinTheTimeout() throws {
        let dir = CLI.scratch("watchdog")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        p.arguments = [
            "-np", "4", CLI.binary, "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "100000",
            "--eval-iters", "0", "--tensor-model-parallel-size", "2", "--num-threads", "1", "--log-interval", "1",
            "--distributed-timeout-minutes", "0.05",
        ]
        p.currentDirectoryURL = dir
        p.environment = CLI.mpiEnvironment(ProcessInfo.processInfo.environment)
        let err = Pipe(), out = Pipe()
        p.standardError = err
        p.standardOutput = out
        try p.run()
        // Wait for training to run (the first log line), then stop one rank without killing it.
        var seen = Data()
        let deadline = Date().addingTimeInterval(60)
        while !String(decoding: seen, as: UTF8.self).contains("iteration        2/") && Date() < deadline {
            seen += out.fileHandleForReading.availableData
        }
        let children = try CLI.children(of: p.processIdentifier)
        let victim = try XCTUnwrap(children.last, "no rank processes found")
        // Its world rank, from the environment mpirun gave it.
        let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(victim)/environ"))
        let victimRank = try XCTUnwrap(
            environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                .first { $0.hasPrefix("OMPI_COMM_WORLD_RANK=") }?.split(separator: "=").last.flatMap { Int($0) })
        let stopped = Date()
        kill(victim, SIGSTOP)
        defer { kill(victim, SIGKILL) }
        DispatchQueue.global().async { while p.isRunning { _ = out.fileHandleForReading.availableData } }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let seconds = Date().timeIntervalSince(stopped)
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertLessThan(seconds, 3 + 5, "the job ends within the timeout (3 s) + 5 s")
        XCTAssertTrue(stderr.contains("no progress for 3 s in MPI_"), stderr)
        XCTAssertTrue(stderr.contains("world ranks"), stderr)
        // The side channel names the stopped rank exactly: it never answers.
        XCTAssertTrue(stderr.contains("rank \(victimRank) does not answer"), "rank \(victimRank) stopped: \(stderr)")
        XCTAssertTrue(stderr.contains("the job waits on rank \(victimRank) "), "rank \(victimRank) stopped: \(stderr)")
    }
}

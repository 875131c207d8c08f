// RankFailureTests.swift — a rank killed mid-training (SIGKILL from outside) ends the whole job with a
// non-zero code within 10 seconds and a message naming the rank, and the last checkpoint still loads.
import Foundation
import TestSupport
import XCTest

final class RankFailureTests: XCTestCase {
    func testKilledRankEndsTheJobPromptlyAndTheLastCheckpointLoads() throws {
        let dir = CLI.scratch("kill")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        p.arguments = [
            "-np", "2", CLI.binary, "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "100000",
            "--eval-iters", "0", "--tensor-model-parallel-size", "2", "--num-threads", "1", "--save", "ckpt",
            "--save-interval", "5", "--metrics-file", "m.jsonl", "--log-interval", "1000",
        ]
        p.currentDirectoryURL = dir
        p.environment = CLI.mpiEnvironment(ProcessInfo.processInfo.environment)
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // Wait until a checkpoint exists and training is under way.
        let pointer = dir.appendingPathComponent("ckpt/latest_checkpointed_iteration.txt")
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: pointer.path) && Date() < deadline { usleep(100_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: pointer.path), "training never saved a checkpoint")
        usleep(300_000)
        // Kill one rank (a child of mpirun).
        let children = try CLI.children(of: p.processIdentifier)
        let victim = try XCTUnwrap(children.last, "no rank processes found")
        let killed = Date()
        kill(victim, SIGKILL)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let seconds = Date().timeIntervalSince(killed)
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertLessThan(seconds, 10, "the job must end within 10 s of a rank's death")
        XCTAssertTrue(stderr.contains("process rank") && stderr.contains("signal 9"), stderr)
        // The last complete checkpoint loads (same grid) and evaluates.
        let eval = try CLI.mpirun(
            ranks: 2,
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--tensor-model-parallel-size", "2",
                "--num-threads", "1", "--load", "ckpt", "--skip-train",
            ], in: dir)
        XCTAssertEqual(eval.code, 0, eval.stderr)
        XCTAssertTrue(eval.stdout.contains("validation loss at iteration"), eval.stdout)
    }
}

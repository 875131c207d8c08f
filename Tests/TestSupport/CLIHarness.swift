// CLIHarness.swift — runs the built `megatron` binary (next to this test bundle, or $MEGATRON_BIN)
// in a scratch directory, alone or under `mpirun`, and captures its exit code and output; reads
// the metrics files it writes.
import Foundation
import XCTest

public struct RunResult: Sendable {
    public let code: Int32
    public let stdout: String
    public let stderr: String
}

public enum CLI {
    public static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    public static var binary: String {
        if let b = ProcessInfo.processInfo.environment["MEGATRON_BIN"] { return b }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
            "megatron"
        ).path
    }

    public static func config(_ name: String) -> String { repoRoot.appendingPathComponent("configs/\(name)").path }

    /// A fresh scratch directory for one test.
    public static func scratch(_ name: String) -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("megatron-cli-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: dir)
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `megatron args…` (through `/bin/sh -c` when `shellPrefix` is given, e.g. "ulimit -f 64;").
    public static func run(
        _ args: [String], in dir: URL, shellPrefix: String? = nil, program: String? = nil,
        environment extra: [String: String] = [:]
    ) throws -> RunResult {
        let p = Process()
        if let program {
            p.executableURL = URL(fileURLWithPath: program)
            p.arguments = args
        } else if let shellPrefix {
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", shellPrefix + " exec \"$0\" \"$@\"", binary] + args
        } else {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = args
        }
        p.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env["OMPI_MCA_pml"] = "ob1"; env["OMPI_MCA_btl"] = "self,vader"
        env.merge(extra) { _, new in new }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return RunResult(
            code: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self))
    }

    /// What mpirun needs here: root-safe, oversubscribed, one BLAS thread per rank (added to `base`).
    public static func mpiEnvironment(_ base: [String: String] = [:]) -> [String: String] {
        var env = base
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"; env["OPENBLAS_NUM_THREADS"] = "1"
        return env
    }

    /// Runs `mpirun -np ranks <binary> args…` with `mpiEnvironment`.
    public static func mpirun(
        ranks: Int, _ args: [String], in dir: URL, executable: String? = nil,
        environment extra: [String: String] = [:]
    ) throws -> RunResult {
        try run(
            ["-np", "\(ranks)", executable ?? binary] + args, in: dir, program: "/usr/bin/mpirun",
            environment: mpiEnvironment(extra))
    }

    /// The process ids of `pid`'s children (mpirun's: the ranks), in pgrep's order.
    public static func children(of pid: Int32) throws -> [Int32] {
        let pgrep = Process()
        pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
        pgrep.arguments = ["-P", "\(pid)"]
        let out = Pipe()
        pgrep.standardOutput = out
        try pgrep.run()
        let list = out.fileHandleForReading.readDataToEndOfFile()
        pgrep.waitUntilExit()
        return String(decoding: list, as: UTF8.self).split(separator: "\n").compactMap { Int32($0) }
    }

    /// The JSON object in file `url` (a benchmark's or an evaluation's results).
    public static func jsonObject(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any],
            "\(url.path): not a JSON object")
    }

    public static func jsonLines(_ url: URL) throws -> [[String: Any]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// The `lm_loss` of every line of metrics file `name`.jsonl in `dir`.
    public static func losses(_ dir: URL, _ name: String, key: String = "lm_loss") throws -> [Double] {
        try jsonLines(dir.appendingPathComponent("\(name).jsonl")).map {
            try XCTUnwrap($0[key] as? Double, "\(name): a line without \(key)")
        }
    }

    /// Resumes training from `ckpt` to iteration 20 on each grid (name, ranks, extra flags) and
    /// checks every continued lm_loss against `full` (the uninterrupted run from iteration 11):
    /// bitwise on the grid named `sameGrid`, within 1e-5 relative elsewhere.
    public static func checkResumes(
        _ grids: [(String, Int, [String])], common: [String], full: [[String: Any]], sameGrid: String, in dir: URL,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let expected = try full.map { try XCTUnwrap($0["lm_loss"] as? Double) }
        for (name, ranks, args) in grids {
            let run = common + args + ["--train-iters", "20", "--load", "ckpt", "--metrics-file", "\(name).jsonl"]
            let r = ranks == 1 ? try CLI.run(run, in: dir) : try CLI.mpirun(ranks: ranks, run, in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)", file: file, line: line)
            let lines = try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
            XCTAssertEqual(lines.map { $0["iteration"] as? Int }, (11...20).map { $0 }, name, file: file, line: line)
            let got = try CLI.losses(dir, name)
            assertLossesMatch(
                got, expected, count: 10, relativeTolerance: name == sameGrid ? 0 : 1e-5,
                "\(name) resumed from iteration 10", file: file, line: line)
        }
    }
}

extension CLI {
    /// Runs one of the repository's Python checkers (`scripts/NAME args…`, with the python3 on PATH)
    /// in `dir` and asserts it passes and prints `expect`; throws XCTSkip, saying `skipped`, when a
    /// module it needs (torch, transformers, …) is not installed.
    public static func pythonCheck(
        _ script: String, _ args: [String], in dir: URL, expect: String, skipped: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let check = try run(
            [repoRoot.appendingPathComponent("scripts/\(script)").path] + args, in: dir, program: "/usr/bin/env",
            environment: [:])
        guard check.code == 0 || !check.stderr.contains("ModuleNotFoundError") else { throw XCTSkip(skipped) }
        XCTAssertEqual(check.code, 0, check.stdout + check.stderr, file: file, line: line)
        XCTAssertTrue(check.stdout.contains(expect), check.stdout, file: file, line: line)
    }
}

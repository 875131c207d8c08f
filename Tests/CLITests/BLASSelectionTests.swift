// BLASSelectionTests.swift — `blas_coretype auto` (the default) replaces a preset
// OPENBLAS_CORETYPE by re-executing once and says so; `env` keeps the preset. An unset
// OPENBLAS_THREAD_TIMEOUT becomes 4 (idle OpenBLAS threads sleep at once); a set one is kept.
import Foundation
import TestSupport
import XCTest

final class BLASSelectionTests: XCTestCase {
    func startLine(_ extraArgs: [String], timeout: String? = nil) throws -> String {
        let dir = CLI.scratch("blas")
        let r = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "1", "--eval-iters", "0"] + extraArgs,
            in: dir, shellPrefix: timeout == nil ? "unset OPENBLAS_THREAD_TIMEOUT;" : nil,
            environment: ["OPENBLAS_CORETYPE": "Haswell"].merging(
                timeout.map { ["OPENBLAS_THREAD_TIMEOUT": $0] } ?? [:]
            ) {
                $1
            })
        XCTAssertEqual(r.code, 0, r.stderr)
        return try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.contains("> megatron:") }.map(String.init))
    }

    func testAutoReplacesAPresetCoreType() throws {
        let line = try startLine([])
        XCTAssertTrue(
            line.contains("blas_coretype auto: OPENBLAS_CORETYPE=Haswell from the environment replaced"), line)
        XCTAssertTrue(line.contains("; OPENBLAS_THREAD_TIMEOUT=4]"), line)
    }

    func testASetThreadTimeoutIsKept() throws {
        let line = try startLine(["--blas-coretype", "env"], timeout: "30")
        XCTAssertTrue(line.contains("OpenBLAS Haswell [blas_coretype env: OPENBLAS_CORETYPE=Haswell kept"), line)
        XCTAssertTrue(line.contains("; OPENBLAS_THREAD_TIMEOUT=30]"), line)
    }

    func testEnvKeepsThePreset() throws {
        let line = try startLine(["--blas-coretype", "env"])
        XCTAssertTrue(line.contains("OpenBLAS Haswell [blas_coretype env"), line)
        XCTAssertTrue(line.contains("; OPENBLAS_THREAD_TIMEOUT=4]"), line)
    }
}

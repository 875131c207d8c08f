// BLASSelectionTests.swift — `blas_coretype auto` (the default) replaces a preset
// OPENBLAS_CORETYPE by re-executing once and says so; `env` keeps the preset.
import Foundation
import TestSupport
import XCTest

final class BLASSelectionTests: XCTestCase {
    func startLine(_ extraArgs: [String]) throws -> String {
        let dir = CLI.scratch("blas")
        let r = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "1", "--eval-iters", "0"] + extraArgs,
            in: dir, environment: ["OPENBLAS_CORETYPE": "Haswell"])
        XCTAssertEqual(r.code, 0, r.stderr)
        return try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.contains("> megatron:") }.map(String.init))
    }

    func testAutoReplacesAPresetCoreType() throws {
        let line = try startLine([])
        XCTAssertTrue(
            line.contains("blas_coretype auto: OPENBLAS_CORETYPE=Haswell from the environment replaced"), line)
    }

    func testEnvKeepsThePreset() throws {
        let line = try startLine(["--blas-coretype", "env"])
        XCTAssertTrue(line.contains("OpenBLAS Haswell [blas_coretype env"), line)
    }
}

// MPIMappingTests.swift — runs MegatronCoreTests.TensorParallelMappingTests inside this test bundle
// under `mpirun -np 2` and `-np 4`; every rank must pass every test.
import Foundation
import TestSupport
import XCTest

final class MPIMappingTests: XCTestCase {
    func runMappingTests(ranks: Int) throws {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        guard bundle.hasSuffix(".xctest") else {
            throw XCTSkip("not running from the test bundle executable (\(bundle))")
        }
        let r = try CLI.mpirun(
            ranks: ranks, ["MegatronCoreTests.TensorParallelMappingTests"], in: CLI.scratch("mapping"),
            executable: bundle, environment: ["MEGATRON_MPI_TESTS": "1"])
        XCTAssertEqual(r.code, 0, r.stdout + r.stderr)
        let passed = r.stdout.components(separatedBy: "Executed 6 tests, with 0 failures").count - 1
        XCTAssertGreaterThanOrEqual(passed, ranks, "every rank must run and pass all six mapping tests:\n\(r.stdout)")
        XCTAssertFalse(r.stdout.contains("skipped"), r.stdout)
    }

    func testMappingsOnTwoRanks() throws { try runMappingTests(ranks: 2) }
    func testMappingsOnFourRanks() throws { try runMappingTests(ranks: 4) }
}

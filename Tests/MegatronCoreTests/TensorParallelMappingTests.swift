// TensorParallelMappingTests.swift — each conjugate pair's forward and backward against its
// definition, on the ranks of `mpirun` (2 and 4: launched by CLITests/MPIMappingTests). In a plain
// `swift test` run they are skipped, so MPI is never started inside the test process.
import Distributed
import Foundation
import MegatronCore
import XCTest

final class TensorParallelMappingTests: XCTestCase {
    nonisolated(unsafe) static var runtime: MPIRuntime?

    var tp: TensorParallel!
    var sp: TensorParallel!
    var rank: Int { tp.rank }
    var t: Int { tp.size }

    override func setUpWithError() throws {
        guard ProcessInfo.processInfo.environment["MEGATRON_MPI_TESTS"] == "1" else {
            throw XCTSkip("runs under mpirun (CLITests.MPIMappingTests launches it)")
        }
        if Self.runtime == nil { Self.runtime = try MPIRuntime.start() }
        let state = try ParallelState(world: Self.runtime!.world, tensor: Self.runtime!.world.size, pipeline: 1)
        tp = TensorParallel(group: state.tensor, sequenceParallel: false)
        sp = TensorParallel(group: state.tensor, sequenceParallel: true)
    }

    override class func tearDown() { runtime?.finalize() }

    /// Rank-dependent data: value of element i on rank r.
    func value(_ r: Int, _ i: Int) -> Float { Float(r + 1) * 1000 + Float(i) }

    func testCopyToRegion_IdentityForward_AllReduceBackward() throws {
        var dx = (0..<10).map { value(rank, $0) }
        try tp.copyToTensorModelParallelRegionBackward(&dx, count: 10)
        XCTAssertEqual(dx, (0..<10).map { i in (0..<t).reduce(0) { $0 + value($1, i) } })
    }

    func testReduceFromRegion_AllReduceForward() throws {
        var y = (0..<7).map { value(rank, $0) }
        try tp.reduceFromTensorModelParallelRegionForward(&y, count: 7)
        XCTAssertEqual(y, (0..<7).map { i in (0..<t).reduce(0) { $0 + value($1, i) } })
    }

    func testGatherFromSequenceParallelRegion() throws {
        let shard = 6
        // Forward: each rank fills its rows; all-gather gives every rank all rows.
        var full = [Float](repeating: -1, count: shard * t)
        for i in 0..<shard { full[rank * shard + i] = value(rank, i) }
        try sp.gatherFromSequenceParallelRegionForward(&full, shardCount: shard)
        XCTAssertEqual(full, (0..<(shard * t)).map { value($0 / shard, $0 % shard) })
        // Backward: reduce-scatter — this rank's rows of the sum of every rank's full gradient.
        let dfull = (0..<(shard * t)).map { value(rank, $0) }
        var dshard = [Float](repeating: 0, count: shard)
        try sp.gatherFromSequenceParallelRegionBackward(dfull, into: &dshard, shardCount: shard)
        XCTAssertEqual(dshard, (0..<shard).map { i in (0..<t).reduce(0) { $0 + value($1, rank * shard + i) } })
    }

    func testReduceScatterToSequenceParallelRegion() throws {
        let shard = 5
        let partial = (0..<(shard * t)).map { value(rank, $0) }
        var mine = [Float](repeating: 0, count: shard)
        try sp.reduceScatterToSequenceParallelRegionForward(partial, into: &mine, shardCount: shard)
        XCTAssertEqual(mine, (0..<shard).map { i in (0..<t).reduce(0) { $0 + value($1, rank * shard + i) } })
        var dfull = [Float](repeating: -1, count: shard * t)
        for i in 0..<shard { dfull[rank * shard + i] = value(rank, i) }
        try sp.reduceScatterToSequenceParallelRegionBackward(&dfull, shardCount: shard)
        XCTAssertEqual(dfull, (0..<(shard * t)).map { value($0 / shard, $0 % shard) })
    }

    func testScatterToSequenceParallelRegion() throws {
        let shard = 4
        let full = (0..<(shard * t)).map { Float($0) }
        var mine = [Float](repeating: 0, count: shard)
        sp.scatterToSequenceParallelRegionForward(full, into: &mine, shardCount: shard)
        XCTAssertEqual(mine, (0..<shard).map { Float(rank * shard + $0) })
        var dfull = [Float](repeating: -1, count: shard * t)
        for i in 0..<shard { dfull[rank * shard + i] = value(rank, i) }
        try sp.scatterToSequenceParallelRegionBackward(&dfull, shardCount: shard)
        XCTAssertEqual(dfull, (0..<(shard * t)).map { value($0 / shard, $0 % shard) })
    }

    func testCountersRecordBytes() throws {
        let group = try XCTUnwrap(tp.group)
        group.resetCounters()
        var x = [Float](repeating: 1, count: 100)
        try tp.reduceFromTensorModelParallelRegionForward(&x, count: 100)
        XCTAssertEqual(group.counters.bytes, 400)
        XCTAssertEqual(group.counters.calls, 1)
    }
}

// GridLayoutTests.swift — the rank layout against Megatron's documented 16-rank example and the
// 8-rank table in ParallelState.swift.
import MegatronCore
import XCTest

final class GridLayoutTests: XCTestCase {
    func testMegatronDocstringExample16Ranks() {
        let g = GridLayout(world: 16, tensor: 2, pipeline: 4)
        XCTAssertEqual(g.data, 2)
        XCTAssertEqual(g.tensorGroups, stride(from: 0, to: 16, by: 2).map { [$0, $0 + 1] })
        XCTAssertEqual(g.dataGroups, [[0, 2], [1, 3], [4, 6], [5, 7], [8, 10], [9, 11], [12, 14], [13, 15]])
        XCTAssertEqual(g.pipelineGroups, [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]])
        XCTAssertEqual(g.embeddingGroups, [[0, 12], [1, 13], [2, 14], [3, 15]])
        XCTAssertEqual(g.modelParallelGroups, [[0, 1, 4, 5, 8, 9, 12, 13], [2, 3, 6, 7, 10, 11, 14, 15]])
    }

    func testEightRanks() {
        let g = GridLayout(world: 8, tensor: 2, pipeline: 2)
        XCTAssertEqual((0..<8).map { g.coordinates(of: $0).tp }, [0, 1, 0, 1, 0, 1, 0, 1])
        XCTAssertEqual((0..<8).map { g.coordinates(of: $0).dp }, [0, 0, 1, 1, 0, 0, 1, 1])
        XCTAssertEqual((0..<8).map { g.coordinates(of: $0).pp }, [0, 0, 0, 0, 1, 1, 1, 1])
        XCTAssertEqual(g.dataGroups, [[0, 2], [1, 3], [4, 6], [5, 7]])
        XCTAssertEqual(g.pipelineGroups, [[0, 4], [1, 5], [2, 6], [3, 7]])
        for r in 0..<8 { let c = g.coordinates(of: r); XCTAssertEqual(g.rank(tp: c.tp, dp: c.dp, pp: c.pp), r) }
    }
}

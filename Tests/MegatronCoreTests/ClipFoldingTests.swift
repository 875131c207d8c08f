// ClipFoldingTests.swift — the clipping coefficient multiplied in as the optimizer reads each
// gradient (ChunkOptimizer.update's gradientScale) gives bit for bit the parameters and state of
// Megatron's order (scale every gradient, then update), for AdamW and SGD over three steps, and
// leaves the stored gradients as they were.
import MegatronCore
import Tensor
import XCTest

final class ClipFoldingTests: XCTestCase {
    func testFoldedClipEqualsScalingFirstBitForBit() throws {
        ThreadBudget.configure(threads: 2)
        let gpt = GPTConfig(
            numLayers: 2, hiddenSize: 16, numAttentionHeads: 2, seqLength: 8, maxPositionEmbeddings: 8, vocabSize: 37)
        let (table, _) = GPTSlots.declare(config: gpt)
        let n = table.totalCount
        for kind in OptimizerKind.allCases {
            let hyper = OptimizerHyperparameters(kind: kind, weightDecay: 0.1)
            let folded = ParameterArena(table: table), scaledFirst = ParameterArena(table: table)
            folded.initialize(seed: 3)
            scaledFirst.initialize(seed: 3)
            let foldedOptimizer = ChunkOptimizer(table: table, hyper: hyper)
            let referenceOptimizer = ChunkOptimizer(table: table, hyper: hyper)
            var random = SplitMixTestRandom(seed: 11)
            for step in 1...3 {
                let grads = ParameterArena(table: table), scaled = ParameterArena(table: table)
                for i in 0..<n { grads.storage.base[i] = Float(Int(random.next() % 4001) - 2000) * 1e-3 }
                let stored = Array(UnsafeBufferPointer(start: grads.storage.base, count: n))
                let norm = try GradClipping.globalNorm(grads)
                let coefficient = GradClipping.coefficient(norm: norm, maxNorm: 0.5)
                XCTAssertLessThan(coefficient, 1, "the case must clip")
                let scale = GradClipping.gradientScale(coefficient)
                foldedOptimizer.update(params: folded, grads: grads, lr: 1e-2, gradientScale: scale)
                scaled.storage.base.update(from: grads.storage.base, count: n)
                GradClipping.clip(scaled, norm: norm, maxNorm: 0.5)
                referenceOptimizer.update(params: scaledFirst, grads: scaled, lr: 1e-2)
                for i in 0..<n {
                    guard folded.storage.base[i].bitPattern == scaledFirst.storage.base[i].bitPattern else {
                        return XCTFail("\(kind) step \(step): parameter \(i) differs")
                    }
                    XCTAssertEqual(grads.storage.base[i], stored[i], "\(kind): the stored gradient was written")
                }
                XCTAssertEqual(foldedOptimizer.state.count, hyper.stateNames.count)
                XCTAssertEqual(referenceOptimizer.state.count, foldedOptimizer.state.count)
                for (a, b) in zip(foldedOptimizer.state, referenceOptimizer.state) {
                    for i in 0..<n where a.storage.base[i].bitPattern != b.storage.base[i].bitPattern {
                        return XCTFail("\(kind) step \(step): state element \(i) differs")
                    }
                }
            }
        }
        XCTAssertEqual(GradClipping.gradientScale(1.5), 1)
        XCTAssertEqual(GradClipping.gradientScale(0.25), 0.25)
    }
}

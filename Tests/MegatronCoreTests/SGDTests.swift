// SGDTests.swift — `optimizer: sgd` against a direct transcription of PyTorch's torch.optim.SGD
// algorithm (dampening 0, no Nesterov) in Double: three steps with different gradients, weight
// decay on matrices only, layer-wise learning-rate decay, momentum 0.9 and 0.
import MegatronCore
import Tensor
import XCTest

final class SGDTests: XCTestCase {
    let gpt = GPTConfig(
        numLayers: 4, hiddenSize: 16, numAttentionHeads: 2, seqLength: 8, maxPositionEmbeddings: 8, vocabSize: 40)

    func testThreeStepsEqualPyTorchsAlgorithm() throws {
        ThreadBudget.configure(threads: 2)
        let (table, _) = GPTSlots.declare(config: gpt)
        for momentum in [0.9, 0.0] {
            let hyper = OptimizerHyperparameters(
                kind: .sgd, weightDecay: 0.1, sgdMomentum: Float(momentum), layerWiseDecay: 0.8, numLayers: 4)
            XCTAssertEqual(hyper.stateNames, ["momentum_buffer"])
            let params = ParameterArena(table: table), grads = ParameterArena(table: table)
            params.initialize(seed: 5)
            let n = table.totalCount
            var expected = (0..<n).map { Double(params.storage.base[$0]) }
            var buffer = [Double](repeating: 0, count: n)
            let optimizer = ChunkOptimizer(table: table, hyper: hyper)
            var random = SplitMixTestRandom(seed: 9)
            for step in 1...3 {
                for i in 0..<n { grads.storage.base[i] = Float(Int(random.next() % 2001) - 1000) * 1e-3 }
                let lr = 0.05 / Double(step)
                optimizer.update(params: params, grads: grads, lr: Float(lr))
                // torch.optim.SGD: d = g + wd·p; buf = d at the first step, else μ·buf + d; p -= lr·buf.
                for (slot, spec) in table.specs.enumerated() {
                    let wd = spec.weightDecay ? 0.1 : 0, rate = lr * Double(hyper.learningRateScale(spec))
                    for e in 0..<spec.count {
                        let i = table.offsets[slot] + e
                        let d = Double(grads.storage.base[i]) + wd * expected[i]
                        buffer[i] = step == 1 ? d : momentum * buffer[i] + d
                        expected[i] -= rate * buffer[i]
                    }
                }
            }
            var worst = 0.0
            for i in 0..<n { worst = max(worst, abs(Double(params.storage.base[i]) - expected[i])) }
            XCTAssertLessThan(worst, 2e-6, "momentum \(momentum): largest difference \(worst)")
            let state = optimizer.state[0].storage.base
            var worstBuffer = 0.0
            for i in 0..<n { worstBuffer = max(worstBuffer, abs(Double(state[i]) - buffer[i])) }
            XCTAssertLessThan(worstBuffer, 2e-5, "momentum \(momentum): the buffer")
        }
    }
}

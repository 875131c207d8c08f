// LayerWiseDecayTests.swift — layer-wise learning-rate decay: each parameter's multiplier is the
// formula (layer l of L: gamma^(L−l); embeddings and their tied copy: gamma^L; final norm and heads: 1),
// and one AdamW step with gamma moves every parameter by exactly its multiplier times the step without.
import MegatronCore
import Tensor
import XCTest

final class LayerWiseDecayTests: XCTestCase {
    let gpt = GPTConfig(
        numLayers: 4, hiddenSize: 16, numAttentionHeads: 2, seqLength: 8, maxPositionEmbeddings: 8, vocabSize: 40)

    func testEveryParameterGetsTheFormulasMultiplier() throws {
        let gamma = 0.5, hyper = OptimizerHyperparameters(layerWiseDecay: gamma, numLayers: 4)
        // The last of two stages: layers 3 and 4 (global), the final norm and the tied output layer.
        let last = StagePlan(layers: [2, 3], hasEmbedding: false, hasHead: true)
        let tables = [GPTSlots.declare(config: gpt).0, GPTSlots.declare(config: gpt, stage: last).0]
        var seen = Set<String>()
        for table in tables {
            for spec in table.specs {
                let expected: Float
                if spec.name.hasPrefix("embedding.") || spec.name == GPTSlots.outputLayerName {
                    expected = 1.0 / 16
                } else if spec.name.hasPrefix("decoder.layers.") {
                    let i = Int(spec.name.split(separator: ".")[2])!
                    expected = Float(pow(gamma, Double(4 - (i + 1))))
                } else {
                    expected = 1
                }
                XCTAssertEqual(hyper.learningRateScale(spec), expected, spec.name)
                seen.insert(spec.name)
            }
        }
        XCTAssertTrue(seen.contains(GPTSlots.outputLayerName) && seen.contains(GPTSlots.finalNormWeightName))
        XCTAssertEqual(OptimizerHyperparameters().learningRateScale(tables[0].specs[0]), 1, "gamma = 1: no decay")
    }

    func testOneStepMovesEachParameterByItsMultiplier() throws {
        ThreadBudget.configure(threads: 2)
        let gamma = 0.6
        let (table, _) = GPTSlots.declare(config: gpt)
        let start = ParameterArena(table: table), grads = ParameterArena(table: table)
        start.initialize(seed: 3)
        var random = SplitMixTestRandom(seed: 4)  // every gradient non-zero, biases and norms too
        for i in 0..<table.totalCount { grads.storage.base[i] = Float(Int(random.next() % 2001) - 1000) * 1e-4 }
        func step(_ decay: Double) -> ParameterArena {
            let p = ParameterArena(table: table)
            p.storage.base.update(from: start.storage.base, count: table.totalCount)
            ChunkOptimizer(
                table: table, hyper: OptimizerHyperparameters(weightDecay: 0.1, layerWiseDecay: decay, numLayers: 4)
            )
            .update(params: p, grads: grads, lr: 1e-2)
            return p
        }
        let plain = step(1), decayed = step(gamma)
        let hyper = OptimizerHyperparameters(layerWiseDecay: gamma, numLayers: 4)
        for (slot, spec) in table.specs.enumerated() {
            let s = hyper.learningRateScale(spec)
            let a = plain.pointer(slot), b = decayed.pointer(slot), p0 = start.pointer(slot)
            var worst: Float = 0, largest: Float = 0
            for i in 0..<spec.count {
                worst = max(worst, abs((b[i] - p0[i]) - s * (a[i] - p0[i])))
                largest = max(largest, abs(a[i] - p0[i]))
            }
            XCTAssertGreaterThan(largest, 0, spec.name)
            XCTAssertLessThan(worst, 1e-6 + 1e-4 * largest, "\(spec.name): update ≠ \(s) × the undecayed one")
        }
    }
}

// ModelWeightsTests.swift — with the bf16 kernel, a bf16 model reads its matrices from the fp32 main
// parameters (the kernel rounds them while packing) instead of a rounded copy (ModelWeights): one
// training pass of GPT and of BERT (token types, padding, both heads; pre-LN and post-LN) gives the
// loss and every gradient bit for bit as the model with the rounded copy, in less memory; and after
// an optimizer step changes the main parameters, both still agree (syncWeights refreshes the
// tables that keep copies).
import MegatronCore
import Tensor
import XCTest

final class ModelWeightsTests: XCTestCase {
    override func setUp() { ThreadBudget.configure(threads: 2) }

    /// Loss and gradients of two training passes, the main parameters nudged in between.
    func twoPasses(_ pass: () throws -> Double, params: ParameterArena, grads: ParameterArena, sync: () -> Void)
        rethrows -> [(Double, [Float])]
    {
        var out: [(Double, [Float])] = []
        for step in 0..<2 {
            grads.zero()
            let loss = try pass()
            out.append((loss, Array(UnsafeBufferPointer(start: grads.storage.base, count: grads.storage.count))))
            if step == 0 {
                // An "optimizer step": every parameter moves by a tenth of its gradient.
                for i in 0..<params.storage.count { params.storage.base[i] -= 0.1 * grads.storage.base[i] }
                sync()
            }
        }
        return out
    }

    func assertSame(_ a: [(Double, [Float])], _ b: [(Double, [Float])], _ what: String) {
        XCTAssertEqual(a.count, b.count)
        for (step, (x, y)) in zip(a, b).enumerated() {
            XCTAssertEqual(x.0.bitPattern, y.0.bitPattern, "\(what), pass \(step + 1): loss")
            XCTAssertTrue(x.1.contains { $0 != 0 }, "\(what): gradients are computed")
            XCTAssertTrue(
                x.1.count == y.1.count && zip(x.1, y.1).allSatisfy { $0.bitPattern == $1.bitPattern },
                "\(what), pass \(step + 1): gradients differ")
        }
    }

    func testGPTReadsMainParametersBitForBitAsTheRoundedCopy() throws {
        try XCTSkipUnless(BF16.available, "this CPU has no bf16 instructions: bf16 models keep a rounded copy")
        let c = GPTConfig(
            numLayers: 2, hiddenSize: 64, numAttentionHeads: 4, seqLength: 32, maxPositionEmbeddings: 32,
            vocabSize: 97)
        var results: [[(Double, [Float])]] = []
        for copy in [false, true] {
            let model = GPTModel(config: c, microBatch: 2, threads: 2, precision: .bf16, roundedWeightCopy: copy)
            XCTAssertEqual(
                model.weights.storage.count < model.params.storage.count / 4, !copy, "shared view holds only wpe")
            let acts = model.makeActivations()
            for i in 0..<(c.seqLength * 2) {
                acts.tokens[i] = Int32((i * 37 + 5) % c.vocabSize)
                acts.targets[i] = Int32((i * 11 + 3) % c.vocabSize)
            }
            results.append(
                try twoPasses(
                    {
                        try model.forwardBackward(
                            acts, gradScale: 0.01, PassContext(iteration: 1, microbatch: 0, training: true))
                    }, params: model.params, grads: model.grads, sync: model.syncWeights))
        }
        assertSame(results[0], results[1], "GPT")
    }

    func testBertReadsMainParametersBitForBitAsTheRoundedCopy() throws {
        try XCTSkipUnless(BF16.available, "this CPU has no bf16 instructions: bf16 models keep a rounded copy")
        for postLN in [false, true] {
            var gpt = GPTConfig(
                numLayers: 2, hiddenSize: 16, numAttentionHeads: 2, seqLength: 12, maxPositionEmbeddings: 12,
                vocabSize: 40, paddedVocabSize: 48, initMethodStd: 0.2, seed: 7)
            gpt.postLayerNorm = postLN
            var results: [[(Double, [Float])]] = []
            for copy in [false, true] {
                let model = BertModel(
                    config: BertConfig(transformer: gpt, binaryHead: true, task: .pretraining), microBatch: 2,
                    threads: 2, precision: .bf16, roundedWeightCopy: copy)
                let acts = model.makeActivations()
                let lengths = [12, 7]
                for j in 0..<2 {
                    for pos in 0..<12 {
                        let r = pos * 2 + j, real = pos < lengths[j]
                        acts.core.tokens.base[r] = !real ? 39 : pos == 0 ? 36 : Int32((r * 7 + 3) % 36)
                        acts.tokentypes.base[r] = real && pos >= lengths[j] / 2 ? 1 : 0
                        acts.labels.base[r] = real && pos > 0 && pos % 3 == 1 ? Int32((r * 5) % 36) : -1
                    }
                }
                acts.sequenceLabels = [1, 0]
                acts.setLengths(lengths)
                let ctx = PassContext(iteration: 1, microbatch: 0, training: true)
                results.append(
                    try twoPasses(
                        {
                            let loss = try XCTUnwrap(try model.forward(acts, ctx, gradScale: 1))
                            try model.backward(acts, ctx)
                            return loss
                        }, params: model.params, grads: model.grads, sync: model.syncWeights))
            }
            assertSame(results[0], results[1], "BERT \(postLN ? "post-LN" : "pre-LN")")
        }
    }
}

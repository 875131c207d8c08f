// GPTReferenceTests.swift — the whole model against PyTorch: loss, logits and every gradient of a
// tiny GPT, then five AdamW steps with clipping and a warm-up + cosine LR schedule, all from
// Fixtures/gpt_reference.h5 (written by scripts/make_fixtures.py). Tolerance 1e-5 relative.
import Checkpoint
import Foundation
import MegatronCore
import Tensor
import TestSupport
import XCTest

final class GPTReferenceTests: XCTestCase {
    struct Fixture {
        let file: HDF5File
        let config: GPTConfig
        let microBatch: Int
    }

    func loadFixture() throws -> Fixture {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: "gpt_reference", withExtension: "h5", subdirectory: "Fixtures"))
        let f = try HDF5File.openReadOnly(url.path)
        let c = GPTConfig(
            numLayers: try f.intAttribute("num_layers"), hiddenSize: try f.intAttribute("hidden_size"),
            numAttentionHeads: try f.intAttribute("num_attention_heads"),
            ffnHiddenSize: try f.intAttribute("ffn_hidden_size"),
            seqLength: try f.intAttribute("seq_length"),
            maxPositionEmbeddings: try f.intAttribute("max_position_embeddings"),
            vocabSize: try f.intAttribute("vocab_size"), paddedVocabSize: try f.intAttribute("padded_vocab_size"),
            normEpsilon: Float(try f.doubleAttribute("norm_epsilon")))
        return Fixture(file: f, config: c, microBatch: try f.intAttribute("micro_batch_size"))
    }

    func makeModel(_ fx: Fixture) throws -> GPTModel {
        ThreadBudget.configure(threads: 2)
        let model = GPTModel(config: fx.config, microBatch: fx.microBatch, threads: 2)
        for (slot, spec) in model.table.specs.enumerated() {
            try fx.file.readFloats("params/" + spec.name, shape: spec.shape, into: model.params.pointer(slot))
        }
        return model
    }

    /// max |a − b| ≤ tol · max(|b|) over the tensor.
    func assertClose(
        _ a: UnsafePointer<Float>, _ b: [Float], tol: Float, _ what: String, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        assertTensorsClose(a, b, tolerance: tol, what, allowZero: true, file: file, line: line)
    }

    func testLossLogitsAndEveryGradientMatchPyTorch() throws {
        let fx = try loadFixture()
        let model = try makeModel(fx)
        let c = fx.config, n = c.seqLength * fx.microBatch
        let acts = model.makeActivations()
        try fx.file.readInt32s("tokens", shape: [c.seqLength, fx.microBatch], into: acts.tokens.base)
        try fx.file.readInt32s("targets", shape: [c.seqLength, fx.microBatch], into: acts.targets.base)
        model.grads.zero()
        let lossSum = try model.forwardBackward(
            acts, gradScale: 1 / Float(n), PassContext(iteration: 1, microbatch: 0, training: true))
        let refLoss = try fx.file.doubleAttribute("loss")
        XCTAssertEqual(lossSum / Double(n), refLoss, accuracy: 1e-5 * refLoss)

        // Logits: recompute from the final LayerNorm output (the LM head never stores them whole).
        var logits = [Float](repeating: 0, count: n * c.vocabSize)
        BLAS.sgemm(
            transB: true, m: n, n: c.vocabSize, k: c.hiddenSize, a: acts.finalNorm, lda: c.hiddenSize,
            b: model.params.pointer(try XCTUnwrap(model.slots.wordEmbeddings)), ldb: c.hiddenSize, c: &logits,
            ldc: c.vocabSize)
        let refLogits = try fx.file.readFloats("logits")
        XCTAssertEqual(refLogits.shape, [c.seqLength, fx.microBatch, c.vocabSize])
        logits.withUnsafeBufferPointer { assertClose($0.baseAddress!, refLogits.values, tol: 1e-5, "logits") }

        for (slot, spec) in model.table.specs.enumerated() {
            let ref = try fx.file.readFloats("grads/" + spec.name)
            XCTAssertEqual(ref.shape, spec.shape, spec.name)
            assertClose(model.grads.pointer(slot), ref.values, tol: 1e-5, "grad of \(spec.name)")
        }
        // Padded vocabulary rows never receive gradient.
        let wteGrad = model.grads.pointer(try XCTUnwrap(model.slots.wordEmbeddings))
        for i in (c.vocabSize * c.hiddenSize)..<(c.paddedVocabSize * c.hiddenSize) where wteGrad[i] != 0 {
            XCTFail("padded vocabulary row \(i / c.hiddenSize) has gradient \(wteGrad[i])"); break
        }
    }

    func testFiveAdamWStepsWithClippingAndScheduleMatchPyTorch() throws {
        let fx = try loadFixture()
        let model = try makeModel(fx)
        let f = fx.file, c = fx.config
        let micro = try f.intAttribute("microbatches"), steps = try f.intAttribute("steps")
        let gbs = micro * fx.microBatch, n = c.seqLength * fx.microBatch
        let optimizer = ChunkOptimizer(
            table: model.table,
            hyper: OptimizerHyperparameters(
                beta1: Float(try f.doubleAttribute("adam_beta1")), beta2: Float(try f.doubleAttribute("adam_beta2")),
                eps: Float(try f.doubleAttribute("adam_eps")), weightDecay: Float(try f.doubleAttribute("weight_decay"))
            ))
        var schedule = LRSchedule(
            maxLR: try f.doubleAttribute("lr"), minLR: try f.doubleAttribute("min_lr"),
            warmupSteps: try f.intAttribute("warmup_iters") * gbs,
            decaySteps: try f.intAttribute("decay_iters") * gbs, style: .cosine)
        let clip = try f.doubleAttribute("clip_grad")
        let tokens = try f.readFloats("train/tokens")  // read through float conversion: ids < 2^24 are exact
        let targets = try f.readFloats("train/targets")
        let refLosses = try f.readFloats("train/losses").values
        let refLRs = try f.readFloats("train/lrs").values
        let refNorms = try f.readFloats("train/grad_norms").values
        let acts = model.makeActivations()
        for k in 0..<steps {
            model.grads.zero()
            var lossSum = 0.0
            for mb in 0..<micro {
                let base = (k * micro + mb) * n
                for i in 0..<n {
                    acts.tokens[i] = Int32(tokens.values[base + i])
                    acts.targets[i] = Int32(targets.values[base + i])
                }
                lossSum += try model.forwardBackward(
                    acts, gradScale: 1 / Float(n * micro), PassContext(iteration: k + 1, microbatch: mb, training: true)
                )
            }
            let loss = lossSum / Double(n * micro)
            XCTAssertEqual(loss, Double(refLosses[k]), accuracy: 1e-5 * Double(refLosses[k]), "loss at step \(k + 1)")
            let lr = schedule.learningRate
            XCTAssertEqual(lr, Double(refLRs[k]), accuracy: 1e-9, "lr at step \(k + 1)")
            let norm = try GradClipping.globalNorm(model.grads)
            XCTAssertEqual(
                norm, Double(refNorms[k]), accuracy: 1e-5 * Double(refNorms[k]), "grad norm at step \(k + 1)")
            GradClipping.clip(model.grads, norm: norm, maxNorm: clip)
            optimizer.update(params: model.params, grads: model.grads, lr: Float(lr))
            schedule.advance(samples: gbs)
        }
        // The key part of linear_qkv.bias has an identically zero true gradient (softmax ignores a
        // constant added to every score of a row), so Adam turns rounding noise (1e-9 in fp32,
        // 1e-18 in the float64 reference) into updates of up to lr per step. Those entries are
        // checked against that bound; every other entry at 1e-5.
        let d = c.headDim, lrSum = refLRs.reduce(0, +)
        for (slot, spec) in model.table.specs.enumerated() {
            let ref = try f.readFloats("final/" + spec.name)
            var ours = Array(UnsafeBufferPointer(start: model.params.pointer(slot), count: spec.count))
            var expected = ref.values
            if spec.name.hasSuffix("linear_qkv.bias") {
                for i in 0..<spec.count where (i % (3 * d)) / d == 1 {
                    XCTAssertLessThanOrEqual(abs(ours[i] - expected[i]), 1.01 * lrSum, "\(spec.name)[\(i)] (key bias)")
                    ours[i] = 0; expected[i] = 0
                }
            }
            ours.withUnsafeBufferPointer {
                assertClose($0.baseAddress!, expected, tol: 1e-5, "parameter \(spec.name) after \(steps) steps")
            }
        }
    }
}

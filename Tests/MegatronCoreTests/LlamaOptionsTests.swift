// LlamaOptionsTests.swift — Megatron's Llama-style GPT options: RMSNorm, SwiGLU and rope against
// central finite differences (and rope against its definition), grouped-query attention's expand and
// reduce against their definitions, then the whole model with all six options (rope at
// rotary_percent 0.5, RMSNorm, SwiGLU, no linear biases, an untied LM head, 2 query groups of 4
// heads) against PyTorch float64: loss, logits and every gradient from Fixtures/llama_reference.h5
// (written by scripts/make_llama_reference.py, whose reference is itself checked against
// transformers' LlamaForCausalLM at rotary_percent 1). Tolerance 1e-5 relative.
import Checkpoint
import Foundation
import MegatronCore
import Tensor
import TestSupport
import XCTest

final class LlamaOptionsTests: XCTestCase {
    override func setUp() { ThreadBudget.configure(threads: 2) }

    func testRMSNorm() {
        let n = 6, h = 40
        var rnd = TestRandom(21)
        var x = rnd.array(n * h, scale: 2), w = rnd.array(h).map { 1 + 0.3 * $0 }
        let R = rnd.array(n * h)
        func fwd(_ x: [Float], _ w: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: n * h), rstd = [Float](repeating: 0, count: n)
            RMSNorm.forward(x: x, weight: w, y: &y, rstd: &rstd, rows: n, width: h, eps: 1e-5)
            return y
        }
        var y = [Float](repeating: 0, count: n * h), rstd = [Float](repeating: 0, count: n)
        RMSNorm.forward(x: x, weight: w, y: &y, rstd: &rstd, rows: n, width: h, eps: 1e-5)
        // The definition, in double precision.
        for r in 0..<n {
            let ms = (0..<h).reduce(0.0) { $0 + Double(x[r * h + $1]) * Double(x[r * h + $1]) } / Double(h)
            for c in 0..<h {
                let ref = Double(x[r * h + c]) / (ms + 1e-5).squareRoot() * Double(w[c])
                XCTAssertEqual(Double(y[r * h + c]), ref, accuracy: 1e-5 * max(1, abs(ref)))
            }
        }
        var dx = [Float](repeating: 0.5, count: n * h), dw = [Float](repeating: 0, count: h)
        RMSNorm.backward(dy: R, x: x, weight: w, rstd: rstd, dx: &dx, dweight: &dw, rows: n, width: h)
        dx = dx.map { $0 - 0.5 }  // dx accumulates
        checkGradient(&x, analytic: dx, eps: 3e-3, "RMSNorm dx") { dot(fwd($0, w), R) }
        checkGradient(&w, analytic: dw, "RMSNorm dweight") { dot(fwd(x, $0), R) }
    }

    func testSwiGLU() {
        let n = 5, f = 37  // a width past one vector and a tail
        var rnd = TestRandom(22)
        var fc1 = rnd.array(n * 2 * f, scale: 3)
        let R = rnd.array(n * f)
        func fwd(_ fc1: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: n * f)
            SwiGLU.forward(fc1: fc1, act: &y, rows: n, width: f)
            return y
        }
        let y = fwd(fc1)
        for r in 0..<n {
            for c in 0..<f {
                let g = Double(fc1[r * 2 * f + c]), u = Double(fc1[r * 2 * f + f + c])
                let ref = g / (1 + exp(-g)) * u
                XCTAssertEqual(Double(y[r * f + c]), ref, accuracy: 1e-5 * max(1, abs(ref)))
            }
        }
        var d = [Float](repeating: 0, count: n * 2 * f)
        SwiGLU.backward(dact: R, fc1: fc1, dfc1: &d, rows: n, width: f)
        checkGradient(&fc1, analytic: d, eps: 1e-3, "SwiGLU") { dot(fwd($0), R) }
    }

    /// Rope on [rows, heads·3·d]: q and k rotated as the definition says (v and the channels past
    /// rotaryDim untouched), the inverse undoes it, and the backward (the inverse on the gradient)
    /// matches finite differences, with training's interleaved rows and with position ids.
    func testRotaryEmbedding() {
        rotaryCase(headDim: 12, rotaryDim: 8)  // scalar rows only
        rotaryCase(headDim: 44, rotaryDim: 40)  // a 16-wide vector step and a tail per half
    }

    func rotaryCase(headDim d: Int, rotaryDim rot: Int) {
        let s = 7, b = 2, heads = 2, n = s * b, width = heads * 3 * d
        let table = RotaryEmbedding(rotaryDim: rot, base: 10000, positions: 16)
        var rnd = TestRandom(23)
        var qkv = rnd.array(n * width)
        let R = rnd.array(n * width)
        let ids: [Int32] = (0..<n).map { Int32(($0 * 5) % 11) }
        for positionIds in [nil, ids] {
            func position(_ r: Int) -> Int { positionIds.map { Int($0[r]) } ?? r / b }
            func fwd(_ x: [Float]) -> [Float] {
                var y = x
                y.withUnsafeMutableBufferPointer { yb in
                    ids.withUnsafeBufferPointer { ib in
                        table.apply(
                            yb.baseAddress!, rows: n, heads: heads, headDim: d,
                            positions: positionIds == nil ? .interleaved(batch: b) : .ids(ib.baseAddress!))
                    }
                }
                return y
            }
            let y = fwd(qkv)
            for r in 0..<n {
                for head in 0..<heads {
                    for part in 0..<3 {
                        for c in 0..<d {
                            let i = r * width + head * 3 * d + part * d + c
                            var ref = Double(qkv[i])
                            if part < 2 && c < rot {
                                let k = c % (rot / 2), first = c < rot / 2
                                let angle = Double(position(r)) * pow(10000, -Double(2 * k) / Double(rot))
                                let partner = Double(qkv[i + (first ? rot / 2 : -rot / 2)])
                                ref =
                                    first
                                    ? ref * cos(angle) - partner * sin(angle) : ref * cos(angle) + partner * sin(angle)
                            }
                            XCTAssertEqual(
                                Double(y[i]), ref, accuracy: 1e-5, "row \(r) head \(head) part \(part) ch \(c)")
                        }
                    }
                }
            }
            var back = R
            back.withUnsafeMutableBufferPointer { bb in
                ids.withUnsafeBufferPointer { ib in
                    table.apply(
                        bb.baseAddress!, rows: n, heads: heads, headDim: d, inverse: true,
                        positions: positionIds == nil ? .interleaved(batch: b) : .ids(ib.baseAddress!))
                }
            }
            checkGradient(&qkv, analytic: back, eps: 1e-2, "rope") { dot(fwd($0), R) }
        }
    }

    /// expand puts each group's k and v beside each of its query heads; reduce is its adjoint (⟨expand x,
    /// y⟩ = ⟨x, reduce y⟩ for any x, y), so the backward sums each group's key and value gradients.
    func testGroupedQueryExpandAndReduce() {
        groupedQueryCase(headDim: 5)  // k and v together narrower than a vector
        groupedQueryCase(headDim: 12)  // one 16-wide step and a tail
    }

    func groupedQueryCase(headDim d: Int) {
        let n = 3, groups = 2, k = 3, inWidth = groups * (k + 2) * d, outWidth = groups * k * 3 * d
        var rnd = TestRandom(24)
        let x = rnd.array(n * inWidth), y = rnd.array(n * outWidth)
        var ex = [Float](repeating: 0, count: n * outWidth), ry = [Float](repeating: 0, count: n * inWidth)
        GroupedQuery.expand(x, into: &ex, rows: n, groups: groups, headsPerGroup: k, headDim: d)
        GroupedQuery.reduce(y, into: &ry, rows: n, groups: groups, headsPerGroup: k, headDim: d)
        for r in 0..<n {
            for g in 0..<groups {
                for j in 0..<k {
                    for e in 0..<d {
                        let head = r * outWidth + (g * k + j) * 3 * d, group = r * inWidth + g * (k + 2) * d
                        XCTAssertEqual(ex[head + e], x[group + j * d + e], "q")
                        XCTAssertEqual(ex[head + d + e], x[group + k * d + e], "k")
                        XCTAssertEqual(ex[head + 2 * d + e], x[group + (k + 1) * d + e], "v")
                    }
                }
            }
        }
        XCTAssertEqual(dot(ex, y), dot(x, ry), accuracy: 1e-4)
    }

    func testWholeModelWithEveryOptionMatchesPyTorch() throws {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: "llama_reference", withExtension: "h5", subdirectory: "Fixtures"))
        let f = try HDF5File.openReadOnly(url.path)
        var c = GPTConfig(
            numLayers: try f.intAttribute("num_layers"), hiddenSize: try f.intAttribute("hidden_size"),
            numAttentionHeads: try f.intAttribute("num_attention_heads"),
            ffnHiddenSize: try f.intAttribute("ffn_hidden_size"), seqLength: try f.intAttribute("seq_length"),
            maxPositionEmbeddings: try f.intAttribute("max_position_embeddings"),
            vocabSize: try f.intAttribute("vocab_size"), paddedVocabSize: try f.intAttribute("padded_vocab_size"),
            normEpsilon: Float(try f.doubleAttribute("norm_epsilon")))
        c.positionEmbedding = .rope
        c.rotaryBase = try f.doubleAttribute("rotary_base")
        c.rotaryPercent = try f.doubleAttribute("rotary_percent")
        c.normalization = .rmsNorm
        c.swiglu = true
        c.addBiasLinear = false
        c.untieEmbeddings = true
        c.numQueryGroups = try f.intAttribute("num_query_groups")
        XCTAssertTrue(c.isGroupedQuery)
        let b = try f.intAttribute("micro_batch_size"), n = c.seqLength * b
        let model = GPTModel(config: c, microBatch: b, threads: 2)
        var fixtureNames = Set<String>()
        for (slot, spec) in model.table.specs.enumerated() {
            try f.readFloats("params/" + spec.name, shape: spec.shape, into: model.params.pointer(slot))
            fixtureNames.insert(spec.name)
        }
        XCTAssertNil(model.slots.positionEmbeddings, "no position table under rope")
        XCTAssertNotEqual(model.slots.outputLayer, model.slots.wordEmbeddings, "the head is untied")
        XCTAssertFalse(fixtureNames.contains { $0.hasSuffix(".bias") }, "no biases: \(fixtureNames.sorted())")
        let acts = model.makeActivations()
        try f.readInt32s("tokens", shape: [c.seqLength, b], into: acts.tokens.base)
        try f.readInt32s("targets", shape: [c.seqLength, b], into: acts.targets.base)
        model.grads.zero()
        let lossSum = try model.forwardBackward(
            acts, gradScale: 1 / Float(n), PassContext(iteration: 1, microbatch: 0, training: true))
        let refLoss = try f.doubleAttribute("loss")
        XCTAssertEqual(lossSum / Double(n), refLoss, accuracy: 1e-5 * refLoss)
        var logits = [Float](repeating: 0, count: n * c.vocabSize)
        BLAS.sgemm(
            transB: true, m: n, n: c.vocabSize, k: c.hiddenSize, a: acts.finalNorm, lda: c.hiddenSize,
            b: model.params.pointer(try XCTUnwrap(model.slots.outputLayer)), ldb: c.hiddenSize, c: &logits,
            ldc: c.vocabSize)
        let refLogits = try f.readFloats("logits")
        logits.withUnsafeBufferPointer {
            assertTensorsClose($0.baseAddress!, refLogits.values, tolerance: 1e-5, "logits", allowZero: true)
        }
        for (slot, spec) in model.table.specs.enumerated() {
            let ref = try f.readFloats("grads/" + spec.name)
            XCTAssertEqual(ref.shape, spec.shape, spec.name)
            assertTensorsClose(
                model.grads.pointer(slot), ref.values, tolerance: 1e-5, "grad of \(spec.name)", allowZero: true)
        }
    }
}

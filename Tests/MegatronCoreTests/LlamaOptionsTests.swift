// LlamaOptionsTests.swift — Megatron's Llama-style GPT options: RMSNorm, SwiGLU and rope against
// central finite differences (and rope against its definition, also on the grouped layout),
// grouped-query attention against multi-head attention on copied keys and values, qk_layernorm
// against its definition and finite differences, then the whole model with all six options (rope at
// rotary_percent 0.5, RMSNorm, SwiGLU, no linear biases, an untied LM head, 2 query groups of 4
// heads) against PyTorch float64: loss, logits and every gradient from Fixtures/llama_reference.h5
// (written by scripts/make_llama_reference.py, whose reference is itself checked against
// transformers' LlamaForCausalLM at rotary_percent 1), and with qk_layernorm from
// llama_qknorm_reference.h5 (checked against Qwen3ForCausalLM). Tolerance 1e-5 relative.
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

    /// Grouped-query attention in its own layout ([its k heads' q | k | v] per group) equals multi-head
    /// attention on the same queries with each group's key and value copied beside each of its heads
    /// (the layout the core used to be given): the outputs and log-sum-exps bit for bit, the query
    /// gradients bit for bit, and each group's key and value gradients the sums of its heads' — for
    /// causal and padded masks, dropout, several tiles and an odd head size, fp32 and bf16 products.
    func testGroupedQueryAttentionEqualsMultiHeadOnCopiedKeysAndValues() {
        for precision in [Precision.fp32, .bf16] {
            groupedAttentionCase(seq: 70, headDim: 8, mask: .causal, dropout: 0, precision: precision)
            groupedAttentionCase(seq: 150, headDim: 5, mask: .causal, dropout: 0.2, precision: precision)
            groupedAttentionCase(
                seq: 70, headDim: 8, mask: .keyPadding(lengths: [61, 70]), dropout: 0.1, precision: precision)
        }
    }

    func groupedAttentionCase(seq s: Int, headDim d: Int, mask: AttentionMask, dropout p: Float, precision: Precision) {
        let b = 2, groups = 2, k = 3, heads = groups * k, n = s * b, what = "s \(s), d \(d), \(mask), \(precision)"
        let grouped = AttentionShape(seq: s, batch: b, heads: heads, headDim: d, headsPerGroup: k)
        let perHead = AttentionShape(seq: s, batch: b, heads: heads, headDim: d)
        XCTAssertEqual(grouped.qkvWidth, groups * (k + 2) * d)
        var rnd = TestRandom(31)
        let qkv = rnd.array(n * grouped.qkvWidth, scale: 1.5), R = rnd.array(n * heads * d)
        let expanded = Self.expand(qkv, rows: n, groups: groups, headsPerGroup: k, headDim: d)
        let stream = p > 0 ? DropoutStream(seed: 7, site: "test", step: 1, microbatch: 0) : nil
        var scratch = [Float](repeating: 0, count: 2 * perHead.scratchPerWorker)
        func run(_ shape: AttentionShape, _ x: [Float]) -> (context: [Float], lse: [Float], dqkv: [Float]) {
            var context = [Float](repeating: 0, count: n * heads * d), lse = [Float](repeating: 0, count: b * heads * s)
            SelfAttention.forward(
                qkv: x, context: &context, lse: &lse, shape: shape, mask: mask, dropout: p, stream: stream,
                scratch: &scratch, precision: precision)
            var dqkv = [Float](repeating: .nan, count: x.count)
            SelfAttention.backward(
                dcontext: R, qkv: x, lse: lse, dqkv: &dqkv, shape: shape, mask: mask, dropout: p, stream: stream,
                scratch: &scratch, precision: precision)
            return (context, lse, dqkv)
        }
        let mine = run(grouped, qkv), reference = run(perHead, expanded)
        XCTAssertEqual(mine.context, reference.context, what)
        XCTAssertEqual(mine.lse, reference.lse, what)
        let summed = Self.reduce(reference.dqkv, rows: n, groups: groups, headsPerGroup: k, headDim: d)
        var worst = 0.0
        for (x, y) in zip(mine.dqkv, summed) { worst = max(worst, Double(abs(x - y)) / max(1, Double(abs(y)))) }
        XCTAssertLessThan(worst, 1e-5, what)
        for r in 0..<n {
            for g in 0..<groups {
                let q = r * grouped.qkvWidth + g * (k + 2) * d
                XCTAssertEqual(mine.dqkv[q..<q + k * d], summed[q..<q + k * d], "queries' gradients, \(what)")
            }
        }
    }

    /// Each group's [q of its k heads | k | v] as k heads' [q | k | v] (the key and value copied).
    static func expand(_ x: [Float], rows n: Int, groups: Int, headsPerGroup k: Int, headDim d: Int) -> [Float] {
        let inWidth = groups * (k + 2) * d, outWidth = groups * k * 3 * d
        var out = [Float](repeating: 0, count: n * outWidth)
        for r in 0..<n {
            for g in 0..<groups {
                let group = r * inWidth + g * (k + 2) * d
                for j in 0..<k {
                    let head = r * outWidth + (g * k + j) * 3 * d
                    for e in 0..<d {
                        out[head + e] = x[group + j * d + e]
                        out[head + d + e] = x[group + k * d + e]
                        out[head + 2 * d + e] = x[group + (k + 1) * d + e]
                    }
                }
            }
        }
        return out
    }

    /// The adjoint of `expand`: queries' gradients copied back, keys' and values' summed over the group.
    static func reduce(_ y: [Float], rows n: Int, groups: Int, headsPerGroup k: Int, headDim d: Int) -> [Float] {
        let outWidth = groups * (k + 2) * d, inWidth = groups * k * 3 * d
        var out = [Float](repeating: 0, count: n * outWidth)
        for r in 0..<n {
            for g in 0..<groups {
                let group = r * outWidth + g * (k + 2) * d
                for j in 0..<k {
                    let head = r * inWidth + (g * k + j) * 3 * d
                    for e in 0..<d {
                        out[group + j * d + e] = y[head + e]
                        out[group + k * d + e] += y[head + d + e]
                        out[group + (k + 1) * d + e] += y[head + 2 * d + e]
                    }
                }
            }
        }
        return out
    }

    /// Rope on the grouped layout rotates each head's query and each group's key exactly as on the
    /// copied per-head layout, and leaves the values alone.
    func testRotaryOnTheGroupedLayout() {
        let s = 5, b = 2, n = s * b, groups = 2, k = 3, d = 12
        let table = RotaryEmbedding(rotaryDim: 8, base: 10000, positions: 16)
        var rnd = TestRandom(29)
        var grouped = rnd.array(n * groups * (k + 2) * d)
        var perHead = Self.expand(grouped, rows: n, groups: groups, headsPerGroup: k, headDim: d)
        table.apply(
            &grouped, rows: n, heads: groups * k, headDim: d, headsPerGroup: k, positions: .interleaved(batch: b))
        table.apply(&perHead, rows: n, heads: groups * k, headDim: d, positions: .interleaved(batch: b))
        XCTAssertEqual(Self.expand(grouped, rows: n, groups: groups, headsPerGroup: k, headDim: d), perHead)
    }

    /// qk_layernorm over the grouped layout (2 groups of 2 heads, d = 6): each query and key vector is
    /// the norm's output by its definition, the values are untouched, and the gradients of QKV and of
    /// both norms' weights (and LayerNorm's biases) match finite differences, RMSNorm and LayerNorm.
    func testQKNormAgainstItsDefinitionAndFiniteDifferences() {
        for normalization in [Normalization.rmsNorm, .layerNorm] {
            qkNormCase(normalization)
        }
    }

    func qkNormCase(_ normalization: Normalization) {
        let shape = AttentionShape(seq: 3, batch: 2, heads: 4, headDim: 6, headsPerGroup: 2)
        let n = 6, d = 6, width = shape.qkvWidth, vectors = n * (shape.heads + shape.groups), eps: Float = 1e-5
        let layer = normalization == .layerNorm
        var rnd = TestRandom(41)
        var qkv = rnd.array(n * width, scale: 2)
        let R = rnd.array(n * width)
        var qw = rnd.array(d), qb = rnd.array(d), kw = rnd.array(d), kb = rnd.array(d)
        let buffers = (0..<5).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: n * width) }
        defer { buffers.forEach { $0.deallocate() } }
        let saved = QKNorm.Saved(query: buffers[0], key: buffers[1], mean: buffers[2], rstd: buffers[3])
        func fwd(_ x: [Float], _ qw: [Float], _ qb: [Float], _ kw: [Float], _ kb: [Float]) -> [Float] {
            var y = x
            QKNorm.forward(
                qkv: &y, rows: n, shape: shape, normalization: normalization,
                query: .init(weight: qw, bias: layer ? qb : nil), key: .init(weight: kw, bias: layer ? kb : nil),
                eps: eps, saved: saved, scratch: buffers[4])
            return y
        }
        let y = fwd(qkv, qw, qb, kw, kb)
        for r in 0..<n {
            for g in 0..<2 {
                for part in 0..<4 {  // two queries, the key, the value
                    let at = r * width + g * 4 * d + part * d
                    let x = (0..<d).map { Double(qkv[at + $0]) }
                    let mean = layer ? x.reduce(0, +) / Double(d) : 0
                    let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
                    let rstd = 1 / (variance + Double(eps)).squareRoot()
                    let (w, b) = part == 2 ? (kw, kb) : (qw, qb)
                    for e in 0..<d {
                        let want =
                            part == 3
                            ? x[e] : (x[e] - mean) * rstd * Double(w[e]) + (layer ? Double(b[e]) : 0)
                        XCTAssertEqual(
                            Double(y[at + e]), want, accuracy: 1e-5, "\(normalization) row \(r) part \(part)")
                    }
                }
            }
        }
        var dqkv = R
        var grads = (0..<4).map { _ in [Float](repeating: 0, count: d) }
        let dqw = UnsafeMutablePointer<Float>.allocate(capacity: 4 * d)
        defer { dqw.deallocate() }
        dqw.initialize(repeating: 0, count: 4 * d)
        _ = fwd(qkv, qw, qb, kw, kb)
        QKNorm.backward(
            dqkv: &dqkv, rows: n, shape: shape, normalization: normalization,
            query: .init(weight: qw, bias: layer ? qb : nil), key: .init(weight: kw, bias: layer ? kb : nil),
            saved: saved, queryGrads: (dqw, layer ? dqw + d : nil), keyGrads: (dqw + 2 * d, layer ? dqw + 3 * d : nil),
            dy: buffers[4], dx: buffers[4] + n * shape.heads * d)
        for k in 0..<4 { grads[k] = Array(UnsafeBufferPointer(start: dqw + k * d, count: d)) }
        XCTAssertLessThanOrEqual(vectors * d, n * width)
        let what = "\(normalization)"
        checkGradient(&qkv, analytic: dqkv, eps: 1e-2, "qk norm input, \(what)") { dot(fwd($0, qw, qb, kw, kb), R) }
        checkGradient(&qw, analytic: grads[0], eps: 1e-2, "q weight, \(what)") { dot(fwd(qkv, $0, qb, kw, kb), R) }
        checkGradient(&kw, analytic: grads[2], eps: 1e-2, "k weight, \(what)") { dot(fwd(qkv, qw, qb, $0, kb), R) }
        if layer {
            checkGradient(&qb, analytic: grads[1], eps: 1e-2, "q bias") { dot(fwd(qkv, qw, $0, kw, kb), R) }
            checkGradient(&kb, analytic: grads[3], eps: 1e-2, "k bias") { dot(fwd(qkv, qw, qb, kw, $0), R) }
        }
    }

    func testWholeModelWithEveryOptionMatchesPyTorch() throws {
        try wholeModelCase("llama_reference")
    }

    /// The same with qk_layernorm (scripts/make_llama_reference.py --qk-layernorm, whose reference is
    /// checked against transformers' Qwen3ForCausalLM): the norms' weights get their gradients too.
    func testWholeModelWithQueryKeyNormsMatchesPyTorch() throws {
        try wholeModelCase("llama_qknorm_reference")
    }

    /// Qwen 3's heads (make_llama_reference.py --kv-channels, checked against Qwen3ForCausalLM with
    /// head_dim 24): kv_channels 24 where hidden_size / num_attention_heads is 16 — QKV [192, 64], the
    /// projection [64, 96] — with qk_layernorm.
    func testWholeModelWithWiderHeadsMatchesPyTorch() throws {
        try wholeModelCase("llama_kv_channels_reference")
    }

    func wholeModelCase(_ fixture: String) throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: fixture, withExtension: "h5", subdirectory: "Fixtures"))
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
        c.qkLayerNorm = (try? f.intAttribute("qk_layernorm")) == 1
        XCTAssertEqual(c.qkLayerNorm, fixture.contains("qknorm") || fixture.contains("kv_channels"))
        if let kv = try? f.intAttribute("kv_channels"), kv * c.numAttentionHeads != c.hiddenSize { c.kvChannels = kv }
        XCTAssertEqual(c.kvChannels != nil, fixture.contains("kv_channels"))
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

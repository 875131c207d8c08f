// InferenceChunk.swift — one GPT model chunk run incrementally for generation, with a KV cache:
// each call feeds L new tokens of every sequence of a batch (positions start ..< start + L, the same
// for all sequences: prompts are left-aligned) and attends to the cached keys and values of the
// earlier positions, so no prefix is ever recomputed. Rows are sequence-major (row j·L + i is new
// token i of sequence j). The arithmetic is the training forward's (GPTModel, TransformerLayer):
// the same pre-LN layer (and its options: RMSNorm, rope, SwiGLU, no biases, an untied head,
// grouped-query attention, whose cache holds each group's key and value once for its query heads),
// Megatron's per-head [q | k | v] QKV layout (per group [its heads' q | k | v]), tanh-GELU, 16-bit rounding of
// every GEMM input in reduced precision, and under tensor parallelism column-parallel QKV/FC1,
// row-parallel Proj/FC2 (all-reduce), a vocab-parallel embedding and LM head (the logits of the
// scored rows are gathered whole on every tensor rank).
import Foundation
import Tensor

/// Keys and values of every layer of a chunk: [layer][sequence][local key/value head], then keys
/// transposed [headDim][position] and values [position][headDim]. `heads` query heads share the
/// `kvHeads` key/value heads in groups (as many of each without grouped-query attention).
final class KVCache {
    let layers: Int, batch: Int, heads: Int, kvHeads: Int, headDim: Int, capacity: Int
    let keys: FloatBuffer, values: FloatBuffer

    init(layers: Int, batch: Int, heads: Int, kvHeads: Int, headDim: Int, capacity: Int) {
        (self.layers, self.batch, self.heads, self.kvHeads) = (layers, batch, heads, kvHeads)
        (self.headDim, self.capacity) = (headDim, capacity)
        let count = layers * batch * kvHeads * capacity * headDim
        keys = FloatBuffer(count: count)
        values = FloatBuffer(count: count)
    }

    /// Where position 0 of (layer, sequence, key/value head) starts.
    @inline(__always) func offset(layer: Int, sequence j: Int, kvHead: Int) -> Int {
        ((layer * batch + j) * kvHeads + kvHead) * capacity * headDim
    }
}

final class InferenceChunk {
    let model: GPTModel
    let cache: KVCache
    let batch: Int
    /// Rope's table (position_embedding_type rope).
    let rotary: RotaryEmbedding?
    /// Wall time per phase (generate --phases), decoding steps only.
    var timer: PhaseTimer? = nil
    private var scratch = [String: FloatBuffer]()

    /// A chunk for `batch` sequences of at most `capacity` positions.
    init(model: GPTModel, batch: Int, capacity: Int) {
        self.model = model
        self.batch = batch
        rotary = RotaryEmbedding(config: model.config)
        let c = model.config, t = model.tensorParallel.size
        cache = KVCache(
            layers: model.stage.layers.count, batch: batch, heads: c.numAttentionHeads / t, kvHeads: c.queryGroups / t,
            headDim: c.headDim, capacity: capacity)
    }

    /// A grow-only scratch buffer of at least `count` floats, by name.
    private func buffer(_ name: String, _ count: Int) -> UnsafeMutablePointer<Float> {
        if let b = scratch[name], b.count >= count { return b.base }
        let b = FloatBuffer(count: count)
        scratch[name] = b
        return b.base
    }

    /// x [b·L, h] = wte[tokens] + wpe[start + i] (first chunk only). Under tensor parallelism each
    /// rank adds its vocabulary rows and the tensor group sums them, as VocabParallelEmbedding does.
    func embed(tokens: [Int32], start: Int, newTokens L: Int, into x: UnsafeMutablePointer<Float>) throws {
        guard let wteSlot = model.slots.wordEmbeddings else { return }
        let h = model.config.hiddenSize, vocab = model.vocab, tp = model.tensorParallel
        let wte = model.weights.pointer(wteSlot)
        for r in 0..<(batch * L) {
            let row = x + r * h, local = Int(tokens[r]) - vocab.start
            if local >= 0 && local < vocab.rows {
                row.update(from: wte + local * h, count: h)
            } else {
                row.update(repeating: 0, count: h)
            }
        }
        try tp.reduceFromTensorModelParallelRegionForward(x, count: batch * L * h)
        guard let wpe = model.weights.pointer(model.slots.positionEmbeddings) else { return }  // rope: in the layers
        for r in 0..<(batch * L) { Kernels.add(x + r * h, wpe + (start + r % L) * h, into: x + r * h, count: h) }
    }

    /// Runs this chunk's layers on x [b·L, h] in place (new tokens at positions start ..< start + L).
    func forward(_ x: UnsafeMutablePointer<Float>, start: Int, newTokens L: Int) throws {
        let t = L <= 8 ? timer : nil
        for (l, slots) in model.slots.layers.enumerated() {
            try layer(l, slots, x, start: start, newTokens: L, timer: t)
        }
    }

    private func layer(
        _ l: Int, _ w: TransformerLayerSlots, _ x: UnsafeMutablePointer<Float>, start: Int, newTokens L: Int,
        timer: PhaseTimer?
    ) throws {
        let c = model.config, P = model.weights, pr = model.precision, tp = model.tensorParallel
        let n = batch * L, h = c.hiddenSize, qL = c.attentionWidth / tp.size, fL = c.ffnHiddenSize / tp.size
        let fc1L = c.fc1Width / tp.size, qkvL = c.qkvWidth / tp.size
        let ln = buffer("ln", n * h), stats = buffer("stats", 2 * n), qkv = buffer("qkv", n * qkvL)
        let context = buffer("context", n * qL), partial = buffer("partial", n * h), ffn = buffer("ffn", n * fc1L)
        timer.measure("layernorm") {
            Norm.forward(
                c.normalization, x: x, weight: P.pointer(w.inputNormWeight), bias: P.pointer(w.inputNormBias),
                y: ln, mean: stats, rstd: stats + n, rows: n, width: h, eps: c.normEpsilon)
            pr.round(ln, count: n * h)
        }
        timer.measure("qkv") {
            linear(ln, P.pointer(w.qkvWeight), P.pointer(w.qkvBias), qkv, rows: n, inFeatures: h, outFeatures: qkvL)
            pr.round(qkv, count: n * qkvL)
            if let q = w.attention?.queryNorm, let k = w.attention?.keyNorm {
                let shape = AttentionShape(
                    seq: L, batch: batch, heads: cache.heads, headDim: c.headDim, headsPerGroup: c.headsPerQueryGroup)
                let vectors = n * (shape.heads + shape.groups)
                QKNorm.forward(
                    qkv: qkv, rows: n, shape: shape, normalization: c.normalization,
                    query: .init(weight: P.pointer(q.weight), bias: P.pointer(q.bias)),
                    key: .init(weight: P.pointer(k.weight), bias: P.pointer(k.bias)), eps: c.normEpsilon,
                    saved: QKNorm.Saved(
                        query: buffer("qk query", n * qL), key: buffer("qk key", n * shape.groups * c.headDim),
                        mean: buffer("qk mean", vectors), rstd: buffer("qk rstd", vectors)),
                    scratch: buffer("qk out", n * qL))
                pr.round(qkv, count: n * qkvL)
            }
            if let rotary {
                rotary.apply(
                    qkv, rows: n, heads: cache.heads, headDim: c.headDim, headsPerGroup: c.headsPerQueryGroup,
                    positions: .blocks(start: start, length: L))
                pr.round(qkv, count: n * qkvL)
            }
        }
        timer.measure("attention (KV cache)") {
            attention(layer: l, qkv: qkv, context: context, start: start, newTokens: L)
            pr.round(context, count: n * qL)
        }
        try timer.measure("proj + residual") {
            try residualAdd(
                x, rowParallel: context, weight: P.pointer(w.projWeight), bias: P.pointer(w.projBias), rows: n,
                inFeatures: qL, partial: partial)
        }
        timer.measure("layernorm") {
            Norm.forward(
                c.normalization, x: x, weight: P.pointer(w.mlpNormWeight), bias: P.pointer(w.mlpNormBias), y: ln,
                mean: stats, rstd: stats + n, rows: n, width: h, eps: c.normEpsilon)
            pr.round(ln, count: n * h)
        }
        timer.measure("fc1 + gelu") {
            linear(ln, P.pointer(w.fc1Weight), P.pointer(w.fc1Bias), ffn, rows: n, inFeatures: h, outFeatures: fc1L)
            pr.round(ffn, count: n * fc1L)
            if c.swiglu {
                // [gate | up] rows → SiLU(gate)·up [n, fL], back into the buffer's start.
                let act = buffer("swiglu", n * fL)
                SwiGLU.forward(fc1: ffn, act: act, rows: n, width: fL)
                ffn.update(from: act, count: n * fL)
            } else {
                GELU.forward(x: ffn, y: ffn, count: n * fL)
            }
            pr.round(ffn, count: n * fL)
        }
        try timer.measure("fc2 + residual") {
            try residualAdd(
                x, rowParallel: ffn, weight: P.pointer(w.fc2Weight), bias: P.pointer(w.fc2Bias), rows: n,
                inFeatures: fL, partial: partial)
        }
    }

    /// y [n, out] = x [n, in] · Wᵀ (+ bias): decoding steps (a few rows) stream each weight once
    /// (FewRows); longer passes use the layer's GEMM in the run's precision.
    private func linear(
        _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
        _ y: UnsafeMutablePointer<Float>, rows n: Int, inFeatures k: Int, outFeatures m: Int
    ) {
        if n <= 8 {
            FewRows.multiplyTransposed(x: x, ldx: k, rows: n, w: weight, ldw: k, n: m, k: k, bias: bias, y: y, ldy: m)
        } else {
            Linear.forward(
                x: x, weight: weight, bias: bias, y: y, rows: n, inFeatures: k, outFeatures: m,
                precision: model.precision)
        }
    }

    /// x += RowParallelLinear(input) + bias (the partial products summed over the tensor group).
    private func residualAdd(
        _ x: UnsafeMutablePointer<Float>, rowParallel input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, rows n: Int, inFeatures k: Int, partial: UnsafeMutablePointer<Float>
    ) throws {
        let h = model.config.hiddenSize, y = partial
        linear(input, weight, nil, y, rows: n, inFeatures: k, outFeatures: h)
        try model.tensorParallel.reduceFromTensorModelParallelRegionForward(y, count: n * h)
        for r in 0..<n {  // x + (y + bias), the training forward's order with dropout off
            if let bias { Kernels.add(y + r * h, bias, into: y + r * h, count: h) }
            Kernels.add(x + r * h, y + r * h, into: x + r * h, count: h)
        }
    }

    /// Causal attention of the new rows over the cached and new keys, per (sequence, local head):
    /// the new keys (stored transposed, [headDim][position], so a decoding query's scores are a
    /// weighted sum of contiguous key rows) and values are appended to the cache, once per
    /// (sequence, key/value head), then for each query head over its group's
    /// S = QKᵀ/√d, softmax over the positions each query may see (within the sliding window, if
    /// any; decoding reads only the window's keys and values), context = P·V. Decoding takes a
    /// worker's heads four at a time and reads their values side by side (FewRows.weightedSums).
    private func attention(
        layer l: Int, qkv: UnsafePointer<Float>, context: UnsafeMutablePointer<Float>, start: Int, newTokens L: Int
    ) {
        let heads = cache.heads, kvHeads = cache.kvHeads, d = cache.headDim, hL = heads * d
        let keys = start + L, capacity = cache.capacity
        precondition(keys <= capacity, "KV cache capacity \(capacity) exceeded")
        // Columns of the QKV rows: per group of query heads, their queries, then its key and value.
        let layout = AttentionShape(seq: L, batch: 1, heads: heads, headDim: d, headsPerGroup: heads / kvHeads)
        let width = layout.qkvWidth, perGroup = heads / kvHeads
        let decoding = L <= 8, group = decoding ? 4 : 1
        let scale = 1 / Float(d).squareRoot()
        let perWorker = group * L * keys + d, scores = buffer("scores", ThreadBudget.threads * perWorker)
        let Kt = cache.keys.base, V = cache.values.base
        // The first key the query at start + i sees: within the sliding window, if any.
        let window = model.config.slidingWindow
        let firstKey = { (i: Int) in window.map { max(0, start + i - $0) } ?? 0 }
        ThreadBudget.parallelFor(batch * kvHeads, grain: 1) { units in
            for unit in units {
                let j = unit / kvHeads, g = unit % kvHeads, base = cache.offset(layer: l, sequence: j, kvHead: g)
                for i in 0..<L {
                    let k = qkv + (j * L + i) * width + layout.keyColumn(group: g)
                    for e in 0..<d { Kt[base + e * capacity + start + i] = k[e] }
                    (V + base + (start + i) * d).update(from: k + d, count: d)
                }
            }
        }
        ThreadBudget.withSingleThreadedBLAS {
            ThreadBudget.parallelChunks(batch * heads) { worker, units in
                let scaled = scores + worker * perWorker + group * L * keys
                for first in stride(from: units.lowerBound, to: units.upperBound, by: group) {
                    // Per head of the group: its cache offset, queries, context rows and scores.
                    let members = (first..<min(first + group, units.upperBound)).enumerated().map { g, unit in
                        let j = unit / heads, hd = unit % heads
                        return (
                            base: cache.offset(layer: l, sequence: j, kvHead: hd / perGroup),
                            q: qkv + j * L * width + layout.queryColumn(head: hd),
                            out: context + j * L * hL + hd * d, S: scores + worker * perWorker + g * L * keys
                        )
                    }
                    for m in members {
                        if decoding {  // stream the cached keys once (those in the window)
                            for i in 0..<L {
                                for e in 0..<d { scaled[e] = m.q[i * width + e] * scale }
                                let f = firstKey(i)
                                FewRows.weightedSum(
                                    scaled, count: d, v: Kt + m.base + f, ldv: capacity, width: keys - f,
                                    into: m.S + i * keys + f)
                            }
                        } else {
                            BLAS.sgemm(
                                m: L, n: keys, k: d, alpha: scale, a: m.q, lda: width, b: Kt + m.base, ldb: capacity,
                                c: m.S, ldc: keys)
                        }
                        for i in 0..<L {
                            _ = SelfAttention.softmaxRowInPlace(
                                m.S + i * keys, from: firstKey(i), valid: start + i + 1, width: keys, scale: 1)
                        }
                    }
                    if decoding {  // the group's cached values side by side (those in the window)
                        for i in 0..<L {
                            let f = firstKey(i)
                            FewRows.weightedSums(
                                members.map { m in
                                    (
                                        p: UnsafePointer(m.S + i * keys + f), v: UnsafePointer(V + m.base + f * d),
                                        out: m.out + i * hL
                                    )
                                },
                                count: start + i + 1 - f, ldv: d, width: d)
                        }
                    } else {
                        let m = members[0]
                        BLAS.sgemm(m: L, n: d, k: keys, a: m.S, lda: keys, b: V + m.base, ldb: d, c: m.out, ldc: hL)
                    }
                }
            }
        }
    }

    /// The whole-vocabulary logits [rows.count, paddedVocab] of the given rows of x (last chunk
    /// only): final LayerNorm, the tied LM head on this rank's vocabulary rows, gathered over the
    /// tensor group so every tensor rank holds them all.
    func logits(_ x: UnsafePointer<Float>, rows: [Int]) throws -> [Float] {
        guard let headSlot = model.slots.outputLayer, let fw = model.slots.finalNormWeight else {
            preconditionFailure("logits on a chunk without the LM head")
        }
        let c = model.config, h = c.hiddenSize, k = rows.count, tp = model.tensorParallel
        let vL = c.paddedVocabSize / tp.size, pr = model.precision
        let picked = buffer("picked", k * h), normed = buffer("normed", k * h), stats = buffer("stats", 2 * k)
        for (i, r) in rows.enumerated() { (picked + i * h).update(from: x + r * h, count: h) }
        Norm.forward(
            c.normalization, x: picked, weight: model.weights.pointer(fw),
            bias: model.weights.pointer(model.slots.finalNormBias), y: normed, mean: stats, rstd: stats + k, rows: k,
            width: h, eps: c.normEpsilon)
        pr.round(normed, count: k * h)
        let local = buffer("logits", k * vL), gathered = buffer("gathered", tp.size * k * vL)
        linear(normed, model.weights.pointer(headSlot), nil, local, rows: k, inFeatures: h, outFeatures: vL)
        if let group = tp.group, tp.size > 1 {
            try group.allGather(local, count: k * vL, into: gathered)
        } else {
            gathered.update(from: local, count: k * vL)
        }
        // gathered is [tensor rank][row][vL]; the result is [row][rank·vL + column].
        var out = [Float](repeating: 0, count: k * vL * tp.size)
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<tp.size {
                for i in 0..<k {
                    (o.baseAddress! + i * vL * tp.size + r * vL).update(from: gathered + (r * k + i) * vL, count: vL)
                }
            }
        }
        return out
    }
}

// TransformerLayer.swift — one pre-LN GPT layer (Megatron paper Fig. 7, GPT-2):
//     mid = x + Dropout(Proj(Attention(QKV(LN1(x)))))
//     out = mid + Dropout(FC2(GELU(FC1(LN2(mid)))))
// `forward` writes what `backward` needs into LayerActivations; `backward` is forward reversed.
// Tensor parallelism (Megatron paper §3): QKV and FC1 are column-parallel (each rank owns whole
// heads and an ffn slice), Proj and FC2 row-parallel; LayerNorms and residuals are replicated, or
// split along the sequence with sequence parallelism.
import Tensor

/// The parameter slots of one layer in the `ParameterTable` (Megatron core names).
public struct TransformerLayerSlots: Sendable {
    public let inputNormWeight, inputNormBias, qkvWeight, qkvBias, projWeight, projBias: Int
    public let mlpNormWeight, mlpNormBias, fc1Weight, fc1Bias, fc2Weight, fc2Bias: Int

    /// Declares the layer's parameters: init N(0, σ); output projections use σ/√(2·numLayers).
    public init(declaringIn table: inout ParameterTable, layer l: Int, config c: GPTConfig) {
        let p = "decoder.layers.\(l)."
        let h = c.hiddenSize, f = c.ffnHiddenSize
        let std = c.initMethodStd, scaled = c.initMethodStd / (2 * Float(c.numLayers)).squareRoot()
        inputNormWeight = table.declare(p + "input_layernorm.weight", [h], .ones, sequenceParallel: true)
        inputNormBias = table.declare(p + "input_layernorm.bias", [h], .zeros, sequenceParallel: true)
        qkvWeight = table.declare(p + "self_attention.linear_qkv.weight", [3 * h, h], split: 0, .normal(std: std))
        qkvBias = table.declare(p + "self_attention.linear_qkv.bias", [3 * h], split: 0, .zeros)
        projWeight = table.declare(p + "self_attention.linear_proj.weight", [h, h], split: 1, .normal(std: scaled))
        projBias = table.declare(p + "self_attention.linear_proj.bias", [h], .zeros)
        mlpNormWeight = table.declare(p + "pre_mlp_layernorm.weight", [h], .ones, sequenceParallel: true)
        mlpNormBias = table.declare(p + "pre_mlp_layernorm.bias", [h], .zeros, sequenceParallel: true)
        fc1Weight = table.declare(p + "mlp.linear_fc1.weight", [f, h], split: 0, .normal(std: std))
        fc1Bias = table.declare(p + "mlp.linear_fc1.bias", [f], split: 0, .zeros)
        fc2Weight = table.declare(p + "mlp.linear_fc2.weight", [h, f], split: 1, .normal(std: scaled))
        fc2Bias = table.declare(p + "mlp.linear_fc2.bias", [h], .zeros)
    }
}

/// Where a layer's dropout masks come from in this step (nil when dropout is off).
public struct LayerDropout {
    public let hidden: Float, attention: Float
    public let attentionStream: DropoutStream?, attentionOutStream: DropoutStream?, mlpOutStream: DropoutStream?
}

/// One pre-LN layer under tensor parallelism (t = 1 included: every communication is then the
/// identity). Column-parallel QKV and FC1 take the full [n, h] LayerNorm output (all-gathered from
/// the sequence shards under sequence parallelism, f: identity / all-reduce otherwise); row-parallel
/// Proj and FC2 produce partial [n, h] sums that are all-reduced (g) or reduce-scattered (SP ḡ),
/// then bias, dropout and the residual add run on the rows this rank holds.
public enum TransformerLayer {
    /// - x: [nS, h] layer input (residual; nS = n/t rows under sequence parallelism, else n)
    /// - out: [nS, h] layer output (residual)
    public static func forward(x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, slots w: TransformerLayerSlots,
                               params P: ParameterArena, acts a: LayerActivations, model m: GPTActivations,
                               config c: GPTConfig, dropout: LayerDropout, timer: PhaseTimer? = nil) throws {
        let tp = m.tensorParallel, n = m.rows, nS = m.shardRows, h = c.hiddenSize
        let fL = c.ffnHiddenSize / tp.size, hL = h / tp.size
        let offset = m.shardRowOffset * h
        timer.measure("fwd layernorm") {
            LayerNorm.forward(x: x, weight: P.pointer(w.inputNormWeight), bias: P.pointer(w.inputNormBias), y: a.ln1 + offset,
                              mean: a.ln1Mean, rstd: a.ln1Rstd, rows: nS, width: h, eps: c.normEpsilon)
        }
        if tp.sequenceParallel { try timer.measure("tp communication") { try tp.gatherFromSequenceParallelRegionForward(a.ln1, shardCount: nS * h) } }
        timer.measure("fwd qkv gemm") {
            Linear.forward(x: a.ln1, weight: P.pointer(w.qkvWeight), bias: P.pointer(w.qkvBias), y: a.qkv,
                           rows: n, inFeatures: h, outFeatures: 3 * hL)
        }
        timer.measure("fwd attention core") {
            CausalSelfAttention.forward(qkv: a.qkv, context: a.context, lse: a.lse, shape: m.attentionShape,
                                        dropout: dropout.attention, stream: dropout.attentionStream, scratch: m.attentionScratch)
        }
        timer.measure("fwd proj gemm") {
            Linear.forward(x: a.context, weight: P.pointer(w.projWeight), bias: nil, y: m.tmpH, rows: n, inFeatures: hL, outFeatures: h)
        }
        let attnOut = try timer.measure("tp communication") { try reduceRowParallelOutput(m) }
        timer.measure("fwd bias+dropout+residual") {
            biasDropoutAdd(branch: attnOut, bias: P.pointer(w.projBias), residual: x, out: a.mid, rows: nS, width: h,
                           p: dropout.hidden, stream: dropout.attentionOutStream, elementOffset: offset)
        }
        timer.measure("fwd layernorm") {
            LayerNorm.forward(x: a.mid, weight: P.pointer(w.mlpNormWeight), bias: P.pointer(w.mlpNormBias), y: a.ln2 + offset,
                              mean: a.ln2Mean, rstd: a.ln2Rstd, rows: nS, width: h, eps: c.normEpsilon)
        }
        if tp.sequenceParallel { try timer.measure("tp communication") { try tp.gatherFromSequenceParallelRegionForward(a.ln2, shardCount: nS * h) } }
        timer.measure("fwd fc1 gemm") {
            Linear.forward(x: a.ln2, weight: P.pointer(w.fc1Weight), bias: P.pointer(w.fc1Bias), y: a.fc1,
                           rows: n, inFeatures: h, outFeatures: fL)
        }
        timer.measure("fwd gelu") { GELU.forward(x: a.fc1, y: a.gelu, count: n * fL) }
        timer.measure("fwd fc2 gemm") {
            Linear.forward(x: a.gelu, weight: P.pointer(w.fc2Weight), bias: nil, y: m.tmpH, rows: n, inFeatures: fL, outFeatures: h)
        }
        let mlpOut = try timer.measure("tp communication") { try reduceRowParallelOutput(m) }
        timer.measure("fwd bias+dropout+residual") {
            biasDropoutAdd(branch: mlpOut, bias: P.pointer(w.fc2Bias), residual: a.mid, out: out, rows: nS, width: h,
                           p: dropout.hidden, stream: dropout.mlpOutStream, elementOffset: offset)
        }
    }

    /// - dres: [nS, h] on entry ∂loss/∂out, on exit ∂loss/∂x (the residual stream's gradient)
    public static func backward(x: UnsafePointer<Float>, dres: UnsafeMutablePointer<Float>, slots w: TransformerLayerSlots,
                                params P: ParameterArena, grads G: ParameterArena, acts a: LayerActivations,
                                model m: GPTActivations, config c: GPTConfig, dropout: LayerDropout, timer: PhaseTimer? = nil) throws {
        let n = m.rows, nS = m.shardRows, h = c.hiddenSize
        let fL = c.ffnHiddenSize / m.tensorParallel.size, hL = h / m.tensorParallel.size
        let offset = m.shardRowOffset * h
        // MLP branch: out = mid + Dropout(FC2(GELU(FC1(LN2(mid)))) + b2)
        let dMLP = try timer.measure("tp communication") {
            try rowParallelOutputGradient(dres, m, p: dropout.hidden, stream: dropout.mlpOutStream, elementOffset: offset)
        }
        timer.measure("bwd fc2 gemm") {
            Linear.backward(dy: dMLP, x: a.gelu, weight: P.pointer(w.fc2Weight), dx: m.tmpWide,
                            dweight: G.pointer(w.fc2Weight), dbias: G.pointer(w.fc2Bias), rows: n, inFeatures: fL, outFeatures: h)
        }
        timer.measure("bwd gelu") { GELU.backward(dy: m.tmpWide, x: a.fc1, dx: m.tmpWide, count: n * fL) }
        timer.measure("bwd fc1 gemm") {
            Linear.backward(dy: m.tmpWide, x: a.ln2, weight: P.pointer(w.fc1Weight), dx: m.tmpH2,
                            dweight: G.pointer(w.fc1Weight), dbias: G.pointer(w.fc1Bias), rows: n, inFeatures: h, outFeatures: fL)
        }
        let dLN2 = try timer.measure("tp communication") { try columnParallelInputGradient(m) }
        timer.measure("bwd layernorm") {
            LayerNorm.backward(dy: dLN2, x: a.mid, weight: P.pointer(w.mlpNormWeight), mean: a.ln2Mean, rstd: a.ln2Rstd,
                               dx: dres, dweight: G.pointer(w.mlpNormWeight), dbias: G.pointer(w.mlpNormBias), rows: nS, width: h)
        }
        // Attention branch: mid = x + Dropout(Proj(Attention(QKV(LN1(x)))) + b)
        let dAttn = try timer.measure("tp communication") {
            try rowParallelOutputGradient(dres, m, p: dropout.hidden, stream: dropout.attentionOutStream, elementOffset: offset)
        }
        timer.measure("bwd proj gemm") {
            Linear.backward(dy: dAttn, x: a.context, weight: P.pointer(w.projWeight), dx: m.tmpH2,
                            dweight: G.pointer(w.projWeight), dbias: G.pointer(w.projBias), rows: n, inFeatures: hL, outFeatures: h)
        }
        timer.measure("bwd attention core") {
            CausalSelfAttention.backward(dcontext: m.tmpH2, qkv: a.qkv, lse: a.lse, dqkv: m.tmpWide, shape: m.attentionShape,
                                         dropout: dropout.attention, stream: dropout.attentionStream, scratch: m.attentionScratch)
        }
        timer.measure("bwd qkv gemm") {
            Linear.backward(dy: m.tmpWide, x: a.ln1, weight: P.pointer(w.qkvWeight), dx: m.tmpH2,
                            dweight: G.pointer(w.qkvWeight), dbias: G.pointer(w.qkvBias), rows: n, inFeatures: h, outFeatures: 3 * hL)
        }
        let dLN1 = try timer.measure("tp communication") { try columnParallelInputGradient(m) }
        timer.measure("bwd layernorm") {
            LayerNorm.backward(dy: dLN1, x: x, weight: P.pointer(w.inputNormWeight), mean: a.ln1Mean, rstd: a.ln1Rstd,
                               dx: dres, dweight: G.pointer(w.inputNormWeight), dbias: G.pointer(w.inputNormBias), rows: nS, width: h)
        }
    }

    /// Row-parallel output: the partial sums in `tmpH` [n, h] reduced over the tensor group — into
    /// `tmpS` [nS, h] under sequence parallelism (SP ḡ), in place otherwise (g).
    static func reduceRowParallelOutput(_ m: GPTActivations) throws -> UnsafeMutablePointer<Float> {
        let tp = m.tensorParallel, h = m.hidden
        if tp.sequenceParallel {
            try tp.reduceScatterToSequenceParallelRegionForward(m.tmpH, into: m.tmpS, shardCount: m.shardRows * h)
            return m.tmpS
        }
        try tp.reduceFromTensorModelParallelRegionForward(m.tmpH, count: m.rows * h)
        return m.tmpH
    }

    /// ∂loss/∂(row-parallel output) for all n rows: the residual gradient through the branch's
    /// dropout, all-gathered from the sequence shards under SP (SP ḡ backward; g backward is identity).
    static func rowParallelOutputGradient(_ dres: UnsafeMutablePointer<Float>, _ m: GPTActivations, p: Float,
                                          stream: DropoutStream?, elementOffset: Int) throws -> UnsafePointer<Float> {
        let tp = m.tensorParallel, h = m.hidden, count = m.shardRows * h
        if tp.sequenceParallel {
            let mine = m.tmpH + m.shardRowOffset * h
            mine.update(from: dres, count: count)
            if let stream { Dropout.apply(mine, count: count, p: p, stream: stream, offset: elementOffset) }
            try tp.reduceScatterToSequenceParallelRegionBackward(m.tmpH, shardCount: count)
            return UnsafePointer(m.tmpH)
        }
        guard let stream else { return UnsafePointer(dres) }
        m.tmpH.update(from: dres, count: count)
        Dropout.apply(m.tmpH, count: count, p: p, stream: stream, offset: elementOffset)
        return UnsafePointer(m.tmpH)
    }

    /// ∂loss/∂(column-parallel input) from the partial products in `tmpH2` [n, h]: reduce-scattered to
    /// this rank's rows under SP (SP g backward), all-reduced otherwise (f backward).
    static func columnParallelInputGradient(_ m: GPTActivations) throws -> UnsafePointer<Float> {
        let tp = m.tensorParallel, h = m.hidden
        if tp.sequenceParallel {
            try tp.gatherFromSequenceParallelRegionBackward(m.tmpH2, into: m.tmpS, shardCount: m.shardRows * h)
            return UnsafePointer(m.tmpS)
        }
        try tp.copyToTensorModelParallelRegionBackward(m.tmpH2, count: m.rows * h)
        return UnsafePointer(m.tmpH2)
    }

    /// Megatron's bias-dropout-add: `out = residual + Dropout(branch + bias)` over [rows, width]
    /// (`branch` is overwritten). Element indices start at `elementOffset` (the shard's place in s).
    static func biasDropoutAdd(branch: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, residual: UnsafePointer<Float>,
                               out: UnsafeMutablePointer<Float>, rows: Int, width h: Int, p: Float, stream: DropoutStream?,
                               elementOffset: Int) {
        ThreadBudget.parallelFor(rows, grain: 16) { rr in
            for r in rr {
                let row = branch + r * h
                var c = 0
                while c + 16 <= h { store16(load16(row, c) + load16(bias, c), row, c); c += 16 }
                while c < h { row[c] += bias[c]; c += 1 }
            }
        }
        if let stream { Dropout.apply(branch, count: rows * h, p: p, stream: stream, offset: elementOffset) }
        Kernels.add(residual, branch, into: out, count: rows * h)
    }
}

// TransformerLayer.swift — one pre-LN GPT layer (Megatron paper Fig. 7, GPT-2):
//     mid = x + Dropout(Proj(Attention(QKV(LN1(x)))))
//     out = mid + Dropout(FC2(GELU(FC1(LN2(mid)))))
// `forward` writes what `backward` needs into LayerActivations; `backward` is forward reversed.
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
        inputNormWeight = table.declare(p + "input_layernorm.weight", [h], .ones)
        inputNormBias = table.declare(p + "input_layernorm.bias", [h], .zeros)
        qkvWeight = table.declare(p + "self_attention.linear_qkv.weight", [3 * h, h], split: 0, .normal(std: std))
        qkvBias = table.declare(p + "self_attention.linear_qkv.bias", [3 * h], split: 0, .zeros)
        projWeight = table.declare(p + "self_attention.linear_proj.weight", [h, h], split: 1, .normal(std: scaled))
        projBias = table.declare(p + "self_attention.linear_proj.bias", [h], .zeros)
        mlpNormWeight = table.declare(p + "pre_mlp_layernorm.weight", [h], .ones)
        mlpNormBias = table.declare(p + "pre_mlp_layernorm.bias", [h], .zeros)
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

public enum TransformerLayer {
    /// - x: [n, h] layer input (residual)   - out: [n, h] layer output (residual)
    public static func forward(x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, slots w: TransformerLayerSlots,
                               params P: ParameterArena, acts a: LayerActivations, model m: GPTActivations,
                               config c: GPTConfig, dropout: LayerDropout, timer: PhaseTimer? = nil) {
        let n = m.rows, h = c.hiddenSize, f = c.ffnHiddenSize
        let shape = AttentionShape(seq: m.seq, batch: m.batch, heads: c.numAttentionHeads, headDim: c.headDim)
        timer.measure("fwd layernorm") {
            LayerNorm.forward(x: x, weight: P.pointer(w.inputNormWeight), bias: P.pointer(w.inputNormBias), y: a.ln1,
                              mean: a.ln1Mean, rstd: a.ln1Rstd, rows: n, width: h, eps: c.normEpsilon)
        }
        timer.measure("fwd qkv gemm") {
            Linear.forward(x: a.ln1, weight: P.pointer(w.qkvWeight), bias: P.pointer(w.qkvBias), y: a.qkv,
                           rows: n, inFeatures: h, outFeatures: 3 * h)
        }
        timer.measure("fwd attention core") {
            CausalSelfAttention.forward(qkv: a.qkv, context: a.context, lse: a.lse, shape: shape,
                                        dropout: dropout.attention, stream: dropout.attentionStream, scratch: m.attentionScratch)
        }
        timer.measure("fwd proj gemm") {
            Linear.forward(x: a.context, weight: P.pointer(w.projWeight), bias: P.pointer(w.projBias), y: m.tmpH,
                           rows: n, inFeatures: h, outFeatures: h)
        }
        timer.measure("fwd dropout+residual") {
            if let s = dropout.attentionOutStream { Dropout.apply(m.tmpH, count: n * h, p: dropout.hidden, stream: s) }
            Kernels.add(x, m.tmpH, into: a.mid, count: n * h)
        }
        timer.measure("fwd layernorm") {
            LayerNorm.forward(x: a.mid, weight: P.pointer(w.mlpNormWeight), bias: P.pointer(w.mlpNormBias), y: a.ln2,
                              mean: a.ln2Mean, rstd: a.ln2Rstd, rows: n, width: h, eps: c.normEpsilon)
        }
        timer.measure("fwd fc1 gemm") {
            Linear.forward(x: a.ln2, weight: P.pointer(w.fc1Weight), bias: P.pointer(w.fc1Bias), y: a.fc1,
                           rows: n, inFeatures: h, outFeatures: f)
        }
        timer.measure("fwd gelu") { GELU.forward(x: a.fc1, y: a.gelu, count: n * f) }
        timer.measure("fwd fc2 gemm") {
            Linear.forward(x: a.gelu, weight: P.pointer(w.fc2Weight), bias: P.pointer(w.fc2Bias), y: m.tmpH,
                           rows: n, inFeatures: f, outFeatures: h)
        }
        timer.measure("fwd dropout+residual") {
            if let s = dropout.mlpOutStream { Dropout.apply(m.tmpH, count: n * h, p: dropout.hidden, stream: s) }
            Kernels.add(a.mid, m.tmpH, into: out, count: n * h)
        }
    }

    /// - dres: [n, h] on entry ∂loss/∂out, on exit ∂loss/∂x (the residual stream's gradient)
    public static func backward(x: UnsafePointer<Float>, dres: UnsafeMutablePointer<Float>, slots w: TransformerLayerSlots,
                                params P: ParameterArena, grads G: ParameterArena, acts a: LayerActivations,
                                model m: GPTActivations, config c: GPTConfig, dropout: LayerDropout, timer: PhaseTimer? = nil) {
        let n = m.rows, h = c.hiddenSize, f = c.ffnHiddenSize
        let shape = AttentionShape(seq: m.seq, batch: m.batch, heads: c.numAttentionHeads, headDim: c.headDim)
        // MLP branch: out = mid + Dropout(FC2(GELU(FC1(LN2(mid)))))
        let dMLP = timer.measure("bwd dropout") { branchGradient(dres, m.tmpH, count: n * h, p: dropout.hidden, dropout.mlpOutStream) }
        timer.measure("bwd fc2 gemm") {
            Linear.backward(dy: dMLP, x: a.gelu, weight: P.pointer(w.fc2Weight), dx: m.tmpWide,
                            dweight: G.pointer(w.fc2Weight), dbias: G.pointer(w.fc2Bias), rows: n, inFeatures: f, outFeatures: h)
        }
        timer.measure("bwd gelu") { GELU.backward(dy: m.tmpWide, x: a.fc1, dx: m.tmpWide, count: n * f) }
        timer.measure("bwd fc1 gemm") {
            Linear.backward(dy: m.tmpWide, x: a.ln2, weight: P.pointer(w.fc1Weight), dx: m.tmpH2,
                            dweight: G.pointer(w.fc1Weight), dbias: G.pointer(w.fc1Bias), rows: n, inFeatures: h, outFeatures: f)
        }
        timer.measure("bwd layernorm") {
            LayerNorm.backward(dy: m.tmpH2, x: a.mid, weight: P.pointer(w.mlpNormWeight), mean: a.ln2Mean, rstd: a.ln2Rstd,
                               dx: dres, dweight: G.pointer(w.mlpNormWeight), dbias: G.pointer(w.mlpNormBias), rows: n, width: h)
        }
        // Attention branch: mid = x + Dropout(Proj(Attention(QKV(LN1(x)))))
        let dAttn = timer.measure("bwd dropout") { branchGradient(dres, m.tmpH, count: n * h, p: dropout.hidden, dropout.attentionOutStream) }
        timer.measure("bwd proj gemm") {
            Linear.backward(dy: dAttn, x: a.context, weight: P.pointer(w.projWeight), dx: m.tmpH2,
                            dweight: G.pointer(w.projWeight), dbias: G.pointer(w.projBias), rows: n, inFeatures: h, outFeatures: h)
        }
        timer.measure("bwd attention core") {
            CausalSelfAttention.backward(dcontext: m.tmpH2, qkv: a.qkv, lse: a.lse, dqkv: m.tmpWide, shape: shape,
                                         dropout: dropout.attention, stream: dropout.attentionStream, scratch: m.attentionScratch)
        }
        timer.measure("bwd qkv gemm") {
            Linear.backward(dy: m.tmpWide, x: a.ln1, weight: P.pointer(w.qkvWeight), dx: m.tmpH2,
                            dweight: G.pointer(w.qkvWeight), dbias: G.pointer(w.qkvBias), rows: n, inFeatures: h, outFeatures: 3 * h)
        }
        timer.measure("bwd layernorm") {
            LayerNorm.backward(dy: m.tmpH2, x: x, weight: P.pointer(w.inputNormWeight), mean: a.ln1Mean, rstd: a.ln1Rstd,
                               dx: dres, dweight: G.pointer(w.inputNormWeight), dbias: G.pointer(w.inputNormBias), rows: n, width: h)
        }
    }

    /// The gradient entering a residual branch: `dres` itself, or a masked copy in `scratch` under dropout.
    static func branchGradient(_ dres: UnsafeMutablePointer<Float>, _ scratch: UnsafeMutablePointer<Float>, count: Int,
                               p: Float, _ stream: DropoutStream?) -> UnsafePointer<Float> {
        guard let stream else { return UnsafePointer(dres) }
        scratch.update(from: dres, count: count)
        Dropout.apply(scratch, count: count, p: p, stream: stream)
        return UnsafePointer(scratch)
    }
}

// TransformerLayer.swift — one pre-LN transformer layer (Megatron paper Fig. 7; GPT-2 and Megatron's
// BERT), causal or bidirectional by the activations' attention mask:
//     mid = x + Dropout(Proj(Attention(QKV(LN1(x)))))
//     out = mid + Dropout(FC2(GELU(FC1(LN2(mid)))))
// with Megatron's Llama-style options (GPTConfig): RMSNorm for LN1/LN2, rope on the queries and
// keys QKV gives (RotaryEmbedding), SwiGLU for GELU, no linear biases, grouped-query attention
// (GroupedQuery: the groups' keys and values expanded per query head for the attention core).
// `forward` writes what `backward` needs into LayerActivations; `backward` is forward reversed.
// At a pipeline stage boundary inside the layer a chunk runs one sub-layer (`slots.part`): the
// attention's output is then `mid`, or the MLP's input is.
// Tensor parallelism (Megatron paper §3): QKV and FC1 are column-parallel (each rank owns whole
// heads and an ffn slice), Proj and FC2 row-parallel; LayerNorms and residuals are replicated, or
// split along the sequence with sequence parallelism.
// Reduced precision (`m.precision` bf16/fp16): every tensor that enters a GEMM — LN outputs, QKV,
// the attention context, FC1's output, GELU's output, and each incoming gradient — is rounded to
// 16 bits where it is produced; weights arrive rounded (GPTModel.weights). All else stays fp32.
// The saved ones are kept as 16-bit words (HeldTensor) and restored before the backward pass reads them.
import Tensor

/// The parameter slots of one layer's attention sub-layer (norm, QKV, projection). The biases are
/// nil without add_bias_linear, the norm's bias under RMSNorm.
public struct AttentionSlots: Sendable {
    public let inputNormWeight: Int, inputNormBias: Int?, qkvWeight: Int, qkvBias: Int?, projWeight: Int
    public let projBias: Int?
    /// qk_layernorm's norms over each query head and each key head ([d] each; biases under LayerNorm).
    public let queryNorm: (weight: Int, bias: Int?)?, keyNorm: (weight: Int, bias: Int?)?
    var all: [Int] {
        [
            inputNormWeight, inputNormBias, qkvWeight, qkvBias, queryNorm?.weight, queryNorm?.bias, keyNorm?.weight,
            keyNorm?.bias, projWeight, projBias,
        ].compactMap { $0 }
    }
}

/// The parameter slots of one layer's MLP sub-layer (norm, FC1, FC2). With SwiGLU, FC1 is two
/// parameters — its gate half (`fc1Weight`) and its up half (`fc1UpWeight`) right after it in the
/// arena, so the product reads this rank's [gate | up] rows as one matrix — and likewise their biases.
public struct MLPSlots: Sendable {
    public let mlpNormWeight: Int, mlpNormBias: Int?, fc1Weight: Int, fc1UpWeight: Int?, fc1Bias: Int?
    public let fc1UpBias: Int?, fc2Weight: Int, fc2Bias: Int?
    var all: [Int] {
        [mlpNormWeight, mlpNormBias, fc1Weight, fc1UpWeight, fc1Bias, fc1UpBias, fc2Weight, fc2Bias].compactMap { $0 }
    }
}

/// The parameter slots of one layer in the `ParameterTable` (Megatron core names): both sub-layers,
/// or at a pipeline stage boundary inside the layer the one this chunk runs (`part`).
public struct TransformerLayerSlots: Sendable {
    public let part: LayerPart
    public let attention: AttentionSlots?, mlp: MLPSlots?

    /// Every slot of the layer this chunk holds.
    public var all: [Int] { (attention?.all ?? []) + (mlp?.all ?? []) }

    // The slots by name; reading one of a sub-layer the chunk does not hold is a programming error.
    public var inputNormWeight: Int { attention!.inputNormWeight }
    public var inputNormBias: Int? { attention!.inputNormBias }
    public var qkvWeight: Int { attention!.qkvWeight }
    public var qkvBias: Int? { attention!.qkvBias }
    public var projWeight: Int { attention!.projWeight }
    public var projBias: Int? { attention!.projBias }
    public var mlpNormWeight: Int { mlp!.mlpNormWeight }
    public var mlpNormBias: Int? { mlp!.mlpNormBias }
    public var fc1Weight: Int { mlp!.fc1Weight }
    public var fc1Bias: Int? { mlp!.fc1Bias }
    public var fc2Weight: Int { mlp!.fc2Weight }
    public var fc2Bias: Int? { mlp!.fc2Bias }

    /// Declares the parameters of `part` of layer `l`: init N(0, σ); output projections use
    /// σ/√(2·numLayers). In the post-LN arrangement the two norms follow the attention and the MLP
    /// residual adds and are named `post_attention_layernorm` and `post_mlp_layernorm`. SwiGLU's FC1
    /// halves are `mlp.linear_fc1.gate.*` and `mlp.linear_fc1.up.*` ([ffn, h] each, split by rows).
    public init(declaringIn table: inout ParameterTable, layer l: Int, config c: GPTConfig, part: LayerPart = .whole) {
        let p = "decoder.layers.\(l)."
        let h = c.hiddenSize, f = c.ffnHiddenSize
        let std = c.initMethodStd, scaled = c.initMethodStd / (2 * Float(c.numLayers)).squareRoot()
        let (norm1, norm2) =
            c.postLayerNorm
            ? ("post_attention_layernorm", "post_mlp_layernorm") : ("input_layernorm", "pre_mlp_layernorm")
        let normBias = c.normalization == .layerNorm, bias = c.addBiasLinear
        func normBiasSlot(_ name: String) -> Int? {
            normBias ? table.declare(p + name + ".bias", [h], .zeros, sequenceParallel: true) : nil
        }
        func biasSlot(_ name: String, _ size: Int, split: Int?, adjacent: Bool = false, on: Bool? = nil) -> Int? {
            on ?? bias ? table.declare(p + name, [size], split: split, .zeros, adjacent: adjacent) : nil
        }
        self.part = part
        if part == .mlp {
            attention = nil
        } else {
            let normWeight = table.declare(p + norm1 + ".weight", [h], .ones, sequenceParallel: true)
            let normBias = normBiasSlot(norm1)
            let qkvWeight = table.declare(
                p + "self_attention.linear_qkv.weight", [c.qkvWidth, h], split: 0, .normal(std: std))
            let qkvBias = biasSlot(
                "self_attention.linear_qkv.bias", c.qkvWidth, split: 0, on: bias || c.addQKVBias)
            /// qk_layernorm: replicated [d] weights each rank applies to its own heads.
            func headNorm(_ name: String) -> (weight: Int, bias: Int?)? {
                guard c.qkLayerNorm else { return nil }
                let d = c.headDim
                return (
                    table.declare(p + "self_attention.\(name).weight", [d], .ones, perHeadShared: true),
                    c.normalization == .layerNorm
                        ? table.declare(p + "self_attention.\(name).bias", [d], .zeros, perHeadShared: true) : nil
                )
            }
            let (queryNorm, keyNorm) = (headNorm("q_layernorm"), headNorm("k_layernorm"))
            let projWeight = table.declare(
                p + "self_attention.linear_proj.weight", [h, c.attentionWidth], split: 1, .normal(std: scaled))
            attention = AttentionSlots(
                inputNormWeight: normWeight, inputNormBias: normBias, qkvWeight: qkvWeight, qkvBias: qkvBias,
                projWeight: projWeight, projBias: biasSlot("self_attention.linear_proj.bias", h, split: nil),
                queryNorm: queryNorm, keyNorm: keyNorm)
        }
        if part == .attention {
            mlp = nil
        } else {
            let normWeight = table.declare(p + norm2 + ".weight", [h], .ones, sequenceParallel: true)
            let normBias = normBiasSlot(norm2)
            let fc1 = c.swiglu ? "mlp.linear_fc1.gate" : "mlp.linear_fc1"
            let fc1Weight = table.declare(p + fc1 + ".weight", [f, h], split: 0, .normal(std: std))
            let upWeight =
                c.swiglu
                ? table.declare(p + "mlp.linear_fc1.up.weight", [f, h], split: 0, .normal(std: std), adjacent: true)
                : nil
            let fc1Bias = biasSlot(fc1 + ".bias", f, split: 0)
            let upBias = c.swiglu ? biasSlot("mlp.linear_fc1.up.bias", f, split: 0, adjacent: true) : nil
            let fc2Weight = table.declare(p + "mlp.linear_fc2.weight", [h, f], split: 1, .normal(std: scaled))
            mlp = MLPSlots(
                mlpNormWeight: normWeight, mlpNormBias: normBias, fc1Weight: fc1Weight, fc1UpWeight: upWeight,
                fc1Bias: fc1Bias, fc1UpBias: upBias, fc2Weight: fc2Weight,
                fc2Bias: biasSlot("mlp.linear_fc2.bias", h, split: nil))
        }
    }
}

/// Where a layer's dropout masks come from in this step (nil when dropout is off).
public struct LayerDropout {
    public let hidden: Float, attention: Float
    public let attentionStream: DropoutStream?, attentionOutStream: DropoutStream?, mlpOutStream: DropoutStream?
}

/// One pre-LN layer under tensor parallelism (t = 1 included: every communication is then the
/// identity): ColumnParallelLinear QKV and FC1, RowParallelLinear Proj and FC2 (ParallelLinear.swift);
/// LayerNorm, bias-dropout-add and the residual on the rows this rank holds.
public enum TransformerLayer {
    /// - x: [nS, h] layer input (residual; nS = n/t rows under sequence parallelism, else n)
    /// - out: [nS, h] layer output (residual)
    public static func forward(
        x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, slots w: TransformerLayerSlots,
        params P: ParameterArena, acts a: LayerActivations, model m: TransformerActivations,
        config c: GPTConfig, dropout: LayerDropout, timer: PhaseTimer? = nil
    ) throws {
        if c.postLayerNorm {
            return try forwardPostLN(
                x: x, out: out, slots: w, params: P, acts: a, model: m, config: c, dropout: dropout, timer: timer)
        }
        let tp = m.tensorParallel, nS = m.shardRows, h = c.hiddenSize, offset = m.shardRowOffset * h
        if w.part != .mlp {
            timer.measure("fwd layernorm") {
                Norm.forward(
                    c.normalization, x: x, weight: P.pointer(w.inputNormWeight), bias: P.pointer(w.inputNormBias),
                    y: a.ln1.values + offset, mean: a.ln1Mean, rstd: a.ln1Rstd, rows: nS, width: h, eps: c.normEpsilon)
                roundColumnParallelInput(a.ln1, shard: offset, count: nS * h, tp)
            }
            let attnOut = try attentionBranchForward(
                slots: w, params: P, acts: a, model: m, config: c, dropout: dropout, timer: timer)
            // The attention sub-layer alone (a stage boundary follows it) writes its sum as the output.
            timer.measure("fwd bias+dropout+residual") {
                biasDropoutAdd(
                    branch: attnOut, bias: P.pointer(w.projBias), residual: x, out: w.part == .attention ? out : a.mid,
                    rows: nS, width: h, p: dropout.hidden, stream: dropout.attentionOutStream, elementOffset: offset)
            }
            if w.part == .attention { return }
        }
        // The MLP sub-layer alone (a stage boundary precedes it) reads the attention's sum as its input.
        let mid = w.part == .mlp ? x : UnsafePointer(a.mid)
        timer.measure("fwd layernorm") {
            Norm.forward(
                c.normalization, x: mid, weight: P.pointer(w.mlpNormWeight), bias: P.pointer(w.mlpNormBias),
                y: a.ln2.values + offset, mean: a.ln2Mean, rstd: a.ln2Rstd, rows: nS, width: h, eps: c.normEpsilon)
            roundColumnParallelInput(a.ln2, shard: offset, count: nS * h, tp)
        }
        let mlpOut = try mlpBranchForward(slots: w, params: P, acts: a, model: m, config: c, timer: timer)
        timer.measure("fwd bias+dropout+residual") {
            biasDropoutAdd(
                branch: mlpOut, bias: P.pointer(w.fc2Bias), residual: mid, out: out, rows: nS, width: h,
                p: dropout.hidden, stream: dropout.mlpOutStream, elementOffset: offset)
        }
    }

    /// The attention branch Proj(Attention(QKV(u))) from its input u in `a.ln1` (rounded, this rank's
    /// rows; either arrangement): returns the projection's output before its bias, for the rows
    /// this rank holds.
    static func attentionBranchForward(
        slots w: TransformerLayerSlots, params P: ParameterArena, acts a: LayerActivations,
        model m: TransformerActivations, config c: GPTConfig, dropout: LayerDropout, timer: PhaseTimer?
    ) throws -> UnsafeMutablePointer<Float> {
        let tp = m.tensorParallel, n = m.rows, h = c.hiddenSize, qL = c.attentionWidth / tp.size, pr = m.precision
        try timer.measure(PhaseLabel.forwardQKV) {
            // Per head [q | k | v], or with grouped-query attention per group [its heads' q | k | v].
            try ColumnParallelLinear.forward(
                input: a.ln1.values, weight: P.pointer(w.qkvWeight), bias: P.pointer(w.qkvBias), keeping: a.qkv,
                rows: n, inFeatures: h, outFeatures: c.qkvWidth / tp.size, tensorParallel: tp)
            if tp.sequenceParallel { a.ln1.roundAndKeep() }
            if let saved = a.qkNorm, let q = w.attention?.queryNorm, let k = w.attention?.keyNorm {
                QKNorm.forward(
                    qkv: a.qkv.values, rows: n, shape: m.attentionShape, normalization: c.normalization,
                    query: .init(weight: P.pointer(q.weight), bias: P.pointer(q.bias)),
                    key: .init(weight: P.pointer(k.weight), bias: P.pointer(k.bias)), eps: c.normEpsilon, saved: saved,
                    scratch: m.tmpWide)
                if m.rotary == nil { a.qkv.roundAndKeep() }
            }
            if let rotary = m.rotary {
                rotary.apply(
                    a.qkv.values, rows: n, heads: m.attentionShape.heads, headDim: c.headDim,
                    headsPerGroup: c.headsPerQueryGroup, positions: m.rowPositions)
                a.qkv.roundAndKeep()
            }
        }
        timer.measure(PhaseLabel.forwardAttentionCore) {
            SelfAttention.forward(
                qkv: a.qkv.values, context: a.context.values, lse: a.lse, shape: m.attentionShape,
                mask: m.effectiveAttentionMask, dropout: dropout.attention, stream: dropout.attentionStream,
                scratch: m.attentionScratch, precision: pr)
            a.context.roundAndKeep()
        }
        return try timer.measure(PhaseLabel.forwardProjection) {
            try RowParallelLinear.forward(
                input: a.context.values, weight: P.pointer(w.projWeight), rows: n, inFeatures: qL, outFeatures: h,
                tensorParallel: tp, partial: m.tmpH, shard: m.tmpS, precision: pr)
        }
    }

    /// The MLP branch FC2(GELU(FC1(u))), or FC2(SwiGLU(FC1(u))), from its input u in `a.ln2`
    /// (rounded, this rank's rows; either arrangement): returns FC2's output before its bias, for the
    /// rows this rank holds.
    static func mlpBranchForward(
        slots w: TransformerLayerSlots, params P: ParameterArena, acts a: LayerActivations,
        model m: TransformerActivations, config c: GPTConfig, timer: PhaseTimer?
    ) throws -> UnsafeMutablePointer<Float> {
        let tp = m.tensorParallel, n = m.rows, h = c.hiddenSize, fL = c.ffnHiddenSize / tp.size
        // The phase includes FC1's activation; GELU in bf16 runs the product itself applies as it stores.
        try timer.measure(PhaseLabel.forwardFC1) {
            try ColumnParallelLinear.forward(
                input: a.ln2.values, weight: P.pointer(w.fc1Weight), bias: P.pointer(w.fc1Bias), keeping: a.fc1,
                gelu: c.swiglu ? nil : a.gelu, rows: n, inFeatures: h, outFeatures: c.fc1Width / tp.size,
                tensorParallel: tp)
            if tp.sequenceParallel { a.ln2.roundAndKeep() }
            if c.swiglu {
                SwiGLU.forward(fc1: a.fc1.values, act: a.gelu.values, rows: n, width: fL)
                a.gelu.roundAndKeep()
            }
        }
        return try timer.measure(PhaseLabel.forwardFC2) {
            try RowParallelLinear.forward(
                input: a.gelu.values, weight: P.pointer(w.fc2Weight), rows: n, inFeatures: fL, outFeatures: h,
                tensorParallel: tp, partial: m.tmpH, shard: m.tmpS, precision: m.precision)
        }
    }

    /// - dres: [nS, h] on entry ∂loss/∂out, on exit ∂loss/∂x (the residual stream's gradient)
    public static func backward(
        x: UnsafePointer<Float>, dres: UnsafeMutablePointer<Float>, slots w: TransformerLayerSlots,
        params P: ParameterArena, grads G: ParameterArena, acts a: LayerActivations,
        model m: TransformerActivations, config c: GPTConfig, dropout: LayerDropout, timer: PhaseTimer? = nil,
        deferring: DeferredWeightGradients? = nil
    ) throws {
        if c.postLayerNorm {
            return try backwardPostLN(
                x: x, dres: dres, slots: w, params: P, grads: G, acts: a, model: m, config: c, dropout: dropout,
                timer: timer, deferring: deferring)
        }
        let nS = m.shardRows, h = c.hiddenSize
        if w.part != .attention {
            // MLP branch: out = mid + Dropout(FC2(GELU(FC1(LN2(mid)))) + b2); alone, mid is the input x.
            let mid = w.part == .mlp ? x : UnsafePointer(a.mid)
            let dLN2 = try mlpBranchBackward(
                dres, slots: w, params: P, grads: G, acts: a, model: m, config: c, dropout: dropout, timer: timer,
                deferring: deferring)
            timer.measure("bwd layernorm") {
                Norm.backward(
                    c.normalization, dy: dLN2, x: mid, weight: P.pointer(w.mlpNormWeight), mean: a.ln2Mean,
                    rstd: a.ln2Rstd,
                    dx: dres, dweight: G.pointer(w.mlpNormWeight), dbias: G.pointer(w.mlpNormBias), rows: nS, width: h)
            }
            if w.part == .mlp { return }
        }
        // Attention branch: mid = x + Dropout(Proj(Attention(QKV(LN1(x)))) + b)
        let dLN1 = try attentionBranchBackward(
            dres, slots: w, params: P, grads: G, acts: a, model: m, config: c, dropout: dropout, timer: timer,
            deferring: deferring)
        timer.measure("bwd layernorm") {
            Norm.backward(
                c.normalization, dy: dLN1, x: x, weight: P.pointer(w.inputNormWeight), mean: a.ln1Mean,
                rstd: a.ln1Rstd,
                dx: dres, dweight: G.pointer(w.inputNormWeight), dbias: G.pointer(w.inputNormBias), rows: nS, width: h)
        }
    }

    /// Backward of the MLP branch Dropout(FC2(GELU(FC1(u))) + b2) from ∂loss/∂(branch sum) in `dres`
    /// (either arrangement; u is `a.ln2`): returns ∂loss/∂u for the rows this rank holds.
    static func mlpBranchBackward(
        _ dres: UnsafeMutablePointer<Float>, slots w: TransformerLayerSlots, params P: ParameterArena,
        grads G: ParameterArena, acts a: LayerActivations, model m: TransformerActivations, config c: GPTConfig,
        dropout: LayerDropout, timer: PhaseTimer?, deferring: DeferredWeightGradients? = nil
    ) throws -> UnsafePointer<Float> {
        let tp = m.tensorParallel, n = m.rows, h = c.hiddenSize, fL = c.ffnHiddenSize / tp.size
        let offset = m.shardRowOffset * h, pr = m.precision
        let dMLP = timer.measure("bwd dropout") {
            branchGradient(dres, m, p: dropout.hidden, stream: dropout.mlpOutStream, elementOffset: offset)
        }
        // The phase includes the activation's backward pass; GELU's in bf16 runs the product itself
        // applies as it stores. SwiGLU's gradient [n, fL] lands past FC1's [n, 2fL] in tmpWide.
        let fc1L = c.fc1Width / tp.size, dAct = c.swiglu ? m.tmpWide + n * fc1L : m.tmpWide
        try timer.measure(PhaseLabel.backwardFC2) {
            try RowParallelLinear.backward(
                dyFull: dMLP, input: a.gelu.values, weight: P.pointer(w.fc2Weight), dx: dAct,
                dweight: G.pointer(w.fc2Weight), dbias: G.pointer(w.fc2Bias),
                rows: n, inFeatures: fL, outFeatures: h, tensorParallel: tp, precision: pr, deferring: deferring,
                heldInput: a.gelu, geluOf: c.swiglu ? nil : a.fc1)
            if c.swiglu {
                a.fc1.restore()
                SwiGLU.backward(dact: dAct, fc1: a.fc1.values, dfc1: m.tmpWide, rows: n, width: fL)
                pr.round(m.tmpWide, count: n * fc1L)
            }
        }
        return try timer.measure(PhaseLabel.backwardFC1) {
            try ColumnParallelLinear.backward(
                dy: m.tmpWide, input: a.ln2.values, weight: P.pointer(w.fc1Weight),
                dweight: G.pointer(w.fc1Weight), dbias: G.pointer(w.fc1Bias), rows: n, inFeatures: h,
                outFeatures: fc1L, tensorParallel: tp, partial: m.tmpH2, shard: m.tmpS, precision: pr,
                deferring: deferring, heldInput: a.ln2)
        }
    }

    /// Backward of the attention branch Dropout(Proj(Attention(QKV(u))) + b) from ∂loss/∂(branch
    /// sum) in `dres` (either arrangement; u is `a.ln1`): returns ∂loss/∂u for the rows this rank holds.
    static func attentionBranchBackward(
        _ dres: UnsafeMutablePointer<Float>, slots w: TransformerLayerSlots, params P: ParameterArena,
        grads G: ParameterArena, acts a: LayerActivations, model m: TransformerActivations, config c: GPTConfig,
        dropout: LayerDropout, timer: PhaseTimer?, deferring: DeferredWeightGradients? = nil
    ) throws -> UnsafePointer<Float> {
        let tp = m.tensorParallel, n = m.rows, h = c.hiddenSize, qL = c.attentionWidth / tp.size
        let qkvL = c.qkvWidth / tp.size
        let offset = m.shardRowOffset * h, pr = m.precision
        let dAttn = timer.measure("bwd dropout") {
            branchGradient(dres, m, p: dropout.hidden, stream: dropout.attentionOutStream, elementOffset: offset)
        }
        try timer.measure(PhaseLabel.backwardProjection) {
            try RowParallelLinear.backward(
                dyFull: dAttn, input: a.context.values, weight: P.pointer(w.projWeight), dx: m.tmpH2,
                dweight: G.pointer(w.projWeight), dbias: G.pointer(w.projBias),
                rows: n, inFeatures: qL, outFeatures: h, tensorParallel: tp, precision: pr, deferring: deferring,
                heldInput: a.context)
            pr.round(m.tmpH2, count: n * qL)
        }
        timer.measure(PhaseLabel.backwardAttentionCore) {
            a.qkv.restore()
            SelfAttention.backward(
                dcontext: m.tmpH2, qkv: a.qkv.values, lse: a.lse, dqkv: m.tmpWide, shape: m.attentionShape,
                mask: m.effectiveAttentionMask, dropout: dropout.attention, stream: dropout.attentionStream,
                scratch: m.attentionScratch, precision: pr)
            if let rotary = m.rotary {
                rotary.apply(
                    m.tmpWide, rows: n, heads: m.attentionShape.heads, headDim: c.headDim,
                    headsPerGroup: c.headsPerQueryGroup, inverse: true, positions: m.rowPositions)
            }
            if let saved = a.qkNorm, let q = w.attention?.queryNorm, let k = w.attention?.keyNorm {
                QKNorm.backward(
                    dqkv: m.tmpWide, rows: n, shape: m.attentionShape, normalization: c.normalization,
                    query: .init(weight: P.pointer(q.weight), bias: P.pointer(q.bias)),
                    key: .init(weight: P.pointer(k.weight), bias: P.pointer(k.bias)), saved: saved,
                    queryGrads: (G.pointer(q.weight), G.pointer(q.bias)),
                    keyGrads: (G.pointer(k.weight), G.pointer(k.bias)),
                    dy: m.tmpH, dx: m.tmpH2)
            }
            pr.round(m.tmpWide, count: n * qkvL)
        }
        return try timer.measure(PhaseLabel.backwardQKV) {
            try ColumnParallelLinear.backward(
                dy: m.tmpWide, input: a.ln1.values, weight: P.pointer(w.qkvWeight),
                dweight: G.pointer(w.qkvWeight), dbias: G.pointer(w.qkvBias), rows: n, inFeatures: h,
                outFeatures: qkvL, tensorParallel: tp, partial: m.tmpH2, shard: m.tmpS, precision: pr,
                deferring: deferring, heldInput: a.ln1)
        }
    }

    /// Rounds a column-parallel layer's input where this rank wrote it: the whole tensor, kept at
    /// once, or under sequence parallelism this rank's shard (the layer gathers the rest; the caller
    /// keeps the gathered tensor after the forward product).
    static func roundColumnParallelInput(_ t: HeldTensor, shard offset: Int, count: Int, _ tp: TensorParallel) {
        if tp.sequenceParallel { t.precision.round(t.values + offset, count: count) } else { t.roundAndKeep() }
    }

    /// The gradient of a residual branch's (row-parallel) output through its dropout, for the rows
    /// this rank holds, placed where RowParallelLinear.backward expects it: in `tmpH` at this rank's
    /// row offset under SP (it gathers the rest), else `dres` itself or a masked (or, in reduced
    /// precision, rounded) copy in `tmpH`.
    static func branchGradient(
        _ dres: UnsafeMutablePointer<Float>, _ m: TransformerActivations, p: Float,
        stream: DropoutStream?, elementOffset: Int
    ) -> UnsafeMutablePointer<Float> {
        let count = m.shardRows * m.hidden
        if !m.tensorParallel.sequenceParallel && stream == nil && !m.precision.isReduced { return dres }
        let mine = m.tmpH + (m.tensorParallel.sequenceParallel ? elementOffset : 0)
        if let stream {
            mine.update(from: dres, count: count)
            Dropout.apply(mine, count: count, p: p, stream: stream, offset: elementOffset)
            m.precision.round(mine, count: count)
        } else {
            m.precision.round(dres, into: mine, count: count)  // one pass: copy and round
        }
        return m.tmpH
    }

    /// Megatron's bias-dropout-add: `out = residual + Dropout(branch + bias)` over [rows, width]
    /// (`branch` may be overwritten; no bias without add_bias_linear). Element indices start at
    /// `elementOffset` (the shard's place in s). Without dropout, one pass: residual + (branch + bias).
    static func biasDropoutAdd(
        branch: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, rows: Int, width h: Int, p: Float, stream: DropoutStream?,
        elementOffset: Int
    ) {
        if stream == nil, let bias {
            return addBiasAndResidual(bias, branch: branch, residual: residual, out: out, rows: rows, width: h)
        }
        if let bias { addBias(bias, to: branch, rows: rows, width: h) }
        if let stream { Dropout.apply(branch, count: rows * h, p: p, stream: stream, offset: elementOffset) }
        Kernels.add(residual, branch, into: out, count: rows * h)
    }

    /// out[r, ·] = residual[r, ·] + (branch[r, ·] + bias) for every row (the same sums as addBias
    /// followed by Kernels.add, in one pass).
    static func addBiasAndResidual(
        _ bias: UnsafePointer<Float>, branch: UnsafePointer<Float>, residual: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, rows: Int, width h: Int
    ) {
        ThreadBudget.parallelFor(rows, grain: 16) { rr in
            for r in rr {
                let x = branch + r * h, res = residual + r * h, y = out + r * h
                var c = 0
                while c + 16 <= h { store16(load16(res, c) + (load16(x, c) + load16(bias, c)), y, c); c += 16 }
                while c < h { y[c] = res[c] + (x[c] + bias[c]); c += 1 }
            }
        }
    }

    /// branch[r, ·] += bias for every row.
    static func addBias(_ bias: UnsafePointer<Float>, to branch: UnsafeMutablePointer<Float>, rows: Int, width h: Int) {
        ThreadBudget.parallelFor(rows, grain: 16) { rr in
            for r in rr {
                let row = branch + r * h
                var c = 0
                while c + 16 <= h { store16(load16(row, c) + load16(bias, c), row, c); c += 16 }
                while c < h { row[c] += bias[c]; c += 1 }
            }
        }
    }
}

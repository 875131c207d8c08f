// TransformerLayerPostLN.swift — the original BERT arrangement of a layer (Hugging Face's BertLayer;
// Megatron paper Fig. 7a), beside the pre-LN one in TransformerLayer.swift:
//     mid = LN1(x + Dropout(Proj(Attention(QKV(x)))))
//     out = LN2(mid + Dropout(FC2(GELU(FC1(mid)))))
// Saved: QKV's input x in `ln1` (gathered under SP), the first sum in `mid`, LN1's output in `ln2`
// (gathered; also the second residual, rounded to the GEMM precision in bf16/fp16, read from its
// staging buffer, which nothing else uses before the second add), the second sum in `postSum`,
// both norms' statistics, and the attention and MLP tensors as in pre-LN. At a stage boundary inside
// the layer (`slots.part`) the attention sub-layer's output, and the MLP sub-layer's input, is mid.
import Tensor

extension TransformerLayer {
    static func forwardPostLN(
        x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, slots w: TransformerLayerSlots,
        params P: ParameterArena, acts a: LayerActivations, model m: TransformerActivations,
        config c: GPTConfig, dropout: LayerDropout, timer: PhaseTimer?
    ) throws {
        guard let postSum = a.postSum else { preconditionFailure("post-LN activations were not planned") }
        let tp = m.tensorParallel, nS = m.shardRows, h = c.hiddenSize, offset = m.shardRowOffset * h
        if w.part == .mlp {
            // The MLP sub-layer alone: its input x is LN1's (rounded) output, the MLP's input and residual.
            (a.ln2.values + offset).update(from: x, count: nS * h)
            roundColumnParallelInput(a.ln2, shard: offset, count: nS * h, tp)
        } else {
            // Counted with QKV, whose input it is (no LayerNorm precedes attention in this arrangement).
            timer.measure(PhaseLabel.forwardQKV) {
                (a.ln1.values + offset).update(from: x, count: nS * h)
                roundColumnParallelInput(a.ln1, shard: offset, count: nS * h, tp)
            }
            let attnOut = try attentionBranchForward(
                slots: w, params: P, acts: a, model: m, config: c, dropout: dropout, timer: timer)
            timer.measure("fwd bias+dropout+residual+layernorm") {
                biasDropoutAdd(
                    branch: attnOut, bias: P.pointer(w.projBias), residual: x, out: a.mid, rows: nS, width: h,
                    p: dropout.hidden, stream: dropout.attentionOutStream, elementOffset: offset)
                Norm.forward(
                    c.normalization, x: a.mid, weight: P.pointer(w.inputNormWeight), bias: P.pointer(w.inputNormBias),
                    y: a.ln2.values + offset, mean: a.ln1Mean, rstd: a.ln1Rstd, rows: nS, width: h,
                    eps: c.normEpsilon)
                roundColumnParallelInput(a.ln2, shard: offset, count: nS * h, tp)
            }
            if w.part == .attention {
                // The attention sub-layer alone: its output is LN1's (rounded) output.
                out.update(from: a.ln2.values + offset, count: nS * h)
                return
            }
        }
        let mlpOut = try mlpBranchForward(slots: w, params: P, acts: a, model: m, config: c, timer: timer)
        timer.measure("fwd bias+dropout+residual+layernorm") {
            biasDropoutAdd(
                branch: mlpOut, bias: P.pointer(w.fc2Bias), residual: a.ln2.values + offset, out: postSum, rows: nS,
                width: h,
                p: dropout.hidden, stream: dropout.mlpOutStream, elementOffset: offset)
            Norm.forward(
                c.normalization, x: postSum, weight: P.pointer(w.mlpNormWeight), bias: P.pointer(w.mlpNormBias), y: out,
                mean: a.ln2Mean, rstd: a.ln2Rstd, rows: nS, width: h, eps: c.normEpsilon)
        }
    }

    /// - dres: [nS, h] on entry ∂loss/∂out, on exit ∂loss/∂x
    static func backwardPostLN(
        x: UnsafePointer<Float>, dres: UnsafeMutablePointer<Float>, slots w: TransformerLayerSlots,
        params P: ParameterArena, grads G: ParameterArena, acts a: LayerActivations,
        model m: TransformerActivations, config c: GPTConfig, dropout: LayerDropout, timer: PhaseTimer?,
        deferring: DeferredWeightGradients? = nil
    ) throws {
        guard let postSum = a.postSum, let scratch = m.postScratch else {
            preconditionFailure("post-LN activations were not planned")
        }
        let nS = m.shardRows, h = c.hiddenSize
        /// dres ← LN backward of dres (through the norm whose input was `input`).
        func normBackward(
            _ input: UnsafePointer<Float>, _ weight: Int, _ bias: Int?, _ mean: UnsafePointer<Float>,
            _ rstd: UnsafePointer<Float>
        ) {
            scratch.update(repeating: 0, count: nS * h)
            Norm.backward(
                c.normalization, dy: dres, x: input, weight: P.pointer(weight), mean: mean, rstd: rstd, dx: scratch,
                dweight: G.pointer(weight), dbias: G.pointer(bias), rows: nS, width: h)
            dres.update(from: scratch, count: nS * h)
        }
        if w.part != .attention {
            // out = LN2(mid + Dropout(FC2(GELU(FC1(mid))) + b2))
            timer.measure("bwd layernorm") {
                normBackward(postSum, w.mlpNormWeight, w.mlpNormBias, a.ln2Mean, a.ln2Rstd)
            }
            let dMid = try mlpBranchBackward(
                dres, slots: w, params: P, grads: G, acts: a, model: m, config: c, dropout: dropout, timer: timer,
                deferring: deferring)
            // ∂loss/∂mid = residual + FC1 paths (alone, mid is the input x).
            Kernels.add(dres, dMid, into: dres, count: nS * h)
            if w.part == .mlp { return }
        }
        // mid = LN1(x + Dropout(Proj(Attention(QKV(x))) + b))
        timer.measure("bwd layernorm") { normBackward(a.mid, w.inputNormWeight, w.inputNormBias, a.ln1Mean, a.ln1Rstd) }
        let dX = try attentionBranchBackward(
            dres, slots: w, params: P, grads: G, acts: a, model: m, config: c, dropout: dropout, timer: timer,
            deferring: deferring)
        Kernels.add(dres, dX, into: dres, count: nS * h)
    }
}

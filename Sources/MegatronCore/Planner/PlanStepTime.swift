// PlanStepTime.swift — predicted time of one training step of a layout. Per pipeline stage and
// model chunk, the forward F, input-gradient B and weight-gradient W of one micro-batch: every GEMM
// of its layers (and the LM head on the last stage) at the profile's rate for that shape, thread
// count and precision; the attention core as measured (or as GEMMs plus the score traffic); the
// elementwise work as bytes over the memory bandwidth; and the tensor-parallel collectives over the
// link they cross. The pipeline schedule is then simulated with those costs and the stage-boundary
// transfer time (ScheduleSimulator), and the step adds the data-parallel gradient reduction, the
// tied-embedding reduction and the optimizer (Planner.predict). On an oversubscribed node (more rank
// threads than cores) ranks take turns: the schedule is simulated again with each computing stage
// slowed by the ranks computing beside it on its node, so a rank idle in the bubble leaves its core
// to the others (Planner.sharing).
import Tensor

/// One micro-batch of one model chunk: pass times and their tensor-parallel communication part.
struct ChunkTimes {
    var forward = 0.0, backward = 0.0, weight = 0.0
    var communication = 0.0
    /// The passes' times as the schedule simulator takes them.
    var passCosts: PassCosts { PassCosts(forward: forward, backward: backward, weight: weight) }
}

struct StepTimeModel {
    let model: PlanModel
    let profile: HardwareProfile
    let layout: PlanLayout
    let threads: Int
    var megatronLM: Bool { profile.isMegatronLM }
    /// Bytes per activation element in communication.
    var elementBytes: Double { megatronLM ? 2 : 4 }
    /// Bytes per gradient element reduced over d: Megatron-LM reduces fp16 gradients under `--fp16`;
    /// otherwise (its `--bf16`, and this trainer) fp32.
    var gradientBytes: Double { megatronLM && layout.precision == .fp16 ? 2 : 4 }
    /// Whether the GEMMs run at the 16-bit rate: bf16 here (fp16 runs SGEMM on fp16 values), either
    /// 16-bit format on a GPU's tensor cores.
    var sixteenBitRate: Bool { layout.precision == .bf16 || (megatronLM && layout.precision == .fp16) }

    func gemm(_ m: Int, _ n: Int, _ k: Int, transA: Bool = false, transB: Bool = false) -> Double {
        profile.gemmSeconds(
            m: m, n: n, k: k, transA: transA, transB: transB, threads: threads, bf16: sixteenBitRate)
    }

    /// A group of `size` ranks `stride` apart: across nodes, its ranks on one node each bring their
    /// own network link (GPUs of a DGX node each have a NIC), so the ring moves that many times faster.
    /// Whether it crosses nodes is asked of the groups of `groupSize` ranks it belongs to (for a
    /// stage-to-stage transfer, the pipeline's: the slowest boundary paces the schedule).
    func collective(_ op: String, elements: Double, size: Int, stride: Int, groupSize: Int? = nil) -> Double {
        let across = profile.crossesNodes(size: groupSize ?? size, stride: stride, world: layout.worldSize)
        let perNode = across ? min(size, max(1, profile.ranksPerNode / max(1, stride))) : 1
        return profile.collectiveSeconds(
            op, bytes: elements * elementBytes, ranks: size, crossesNodes: across, linksPerNode: perNode)
    }

    /// One transformer layer, one micro-batch: (F, B, W, communication) before time-sharing.
    func layer() -> ChunkTimes {
        let t = layout.tensor, b = layout.microBatch, s = model.seq, n = s * b
        let h = model.hidden, f = model.ffn, a = model.heads
        var x = ChunkTimes()
        // Column-parallel QKV and FC1 (out/t), row-parallel projection and FC2 (in/t): weights [out, in].
        // QKV gives (a + 2g)·d columns (g key/value groups, a without GQA), the projection takes a·d;
        // SwiGLU's FC1 both halves.
        let c = model.config, qkv = model.qkvWidth, fc1 = c.swiglu ? 2 * f : f
        for (out, inp) in [(qkv / t, h), (h, model.attentionWidth / t), (fc1 / t, h), (h, f / t)] {
            x.forward += gemm(n, out, inp, transB: true)
            x.backward += gemm(n, inp, out)
            x.weight += gemm(out, inp, n, transA: true)
        }
        // The attention core, measured causal (or bidirectional for BERT), then scaled to the pairs a
        // sliding window leaves (the kernels skip the key tiles before a query tile's window).
        let dh = model.headDim, aL = a / t, window = model.windowedAttentionShare
        if let att = profile.attentionSeconds(
            seq: s, batch: b, heads: aL, headDim: dh, threads: threads, bf16: sixteenBitRate, causal: !model.isBert)
        {
            x.forward += window * att.forward
            x.backward += window * att.backward
        } else {
            // Scores and context as batched GEMMs over b·a/t heads, plus the scores' traffic: written,
            // softmaxed, dropped out and read in the forward (≈ 6 passes of 2 bytes), twice that back.
            let heads = Double(b * aL)
            x.forward += window * heads * (gemm(s, s, dh, transB: true) + gemm(s, dh, s))
            x.backward += window * heads * 2 * (gemm(s, s, dh) + gemm(s, dh, s))
            let scores = window * heads * Double(s * s) * 2
            x.forward += 6 * scores / profile.bandwidth(threads: threads)
            x.backward += 12 * scores / profile.bandwidth(threads: threads)
        }
        // Elementwise: LayerNorms, biases, GELU, dropout, residual adds — per token ≈ 10h + 6h/t + 3f/t
        // elements read or written in the forward, twice that in the backward.
        let width = megatronLM ? 2.0 : 4.0
        let perToken = Double(10 * h + 6 * h / t + 3 * f / t)
        let bytes = width * Double(n) * perToken / profile.bandwidth(threads: threads)
        x.forward += bytes
        x.backward += 2 * bytes
        if t > 1 {
            // Two all-reduces per pass (or an all-gather and a reduce-scatter each with SP).
            let e = Double(n * h)
            let pass =
                layout.sequenceParallel
                ? 2
                    * (collective("allgather", elements: e, size: t, stride: 1)
                        + collective("reducescatter", elements: e, size: t, stride: 1))
                : 2 * collective("allreduce", elements: e, size: t, stride: 1)
            x.forward += pass
            x.backward += pass
            x.communication = 2 * pass
        }
        return x
    }

    /// The LM head and cross entropy of one micro-batch on the last stage (this trainer runs its
    /// backward inside the forward; a zero-bubble schedule's W pass takes its weight gradient), and
    /// the embedding on the first.
    ///
    /// BERT's masked-LM head runs on the masked rows only in this trainer (`PlanModel.maskedRows`;
    /// Megatron-LM computes every row's logits): its dense h × h layer's three products, the GELU and
    /// LayerNorm passes, and the vocabulary products on those rows; under t > 1 the rows' ∂loss/∂Y is
    /// all-reduced before the replicated dense layer (the pooler's [b, h] products are left out).
    func head() -> ChunkTimes {
        let t = layout.tensor, n = model.seq * layout.microBatch, h = model.hidden
        let vL = model.paddedVocab(tensor: t) / t
        var x = ChunkTimes()
        let scored = model.isBert && !megatronLM ? model.maskedRows(microBatch: layout.microBatch) : n
        let rows = megatronLM ? n : min(scored, VocabCrossEntropy.chunkRows(rows: n, vocab: model.vocab))
        let chunks = Double((scored + rows - 1) / rows)
        var forward = chunks * gemm(rows, vL, h, transB: true)
        var inputGradient = chunks * gemm(rows, h, vL)
        let weightGradient = chunks * gemm(vL, h, rows, transA: true)
        // Softmax statistics, loss and the logits' gradient: ≈ 3 passes over the logits in memory, or
        // the calibrated row pass where measured (its exponentials make it compute-bound on a CPU). At
        // t = 1 this trainer finishes each row in one visit, as calibrated; under t > 1 the all-reduces
        // split it into three passes over the chunk, each from memory: the slower of the two.
        let passes = (megatronLM ? 2.0 : 4.0) * 3 * Double(scored * vL) / profile.bandwidth(threads: threads)
        let measured =
            megatronLM
            ? nil
            : profile.logitRowSeconds(elements: Double(scored * vL), width: vL, threads: threads, bf16: sixteenBitRate)
        var softmax = measured.map { t == 1 ? $0 : max($0, passes) } ?? passes
        var comm = 0.0
        if t > 1 { comm = collective("allreduce", elements: Double(scored * h), size: t, stride: 1) }
        if model.isBert {
            // The dense layer's products; gathering the rows, GELU and LayerNorm (≈ 8 passes of [rows, h]
            // forward and back) and scattering ∂loss/∂y.
            forward += gemm(scored, h, h, transB: true)
            inputGradient += gemm(scored, h, h) + gemm(h, h, scored, transA: true)
            softmax += (megatronLM ? 2.0 : 4.0) * 16 * Double(scored * h) / profile.bandwidth(threads: threads)
        }
        let backward = inputGradient + weightGradient
        if megatronLM {
            x.forward = forward + softmax / 3
            x.backward = backward + 2 * softmax / 3 + comm
        } else if layout.zeroBubble {
            // The weight gradient waits for the W pass (PipelineExecutor).
            x.forward = forward + inputGradient + softmax + comm
            x.weight = weightGradient
        } else {
            x.forward = forward + backward + softmax + comm
        }
        x.communication = comm
        return x
    }

    func embedding() -> ChunkTimes {
        let t = layout.tensor, n = model.seq * layout.microBatch, h = model.hidden
        var x = ChunkTimes()
        let bytes = (megatronLM ? 2.0 : 4.0) * 3 * Double(n * h) / profile.bandwidth(threads: threads)
        x.forward = bytes
        x.backward = bytes
        if t > 1 {
            x.communication = collective(
                layout.sequenceParallel ? "reducescatter" : "allreduce", elements: Double(n * h), size: t, stride: 1)
            x.forward += x.communication
        }
        return x
    }

    /// F, B, W of one micro-batch of a chunk with `layers` layers.
    func chunk(
        layers: Int, hasEmbedding: Bool, hasHead: Bool, layer one: ChunkTimes, head: ChunkTimes, embedding: ChunkTimes
    )
        -> ChunkTimes
    {
        let L = Double(layers)
        var x = ChunkTimes(
            forward: L * one.forward, backward: L * one.backward, weight: L * one.weight,
            communication: L * one.communication)
        if layout.recompute {
            x.backward += L * one.forward
            x.communication += L * one.communication / 2
        }
        for part in [hasEmbedding ? embedding : nil, hasHead ? head : nil].compactMap({ $0 }) {
            x.forward += part.forward; x.backward += part.backward; x.weight += part.weight
            x.communication += part.communication
        }
        return x
    }
}

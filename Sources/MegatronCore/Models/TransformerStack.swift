// TransformerStack.swift — the parts GPT and BERT share, on one chunk's slots and arenas: the input
// embedding (vocab-parallel word table + positions, optionally + token types; then this rank's
// sequence slice and dropout), the chunk's transformer layers forward and backward (with
// recomputation and per-layer dropout streams), and the final LayerNorm with its backward. The
// models add their heads around these; every call runs exactly what GPTModel ran before it was
// shared, in the same order.
import Distributed
import Tensor

/// Where a chunk's shared parameters live in its table (nil when the chunk has no such part).
public struct StackSlots: Sendable {
    public let wordEmbeddings: Int?, positionEmbeddings: Int?, tokentypeEmbeddings: Int?
    public let layers: [TransformerLayerSlots]
    public let finalNormWeight: Int?, finalNormBias: Int?
    /// Post-LN only (first stage): the LayerNorm on the embeddings.
    public var embeddingNormWeight: Int? = nil, embeddingNormBias: Int? = nil
}

struct TransformerStack {
    let config: GPTConfig
    let stage: StagePlan
    let slots: StackSlots
    let weights: ParameterArena, grads: ParameterArena
    let tensorParallel: TensorParallel
    let vocab: VocabShard
    let precision: Precision
    let timer: PhaseTimer?
    /// When set (data-parallel sparse ending, the step's last micro-batch): the word rows' gradients
    /// of the embedding backward go here instead of into the gradient arena.
    var wordRows: SparseRowGradient? = nil
    /// The word table holds fp32 main values (ModelWeights): its gathered rows are rounded here.
    var roundsWordRows = false

    /// The word embedding's slot when its rows are kept apart: its gradient in `grads` is then final
    /// once the head's part (fused into the forward) is in, before the layers' backward.
    var wordSlotFinalEarly: Int? { wordRows != nil ? slots.wordEmbeddings : nil }

    func layerDropout(_ l: Int, _ ctx: PassContext) -> LayerDropout {
        let c = config
        func stream(_ site: String, _ p: Float) -> DropoutStream? {
            ctx.training && p > 0
                ? DropoutStream(
                    seed: c.seed, site: "layer.\(stage.layers[l]).\(site)", step: ctx.iteration,
                    microbatch: ctx.microbatch) : nil
        }
        return LayerDropout(
            hidden: c.hiddenDropout, attention: c.attentionDropout,
            attentionStream: stream("attention", c.attentionDropout),
            attentionOutStream: stream("attention_out", c.hiddenDropout),
            mlpOutStream: stream("mlp_out", c.hiddenDropout))
    }

    func embeddingStream(_ ctx: PassContext) -> DropoutStream? {
        ctx.training && config.hiddenDropout > 0
            ? DropoutStream(seed: config.seed, site: "embedding", step: ctx.iteration, microbatch: ctx.microbatch) : nil
    }

    /// Embedding of `m.tokens` into `m.residual[0]` (first stage): VocabParallelEmbedding (local rows,
    /// all-reduce), + positions, + token types `tokentypes` when given; this rank's sequence slice; dropout.
    func embed(_ m: TransformerActivations, _ ctx: PassContext, tokentypes: UnsafePointer<Int32>? = nil) throws {
        guard let wte = slots.wordEmbeddings else { return }
        let tp = tensorParallel, n = m.rows, nS = m.shardRows, h = config.hiddenSize
        try timer.measure(PhaseLabel.forwardEmbedding) {
            let full = tp.sequenceParallel ? m.tmpH : m.residual[0]
            // No table under rope (the layers rotate queries and keys by position).
            let wpe = weights.pointer(slots.positionEmbeddings)
            // In one pass with the positions unless the word rows are rounded or summed over ranks first.
            let apart = tp.size > 1 || roundsWordRows
            let positions = m.positionIds.map { UnsafePointer($0.base) }
            Embedding.forward(
                tokens: m.tokens.base, word: weights.pointer(wte), vocab: vocab,
                position: apart ? nil : wpe, positions: positions, out: full, seq: m.seq, batch: m.batch, hidden: h)
            if roundsWordRows { precision.round(full, count: n * h) }
            if tp.size > 1 { try tp.reduceFromTensorModelParallelRegionForward(full, count: n * h) }
            if apart, let wpe {
                Embedding.addPosition(full, position: wpe, positions: positions, seq: m.seq, batch: m.batch, hidden: h)
            }
            if let tokentypes, let tte = slots.tokentypeEmbeddings {
                Embedding.addRows(full, table: weights.pointer(tte), indices: tokentypes, rows: n, hidden: h)
            }
            if tp.sequenceParallel {
                tp.scatterToSequenceParallelRegionForward(full, into: m.residual[0], shardCount: nS * h)
            }
            if let nw = slots.embeddingNormWeight, let nb = slots.embeddingNormBias, let sum = m.embeddingSum,
                let stats = m.embeddingStats
            {
                sum.update(from: m.residual[0], count: nS * h)
                LayerNorm.forward(
                    x: sum, weight: weights.pointer(nw), bias: weights.pointer(nb), y: m.residual[0], mean: stats.mean,
                    rstd: stats.rstd, rows: nS, width: h, eps: config.normEpsilon)
            }
            if let s = embeddingStream(ctx) {
                Dropout.apply(
                    m.residual[0], count: nS * h, p: config.hiddenDropout, stream: s, offset: m.shardRowOffset * h)
            }
        }
    }

    /// The chunk's layers: `m.residual[0]` → `m.residual[L]`.
    func layersForward(_ m: TransformerActivations, _ ctx: PassContext) throws {
        for l in 0..<stage.layers.count {
            try TransformerLayer.forward(
                x: m.residual[l], out: m.residual[l + 1], slots: slots.layers[l], params: weights,
                acts: m.layers[l], model: m, config: config, dropout: layerDropout(l, ctx), timer: timer)
            CommunicationProgress.atLayerBoundary()
        }
    }

    /// The final LayerNorm of `m.residual[L]` into `m.finalNorm` (rounded to the GEMM precision;
    /// gathered to all rows under sequence parallelism).
    func finalNorm(_ m: TransformerActivations) throws {
        let tp = tensorParallel, nS = m.shardRows, h = config.hiddenSize, offset = m.shardRowOffset * h
        guard let fw = slots.finalNormWeight else {
            // Post-LN: no final norm; the heads read the last layer's output.
            (m.finalNorm + offset).update(from: m.residual[stage.layers.count], count: nS * h)
            precision.round(m.finalNorm + offset, count: nS * h)
            if tp.sequenceParallel { try tp.gatherFromSequenceParallelRegionForward(m.finalNorm, shardCount: nS * h) }
            return
        }
        try timer.measure("fwd layernorm") {
            Norm.forward(
                config.normalization, x: m.residual[stage.layers.count], weight: weights.pointer(fw),
                bias: weights.pointer(slots.finalNormBias),
                y: m.finalNorm + offset, mean: m.finalMean, rstd: m.finalRstd, rows: nS, width: h,
                eps: config.normEpsilon)
            precision.round(m.finalNorm + offset, count: nS * h)
            if tp.sequenceParallel { try tp.gatherFromSequenceParallelRegionForward(m.finalNorm, shardCount: nS * h) }
        }
    }

    /// Backward of the final LayerNorm from ∂loss/∂finalNorm in `m.headGradient` (all rows) into
    /// `m.dResidual` (overwritten). `partial`: each tensor rank holds a part of the gradient (a
    /// vocab-parallel head), summed here; otherwise every rank holds all of it.
    func finalNormBackward(_ m: TransformerActivations, partial: Bool) throws {
        let tp = tensorParallel, n = m.rows, nS = m.shardRows, h = config.hiddenSize
        guard let fw = slots.finalNormWeight else {
            // Post-LN: the heads' gradient is the last layer's output gradient (this rank's rows).
            precondition(!partial, "a partial head gradient needs the final norm's reduction")
            m.dResidual.update(from: m.headGradient + (tp.sequenceParallel ? m.shardRowOffset * h : 0), count: nS * h)
            return
        }
        try timer.measure("bwd layernorm") {
            var dNorm = UnsafePointer(m.headGradient)
            if tp.sequenceParallel {
                if partial {
                    try tp.gatherFromSequenceParallelRegionBackward(m.headGradient, into: m.tmpS, shardCount: nS * h)
                } else {
                    m.tmpS.update(from: m.headGradient + m.shardRowOffset * h, count: nS * h)
                }
                dNorm = UnsafePointer(m.tmpS)
            } else if partial {
                try tp.copyToTensorModelParallelRegionBackward(m.headGradient, count: n * h)
            }
            m.dResidual.update(repeating: 0, count: nS * h)
            Norm.backward(
                config.normalization, dy: dNorm, x: m.residual[stage.layers.count], weight: weights.pointer(fw),
                mean: m.finalMean, rstd: m.finalRstd, dx: m.dResidual, dweight: grads.pointer(fw),
                dbias: grads.pointer(slots.finalNormBias), rows: nS, width: h)
        }
    }

    /// The layers backward from ∂loss/∂residual[L] in `m.dResidual` to ∂loss/∂residual[0] there,
    /// recomputing groups as planned; `final(slots)` after each layer's gradients are complete.
    func layersBackward(_ m: TransformerActivations, _ ctx: PassContext, final: (([Int]) -> Void)?) throws {
        for l in stride(from: stage.layers.count - 1, through: 0, by: -1) {
            if let group = m.recompute.groupEnding(at: l) {
                // Recomputation: the group's forward again, from its kept input, into its shared sets.
                try timer.measure("recompute forward") {
                    for r in group {
                        try TransformerLayer.forward(
                            x: m.residual[r], out: m.residual[r + 1], slots: slots.layers[r], params: weights,
                            acts: m.layers[r], model: m, config: config, dropout: layerDropout(r, ctx), timer: nil)
                    }
                }
            }
            try TransformerLayer.backward(
                x: m.residual[l], dres: m.dResidual, slots: slots.layers[l], params: weights,
                grads: grads, acts: m.layers[l], model: m, config: config, dropout: layerDropout(l, ctx), timer: timer,
                deferring: ctx.deferWeightGradients ? m.deferredWeightGradients : nil)
            final?(slots.layers[l].all)
            CommunicationProgress.atLayerBoundary()
        }
    }

    /// Backward of `embed` from ∂loss/∂residual[0] in `m.dResidual` (first stage).
    func embedBackward(_ m: TransformerActivations, _ ctx: PassContext, tokentypes: UnsafePointer<Int32>? = nil) throws
    {
        guard let wte = slots.wordEmbeddings else { return }
        let tp = tensorParallel, nS = m.shardRows, h = config.hiddenSize, offset = m.shardRowOffset * h
        let wpe = grads.pointer(slots.positionEmbeddings)
        try timer.measure(PhaseLabel.backwardEmbedding) {
            if let s = embeddingStream(ctx) {
                Dropout.apply(m.dResidual, count: nS * h, p: config.hiddenDropout, stream: s, offset: offset)
            }
            if let nw = slots.embeddingNormWeight, let nb = slots.embeddingNormBias, let sum = m.embeddingSum,
                let stats = m.embeddingStats, let scratch = m.postScratch
            {
                scratch.update(repeating: 0, count: nS * h)
                LayerNorm.backward(
                    dy: m.dResidual, x: sum, weight: weights.pointer(nw), mean: stats.mean, rstd: stats.rstd,
                    dx: scratch,
                    dweight: grads.pointer(nw), dbias: grads.pointer(nb), rows: nS, width: h)
                m.dResidual.update(from: scratch, count: nS * h)
            }
            var full = UnsafePointer(m.dResidual)
            let positions = m.positionIds.map { UnsafePointer($0.base) }
            if tp.sequenceParallel {
                (m.tmpH + offset).update(from: m.dResidual, count: nS * h)
                try tp.scatterToSequenceParallelRegionBackward(m.tmpH, shardCount: nS * h)
                full = UnsafePointer(m.tmpH)
            }
            if let wordRows {
                precondition(wordRows.tableRows == vocab.rows, "the kept-apart rows are this shard's")
                let rows = wordRows.collect(tokens: m.tokens.base, count: m.seq * m.batch, vocabStart: vocab.start)
                Embedding.backward(
                    dout: full, rows: rows, dword: wordRows.values, dposition: wpe, positions: positions,
                    seq: m.seq, batch: m.batch, hidden: h)
            } else {
                Embedding.backward(
                    dout: full, tokens: m.tokens.base, dword: grads.pointer(wte), vocab: vocab,
                    dposition: wpe, positions: positions, seq: m.seq, batch: m.batch, hidden: h)
            }
            if let tokentypes, let tte = slots.tokentypeEmbeddings {
                Embedding.addRowsBackward(
                    dout: full, indices: tokentypes, dtable: grads.pointer(tte), rows: m.rows, hidden: h)
            }
        }
    }
}

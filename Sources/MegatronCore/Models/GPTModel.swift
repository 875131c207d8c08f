// GPTModel.swift — GPT-2 as Megatron and Hugging Face define it: learned position embeddings,
// pre-LN layers, causal attention, tanh-GELU, final LayerNorm, LM head tied to the word embedding.
// The architecture in one place:
//     x = Dropout(wte[tokens] + wpe[positions])
//     for layer in layers: x = layer(x)
//     loss = CrossEntropy(LN_f(x) · wteᵀ)
// `backward` is that loop reversed. Gradients of one step accumulate over micro-batches. Under tensor
// parallelism each rank holds its slice of every split parameter (heads, ffn columns, vocabulary rows).
import Tensor

public struct GPTSlots: Sendable {
    public let wordEmbeddings: Int, positionEmbeddings: Int
    public let layers: [TransformerLayerSlots]
    public let finalNormWeight: Int, finalNormBias: Int

    /// The whole parameter table of a GPT, declared once, sliced for tensor rank `rank` of `size`.
    public static func declare(config c: GPTConfig, tensorRank: Int = 0, tensorSize: Int = 1) -> (ParameterTable, GPTSlots) {
        var t = ParameterTable(tensorRank: tensorRank, tensorSize: tensorSize)
        let wte = t.declare("embedding.word_embeddings.weight", [c.paddedVocabSize, c.hiddenSize], split: 0,
                            .normal(std: c.initMethodStd))
        let wpe = t.declare("embedding.position_embeddings.weight", [c.maxPositionEmbeddings, c.hiddenSize],
                            .normal(std: c.initMethodStd))
        let layers = (0..<c.numLayers).map { TransformerLayerSlots(declaringIn: &t, layer: $0, config: c) }
        let fw = t.declare("decoder.final_layernorm.weight", [c.hiddenSize], .ones, sequenceParallel: true)
        let fb = t.declare("decoder.final_layernorm.bias", [c.hiddenSize], .zeros, sequenceParallel: true)
        return (t, GPTSlots(wordEmbeddings: wte, positionEmbeddings: wpe, layers: layers, finalNormWeight: fw, finalNormBias: fb))
    }
}

/// Which step and micro-batch a pass belongs to: keys the dropout masks.
public struct PassContext: Sendable {
    public let iteration: Int, microbatch: Int, training: Bool
    public init(iteration: Int, microbatch: Int, training: Bool) {
        self.iteration = iteration; self.microbatch = microbatch; self.training = training
    }
}

public final class GPTModel: @unchecked Sendable {
    public let config: GPTConfig
    public let table: ParameterTable
    public let slots: GPTSlots
    public let params: ParameterArena
    public let grads: ParameterArena
    public let acts: GPTActivations
    public let tensorParallel: TensorParallel
    public let vocab: VocabShard
    /// When set, forward/backward add their per-phase wall times to it (`megatron benchmark`).
    public var timer: PhaseTimer? = nil

    /// Builds this rank's part of the model with parameters initialised from `config.seed` (each
    /// element a function of seed, name and global index, so any t starts from the same weights)
    /// and activation memory for micro-batches of `microBatch` sequences.
    public init(config: GPTConfig, microBatch: Int, threads: Int, tensorParallel tp: TensorParallel = .single) {
        precondition(config.hiddenSize % config.numAttentionHeads == 0, "hidden_size % num_attention_heads != 0")
        precondition(config.numAttentionHeads % tp.size == 0 && config.ffnHiddenSize % tp.size == 0
                     && config.paddedVocabSize % tp.size == 0, "sizes must divide by the tensor-parallel size (validated before)")
        self.config = config
        tensorParallel = tp
        (table, slots) = GPTSlots.declare(config: config, tensorRank: tp.rank, tensorSize: tp.size)
        params = ParameterArena(table: table)
        grads = ParameterArena(table: table)
        acts = GPTActivations(config: config, microBatch: microBatch, threads: threads, tensorParallel: tp)
        vocab = VocabShard(config: config, tensorParallel: tp)
        params.initialize(seed: config.seed)
    }

    private func layerDropout(_ l: Int, _ ctx: PassContext) -> LayerDropout {
        let c = config
        func stream(_ site: String, _ p: Float) -> DropoutStream? {
            ctx.training && p > 0 ? DropoutStream(seed: c.seed, site: "layer.\(l).\(site)", step: ctx.iteration, microbatch: ctx.microbatch) : nil
        }
        return LayerDropout(hidden: c.hiddenDropout, attention: c.attentionDropout,
                            attentionStream: stream("attention", c.attentionDropout),
                            attentionOutStream: stream("attention_out", c.hiddenDropout),
                            mlpOutStream: stream("mlp_out", c.hiddenDropout))
    }

    private func embeddingStream(_ ctx: PassContext) -> DropoutStream? {
        ctx.training && config.hiddenDropout > 0
            ? DropoutStream(seed: config.seed, site: "embedding", step: ctx.iteration, microbatch: ctx.microbatch) : nil
    }

    /// Forward through the final LayerNorm for the tokens in `acts.tokens` ([s, b]); leaves the
    /// final LayerNorm output for all n rows in `acts.finalNorm`.
    public func forwardHidden(_ ctx: PassContext) throws {
        let c = config, m = acts, tp = tensorParallel, n = m.rows, nS = m.shardRows, h = c.hiddenSize
        let offset = m.shardRowOffset * h
        try timer.measure("fwd embedding") {
            // VocabParallelEmbedding: local rows, g (all-reduce), + positions; then this rank's sequence slice.
            let full = tp.sequenceParallel ? m.tmpH : m.residual[0]
            let wpe = params.pointer(slots.positionEmbeddings)
            Embedding.forward(tokens: m.tokens.base, word: params.pointer(slots.wordEmbeddings), vocab: vocab,
                              position: tp.size == 1 ? wpe : nil, out: full, seq: m.seq, batch: m.batch, hidden: h)
            if tp.size > 1 {
                try tp.reduceFromTensorModelParallelRegionForward(full, count: n * h)
                Embedding.addPosition(full, position: wpe, seq: m.seq, batch: m.batch, hidden: h)
            }
            if tp.sequenceParallel { tp.scatterToSequenceParallelRegionForward(full, into: m.residual[0], shardCount: nS * h) }
            if let s = embeddingStream(ctx) { Dropout.apply(m.residual[0], count: nS * h, p: c.hiddenDropout, stream: s, offset: offset) }
        }
        for l in 0..<c.numLayers {
            try TransformerLayer.forward(x: m.residual[l], out: m.residual[l + 1], slots: slots.layers[l], params: params,
                                         acts: m.layers[l], model: m, config: c, dropout: layerDropout(l, ctx), timer: timer)
        }
        try timer.measure("fwd layernorm") {
            LayerNorm.forward(x: m.residual[c.numLayers], weight: params.pointer(slots.finalNormWeight),
                              bias: params.pointer(slots.finalNormBias), y: m.finalNorm + offset, mean: m.finalMean,
                              rstd: m.finalRstd, rows: nS, width: h, eps: c.normEpsilon)
            if tp.sequenceParallel { try tp.gatherFromSequenceParallelRegionForward(m.finalNorm, shardCount: nS * h) }
        }
    }

    /// Evaluation: the summed token loss of the micro-batch in `acts.tokens`/`acts.targets`.
    public func lossSum() throws -> Double {
        try forwardHidden(PassContext(iteration: 0, microbatch: 0, training: false))
        return try VocabCrossEntropy.forward(x: acts.finalNorm, embedding: params.pointer(slots.wordEmbeddings), vocab: vocab,
                                             targets: acts.targets.base, rows: acts.rows, hidden: config.hiddenSize,
                                             chunkRows: VocabCrossEntropy.chunkRows(rows: acts.rows, vocab: config.vocabSize),
                                             logits: acts.logits, rowStats: acts.rowStats, rowLoss: acts.rowLoss,
                                             tensorParallel: tensorParallel)
    }

    /// Training: forward, loss, backward. Gradients of `gradScale · Σ token losses` are added to
    /// `grads`. Returns the summed token loss.
    public func forwardBackward(gradScale: Float, _ ctx: PassContext) throws -> Double {
        let c = config, m = acts, tp = tensorParallel, n = m.rows, nS = m.shardRows, h = c.hiddenSize
        let offset = m.shardRowOffset * h
        try forwardHidden(ctx)
        // LM head + cross entropy + their backward, chunked; ∂loss/∂LN_f(x) (partial over the vocabulary) into tmpH.
        let loss = try timer.measure("lm head + cross entropy (fwd+bwd)") {
            try VocabCrossEntropy.forward(x: m.finalNorm, embedding: params.pointer(slots.wordEmbeddings), vocab: vocab,
                                          targets: m.targets.base, rows: n, hidden: h,
                                          chunkRows: VocabCrossEntropy.chunkRows(rows: n, vocab: c.vocabSize),
                                          logits: m.logits, rowStats: m.rowStats, rowLoss: m.rowLoss, tensorParallel: tp,
                                          dx: m.tmpH, dembedding: grads.pointer(slots.wordEmbeddings), gradScale: gradScale)
        }
        try timer.measure("bwd layernorm") {
            var dNorm = UnsafePointer(m.tmpH)
            if tp.sequenceParallel {
                try tp.gatherFromSequenceParallelRegionBackward(m.tmpH, into: m.tmpS, shardCount: nS * h)
                dNorm = UnsafePointer(m.tmpS)
            } else {
                try tp.copyToTensorModelParallelRegionBackward(m.tmpH, count: n * h)
            }
            m.dResidual.update(repeating: 0, count: nS * h)
            LayerNorm.backward(dy: dNorm, x: m.residual[c.numLayers], weight: params.pointer(slots.finalNormWeight),
                               mean: m.finalMean, rstd: m.finalRstd, dx: m.dResidual,
                               dweight: grads.pointer(slots.finalNormWeight), dbias: grads.pointer(slots.finalNormBias),
                               rows: nS, width: h)
        }
        for l in stride(from: c.numLayers - 1, through: 0, by: -1) {
            try TransformerLayer.backward(x: m.residual[l], dres: m.dResidual, slots: slots.layers[l], params: params,
                                          grads: grads, acts: m.layers[l], model: m, config: c, dropout: layerDropout(l, ctx), timer: timer)
        }
        try timer.measure("bwd embedding") {
            if let s = embeddingStream(ctx) { Dropout.apply(m.dResidual, count: nS * h, p: c.hiddenDropout, stream: s, offset: offset) }
            var full = UnsafePointer(m.dResidual)
            if tp.sequenceParallel {
                (m.tmpH + offset).update(from: m.dResidual, count: nS * h)
                try tp.scatterToSequenceParallelRegionBackward(m.tmpH, shardCount: nS * h)
                full = UnsafePointer(m.tmpH)
            }
            Embedding.backward(dout: full, tokens: m.tokens.base, dword: grads.pointer(slots.wordEmbeddings), vocab: vocab,
                               dposition: grads.pointer(slots.positionEmbeddings), seq: m.seq, batch: m.batch, hidden: h)
        }
        return loss
    }

    /// After the step's last micro-batch: with sequence parallelism the norm parameters saw only
    /// this rank's rows, so their gradients are all-reduced over the tensor group.
    public func finalizeGradients() throws {
        guard tensorParallel.sequenceParallel else { return }
        for (slot, spec) in table.specs.enumerated() where spec.sequenceParallel {
            try tensorParallel.group?.allReduceSum(grads.pointer(slot), count: spec.count)
        }
    }
}

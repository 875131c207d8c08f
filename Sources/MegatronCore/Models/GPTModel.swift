// GPTModel.swift — GPT-2 as Megatron and Hugging Face define it: learned position embeddings,
// pre-LN layers, causal attention, tanh-GELU, final LayerNorm, LM head tied to the word embedding.
// The architecture in one place:
//     x = Dropout(wte[tokens] + wpe[positions])
//     for layer in layers: x = layer(x)
//     loss = CrossEntropy(LN_f(x) · wteᵀ)
// `backward` is that loop reversed. Gradients of one step accumulate over micro-batches. Under tensor
// parallelism each rank holds its slice of every split parameter (heads, ffn columns, vocabulary rows).
import Tensor

/// What one model chunk holds: some of the transformer layers (by global index), and on the first
/// stage the embeddings, on the last the final LayerNorm and the LM head.
public struct StagePlan: Sendable, Equatable {
    public let layers: [Int]
    public let hasEmbedding: Bool, hasHead: Bool

    public init(layers: [Int], hasEmbedding: Bool, hasHead: Bool) {
        self.layers = layers; self.hasEmbedding = hasEmbedding; self.hasHead = hasHead
    }

    /// The whole model on one stage.
    public static func whole(_ c: GPTConfig) -> StagePlan { StagePlan(layers: Array(0..<c.numLayers), hasEmbedding: true, hasHead: true) }

    /// Megatron's partition: with p stages and v chunks per stage, chunk c of stage r holds layers
    /// (c·p + r)·k ..< (c·p + r + 1)·k, k = L/(p·v); the embedding lives on chunk 0 of stage 0, the
    /// head on chunk v − 1 of stage p − 1.
    public static func chunk(_ c: Int, ofStage r: Int, stages p: Int, chunks v: Int, layers L: Int) -> StagePlan {
        let k = L / (p * v), first = (c * p + r) * k
        return StagePlan(layers: Array(first..<(first + k)), hasEmbedding: r == 0 && c == 0, hasHead: r == p - 1 && c == v - 1)
    }
}

public struct GPTSlots: Sendable {
    /// The last stage's copy of the word embedding when the first stage is another rank (Megatron's name).
    public static let tiedOutputLayerName = "output_layer.weight"

    /// The word embedding used for the input lookup (first stage) and for the LM head (last stage:
    /// the same slot when both are here, else the tied copy `output_layer.weight`).
    public let wordEmbeddings: Int?, outputLayer: Int?
    public let positionEmbeddings: Int?
    public let layers: [TransformerLayerSlots]
    public let finalNormWeight: Int?, finalNormBias: Int?

    /// The parameter table of one model chunk, declared once, sliced for tensor rank `rank` of `size`.
    public static func declare(config c: GPTConfig, tensorRank: Int = 0, tensorSize: Int = 1, stage: StagePlan? = nil) -> (ParameterTable, GPTSlots) {
        let stage = stage ?? .whole(c)
        var t = ParameterTable(tensorRank: tensorRank, tensorSize: tensorSize)
        let wteName = "embedding.word_embeddings.weight"
        var wte: Int? = nil, wpe: Int? = nil, head: Int? = nil
        if stage.hasEmbedding {
            wte = t.declare(wteName, [c.paddedVocabSize, c.hiddenSize], split: 0, .normal(std: c.initMethodStd))
            wpe = t.declare("embedding.position_embeddings.weight", [c.maxPositionEmbeddings, c.hiddenSize], .normal(std: c.initMethodStd))
        }
        let layers = stage.layers.map { TransformerLayerSlots(declaringIn: &t, layer: $0, config: c) }
        var fw: Int? = nil, fb: Int? = nil
        if stage.hasHead {
            fw = t.declare("decoder.final_layernorm.weight", [c.hiddenSize], .ones, sequenceParallel: true)
            fb = t.declare("decoder.final_layernorm.bias", [c.hiddenSize], .zeros, sequenceParallel: true)
            // Tied to the word embedding: the same tensor here, or a copy that starts from the same
            // values and whose gradient is all-reduced with the first stage's (embedding group).
            head = wte ?? t.declare(tiedOutputLayerName, [c.paddedVocabSize, c.hiddenSize], split: 0,
                                    .normal(std: c.initMethodStd), initFrom: wteName)
        }
        return (t, GPTSlots(wordEmbeddings: wte, outputLayer: head, positionEmbeddings: wpe, layers: layers,
                            finalNormWeight: fw, finalNormBias: fb))
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
    /// The fp32 main parameters (optimizer, checkpoints).
    public let params: ParameterArena
    /// What forward and backward read: `params` itself in fp32; in reduced precision a copy with
    /// every matrix (2-D) parameter rounded to 16 bits and vectors (biases, norms) exact, refreshed
    /// from `params` by `syncWeights()` after they change.
    public let weights: ParameterArena
    public let precision: Precision
    public let grads: ParameterArena
    /// The activation memory of the micro-batch being computed (a pipeline swaps in one per micro-batch in flight).
    public var acts: GPTActivations
    public let tensorParallel: TensorParallel
    public let stage: StagePlan
    let threads: Int
    public let vocab: VocabShard
    /// When set, forward/backward add their per-phase wall times to it (`megatron benchmark`).
    public var timer: PhaseTimer? = nil
    /// When set (the step's last micro-batch), `backwardStage` reports the slots whose gradients
    /// are final as soon as they are, so data-parallel reduction can start (GradientBuckets).
    public var onGradientsFinal: (([Int]) -> Void)? = nil

    /// Builds this rank's part of the model with parameters initialised from `config.seed` (each
    /// element a function of seed, name and global index, so any t starts from the same weights)
    /// and activation memory for micro-batches of `microBatch` sequences (saved activations shared
    /// by recomputed layers per `recompute`).
    public init(config: GPTConfig, microBatch: Int, threads: Int, tensorParallel tp: TensorParallel = .single, stage: StagePlan? = nil,
                recompute: RecomputePlan? = nil, precision: Precision = .fp32) {
        precondition(config.hiddenSize % config.numAttentionHeads == 0, "hidden_size % num_attention_heads != 0")
        precondition(config.numAttentionHeads % tp.size == 0 && config.ffnHiddenSize % tp.size == 0
                     && config.paddedVocabSize % tp.size == 0, "sizes must divide by the tensor-parallel size (validated before)")
        self.config = config
        tensorParallel = tp
        self.stage = stage ?? .whole(config)
        self.threads = threads
        (table, slots) = GPTSlots.declare(config: config, tensorRank: tp.rank, tensorSize: tp.size, stage: self.stage)
        params = ParameterArena(table: table)
        self.precision = precision
        weights = precision.isReduced ? ParameterArena(table: table) : params
        grads = ParameterArena(table: table)
        acts = GPTActivations(config: config, microBatch: microBatch, threads: threads, tensorParallel: tp, layers: self.stage.layers.count,
                              recompute: recompute, precision: precision)
        vocab = VocabShard(config: config, tensorParallel: tp)
        params.initialize(seed: config.seed)
        syncWeights()
    }

    /// Refreshes the 16-bit model weights from the fp32 main parameters (reduced precision; a no-op
    /// in fp32). Call after anything writes `params`: an optimizer step, a checkpoint load.
    public func syncWeights() {
        guard precision.isReduced else { return }
        for (slot, spec) in table.specs.enumerated() {
            weights.pointer(slot).update(from: params.pointer(slot), count: spec.count)
            if spec.shape.count > 1 { precision.round(weights.pointer(slot), count: spec.count) }
        }
    }

    /// Another activation set of this chunk's shape (one per micro-batch in flight in a pipeline).
    public func makeActivations() -> GPTActivations {
        GPTActivations(config: config, microBatch: acts.batch, threads: threads, tensorParallel: tensorParallel, layers: stage.layers.count,
                       recompute: acts.recompute, precision: precision)
    }

    private func layerDropout(_ l: Int, _ ctx: PassContext) -> LayerDropout {
        let c = config
        func stream(_ site: String, _ p: Float) -> DropoutStream? {
            ctx.training && p > 0 ? DropoutStream(seed: c.seed, site: "layer.\(stage.layers[l]).\(site)", step: ctx.iteration, microbatch: ctx.microbatch) : nil
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

    /// Forward of this chunk for the micro-batch in `acts`: from the tokens (first stage) or from the
    /// input activation already in `acts.residual[0]`, through its layers to `acts.residual[last]`;
    /// on the last stage also the final LayerNorm and the LM head + cross entropy, whose backward is
    /// fused in when `gradScale` is given (training): ∂loss/∂LN_f(x) stays in `acts.tmpH` for
    /// `backwardStage`. Returns the summed token loss on the last stage, nil elsewhere.
    @discardableResult
    public func forwardStage(_ ctx: PassContext, gradScale: Float? = nil) throws -> Double? {
        let c = config, m = acts, tp = tensorParallel, n = m.rows, nS = m.shardRows, h = c.hiddenSize
        let offset = m.shardRowOffset * h
        if stage.hasEmbedding, let wte = slots.wordEmbeddings, let wpeSlot = slots.positionEmbeddings {
            try timer.measure("fwd embedding") {
                // VocabParallelEmbedding: local rows, g (all-reduce), + positions; then this rank's sequence slice.
                let full = tp.sequenceParallel ? m.tmpH : m.residual[0]
                let wpe = weights.pointer(wpeSlot)
                Embedding.forward(tokens: m.tokens.base, word: weights.pointer(wte), vocab: vocab,
                                  position: tp.size == 1 ? wpe : nil, out: full, seq: m.seq, batch: m.batch, hidden: h)
                if tp.size > 1 {
                    try tp.reduceFromTensorModelParallelRegionForward(full, count: n * h)
                    Embedding.addPosition(full, position: wpe, seq: m.seq, batch: m.batch, hidden: h)
                }
                if tp.sequenceParallel { tp.scatterToSequenceParallelRegionForward(full, into: m.residual[0], shardCount: nS * h) }
                if let s = embeddingStream(ctx) { Dropout.apply(m.residual[0], count: nS * h, p: c.hiddenDropout, stream: s, offset: offset) }
            }
        }
        for l in 0..<stage.layers.count {
            try TransformerLayer.forward(x: m.residual[l], out: m.residual[l + 1], slots: slots.layers[l], params: weights,
                                         acts: m.layers[l], model: m, config: c, dropout: layerDropout(l, ctx), timer: timer)
        }
        guard stage.hasHead, let fw = slots.finalNormWeight, let fb = slots.finalNormBias, let head = slots.outputLayer else { return nil }
        try timer.measure("fwd layernorm") {
            LayerNorm.forward(x: m.residual[stage.layers.count], weight: weights.pointer(fw), bias: weights.pointer(fb),
                              y: m.finalNorm + offset, mean: m.finalMean, rstd: m.finalRstd, rows: nS, width: h, eps: c.normEpsilon)
            precision.round(m.finalNorm + offset, count: nS * h)
            if tp.sequenceParallel { try tp.gatherFromSequenceParallelRegionForward(m.finalNorm, shardCount: nS * h) }
        }
        if gradScale == nil, let scoring = m.scoring { return try scoreRows(scoring, head: head) }
        // LM head + cross entropy (+ their backward when training), chunked.
        return try timer.measure("lm head + cross entropy (fwd+bwd)") {
            try VocabCrossEntropy.forward(x: m.finalNorm, embedding: weights.pointer(head), vocab: vocab,
                                          targets: m.targets.base, rows: n, hidden: h,
                                          chunkRows: VocabCrossEntropy.chunkRows(rows: n, vocab: c.vocabSize),
                                          logits: m.logits, rowStats: m.rowStats, rowLoss: m.rowLoss, tensorParallel: tp,
                                          dx: gradScale == nil ? nil : m.tmpH,
                                          dembedding: gradScale == nil ? nil : grads.pointer(head), gradScale: gradScale ?? 1,
                                          precision: precision)
        }
    }

    /// Evaluation of `scoring.rows` only: their final hidden states are gathered into `tmpH` (free
    /// in evaluation) and run through the LM head and cross entropy. Returns their summed loss.
    func scoreRows(_ scoring: TokenScoring, head: Int) throws -> Double {
        let m = acts, h = config.hiddenSize, k = scoring.rows.count
        var targets = [Int32](repeating: 0, count: k)
        for (i, r) in scoring.rows.enumerated() {
            (m.tmpH + i * h).update(from: m.finalNorm + r * h, count: h)
            targets[i] = m.targets.base[r]
        }
        var matches = [Bool](repeating: false, count: k)
        let total = try timer.measure("lm head + cross entropy (scored rows)") {
            try targets.withUnsafeBufferPointer { t in
                try matches.withUnsafeMutableBufferPointer { match in
                    try VocabCrossEntropy.forward(x: m.tmpH, embedding: weights.pointer(head), vocab: vocab, targets: t.baseAddress!, rows: k,
                                                  hidden: h, chunkRows: VocabCrossEntropy.chunkRows(rows: m.rows, vocab: config.vocabSize),
                                                  logits: m.logits, rowStats: m.rowStats, rowLoss: m.rowLoss, tensorParallel: tensorParallel,
                                                  targetIsArgmax: match.baseAddress, precision: self.precision)
                }
            }
        }
        scoring.losses = (0..<k).map { m.rowLoss[$0] }
        scoring.targetIsArgmax = matches
        return total
    }

    /// Backward of this chunk for the micro-batch in `acts` (after `forwardStage` with a gradScale):
    /// from the LM head's gradient (last stage) or from ∂loss/∂output already in `acts.dResidual`;
    /// leaves ∂loss/∂input in `acts.dResidual` (to send to the previous stage), or, on the first
    /// stage, runs the embedding backward.
    public func backwardStage(_ ctx: PassContext) throws {
        let c = config, m = acts, tp = tensorParallel, n = m.rows, nS = m.shardRows, h = c.hiddenSize
        let offset = m.shardRowOffset * h, L = stage.layers.count
        if stage.hasHead, let fw = slots.finalNormWeight, let fb = slots.finalNormBias {
            try timer.measure("bwd layernorm") {
                var dNorm = UnsafePointer(m.tmpH)
                if tp.sequenceParallel {
                    try tp.gatherFromSequenceParallelRegionBackward(m.tmpH, into: m.tmpS, shardCount: nS * h)
                    dNorm = UnsafePointer(m.tmpS)
                } else {
                    try tp.copyToTensorModelParallelRegionBackward(m.tmpH, count: n * h)
                }
                m.dResidual.update(repeating: 0, count: nS * h)
                LayerNorm.backward(dy: dNorm, x: m.residual[L], weight: weights.pointer(fw), mean: m.finalMean, rstd: m.finalRstd,
                                   dx: m.dResidual, dweight: grads.pointer(fw), dbias: grads.pointer(fb), rows: nS, width: h)
            }
        }
        if let fw = slots.finalNormWeight, let fb = slots.finalNormBias, stage.hasHead {
            onGradientsFinal?([fw, fb] + (stage.hasEmbedding ? [] : slots.outputLayer.map { [$0] } ?? []))
        }
        for l in stride(from: L - 1, through: 0, by: -1) {
            if let group = m.recompute.groupEnding(at: l) {
                // Recomputation: the group's forward again, from its kept input, into its shared sets.
                try timer.measure("recompute forward") {
                    for r in group {
                        try TransformerLayer.forward(x: m.residual[r], out: m.residual[r + 1], slots: slots.layers[r], params: weights,
                                                     acts: m.layers[r], model: m, config: c, dropout: layerDropout(r, ctx), timer: nil)
                    }
                }
            }
            try TransformerLayer.backward(x: m.residual[l], dres: m.dResidual, slots: slots.layers[l], params: weights,
                                          grads: grads, acts: m.layers[l], model: m, config: c, dropout: layerDropout(l, ctx), timer: timer)
            onGradientsFinal?(slots.layers[l].all)
        }
        defer { if stage.hasEmbedding { onGradientsFinal?([slots.wordEmbeddings, slots.positionEmbeddings].compactMap { $0 }) } }
        guard stage.hasEmbedding, let wte = slots.wordEmbeddings, let wpe = slots.positionEmbeddings else { return }
        try timer.measure("bwd embedding") {
            if let s = embeddingStream(ctx) { Dropout.apply(m.dResidual, count: nS * h, p: c.hiddenDropout, stream: s, offset: offset) }
            var full = UnsafePointer(m.dResidual)
            if tp.sequenceParallel {
                (m.tmpH + offset).update(from: m.dResidual, count: nS * h)
                try tp.scatterToSequenceParallelRegionBackward(m.tmpH, shardCount: nS * h)
                full = UnsafePointer(m.tmpH)
            }
            Embedding.backward(dout: full, tokens: m.tokens.base, dword: grads.pointer(wte), vocab: vocab,
                               dposition: grads.pointer(wpe), seq: m.seq, batch: m.batch, hidden: h)
        }
    }

    /// Evaluation of the whole model on one stage: the summed token loss of the micro-batch in `acts`.
    public func lossSum() throws -> Double {
        try forwardStage(PassContext(iteration: 0, microbatch: 0, training: false)) ?? 0
    }

    /// Training of the whole model on one stage: forward, loss, backward. Gradients of
    /// `gradScale · Σ token losses` are added to `grads`. Returns the summed token loss.
    public func forwardBackward(gradScale: Float, _ ctx: PassContext) throws -> Double {
        let loss = try forwardStage(ctx, gradScale: gradScale) ?? 0
        try backwardStage(ctx)
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

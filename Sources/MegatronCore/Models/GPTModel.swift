// GPTModel.swift — GPT-2 as Megatron and Hugging Face define it: learned position embeddings,
// pre-LN layers, causal attention, tanh-GELU, final LayerNorm, LM head tied to the word embedding;
// with Megatron's options, rope instead of the position table, RMSNorm, SwiGLU, no linear biases
// and an untied LM head (the Llama family's architecture).
// The architecture in one place:
//     x = Dropout(wte[tokens] + wpe[positions])
//     for layer in layers: x = layer(x)
//     loss = CrossEntropy(LN_f(x) · wteᵀ)
// `backward` is that loop reversed. Gradients of one step accumulate over micro-batches. Under tensor
// parallelism each rank holds its slice of every split parameter (heads, ffn columns, vocabulary rows).
// A GPTModel is one model chunk (ModelChunk.swift): it owns parameters, never activations — every
// pass runs on the TransformerActivations handed to it.
import Tensor

public struct GPTSlots: Sendable {
    /// Megatron core's names of the model-level tensors (the layers' are in TransformerLayerSlots).
    public static let wordEmbeddingsName = "embedding.word_embeddings.weight"
    public static let positionEmbeddingsName = "embedding.position_embeddings.weight"
    public static let finalNormWeightName = "decoder.final_layernorm.weight"
    public static let finalNormBiasName = "decoder.final_layernorm.bias"
    /// The LM head's weight when it is not the word embedding itself (Megatron's name): the last
    /// stage's tied copy when the first stage is another rank, or an untied output layer.
    public static let outputLayerName = "output_layer.weight"

    /// The word embedding used for the input lookup (first stage) and the LM head's weight (last stage:
    /// the same slot when both are here and tied, else `output_layer.weight`, a tied copy or untied).
    public let wordEmbeddings: Int?, outputLayer: Int?
    public let positionEmbeddings: Int?
    public let layers: [TransformerLayerSlots]
    public let finalNormWeight: Int?, finalNormBias: Int?

    /// The parameter table of one model chunk, declared once, sliced for tensor rank `rank` of `size`.
    public static func declare(config c: GPTConfig, tensorRank: Int = 0, tensorSize: Int = 1, stage: StagePlan? = nil)
        -> (ParameterTable, GPTSlots)
    {
        let stage = stage ?? .whole(layers: c.numLayers)
        var t = ParameterTable(tensorRank: tensorRank, tensorSize: tensorSize)
        let wteName = wordEmbeddingsName
        var wte: Int? = nil, wpe: Int? = nil, head: Int? = nil
        if stage.hasEmbedding {
            wte = t.declare(wteName, [c.paddedVocabSize, c.hiddenSize], split: 0, .normal(std: c.initMethodStd))
            if c.positionEmbedding == .learnedAbsolute {
                wpe = t.declare(
                    positionEmbeddingsName, [c.maxPositionEmbeddings, c.hiddenSize], .normal(std: c.initMethodStd))
            }
        }
        let layers = stage.layers.indices.map {
            TransformerLayerSlots(declaringIn: &t, layer: stage.layers[$0], config: c, part: stage.part($0))
        }
        var fw: Int? = nil, fb: Int? = nil
        if stage.hasHead {
            fw = t.declare(finalNormWeightName, [c.hiddenSize], .ones, sequenceParallel: true)
            if c.normalization == .layerNorm {
                fb = t.declare(finalNormBiasName, [c.hiddenSize], .zeros, sequenceParallel: true)
            }
            if c.untieEmbeddings {
                // Its own weight (untie_embeddings_and_output_weights), initialised as the embedding is.
                head = t.declare(
                    outputLayerName, [c.paddedVocabSize, c.hiddenSize], split: 0, .normal(std: c.initMethodStd))
            } else {
                // Tied to the word embedding: the same tensor here, or a copy that starts from the same
                // values and whose gradient is all-reduced with the first stage's (embedding group).
                head =
                    wte
                    ?? t.declare(
                        outputLayerName, [c.paddedVocabSize, c.hiddenSize], split: 0,
                        .normal(std: c.initMethodStd), tiedTo: wteName)
            }
        }
        return (
            t,
            GPTSlots(
                wordEmbeddings: wte, outputLayer: head, positionEmbeddings: wpe, layers: layers,
                finalNormWeight: fw, finalNormBias: fb)
        )
    }
}

public final class GPTModel: ModelChunk, @unchecked Sendable {
    public let config: GPTConfig
    public var transformer: GPTConfig { config }
    public let table: ParameterTable
    public let slots: GPTSlots
    /// The fp32 main parameters (optimizer, checkpoints).
    public let params: ParameterArena
    /// What forward and backward read: `params` itself in fp32; in reduced precision every matrix
    /// (2-D) parameter as its 16-bit rounding and vectors (biases, norms) exact, refreshed from
    /// `params` by `syncWeights()` after they change — a copy, or with the bf16 kernel a view of
    /// `params` that rounds while multiplying (ModelWeights; `roundedWeightCopy` asks for the copy).
    public let weights: ParameterArena
    public let precision: Precision
    public let grads: ParameterArena
    public let tensorParallel: TensorParallel
    public let stage: StagePlan
    /// Sequences per micro-batch, and which layers recompute (shape of `makeActivations()`).
    public let microBatch: Int
    public let recompute: RecomputePlan
    let threads: Int
    public let vocab: VocabShard
    public var timer: PhaseTimer? = nil
    public var onGradientsFinal: (([Int]) -> Void)? = nil
    public var sparseWordGradient: SparseRowGradient? = nil
    public var inputWordEmbedding: (slot: Int, tokensPerMicrobatch: Int)? {
        stage.hasEmbedding ? slots.wordEmbeddings.map { ($0, config.seqLength * microBatch) } : nil
    }

    /// Builds this rank's part of the model with parameters initialised from `config.seed` (each
    /// element a function of seed, name and global index, so any t starts from the same weights),
    /// for micro-batches of `microBatch` sequences (saved activations shared by recomputed layers
    /// per `recompute`). `initialize` false leaves the parameters zero (for a model whose weights
    /// are loaded next, as generation does).
    public init(
        config: GPTConfig, microBatch: Int, threads: Int, tensorParallel tp: TensorParallel = .single,
        stage: StagePlan? = nil,
        recompute: RecomputePlan? = nil, precision: Precision = .fp32, initialize: Bool = true,
        roundedWeightCopy: Bool = false
    ) {
        precondition(config.hiddenSize % config.numAttentionHeads == 0, "hidden_size % num_attention_heads != 0")
        precondition(
            config.numAttentionHeads % tp.size == 0 && config.ffnHiddenSize % tp.size == 0
                && config.paddedVocabSize % tp.size == 0,
            "sizes must divide by the tensor-parallel size (validated before)")
        self.config = config
        tensorParallel = tp
        let stage = stage ?? .whole(layers: config.numLayers)
        self.stage = stage
        self.threads = threads
        self.microBatch = microBatch
        self.recompute = recompute ?? .none(layers: stage.layers.count)
        (table, slots) = GPTSlots.declare(config: config, tensorRank: tp.rank, tensorSize: tp.size, stage: stage)
        params = ParameterArena(table: table)
        self.precision = precision
        weights = ModelWeights.arena(
            params: params, precision: precision, rowTables: [slots.positionEmbeddings],
            roundedCopy: roundedWeightCopy)
        grads = ParameterArena(table: table)
        vocab = VocabShard(config: config, tensorParallel: tp)
        if initialize {
            params.initialize(seed: config.seed)
            syncWeights()
        }
    }

    public var tiedSlot: Int? {
        if config.untieEmbeddings || stage.hasEmbedding && stage.hasHead { return nil }
        return stage.hasEmbedding ? slots.wordEmbeddings : stage.hasHead ? slots.outputLayer : nil
    }

    public var modelSizes: [(String, Int)] { ModelCheckpoint.shapeAttributes(config) }
    public var seed: Int { config.seed }
    public var modelDescription: String {
        let c = config
        return "GPT: \(c.numLayers) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads) heads, seq \(c.seqLength), "
            + "vocab \(c.vocabSize) (padded \(c.paddedVocabSize)), \(GPTSlots.declare(config: c).0.parameterCount) parameters"
    }
    public var layerActivationFormulaBytes: Double {
        TransformerActivations.layerFormulaBytes(
            config: config, microBatch: microBatch, tensorParallel: tensorParallel,
            layers: stage.layers.count, recompute: recompute, precision: precision)
    }
    public func flopsPerIteration(globalBatch: Int) -> Double { config.flopsPerIteration(globalBatch: globalBatch) }
    /// The loss of a micro-batch is the sum over its s·b tokens (the rows its loss mask counts, when
    /// it has one: `countedRows`).
    public var lossUnitsPerMicrobatch: Int { config.seqLength * microBatch }
    public func lossUnits(_ acts: TransformerActivations) -> Int { acts.countedRows }

    /// An activation set of this chunk's shape (one per micro-batch in flight in a pipeline).
    public func makeActivations() -> TransformerActivations {
        TransformerActivations(
            config: config, microBatch: microBatch, threads: threads, tensorParallel: tensorParallel,
            layers: stage.layers.count,
            recompute: recompute, precision: precision)
    }

    /// The embedding, layers and final norm this chunk shares with other models.
    var stack: TransformerStack {
        TransformerStack(
            config: config, stage: stage,
            slots: StackSlots(
                wordEmbeddings: slots.wordEmbeddings, positionEmbeddings: slots.positionEmbeddings,
                tokentypeEmbeddings: nil, layers: slots.layers, finalNormWeight: slots.finalNormWeight,
                finalNormBias: slots.finalNormBias),
            weights: weights, grads: grads, tensorParallel: tensorParallel, vocab: vocab, precision: precision,
            timer: timer, wordRows: sparseWordGradient, roundsWordRows: roundsWordRows)
    }

    /// Forward of this chunk for the micro-batch in `m`: from the tokens (first stage) or from the
    /// input activation already in `m.residual[0]`, through its layers to `m.residual[last]`;
    /// on the last stage also the final LayerNorm and the LM head + cross entropy, whose backward is
    /// fused in when `gradScale` is given (training), leaving ∂loss/∂LN_f(x) in `m.headGradient` for
    /// `backward` (in a zero-bubble F pass, `ctx.deferWeightGradients`, the LM head's weight
    /// gradient waits in the set's queue for the W pass). Under a loss mask only its rows count, and
    /// their gradient is weighted by `m.lossGradientWeight`. Returns the summed token loss on the
    /// last stage, nil elsewhere.
    @discardableResult
    public func forward(_ m: TransformerActivations, _ ctx: PassContext, gradScale: Float? = nil) throws -> Double? {
        let c = config, tp = tensorParallel, n = m.rows, h = c.hiddenSize, shared = stack
        if stage.hasEmbedding { try shared.embed(m, ctx) }
        try shared.layersForward(m, ctx)
        guard stage.hasHead, let head = slots.outputLayer else { return nil }
        try shared.finalNorm(m)
        if gradScale == nil, let scoring = m.scoring { return try scoreRows(scoring, m, head: head) }
        // LM head + cross entropy (+ their backward when training), chunked.
        return try timer.measure(PhaseLabel.lmHead) {
            try VocabCrossEntropy.forward(
                x: m.finalNorm, embedding: weights.pointer(head), vocab: vocab,
                targets: m.targets.base, rows: n, hidden: h,
                chunkRows: VocabCrossEntropy.chunkRows(rows: n, vocab: c.vocabSize),
                logits: m.logits, rowStats: m.rowStats, rowLoss: m.rowLoss, tensorParallel: tp,
                dx: gradScale == nil ? nil : m.headGradient,
                dembedding: gradScale == nil ? nil : grads.pointer(head),
                gradScale: (gradScale ?? 1) * m.lossGradientWeight, precision: precision,
                lossMask: m.lossMask.map { UnsafePointer($0.base) },
                deferring: ctx.deferWeightGradients ? m.deferredWeightGradients : nil)
        }
    }

    /// Evaluation of `scoring.rows` only: their final hidden states are gathered into the scratch
    /// `tmpH` and run through the LM head and cross entropy. Returns their summed loss.
    func scoreRows(_ scoring: TokenScoring, _ m: TransformerActivations, head: Int) throws -> Double {
        let h = config.hiddenSize, k = scoring.rows.count
        var targets = [Int32](repeating: 0, count: k)
        for (i, r) in scoring.rows.enumerated() {
            (m.tmpH + i * h).update(from: m.finalNorm + r * h, count: h)
            targets[i] = m.targets.base[r]
        }
        var matches = [Bool](repeating: false, count: k)
        let total = try timer.measure("lm head + cross entropy (scored rows)") {
            try targets.withUnsafeBufferPointer { t in
                try matches.withUnsafeMutableBufferPointer { match in
                    try VocabCrossEntropy.forward(
                        x: m.tmpH, embedding: weights.pointer(head), vocab: vocab, targets: t.baseAddress!, rows: k,
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

    /// Backward of this chunk for the micro-batch in `m` (after `forward` with a gradScale):
    /// from the LM head's gradient in `m.headGradient` (last stage) or from ∂loss/∂output already in
    /// `m.dResidual`; leaves ∂loss/∂input in `m.dResidual` (to send to the previous stage), or, on
    /// the first stage, runs the embedding backward.
    public func backward(_ m: TransformerActivations, _ ctx: PassContext) throws {
        let shared = stack
        if stage.hasHead { try shared.finalNormBackward(m, partial: true) }
        let wordFinalEarly = shared.wordSlotFinalEarly
        if let fw = slots.finalNormWeight, stage.hasHead {
            let head = slots.outputLayer != slots.wordEmbeddings ? slots.outputLayer : nil
            onGradientsFinal?([fw, slots.finalNormBias, head, wordFinalEarly].compactMap { $0 })
        }
        try shared.layersBackward(m, ctx, final: onGradientsFinal)
        if stage.hasEmbedding {
            try shared.embedBackward(m, ctx)
            onGradientsFinal?(
                [wordFinalEarly == nil ? slots.wordEmbeddings : nil, slots.positionEmbeddings].compactMap { $0 })
        }
    }

    /// Evaluation of the whole model on one stage: the summed token loss of the micro-batch in `m`.
    public func lossSum(_ m: TransformerActivations) throws -> Double {
        try forward(m, PassContext(iteration: 0, microbatch: 0, training: false)) ?? 0
    }

    /// Training of the whole model on one stage: forward, loss, backward. Gradients of
    /// `gradScale · Σ token losses` are added to `grads`. Returns the summed token loss.
    public func forwardBackward(_ m: TransformerActivations, gradScale: Float, _ ctx: PassContext) throws -> Double {
        let loss = try forward(m, ctx, gradScale: gradScale) ?? 0
        try backward(m, ctx)
        return loss
    }
}

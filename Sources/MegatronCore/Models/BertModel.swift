// BertModel.swift — BERT as the Megatron paper trains it (§3, Fig. 7): word + position + token-type
// embeddings, bidirectional pre-LN transformer layers (attention masked to each sequence's real
// tokens), a final LayerNorm, and two heads on the last stage (BertHeads.swift):
//     x = Dropout(wte[tokens] + wpe[positions] + wtt[types]);  for layer in layers: x = layer(x)
//     y = LN_f(x)
//     masked-LM: logits = LN(GELU(y[masked]·Wdᵀ + bd))·wteᵀ + bias   (tied to the word embedding)
//     sentence order: z = tanh(y[token 0]·Wpᵀ + bp)·Wbᵀ + bb          (the binary head)
//     loss = Σ masked CE / masked rows + Σ SOP CE / sequences        (per micro-batch)
// Megatron core's tensor names. Under tensor parallelism the word table, the output bias and the
// layers are split as in GPT; the heads' dense layers are replicated (their inputs are whole).
import Tensor

/// What the last stage computes: pretraining's heads, or a finetuning head on the pooled output.
public enum BertTask: Sendable, Equatable {
    /// The masked-LM head, and the sentence-order head with `bert_binary_head`.
    case pretraining
    /// `classes` logits per sequence (Megatron's `classification_head`: MNLI 3, QQP 2).
    case classification(classes: Int)
    /// One score per sequence, softmax over each question's `choices` sequences (Megatron's `multichoice_head`: RACE 4).
    case multipleChoice(choices: Int)

    /// Sequences per example: 1, or the options of a question.
    public var group: Int {
        if case .multipleChoice(let n) = self { return n }
        return 1
    }
    /// Logits per sequence of the pooled head (the sentence-order head has 2).
    var pooledOutputs: Int {
        switch self {
        case .pretraining: return 2
        case .classification(let c): return c
        case .multipleChoice: return 1
        }
    }
}

public struct BertConfig: Sendable, Equatable {
    /// The encoder's sizes, dropout, init and seed (the same fields as GPT's).
    public var transformer: GPTConfig
    /// Megatron's `bert_binary_head`: the sentence-order head and 2 token types; without it, neither.
    public var binaryHead: Bool
    public var task: BertTask
    /// Token types: 2 with the binary head and for every finetuning task (segments A and B), else none.
    public var tokentypes: Int { binaryHead || task != .pretraining ? 2 : 0 }
    public init(transformer: GPTConfig, binaryHead: Bool = true, task: BertTask = .pretraining) {
        self.transformer = transformer; self.binaryHead = binaryHead; self.task = task
    }
}

public struct BertSlots: Sendable {
    public static let tokentypeEmbeddingsName = "embedding.tokentype_embeddings.weight"
    public static let lmDenseWeightName = "lm_head.dense.weight", lmDenseBiasName = "lm_head.dense.bias"
    public static let lmNormWeightName = "lm_head.layer_norm.weight", lmNormBiasName = "lm_head.layer_norm.bias"
    public static let outputBiasName = "output_layer.bias"
    public static let poolerWeightName = "pooler.dense.weight", poolerBiasName = "pooler.dense.bias"
    public static let binaryWeightName = "binary_head.weight", binaryBiasName = "binary_head.bias"
    /// Finetuning heads on the pooled output: classification [classes, h], multiple choice [1, h].
    public static let classificationWeightName = "classification_head.weight"
    public static let classificationBiasName = "classification_head.bias"
    public static let multichoiceWeightName = "multichoice_head.weight", multichoiceBiasName = "multichoice_head.bias"
    /// Post-LN only: the LayerNorm on the embeddings.
    public static let embeddingNormWeightName = "embedding.layernorm.weight"
    public static let embeddingNormBiasName = "embedding.layernorm.bias"

    public let stack: StackSlots
    /// The word embedding read by the masked-LM head: the embedding itself, or its tied copy on the last stage.
    public let outputLayer: Int?
    /// Last stage only.
    public let lmDenseWeight, lmDenseBias, lmNormWeight, lmNormBias, outputBias: Int?
    /// Last stage: the pooler (binary head or finetuning), and the head on it — the binary head
    /// (pretraining) or the finetuning task's (`BertTask`).
    public let poolerWeight, poolerBias, pooledHeadWeight, pooledHeadBias: Int?

    /// The parameter table of one BERT chunk, sliced for tensor rank `tensorRank` of `tensorSize`.
    public static func declare(config b: BertConfig, tensorRank: Int = 0, tensorSize: Int = 1, stage: StagePlan? = nil)
        -> (ParameterTable, BertSlots)
    {
        let c = b.transformer, h = c.hiddenSize, std = c.initMethodStd
        let stage = stage ?? .whole(layers: c.numLayers)
        var t = ParameterTable(tensorRank: tensorRank, tensorSize: tensorSize)
        var wte: Int? = nil, wpe: Int? = nil, wtt: Int? = nil, ew: Int? = nil, eb: Int? = nil
        if stage.hasEmbedding {
            wte = t.declare(GPTSlots.wordEmbeddingsName, [c.paddedVocabSize, h], split: 0, .normal(std: std))
            wpe = t.declare(GPTSlots.positionEmbeddingsName, [c.maxPositionEmbeddings, h], .normal(std: std))
            if b.tokentypes > 0 { wtt = t.declare(tokentypeEmbeddingsName, [b.tokentypes, h], .normal(std: std)) }
            if c.postLayerNorm {
                ew = t.declare(embeddingNormWeightName, [h], .ones, sequenceParallel: true)
                eb = t.declare(embeddingNormBiasName, [h], .zeros, sequenceParallel: true)
            }
        }
        let layers = stage.layers.indices.map {
            TransformerLayerSlots(declaringIn: &t, layer: stage.layers[$0], config: c, part: stage.part($0))
        }
        var fw: Int? = nil, fb: Int? = nil, out: Int? = nil
        var lm: [Int?] = [nil, nil, nil, nil, nil], pool: [Int?] = [nil, nil, nil, nil]
        if stage.hasHead {
            if !c.postLayerNorm {
                fw = t.declare(GPTSlots.finalNormWeightName, [h], .ones, sequenceParallel: true)
                fb = t.declare(GPTSlots.finalNormBiasName, [h], .zeros, sequenceParallel: true)
            }
            if b.task == .pretraining {
                lm = [
                    t.declare(lmDenseWeightName, [h, h], .normal(std: std)), t.declare(lmDenseBiasName, [h], .zeros),
                    t.declare(lmNormWeightName, [h], .ones), t.declare(lmNormBiasName, [h], .zeros),
                    t.declare(outputBiasName, [c.paddedVocabSize], split: 0, .zeros),
                ]
            }
            let head: (String, String)? =
                switch b.task {
                case .pretraining: b.binaryHead ? (binaryWeightName, binaryBiasName) : nil
                case .classification: (classificationWeightName, classificationBiasName)
                case .multipleChoice: (multichoiceWeightName, multichoiceBiasName)
                }
            if let (weight, bias) = head {
                let width = b.task.pooledOutputs
                pool = [
                    t.declare(poolerWeightName, [h, h], .normal(std: std)), t.declare(poolerBiasName, [h], .zeros),
                    t.declare(weight, [width, h], .normal(std: std)), t.declare(bias, [width], .zeros),
                ]
            }
            if b.task == .pretraining {  // the masked-LM head reads the word embedding
                out =
                    wte
                    ?? t.declare(
                        GPTSlots.outputLayerName, [c.paddedVocabSize, h], split: 0, .normal(std: std),
                        tiedTo: GPTSlots.wordEmbeddingsName)
            }
        }
        let stack = StackSlots(
            wordEmbeddings: wte, positionEmbeddings: wpe, tokentypeEmbeddings: wtt, layers: layers,
            finalNormWeight: fw, finalNormBias: fb, embeddingNormWeight: ew, embeddingNormBias: eb)
        return (
            t,
            BertSlots(
                stack: stack, outputLayer: out, lmDenseWeight: lm[0], lmDenseBias: lm[1], lmNormWeight: lm[2],
                lmNormBias: lm[3], outputBias: lm[4], poolerWeight: pool[0], poolerBias: pool[1],
                pooledHeadWeight: pool[2],
                pooledHeadBias: pool[3])
        )
    }

    /// The head's slots (last stage), in declaration order.
    var headSlots: [Int] {
        [
            stack.finalNormWeight, stack.finalNormBias, lmDenseWeight, lmDenseBias, lmNormWeight, lmNormBias,
            outputBias,
            poolerWeight, poolerBias, pooledHeadWeight, pooledHeadBias,
        ].compactMap { $0 }
    }
}

public final class BertModel: ModelChunk, @unchecked Sendable {
    public let config: BertConfig
    public var transformer: GPTConfig { config.transformer }
    public let table: ParameterTable
    public let slots: BertSlots
    public let params: ParameterArena, weights: ParameterArena, grads: ParameterArena
    public let precision: Precision
    public let tensorParallel: TensorParallel
    public let stage: StagePlan
    public let microBatch: Int
    public let recompute: RecomputePlan
    let threads: Int
    public let vocab: VocabShard
    public var timer: PhaseTimer? = nil
    public var onGradientsFinal: (([Int]) -> Void)? = nil
    public var sparseWordGradient: SparseRowGradient? = nil
    public var inputWordEmbedding: (slot: Int, tokensPerMicrobatch: Int)? {
        stage.hasEmbedding ? slots.stack.wordEmbeddings.map { ($0, config.transformer.seqLength * microBatch) } : nil
    }

    /// This rank's part of the model, initialised from `config.transformer.seed` like GPT's (any
    /// grid starts from the same weights), for micro-batches of `microBatch` sequences.
    public init(
        config: BertConfig, microBatch: Int, threads: Int, tensorParallel tp: TensorParallel = .single,
        stage: StagePlan? = nil, recompute: RecomputePlan? = nil, precision: Precision = .fp32,
        roundedWeightCopy: Bool = false
    ) {
        let c = config.transformer
        precondition(c.hiddenSize % c.numAttentionHeads == 0, "hidden_size % num_attention_heads != 0")
        self.config = config
        tensorParallel = tp
        let stage = stage ?? .whole(layers: c.numLayers)
        self.stage = stage
        self.threads = threads
        self.microBatch = microBatch
        self.recompute = recompute ?? .none(layers: stage.layers.count)
        (table, slots) = BertSlots.declare(config: config, tensorRank: tp.rank, tensorSize: tp.size, stage: stage)
        params = ParameterArena(table: table)
        self.precision = precision
        weights = ModelWeights.arena(
            params: params, precision: precision,
            rowTables: [slots.stack.positionEmbeddings, slots.stack.tokentypeEmbeddings],
            roundedCopy: roundedWeightCopy)
        grads = ParameterArena(table: table)
        vocab = VocabShard(config: c, tensorParallel: tp)
        params.initialize(seed: c.seed)
        syncWeights()
    }

    public var tiedSlot: Int? {
        // Only the masked-LM head ties its output to the word embedding.
        if stage.hasEmbedding && stage.hasHead || config.task != .pretraining { return nil }
        return stage.hasEmbedding ? slots.stack.wordEmbeddings : stage.hasHead ? slots.outputLayer : nil
    }
    public var modelSizes: [(String, Int)] {
        config.task == .pretraining
            ? ModelArchitecture.bert(config).shapeAttributes : ModelCheckpoint.shapeAttributes(config.transformer)
    }
    public var seed: Int { config.transformer.seed }
    public var modelDescription: String {
        let c = config.transformer
        return
            "BERT (\(c.postLayerNorm ? "post-LN, the original arrangement" : "pre-LN")): \(c.numLayers) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads) heads, seq "
            + "\(c.seqLength), vocab \(c.vocabSize) (padded \(c.paddedVocabSize)), \(headDescription), "
            + "\(BertSlots.declare(config: config).0.parameterCount) parameters"
    }
    /// The per-micro-batch loss is already a mean (masked-LM over masked rows + SOP over sequences).
    public var lossUnitsPerMicrobatch: Int { 1 }
    public var layerActivationFormulaBytes: Double {
        TransformerActivations.layerFormulaBytes(
            config: config.transformer, microBatch: microBatch, tensorParallel: tensorParallel,
            layers: stage.layers.count, recompute: recompute, precision: precision)
    }
    /// Model FLOPs by Megatron's formula, which its code applies to BERT as to GPT (training.py's
    /// num_floating_point_operations: the layers plus the output layer at every position, forward
    /// and backward), so the log's TFLOP/s compare with Megatron's. This BERT runs the output layer
    /// on the masked rows only (about 15%), so it does less work than the formula counts.
    public func flopsPerIteration(globalBatch: Int) -> Double {
        config.transformer.flopsPerIteration(globalBatch: globalBatch)
    }

    var headDescription: String {
        switch config.task {
        case .pretraining: return "binary head \(config.binaryHead ? "on" : "off")"
        case .classification(let c): return "classification head (\(c) classes)"
        case .multipleChoice(let n): return "multiple-choice head (\(n) options per question)"
        }
    }

    /// Megatron's BERT log keys: the masked-LM loss and the sentence-order loss (finetuning: the one loss).
    public var lossComponentNames: [(log: String, json: String)] {
        guard config.task == .pretraining else { return [] }
        return config.binaryHead ? [("lm loss", "mlm_loss"), ("sop loss", "sop_loss")] : [("lm loss", "mlm_loss")]
    }
    public func lossComponents(_ acts: BertActivations) -> [Double] {
        guard config.task == .pretraining else { return [] }
        let lm = acts.maskedRows > 0 ? acts.lmLossSum / Double(acts.maskedRows) : 0
        return config.binaryHead ? [lm, acts.pooledLossSum / Double(max(1, acts.pooledExamples))] : [lm]
    }

    /// Validation: both losses and both accuracies (arg-max prediction equals the target);
    /// finetuning: the task's accuracy.
    public var evaluationMetricNames: [(log: String, json: String)] {
        guard config.task == .pretraining else { return [("accuracy", "accuracy")] }
        return lossComponentNames
            + (config.binaryHead
                ? [("lm accuracy", "mlm_accuracy"), ("sop accuracy", "sop_accuracy")]
                : [("lm accuracy", "mlm_accuracy")])
    }
    public func evaluationWeight(_ acts: BertActivations) -> Double {
        config.task == .pretraining ? 1 : Double(acts.pooledExamples)
    }
    public func evaluationMetrics(_ acts: BertActivations) -> [Double] {
        let pooled = Double(acts.pooledCorrect) / Double(max(1, acts.pooledExamples))
        guard config.task == .pretraining else { return [pooled] }
        let lm = acts.maskedRows > 0 ? Double(acts.lmCorrect) / Double(acts.maskedRows) : 0
        return lossComponents(acts) + (config.binaryHead ? [lm, pooled] : [lm])
    }

    public func makeActivations() -> BertActivations {
        let core = TransformerActivations(
            config: config.transformer, microBatch: microBatch, threads: threads, tensorParallel: tensorParallel,
            layers: stage.layers.count, recompute: recompute, precision: precision)
        return BertActivations(
            core: core, hasHead: stage.hasHead, hidden: config.transformer.hiddenSize,
            maskedLM: config.task == .pretraining, outputs: config.task.pooledOutputs)
    }

    var stack: TransformerStack {
        TransformerStack(
            config: config.transformer, stage: stage, slots: slots.stack, weights: weights, grads: grads,
            tensorParallel: tensorParallel, vocab: vocab, precision: precision, timer: timer,
            wordRows: sparseWordGradient, roundsWordRows: roundsWordRows)
    }

    /// Forward of the micro-batch in `m`; on the last stage the heads and, when training, their
    /// backward down to ∂loss/∂finalNorm in `m.core.headGradient`. Returns the micro-batch's loss
    /// (masked-LM mean + SOP mean) on the last stage.
    @discardableResult
    public func forward(_ m: BertActivations, _ ctx: PassContext, gradScale: Float? = nil) throws -> Double? {
        let shared = stack, tokentypes = config.tokentypes > 0 ? UnsafePointer(m.tokentypes.base) : nil
        if stage.hasEmbedding { try shared.embed(m.core, ctx, tokentypes: tokentypes) }
        try shared.layersForward(m.core, ctx)
        guard stage.hasHead else { return nil }
        try shared.finalNorm(m.core)
        return try heads(m, ctx, gradScale: gradScale)
    }

    /// Backward after a training forward: the final norm from the heads' gradient, the layers, the embeddings.
    public func backward(_ m: BertActivations, _ ctx: PassContext) throws {
        let shared = stack
        let wordFinalEarly = shared.wordSlotFinalEarly
        if stage.hasHead {
            try shared.finalNormBackward(m.core, partial: false)
            onGradientsFinal?(
                slots.headSlots + (stage.hasEmbedding ? [] : slots.outputLayer.map { [$0] } ?? [])
                    + (wordFinalEarly.map { [$0] } ?? []))
        }
        try shared.layersBackward(m.core, ctx, final: onGradientsFinal)
        if stage.hasEmbedding {
            try shared.embedBackward(
                m.core, ctx, tokentypes: config.tokentypes > 0 ? UnsafePointer(m.tokentypes.base) : nil)
            let s = slots.stack
            onGradientsFinal?(
                [
                    wordFinalEarly == nil ? s.wordEmbeddings : nil, s.positionEmbeddings, s.tokentypeEmbeddings,
                    s.embeddingNormWeight, s.embeddingNormBias,
                ]
                .compactMap { $0 })
        }
    }
}

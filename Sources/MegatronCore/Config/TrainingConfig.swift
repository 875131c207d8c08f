// TrainingConfig.swift — every setting of `megatron train`, named as Megatron-LM's arguments in
// snake_case, with Megatron's defaults. A config file holds only what differs from these.
// The key table that maps names to these fields is in ConfigKeys.swift; checks in ConfigValidation.swift.
// Required keys (num_layers, hidden_size, num_attention_heads, seq_length, micro_batch_size,
// train_iters, lr) hold 0 until set; validation rejects a config where one is missing, so a
// validated config has every one of them. Choice keys are enums (ConfigChoices.swift).

import Distributed

public struct TrainingConfig: Sendable, Equatable {
    // Model
    public var modelType: ModelType = .gpt
    public var bertBinaryHead: Bool = true
    public var layernormArrangement: LayerNormArrangement = .preLN
    public var maskProb: Double = 0.15
    public var shortSeqProb: Double = 0.1
    public var numLayers: Int = 0
    public var hiddenSize: Int = 0
    public var ffnHiddenSize: Int? = nil
    /// Megatron's per-head width of queries, keys and values; only hidden_size / num_attention_heads is built.
    public var kvChannels: Int? = nil
    public var numAttentionHeads: Int = 0
    public var seqLength: Int = 0
    public var maxPositionEmbeddings: Int? = nil
    public var hiddenDropout: Double = 0.1
    public var attentionDropout: Double = 0.1
    public var initMethodStd: Double = 0.02
    public var normEpsilon: Double = 1e-5
    public var makeVocabSizeDivisibleBy: Int = 128
    // The GPT architecture options of Megatron's Llama-style models
    public var positionEmbeddingType: PositionEmbeddingType = .learnedAbsolute
    /// Megatron's add_position_embedding (false with --no-position-embedding): only rope runs without
    /// the learned table here (a GPT without any positions is not built).
    public var addPositionEmbedding: Bool = true
    public var rotaryBase: Int = 10000
    public var rotaryPercent: Double = 1.0
    public var useRopeScaling = false
    /// Megatron's window_size "left,right" (sliding-window attention), nil for full attention.
    public var windowSize: String? = nil
    public var ropeScalingFactor: Double = 8.0
    public var normalization: Normalization = .layerNorm
    public var swiglu: Bool = false
    /// Megatron's add_bias_linear (false with --disable-bias-linear): biases in QKV, Proj, FC1, FC2.
    public var addBiasLinear: Bool = true
    /// Megatron's add_qkv_bias: QKV's bias even without add_bias_linear (Qwen 2).
    public var addQKVBias: Bool = false
    /// Megatron's qk_layernorm: the model's norm over each head's query and key (OLMo 2, Qwen 3).
    public var qkLayernorm: Bool = false
    public var untieEmbeddingsAndOutputWeights: Bool = false
    /// Grouped-query attention: `numQueryGroups` key/value heads (Megatron's default 1), each shared
    /// by num_attention_heads / num_query_groups query heads.
    public var groupQueryAttention: Bool = false
    public var numQueryGroups: Int = 1

    /// The key/value heads: num_query_groups with group_query_attention, else one per head.
    public var queryGroups: Int { groupQueryAttention ? numQueryGroups : numAttentionHeads }
    /// Each head's width: kv_channels, or hidden_size / num_attention_heads.
    public var headWidth: Int { kvChannels ?? hiddenSize / max(1, numAttentionHeads) }
    // Parallelism
    public var tensorModelParallelSize: Int = 1
    public var pipelineModelParallelSize: Int = 1
    public var sequenceParallel: Bool = false
    public var numLayersPerVirtualPipelineStage: Int? = nil
    public var decoderFirstPipelineNumLayers: Int? = nil
    public var decoderLastPipelineNumLayers: Int? = nil
    public var accountForEmbeddingInPipelineSplit: Bool = false
    public var accountForLossInPipelineSplit: Bool = false
    public var pipelineAutoBalance: Bool = false
    public var pipelineBalanceCosts: PipelineBalanceCosts = .measured
    public var pipelineBalanceUnit: PipelineBalanceUnit = .layer
    public var pipelineSchedule: PipelineScheduleChoice = .oneFOneB
    public var scatterGatherTensorsInPipeline: Bool = true
    public var ddpBucketSize: Int? = nil
    public var ddpSparseEmbeddingEnding: SparseEndingChoice = .auto
    public var ddpReduction: DataParallelReduction = .auto
    public var communicationProgress: CommunicationProgressMode = .layerBoundaries
    public var idleWait: IdleWaitMode = .auto
    public var useDistributedOptimizer: Bool = false
    // Batch and schedule
    public var microBatchSize: Int = 0
    public var globalBatchSize: Int? = nil
    public var trainIters: Int = 0
    /// Sample-based training (Megatron's train_samples; train_iters is derived from it).
    public var trainSamples: Int? = nil
    public var lrDecaySamples: Int? = nil
    public var lrWarmupSamples: Int? = nil
    /// Megatron's rampup_batch_size: start batch size, increment, ramp-up samples (BatchRampup).
    public var rampupBatchSize: [String] = []
    /// Whether train_iters came from train_samples (ConfigLoader.inferDefaults).
    public internal(set) var derivedTrainIters = false
    public var lr: Double = 0
    public var minLR: Double = 0
    public var lrDecayStyle: LRDecayStyle = .linear
    public var lrWsdDecayStyle: WSDDecayStyle = .exponential
    public var lrWsdDecayIters: Int? = nil
    public var lrWsdDecaySamples: Int? = nil
    public var lrWarmupIters: Int = 0
    public var lrWarmupFraction: Double? = nil
    public var lrDecayIters: Int? = nil
    public var weightDecay: Double = 0.01
    public var adamBeta1: Double = 0.9
    public var adamBeta2: Double = 0.999
    public var adamEps: Double = 1e-8
    /// Megatron's `optimizer` and SGD's momentum.
    public var optimizer: OptimizerKind = .adam
    public var sgdMomentum: Double = 0.9
    public var layerWiseLrDecay: Double = 1
    public var clipGrad: Double = 1.0
    public var lossScale: Double? = nil
    public var bf16: Bool = false
    public var fp16: Bool = false
    public var initialLossScale: Double = 4_294_967_296
    public var minLossScale: Double = 1
    public var lossScaleWindow: Int = 1000
    public var hysteresis: Int = 2
    public var recomputeGranularity: RecomputeGranularity? = nil
    public var recomputeMethod: RecomputeMethod? = nil
    public var recomputeNumLayers: Int? = nil
    public var seed: Int = 1234
    // Checkpoints
    public var save: String? = nil
    public var load: String? = nil
    public var saveInterval: Int? = nil
    public var exitInterval: Int? = nil
    public var overrideOptParamScheduler: Bool = false
    public var finetune: Bool = false
    public var logParamsNorm: Bool = false
    public var logNumZerosInGrad: Bool = false
    public var noLoadOptim: Bool = false
    public var noSaveOptim: Bool = false
    public var useCheckpointOptParamScheduler: Bool = false
    public var exitDurationInMins: Double? = nil
    /// Megatron's exit_signal_handler: on `exitSignal`, finish the iteration, save and stop.
    public var exitSignalHandler: Bool = false
    public var exitSignal: String = "SIGTERM"
    /// Megatron's decoupled_lr / decoupled_min_lr: the word embedding (and its tied output copy)
    /// follows the schedule from these instead of lr / min_lr (decoupled_min_lr defaults to min_lr).
    public var decoupledLR: Double? = nil
    public var decoupledMinLR: Double? = nil
    // Evaluation and logging
    public var evalInterval: Int = 1000
    public var evalIters: Int = 100
    public var skipTrain: Bool = false
    public var logInterval: Int = 100
    public var metricsFile: String? = nil
    public var traceDir: String? = nil
    // TensorBoard (Megatron's keys; written by the last rank)
    public var tensorboardDir: String? = nil
    public var tensorboardLogInterval: Int = 1
    public var logValidationPplToTensorboard: Bool = false
    public var logTimersToTensorboard: Bool = false
    public var logMemoryToTensorboard: Bool = false
    public var logLossScaleToTensorboard: Bool = true
    public var logWorldSizeToTensorboard: Bool = false
    public var logThroughput: Bool = false
    // Data
    public var dataPath: [String] = []
    public var dataCachePath: String? = nil
    public var mockData: Bool = false
    /// Megatron's options for samples that pack documents ended by EOD (GPT; DocumentMasks).
    public var eodMaskLoss: Bool = false
    public var resetPositionIds: Bool = false
    public var resetAttentionMask: Bool = false
    public var calculatePerTokenLoss: Bool = false
    public var split: String = "969,30,1"
    /// Megatron's per-split data (instead of data_path and split): each a prefix or a weighted blend, read whole.
    public var trainDataPath: [String] = []
    public var validDataPath: [String] = []
    public var testDataPath: [String] = []
    public var tokenizerType: TokenizerType = .byteLevel
    public var vocabSize: Int? = nil
    public var vocabFile: String? = nil
    public var mergeFile: String? = nil
    /// The SentencePiece model of SentencePieceTokenizer, GPTSentencePieceTokenizer and Llama2Tokenizer,
    /// HuggingFaceTokenizer's tokenizer.json, TikTokenizer's rank file.
    public var tokenizerModel: String? = nil
    /// TikTokenizer: its pattern (required), its special tokens' count and the named ones among them.
    public var tiktokenPattern: TikTokenPattern? = nil
    public var tiktokenNumSpecialTokens: Int = TikTokenSettings.defaultNumSpecialTokens
    public var tokenizerSpecialTokens: [String] = []
    // Machine
    public var numThreads: Int = 0
    public var blasCoretype: String = "auto"
    /// Megatron's collective timeout: a rank waiting this long in one MPI operation ends the job.
    public var distributedTimeoutMinutes: Double = 10

    /// The keys a file or flag set (ConfigLoader), so a missing required key is named as missing.
    public internal(set) var providedKeys: Set<String> = []
    /// What the loader decided for keys the config left out, printed at start-up (not a config key).
    public internal(set) var startupNotes: [String] = []
    /// Megatron-LM arguments given and ignored (MegatronArguments.ignored), in order.
    public internal(set) var ignoredArguments: [String] = []

    public init() {}
}

extension TrainingConfig {
    /// Whether train_data_path, valid_data_path or test_data_path is given.
    public var usesSeparateDataPaths: Bool {
        !trainDataPath.isEmpty || !validDataPath.isEmpty || !testDataPath.isEmpty
    }

    /// The batch-size ramp-up, when rampup_batch_size is given and valid (ConfigValidation explains otherwise).
    public var rampup: BatchRampup? {
        guard !rampupBatchSize.isEmpty, let gbs = globalBatchSize else { return nil }
        return try? BatchRampup(values: rampupBatchSize, globalBatchSize: gbs)
    }

    /// The uneven-split keys as PipelineLayout takes them.
    public var pipelineSplit: PipelineSplit {
        var s = PipelineSplit()
        s.firstStageLayers = decoderFirstPipelineNumLayers
        s.lastStageLayers = decoderLastPipelineNumLayers
        s.accountForEmbedding = accountForEmbeddingInPipelineSplit
        s.accountForLoss = accountForLossInPipelineSplit
        s.autoBalance = pipelineAutoBalance
        s.sublayers = pipelineBalanceUnit == .sublayer
        return s
    }

    /// The command-line flags of the split keys.
    public static let pipelineSplitFlags: Set<String> = [
        "--num-layers-per-virtual-pipeline-stage", "--decoder-first-pipeline-num-layers",
        "--decoder-last-pipeline-num-layers", "--account-for-embedding-in-pipeline-split",
        "--account-for-loss-in-pipeline-split", "--pipeline-auto-balance", "--pipeline-balance-costs",
        "--pipeline-balance-unit",
    ]

    /// Forgets the pipeline layout of the run that wrote a stored config (evaluation and generation
    /// choose their own grid; a checkpoint loads under any split).
    public mutating func resetPipelineSplit() {
        numLayersPerVirtualPipelineStage = nil
        decoderFirstPipelineNumLayers = nil; decoderLastPipelineNumLayers = nil
        accountForEmbeddingInPipelineSplit = false; accountForLossInPipelineSplit = false
        pipelineAutoBalance = false
        pipelineBalanceUnit = .layer
    }
}

// TrainingConfig.swift — every setting of `megatron train`, named as Megatron-LM's arguments in
// snake_case, with Megatron's defaults. A config file holds only what differs from these.
// The key table that maps names to these fields is in ConfigKeys.swift; checks in ConfigValidation.swift.

public struct TrainingConfig: Sendable, Equatable {
    // Model
    public var numLayers: Int? = nil
    public var hiddenSize: Int? = nil
    public var ffnHiddenSize: Int? = nil
    public var numAttentionHeads: Int? = nil
    public var seqLength: Int? = nil
    public var maxPositionEmbeddings: Int? = nil
    public var hiddenDropout: Double = 0.1
    public var attentionDropout: Double = 0.1
    public var initMethodStd: Double = 0.02
    public var normEpsilon: Double = 1e-5
    public var makeVocabSizeDivisibleBy: Int = 128
    // Parallelism
    public var tensorModelParallelSize: Int = 1
    public var pipelineModelParallelSize: Int = 1
    public var sequenceParallel: Bool = false
    public var numLayersPerVirtualPipelineStage: Int? = nil
    public var scatterGatherTensorsInPipeline: Bool = true
    public var ddpBucketSize: Int? = nil
    public var useDistributedOptimizer: Bool = false
    // Batch and schedule
    public var microBatchSize: Int? = nil
    public var globalBatchSize: Int? = nil
    public var trainIters: Int? = nil
    public var lr: Double? = nil
    public var minLR: Double = 0
    public var lrDecayStyle: String = "linear"
    public var lrWarmupIters: Int = 0
    public var lrWarmupFraction: Double? = nil
    public var lrDecayIters: Int? = nil
    public var weightDecay: Double = 0.01
    public var adamBeta1: Double = 0.9
    public var adamBeta2: Double = 0.999
    public var adamEps: Double = 1e-8
    public var clipGrad: Double = 1.0
    public var lossScale: Double? = nil
    public var bf16: Bool = false
    public var fp16: Bool = false
    public var initialLossScale: Double = 4_294_967_296
    public var minLossScale: Double = 1
    public var lossScaleWindow: Int = 1000
    public var hysteresis: Int = 2
    public var recomputeGranularity: String? = nil
    public var recomputeMethod: String? = nil
    public var recomputeNumLayers: Int? = nil
    public var seed: Int = 1234
    // Checkpoints
    public var save: String? = nil
    public var load: String? = nil
    public var saveInterval: Int? = nil
    // Evaluation and logging
    public var evalInterval: Int = 1000
    public var evalIters: Int = 100
    public var skipTrain: Bool = false
    public var logInterval: Int = 100
    public var metricsFile: String? = nil
    public var traceDir: String? = nil
    // Data
    public var dataPath: [String] = []
    public var dataCachePath: String? = nil
    public var mockData: Bool = false
    public var split: String = "969,30,1"
    public var tokenizerType: String = "ByteLevelTokenizer"
    public var vocabSize: Int? = nil
    public var vocabFile: String? = nil
    public var mergeFile: String? = nil
    // Machine
    public var numThreads: Int = 0
    public var blasCoretype: String = "auto"

    public init() {}
}

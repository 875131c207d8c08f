// ModelArchitecture.swift — which model a config describes (GPT or BERT) and its sizes, for code
// that handles a model's parameters without running it: checkpoint conversion, Hugging Face
// import/export and the size attributes every rank file records.
public enum ModelArchitecture: Sendable, Equatable {
    case gpt(GPTConfig)
    case bert(BertConfig)

    /// The model of a config (`model_type`, sizes, arrangement) over a vocabulary of `vocabSize`.
    public init(training c: TrainingConfig, vocabSize: Int) {
        switch c.modelType {
        case .gpt: self = .gpt(GPTConfig(training: c, vocabSize: vocabSize))
        case .bert: self = .bert(BertConfig(training: c, vocabSize: vocabSize))
        }
    }

    /// The transformer's sizes (shared by both models).
    public var transformer: GPTConfig {
        switch self {
        case .gpt(let g): return g
        case .bert(let b): return b.transformer
        }
    }

    /// The size attributes of a rank file, checked when a checkpoint is read.
    public var shapeAttributes: [(String, Int)] {
        switch self {
        case .gpt(let g): return ModelCheckpoint.shapeAttributes(g)
        case .bert(let b):
            return ModelCheckpoint.shapeAttributes(b.transformer) + [("bert_binary_head", b.binaryHead ? 1 : 0)]
        }
    }

    /// The parameter table of one chunk (`stage`, whole model when nil) for tensor rank `tensorRank` of `tensorSize`.
    public func declare(tensorRank: Int = 0, tensorSize: Int = 1, stage: StagePlan? = nil) -> ParameterTable {
        switch self {
        case .gpt(let g):
            return GPTSlots.declare(config: g, tensorRank: tensorRank, tensorSize: tensorSize, stage: stage).0
        case .bert(let b):
            return BertSlots.declare(config: b, tensorRank: tensorRank, tensorSize: tensorSize, stage: stage).0
        }
    }

    /// The same model with the vocabulary padded for tensor size `t` (conversion to another grid).
    public func padded(for c: TrainingConfig) -> ModelArchitecture {
        ModelArchitecture(training: c, vocabSize: transformer.vocabSize)
    }
}

extension BertConfig {
    /// The BERT a validated config with `model_type` BERT describes.
    public init(training c: TrainingConfig, vocabSize: Int) {
        var transformer = GPTConfig(training: c, vocabSize: vocabSize)
        transformer.postLayerNorm = c.layernormArrangement == .postLN
        self.init(transformer: transformer, binaryHead: c.bertBinaryHead)
    }
}

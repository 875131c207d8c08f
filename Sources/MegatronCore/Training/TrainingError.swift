// TrainingError.swift — failures during training, each saying what happened and what to do.

public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(iteration: Int, lr: Double, lastCheckpoint: String?)
    case nonFiniteGradient(iteration: Int, lr: Double, lastCheckpoint: String?)
    case metricsFile(path: String)
    case tensorboardDirectory(path: String)
    case checkpointMismatch(path: String, key: String, checkpoint: String, config: String)
    case targetOutOfVocabulary(id: Int, vocabSize: Int)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let it, let lr, let ck):
            return
                "lm loss is not finite at iteration \(it) (learning rate \(lr)): training diverged. Lower `lr` or "
                + "keep `clip_grad` > 0, and resume from \(ck ?? "the start (no checkpoint was saved)")"
        case .nonFiniteGradient(let it, let lr, let ck):
            return
                "the gradient norm is not finite at iteration \(it) (learning rate \(lr)): training diverged. Lower "
                + "`lr`, and resume from \(ck ?? "the start (no checkpoint was saved)")"
        case .metricsFile(let p):
            return "cannot write the metrics file '\(p)': check the directory exists and is writable"
        case .tensorboardDirectory(let p):
            return "cannot write an event file in '\(p)' (`tensorboard_dir`): check the path is a writable directory"
        case .targetOutOfVocabulary(let id, let v):
            return
                "a target token id \(id) is outside the vocabulary (\(v) ids): the data was tokenized with another "
                + "tokenizer than the run's tokenizer_type / vocab_file — re-run preprocess-data with the run's tokenizer"
        case .checkpointMismatch(let p, let k, let c, let cfg):
            return
                "checkpoint '\(p)' was written with \(k) = \(c) but the config has \(cfg): load it with the same "
                + "model settings"
        }
    }
}

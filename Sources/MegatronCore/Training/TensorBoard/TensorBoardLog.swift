// TensorBoardLog.swift — Megatron's TensorBoard scalars (training.py's training_log and
// evaluate_and_print_results), with its tags: every `tensorboard_log_interval` iterations
// `learning-rate`, `batch-size`, each loss (`lm loss`, for BERT also `sop loss`), `loss-scale`,
// `grad-norm`, `num-zeros`, `params-norm`, optionally `world-size`, `throughput` (TFLOP/s per rank),
// `iteration-time` (s) and memory — each also as "<tag> vs samples" at the consumed-sample count —
// and `samples vs steps`; after each validation `<loss> validation` (and `… validation ppl`), also
// vs samples. CUDA's allocator figures have no CPU meaning; memory is written as
// `mem-max-rss-bytes` (peak resident memory) and `mem-activation-bytes` (planned activations).
import Foundation

public final class TensorBoardLog {
    let writer: EventFileWriter
    let config: TrainingConfig
    let worldSize: Int
    public var path: String { writer.path }

    public init(config: TrainingConfig, directory: String, worldSize: Int) throws {
        writer = try EventFileWriter(directory: directory)
        self.config = config
        self.worldSize = worldSize
    }

    /// The training scalars of one iteration (when it falls on the interval); `lossNames` are the
    /// model's loss tags in the order of `m.lossComponents` (empty: the one `lm loss`).
    public func training(_ m: IterationMetrics, lossNames: [String]) throws {
        guard m.iteration % config.tensorboardLogInterval == 0 else { return }
        var pairs: [(String, Double)] = [("learning-rate", m.lr), ("batch-size", Double(m.globalBatchSize))]
        if lossNames.isEmpty {
            pairs.append(("lm loss", m.lmLoss))
        } else {
            pairs += zip(lossNames, m.lossComponents).map { ($0.0, $0.1.value) }
        }
        if config.logLossScaleToTensorboard { pairs.append(("loss-scale", m.lossScale)) }
        if config.logWorldSizeToTensorboard { pairs.append(("world-size", Double(worldSize))) }
        if let g = m.gradNorm { pairs.append(("grad-norm", g)) }
        if let z = m.zeroGradients { pairs.append(("num-zeros", Double(z))) }
        if let p = m.paramsNorm { pairs.append(("params-norm", p)) }
        if config.logThroughput { pairs.append(("throughput", m.tflops)) }
        var once: [(String, Float)] = [("samples vs steps", Float(m.consumedSamples))]
        if config.logTimersToTensorboard { once.append(("iteration-time", Float(m.stepMs / 1000))) }
        if config.logMemoryToTensorboard {
            once.append(("mem-max-rss-bytes", Float(m.peakResidentMB * 1_048_576)))
            once.append(("mem-activation-bytes", Float(m.activationBytes)))
        }
        try write(pairs, iteration: m.iteration, samples: m.consumedSamples, extra: once)
    }

    /// The validation scalars: each (tag, value) as "<tag> validation" (losses also as perplexity
    /// when `log_validation_ppl_to_tensorboard`); `losses` is how many leading entries are losses.
    public func validation(_ metrics: [(tag: String, value: Double)], losses: Int, iteration: Int, samples: Int) throws
    {
        var pairs: [(String, Double)] = []
        for (i, (tag, value)) in metrics.enumerated() {
            pairs.append(("\(tag) validation", value))
            if i < losses && config.logValidationPplToTensorboard {
                pairs.append(("\(tag) validation ppl", Foundation.exp(min(20, value))))
            }
        }
        try write(pairs, iteration: iteration, samples: samples)
    }

    /// Each pair at the iteration and as "<tag> vs samples" at the sample count (Megatron's two views).
    private func write(_ pairs: [(String, Double)], iteration: Int, samples: Int, extra: [(String, Float)] = []) throws
    {
        try writer.add(step: iteration, scalars: pairs.map { ($0.0, Float($0.1)) } + extra)
        try writer.add(step: samples, scalars: pairs.map { ($0.0 + " vs samples", Float($0.1)) })
    }
}

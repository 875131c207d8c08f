// ModelCheckpoint.swift — what a checkpoint holds and how the trainer writes and reads it.
// One HDF5 file per model-parallel rank (here the single rank: mp_rank_00_000.h5):
//   model/<name>                      parameters, attrs global_shape / global_offset
//   optimizer/exp_avg/<name>, optimizer/exp_avg_sq/<name>   Adam moments, same attrs
//   root attributes: format, format_version, iteration, consumed_samples, optimizer step,
//   opt_param_scheduler_* (LR schedule), rng_seed (all randomness is counter-based Philox keyed by
//   seed and step, so the seed is the whole generator state), model sizes and the config as JSON.
import Checkpoint
import Foundation
import Tensor

public struct TrainingProgress: Sendable, Equatable {
    public var iteration = 0
    public var consumedSamples = 0
    public init() {}
}

public enum ModelCheckpoint {
    public static let format = "megatron-swift"
    public static let formatVersion = 1

    /// Model sizes stored as attributes and checked on load.
    static func shapeAttributes(_ c: GPTConfig) -> [(String, Int)] {
        [("num_layers", c.numLayers), ("hidden_size", c.hiddenSize), ("num_attention_heads", c.numAttentionHeads),
         ("ffn_hidden_size", c.ffnHiddenSize), ("max_position_embeddings", c.maxPositionEmbeddings),
         ("vocab_size", c.vocabSize), ("padded_vocab_size", c.paddedVocabSize)]
    }

    /// Writes the checkpoint of `progress.iteration` atomically into `directory`.
    public static func save(to directory: CheckpointDirectory, model: GPTModel, optimizer: AdamW, schedule: LRSchedule,
                            progress: TrainingProgress, configJSON: String) throws {
        let it = progress.iteration
        let tmp = try directory.beginSave(iteration: it)
        let path = (tmp as NSString).appendingPathComponent(CheckpointDirectory.rankFileName(tensorRank: 0, pipelineRank: 0))
        do {
            // Scope the file so it is closed before the directory is renamed.
            try {
                let f = try HDF5File.create(path)
                try f.setAttribute("format", string: format)
                try f.setAttribute("format_version", int: formatVersion)
                try f.setAttribute("iteration", int: it)
                try f.setAttribute("consumed_samples", int: progress.consumedSamples)
                try f.setAttribute("optimizer_step", int: optimizer.step)
                try f.setAttribute("opt_param_scheduler_num_steps", int: schedule.numSteps)
                try f.setAttribute("opt_param_scheduler_max_lr", double: schedule.maxLR)
                try f.setAttribute("opt_param_scheduler_min_lr", double: schedule.minLR)
                try f.setAttribute("opt_param_scheduler_warmup_steps", int: schedule.warmupSteps)
                try f.setAttribute("opt_param_scheduler_decay_steps", int: schedule.decaySteps)
                try f.setAttribute("opt_param_scheduler_decay_style", string: schedule.style.rawValue)
                try f.setAttribute("rng_seed", int: model.config.seed)
                try f.setAttribute("tensor_model_parallel_size", int: 1)
                try f.setAttribute("pipeline_model_parallel_size", int: 1)
                for (k, v) in shapeAttributes(model.config) { try f.setAttribute(k, int: v) }
                try f.setAttribute("config_json", string: configJSON)
                for (slot, spec) in model.table.specs.enumerated() {
                    let attrs = ["global_shape": spec.shape, "global_offset": spec.shape.map { _ in 0 }]
                    try f.writeFloats("model/" + spec.name, shape: spec.shape, data: model.params.pointer(slot), attributes: attrs)
                    try f.writeFloats("optimizer/exp_avg/" + spec.name, shape: spec.shape, data: optimizer.expAvg.pointer(slot), attributes: attrs)
                    try f.writeFloats("optimizer/exp_avg_sq/" + spec.name, shape: spec.shape, data: optimizer.expAvgSq.pointer(slot), attributes: attrs)
                }
                try f.flush()
            }()
            try directory.commitSave(iteration: it)
        } catch {
            directory.abandonSave(iteration: it)
            if let e = error as? CheckpointError { throw e }
            throw CheckpointError.writeFailed(path: path, reason: "\(error)")
        }
    }

    /// Reads the latest checkpoint of `directory` into the model, optimizer and schedule.
    public static func load(from directory: CheckpointDirectory, model: GPTModel, optimizer: AdamW,
                            schedule: inout LRSchedule) throws -> TrainingProgress {
        let it = try directory.latestIteration()
        let path = (directory.iterationPath(it) as NSString)
            .appendingPathComponent(CheckpointDirectory.rankFileName(tensorRank: 0, pipelineRank: 0))
        let f = try HDF5File.openReadOnly(path)
        guard (try? f.stringAttribute("format")) == format else {
            throw CheckpointError.incompatible(path: path, reason: "it is not a \(format) checkpoint")
        }
        let version = try f.intAttribute("format_version")
        guard version == formatVersion else {
            throw CheckpointError.incompatible(path: path, reason: "format_version \(version); this build reads version \(formatVersion)")
        }
        for (k, v) in shapeAttributes(model.config) {
            let stored = try f.intAttribute(k)
            if stored != v { throw TrainingError.checkpointMismatch(path: path, key: k, checkpoint: "\(stored)", config: "\(v)") }
        }
        for (slot, spec) in model.table.specs.enumerated() {
            try f.readFloats("model/" + spec.name, shape: spec.shape, into: model.params.pointer(slot))
            try f.readFloats("optimizer/exp_avg/" + spec.name, shape: spec.shape, into: optimizer.expAvg.pointer(slot))
            try f.readFloats("optimizer/exp_avg_sq/" + spec.name, shape: spec.shape, into: optimizer.expAvgSq.pointer(slot))
        }
        optimizer.step = try f.intAttribute("optimizer_step")
        schedule.numSteps = try f.intAttribute("opt_param_scheduler_num_steps")
        var progress = TrainingProgress()
        progress.iteration = try f.intAttribute("iteration")
        progress.consumedSamples = try f.intAttribute("consumed_samples")
        return progress
    }
}

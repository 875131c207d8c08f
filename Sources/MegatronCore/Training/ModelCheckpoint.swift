// ModelCheckpoint.swift — what a checkpoint holds and how the trainer writes and reads it.
// One HDF5 file per model-parallel rank, mp_rank_TT_PPP.h5 (tensor rank, pipeline rank), holding
// that rank's slices:
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

    /// Writes the checkpoint of `progress.iteration` atomically into `directory`: world rank 0
    /// prepares the temporary directory, every model-parallel rank of data-parallel rank 0 writes its
    /// shard file, all ranks agree on success, then rank 0 renames the directory and moves the pointer.
    public static func save(to directory: CheckpointDirectory, chunks: [GPTModel], optimizers: [AdamW], schedule: LRSchedule,
                            progress: TrainingProgress, configJSON: String, parallel: ParallelState) throws {
        let it = progress.iteration, world = parallel.world
        var failure: Error? = nil
        var tmp = directory.iterationPath(it) + ".tmp"
        if world.rank == 0 {
            do { tmp = try directory.beginSave(iteration: it) } catch { failure = error }
        }
        if try world.allReduceMax(failure == nil ? 0 : 1) != 0 {
            throw failure ?? CheckpointError.writeFailed(path: tmp, reason: "rank 0 could not create the checkpoint directory")
        }
        let path = (tmp as NSString).appendingPathComponent(
            CheckpointDirectory.rankFileName(tensorRank: parallel.tensorRank, pipelineRank: parallel.pipelineRank))
        if parallel.dataRank == 0 {
            do {
                try writeShard(path: path, chunks: chunks, optimizers: optimizers, schedule: schedule, progress: progress,
                               configJSON: configJSON, parallel: parallel)
            } catch { failure = error }
        }
        let failedRank = try world.allReduceMin(failure == nil ? Int.max : world.rank)
        if failedRank == Int.max && world.rank == 0 {
            do { try directory.commitSave(iteration: it) } catch { failure = error }
        }
        let commitFailed = try world.allReduceMax(failure == nil ? 0 : 1) != 0
        if failedRank != Int.max || commitFailed {
            if world.rank == 0 { directory.abandonSave(iteration: it) }
            if let e = failure as? CheckpointError { throw e }
            if let failure { throw CheckpointError.writeFailed(path: path, reason: "\(failure)") }
            throw CheckpointError.writeFailed(path: tmp, reason: "rank \(failedRank) could not write its part")
        }
    }

    static func writeShard(path: String, chunks: [GPTModel], optimizers: [AdamW], schedule: LRSchedule,
                           progress: TrainingProgress, configJSON: String, parallel: ParallelState) throws {
        let model = chunks[0], optimizer = optimizers[0]
        let f = try HDF5File.create(path)
        try f.setAttribute("format", string: format)
        try f.setAttribute("format_version", int: formatVersion)
        try f.setAttribute("iteration", int: progress.iteration)
        try f.setAttribute("consumed_samples", int: progress.consumedSamples)
        try f.setAttribute("optimizer_step", int: optimizer.step)
        try f.setAttribute("opt_param_scheduler_num_steps", int: schedule.numSteps)
        try f.setAttribute("opt_param_scheduler_max_lr", double: schedule.maxLR)
        try f.setAttribute("opt_param_scheduler_min_lr", double: schedule.minLR)
        try f.setAttribute("opt_param_scheduler_warmup_steps", int: schedule.warmupSteps)
        try f.setAttribute("opt_param_scheduler_decay_steps", int: schedule.decaySteps)
        try f.setAttribute("opt_param_scheduler_decay_style", string: schedule.style.rawValue)
        try f.setAttribute("rng_seed", int: model.config.seed)
        try f.setAttribute("tensor_model_parallel_size", int: parallel.layout.tensor)
        try f.setAttribute("pipeline_model_parallel_size", int: parallel.layout.pipeline)
        try f.setAttribute("tensor_model_parallel_rank", int: parallel.tensorRank)
        try f.setAttribute("pipeline_model_parallel_rank", int: parallel.pipelineRank)
        for (k, v) in shapeAttributes(model.config) { try f.setAttribute(k, int: v) }
        try f.setAttribute("config_json", string: configJSON)
        for (chunk, opt) in zip(chunks, optimizers) {
            for (slot, spec) in chunk.table.specs.enumerated() {
                let attrs = ["global_shape": spec.shape, "global_offset": spec.globalOffset]
                try f.writeFloats("model/" + spec.name, shape: spec.localShape, data: chunk.params.pointer(slot), attributes: attrs)
                try f.writeFloats("optimizer/exp_avg/" + spec.name, shape: spec.localShape, data: opt.expAvg.pointer(slot), attributes: attrs)
                try f.writeFloats("optimizer/exp_avg_sq/" + spec.name, shape: spec.localShape, data: opt.expAvgSq.pointer(slot), attributes: attrs)
            }
        }
        try f.flush()
    }

    /// Reads this rank's shard of the latest checkpoint of `directory` into the model, optimizer and
    /// schedule. The checkpoint must come from the same tensor/pipeline sizes.
    public static func load(from directory: CheckpointDirectory, chunks: [GPTModel], optimizers: [AdamW],
                            schedule: inout LRSchedule, parallel: ParallelState) throws -> TrainingProgress {
        let model = chunks[0]
        let it = try directory.latestIteration()
        let path = (directory.iterationPath(it) as NSString).appendingPathComponent(
            CheckpointDirectory.rankFileName(tensorRank: parallel.tensorRank, pipelineRank: parallel.pipelineRank))
        guard FileManager.default.fileExists(atPath: path) else {
            throw CheckpointError.incompatible(path: path, reason: "this rank's file is missing; was the checkpoint written with tensor_model_parallel_size \(parallel.layout.tensor) and pipeline_model_parallel_size \(parallel.layout.pipeline)?")
        }
        let f = try HDF5File.openReadOnly(path)
        guard (try? f.stringAttribute("format")) == format else {
            throw CheckpointError.incompatible(path: path, reason: "it is not a \(format) checkpoint")
        }
        let version = try f.intAttribute("format_version")
        guard version == formatVersion else {
            throw CheckpointError.incompatible(path: path, reason: "format_version \(version); this build reads version \(formatVersion)")
        }
        for (key, mine) in [("tensor_model_parallel_size", parallel.layout.tensor), ("pipeline_model_parallel_size", parallel.layout.pipeline)] {
            let stored = (try? f.intAttribute(key)) ?? 1
            if stored != mine {
                throw CheckpointError.incompatible(path: path, reason: "it was written with \(key) \(stored); load it with --\(key.replacingOccurrences(of: "_", with: "-")) \(stored) (loading on a different grid is not supported yet)")
            }
        }
        for (k, v) in shapeAttributes(model.config) {
            let stored = try f.intAttribute(k)
            if stored != v { throw TrainingError.checkpointMismatch(path: path, key: k, checkpoint: "\(stored)", config: "\(v)") }
        }
        for (chunk, opt) in zip(chunks, optimizers) {
            for (slot, spec) in chunk.table.specs.enumerated() {
                try f.readFloats("model/" + spec.name, shape: spec.localShape, into: chunk.params.pointer(slot))
                try f.readFloats("optimizer/exp_avg/" + spec.name, shape: spec.localShape, into: opt.expAvg.pointer(slot))
                try f.readFloats("optimizer/exp_avg_sq/" + spec.name, shape: spec.localShape, into: opt.expAvgSq.pointer(slot))
            }
            opt.step = try f.intAttribute("optimizer_step")
        }
        schedule.numSteps = try f.intAttribute("opt_param_scheduler_num_steps")
        var progress = TrainingProgress()
        progress.iteration = try f.intAttribute("iteration")
        progress.consumedSamples = try f.intAttribute("consumed_samples")
        return progress
    }
}

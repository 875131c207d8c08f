// ModelCheckpoint.swift — what a checkpoint holds and how the trainer writes and reads it.
// One HDF5 file per model-parallel rank, mp_rank_TT_PPP.h5 (tensor rank, pipeline rank), holding
// that rank's slices:
//   model/<name>                      parameters, attrs global_shape / global_offset
//   optimizer/<state>/<name>          the optimizer's state, same attrs: exp_avg and exp_avg_sq
//                                     (Adam's moments) or momentum_buffer (SGD), as root attribute
//                                     `optimizer` (adam, sgd; absent in older files: adam) says
// In bf16/fp16 training (root attribute `precision`) model/<name> of a matrix holds the 16-bit model
// weight as a real HDF5 16-bit float type (bfloat16 or IEEE half: h5py reads floats), and
//   optimizer/fp32_from_fp16_params/<name>   its fp32 main parameter (Megatron's key)
// which every load prefers, so a checkpoint loads into any precision without losing a bit.
//   root attributes: format, format_version, iteration, consumed_samples, optimizer step,
//   opt_param_scheduler_* (LR schedule), grad_scaler_* (loss scaler, when there is one), rng_seed
//   (all randomness is counter-based Philox keyed by seed and step, so the seed is the whole
//   generator state), model sizes and the config as JSON.
// With the distributed optimizer the state is not in mp_rank files; every (tp, pp, dp) rank
// writes distrib_optim_TT_PPP_DDD.h5 with its shard: for each parameter it owns elements of,
//   <state>/<name>                      1-D runs of the rank's local tensor, attrs flat_offset (where
//                                       the run starts in it), local_shape, global_shape, global_offset
// Loading gathers the runs back into local tensors, then proceeds as for mp_rank files — so either
// form loads into either form, on any grid.
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

    /// GPT's model sizes, stored as attributes and checked on load.
    public static func shapeAttributes(_ c: GPTConfig) -> [(String, Int)] {
        [
            ("num_layers", c.numLayers), ("hidden_size", c.hiddenSize), ("num_attention_heads", c.numAttentionHeads),
            ("ffn_hidden_size", c.ffnHiddenSize), ("max_position_embeddings", c.maxPositionEmbeddings),
            ("vocab_size", c.vocabSize), ("padded_vocab_size", c.paddedVocabSize),
        ]
    }

    /// Writes the checkpoint of `progress.iteration` atomically into `directory`: world rank 0
    /// prepares the temporary directory, every model-parallel rank of data-parallel rank 0 writes its
    /// shard file, all ranks agree on success, then rank 0 renames the directory and moves the pointer.
    public static func save(
        to directory: CheckpointDirectory, chunks: [any ParameterChunk], optimizer: TrainingOptimizer,
        lossScaler: LossScaler?,
        schedule: LRSchedule, progress: TrainingProgress, optimizerState: Bool = true, configJSON: String,
        parallel: ParallelState
    ) throws {
        let it = progress.iteration, world = parallel.world
        var failure: Error? = nil
        var tmp = directory.iterationPath(it) + ".tmp"
        if world.rank == 0 {
            do { tmp = try directory.beginSave(iteration: it) } catch { failure = error }
        }
        if try world.allReduceMax(failure == nil ? 0 : 1) != 0 {
            throw failure
                ?? CheckpointError.writeFailed(path: tmp, reason: "rank 0 could not create the checkpoint directory")
        }
        let path = (tmp as NSString).appendingPathComponent(
            CheckpointDirectory.rankFileName(tensorRank: parallel.tensorRank, pipelineRank: parallel.pipelineRank))
        if parallel.dataRank == 0 {
            do {
                try writeShard(
                    path: path, chunks: chunks, optimizer: optimizer, lossScaler: lossScaler, schedule: schedule,
                    progress: progress, optimizerState: optimizerState, configJSON: configJSON, parallel: parallel)
            } catch { failure = error }
        }
        if failure == nil, optimizerState {
            do { try optimizer.writeShard(into: tmp, parallel: parallel) } catch { failure = error }
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

    static func writeShard(
        path: String, chunks: [any ParameterChunk], optimizer: TrainingOptimizer, lossScaler: LossScaler?,
        schedule: LRSchedule,
        progress: TrainingProgress, optimizerState: Bool = true, configJSON: String, parallel: ParallelState
    ) throws {
        var state = RankFileState(
            sizes: chunks[0].modelSizes, seed: chunks[0].seed, configJSON: configJSON, iteration: progress.iteration,
            consumedSamples: progress.consumedSamples, optimizerStep: optimizer.step, schedule: schedule,
            tensorSize: parallel.layout.tensor, pipelineSize: parallel.layout.pipeline,
            tensorRank: parallel.tensorRank, pipelineRank: parallel.pipelineRank)
        state.distributedOptimizer = optimizer.isSharded
        state.dataParallelSize = parallel.layout.data
        state.lossScaler = lossScaler
        state.precision = chunks[0].precision
        state.optimizer = optimizer.hyper.kind
        let held = optimizerState ? optimizer.chunkState : nil
        try writeRankFile(
            path: path, state: state, chunks: chunks.indices.map { (chunks[$0].params, held?[$0] ?? []) })
    }

    /// What a rank file records besides the tensors.
    public struct RankFileState {
        /// The model's sizes (ParameterChunk.modelSizes) and its seed.
        public var sizes: [(String, Int)]
        public var seed: Int
        public var configJSON: String
        public var iteration: Int, consumedSamples: Int, optimizerStep: Int
        public var schedule: LRSchedule
        public var tensorSize: Int, pipelineSize: Int, tensorRank: Int, pipelineRank: Int
        public var distributedOptimizer = false
        public var dataParallelSize = 1
        public var lossScaler: LossScaler? = nil
        /// The model weights' format; reduced precision also stores the fp32 main parameters.
        public var precision: Precision = .fp32
        /// The optimizer whose state the file holds (its state names).
        public var optimizer: OptimizerKind = .adam
    }

    /// Where reduced-precision checkpoints keep the fp32 main parameters of 16-bit weights.
    static let mainParameterGroup = "optimizer/fp32_from_fp16_params/"

    /// Writes one mp_rank file: every chunk's parameters (and optimizer state, when given: arenas in
    /// `state.optimizer.stateNames` order) with their global shape and offset, and `state` as root
    /// attributes.
    static func writeRankFile(
        path: String, state: RankFileState, chunks: [(params: ParameterArena, optimizerState: [ParameterArena])]
    ) throws {
        let f = try HDF5File.create(path)
        let schedule = state.schedule
        try f.setAttribute("format", string: format)
        try f.setAttribute("format_version", int: formatVersion)
        try f.setAttribute("iteration", int: state.iteration)
        try f.setAttribute("consumed_samples", int: state.consumedSamples)
        try f.setAttribute("optimizer_step", int: state.optimizerStep)
        try f.setAttribute("opt_param_scheduler_num_steps", int: schedule.numSteps)
        try f.setAttribute("opt_param_scheduler_max_lr", double: schedule.maxLR)
        try f.setAttribute("opt_param_scheduler_min_lr", double: schedule.minLR)
        try f.setAttribute("opt_param_scheduler_warmup_steps", int: schedule.warmupSteps)
        try f.setAttribute("opt_param_scheduler_decay_steps", int: schedule.decaySteps)
        try f.setAttribute("opt_param_scheduler_decay_style", string: schedule.style.rawValue)
        try f.setAttribute("use_distributed_optimizer", int: state.distributedOptimizer ? 1 : 0)
        try f.setAttribute("data_parallel_size", int: state.dataParallelSize)
        if let lossScaler = state.lossScaler {
            try f.setAttribute("grad_scaler_scale", double: Double(lossScaler.scale))
            try f.setAttribute("grad_scaler_growth_tracker", int: lossScaler.growthTracker)
            try f.setAttribute("grad_scaler_hysteresis_tracker", int: lossScaler.hysteresisTracker)
        }
        try f.setAttribute("rng_seed", int: state.seed)
        try f.setAttribute("tensor_model_parallel_size", int: state.tensorSize)
        try f.setAttribute("pipeline_model_parallel_size", int: state.pipelineSize)
        try f.setAttribute("tensor_model_parallel_rank", int: state.tensorRank)
        try f.setAttribute("pipeline_model_parallel_rank", int: state.pipelineRank)
        for (k, v) in state.sizes { try f.setAttribute(k, int: v) }
        try f.setAttribute("config_json", string: state.configJSON)
        try f.setAttribute("precision", string: state.precision.rawValue)
        try f.setAttribute("optimizer", string: state.optimizer.rawValue)
        for (params, optimizerState) in chunks {
            for (slot, spec) in params.table.specs.enumerated() {
                let attrs = ["global_shape": spec.shape, "global_offset": spec.globalOffset]
                if state.precision.isReduced && spec.shape.count > 1 {
                    let bits = halfBits(params.pointer(slot), count: spec.count, precision: state.precision)
                    try bits.withUnsafeBufferPointer {
                        try f.writeHalfFloats(
                            "model/" + spec.name, shape: spec.localShape, bits: $0.baseAddress!,
                            format: state.precision == .bf16 ? .bfloat16 : .float16, attributes: attrs)
                    }
                    try f.writeFloats(
                        mainParameterGroup + spec.name, shape: spec.localShape, data: params.pointer(slot),
                        attributes: attrs)
                } else {
                    try f.writeFloats(
                        "model/" + spec.name, shape: spec.localShape, data: params.pointer(slot), attributes: attrs)
                }
                for (name, arena) in zip(state.optimizer.stateNames, optimizerState) {
                    try f.writeFloats(
                        "optimizer/\(name)/" + spec.name, shape: spec.localShape, data: arena.pointer(slot),
                        attributes: attrs)
                }
            }
        }
        try f.flush()
    }

    /// The 16-bit model weight of main parameters `x`: rounded to nearest even, as bits.
    static func halfBits(_ x: UnsafePointer<Float>, count: Int, precision: Precision) -> [UInt16] {
        var bits = [UInt16](repeating: 0, count: count)
        bits.withUnsafeMutableBufferPointer { out in
            if precision == .bf16 {
                BF16.round(x, into: out.baseAddress!, count: count)
            } else {
                for i in 0..<count { out[i] = Float16(x[i]).bitPattern }
            }
        }
        return bits
    }

}

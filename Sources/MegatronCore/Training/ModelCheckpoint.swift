// ModelCheckpoint.swift — what a checkpoint holds and how the trainer writes and reads it.
// One HDF5 file per model-parallel rank, mp_rank_TT_PPP.h5 (tensor rank, pipeline rank), holding
// that rank's slices:
//   model/<name>                      parameters, attrs global_shape / global_offset
//   optimizer/exp_avg/<name>, optimizer/exp_avg_sq/<name>   Adam moments, same attrs
// In bf16/fp16 training (root attribute `precision`) model/<name> of a matrix holds the 16-bit model
// weight as a real HDF5 16-bit float type (bfloat16 or IEEE half: h5py reads floats), and
//   optimizer/fp32_from_fp16_params/<name>   its fp32 main parameter (Megatron's key)
// which every load prefers, so a checkpoint loads into any precision without losing a bit.
//   root attributes: format, format_version, iteration, consumed_samples, optimizer step,
//   opt_param_scheduler_* (LR schedule), grad_scaler_* (loss scaler, when there is one), rng_seed
//   (all randomness is counter-based Philox keyed by seed and step, so the seed is the whole
//   generator state), model sizes and the config as JSON.
// With the distributed optimizer the Adam moments are not in mp_rank files; every (tp, pp, dp) rank
// writes distrib_optim_TT_PPP_DDD.h5 with its shard: for each parameter it owns elements of,
//   exp_avg/<name>, exp_avg_sq/<name>   1-D runs of the rank's local tensor, attrs flat_offset (where
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

    /// Model sizes stored as attributes and checked on load.
    static func shapeAttributes(_ c: GPTConfig) -> [(String, Int)] {
        [("num_layers", c.numLayers), ("hidden_size", c.hiddenSize), ("num_attention_heads", c.numAttentionHeads),
         ("ffn_hidden_size", c.ffnHiddenSize), ("max_position_embeddings", c.maxPositionEmbeddings),
         ("vocab_size", c.vocabSize), ("padded_vocab_size", c.paddedVocabSize)]
    }

    /// Writes the checkpoint of `progress.iteration` atomically into `directory`: world rank 0
    /// prepares the temporary directory, every model-parallel rank of data-parallel rank 0 writes its
    /// shard file, all ranks agree on success, then rank 0 renames the directory and moves the pointer.
    public static func save(to directory: CheckpointDirectory, chunks: [GPTModel], optimizer: TrainingOptimizer, lossScaler: LossScaler?,
                            schedule: LRSchedule, progress: TrainingProgress, configJSON: String, parallel: ParallelState) throws {
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
                try writeShard(path: path, chunks: chunks, optimizer: optimizer, lossScaler: lossScaler, schedule: schedule,
                               progress: progress, configJSON: configJSON, parallel: parallel)
            } catch { failure = error }
        }
        if case .distributed(let sharded) = optimizer, failure == nil {
            let name = CheckpointDirectory.optimizerShardFileName(tensorRank: parallel.tensorRank, pipelineRank: parallel.pipelineRank,
                                                                  dataRank: parallel.dataRank)
            do { try writeOptimizerShard(path: (tmp as NSString).appendingPathComponent(name), sharded, chunks: chunks, parallel: parallel) }
            catch { failure = error }
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

    static func writeShard(path: String, chunks: [GPTModel], optimizer: TrainingOptimizer, lossScaler: LossScaler?, schedule: LRSchedule,
                           progress: TrainingProgress, configJSON: String, parallel: ParallelState) throws {
        var state = RankFileState(config: chunks[0].config, configJSON: configJSON, iteration: progress.iteration,
                                  consumedSamples: progress.consumedSamples, optimizerStep: optimizer.step, schedule: schedule,
                                  tensorSize: parallel.layout.tensor, pipelineSize: parallel.layout.pipeline,
                                  tensorRank: parallel.tensorRank, pipelineRank: parallel.pipelineRank)
        state.distributedOptimizer = optimizer.isDistributed
        state.dataParallelSize = parallel.layout.data
        state.lossScaler = lossScaler
        state.precision = chunks[0].precision
        let moments: [(ParameterArena, ParameterArena)?] = chunks.indices.map { c in
            if case .perChunk(let optimizers) = optimizer { return (optimizers[c].expAvg, optimizers[c].expAvgSq) }
            return nil
        }
        try writeRankFile(path: path, state: state, chunks: zip(chunks, moments).map { ($0.params, $1) })
    }

    /// What a rank file records besides the tensors.
    public struct RankFileState {
        public var config: GPTConfig
        public var configJSON: String
        public var iteration: Int, consumedSamples: Int, optimizerStep: Int
        public var schedule: LRSchedule
        public var tensorSize: Int, pipelineSize: Int, tensorRank: Int, pipelineRank: Int
        public var distributedOptimizer = false
        public var dataParallelSize = 1
        public var lossScaler: LossScaler? = nil
        /// The model weights' format; reduced precision also stores the fp32 main parameters.
        public var precision: Precision = .fp32
    }

    /// Where reduced-precision checkpoints keep the fp32 main parameters of 16-bit weights.
    static let mainParameterGroup = "optimizer/fp32_from_fp16_params/"

    /// Writes one mp_rank file: every chunk's parameters (and moments, when given) with their
    /// global shape and offset, and `state` as root attributes.
    static func writeRankFile(path: String, state: RankFileState, chunks: [(params: ParameterArena, moments: (ParameterArena, ParameterArena)?)]) throws {
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
        try f.setAttribute("rng_seed", int: state.config.seed)
        try f.setAttribute("tensor_model_parallel_size", int: state.tensorSize)
        try f.setAttribute("pipeline_model_parallel_size", int: state.pipelineSize)
        try f.setAttribute("tensor_model_parallel_rank", int: state.tensorRank)
        try f.setAttribute("pipeline_model_parallel_rank", int: state.pipelineRank)
        for (k, v) in shapeAttributes(state.config) { try f.setAttribute(k, int: v) }
        try f.setAttribute("config_json", string: state.configJSON)
        try f.setAttribute("precision", string: state.precision.rawValue)
        for (params, moments) in chunks {
            for (slot, spec) in params.table.specs.enumerated() {
                let attrs = ["global_shape": spec.shape, "global_offset": spec.globalOffset]
                if state.precision.isReduced && spec.shape.count > 1 {
                    let bits = halfBits(params.pointer(slot), count: spec.count, precision: state.precision)
                    try bits.withUnsafeBufferPointer {
                        try f.writeHalfFloats("model/" + spec.name, shape: spec.localShape, bits: $0.baseAddress!,
                                              format: state.precision == .bf16 ? .bfloat16 : .float16, attributes: attrs)
                    }
                    try f.writeFloats(mainParameterGroup + spec.name, shape: spec.localShape, data: params.pointer(slot), attributes: attrs)
                } else {
                    try f.writeFloats("model/" + spec.name, shape: spec.localShape, data: params.pointer(slot), attributes: attrs)
                }
                if let (m, v) = moments {
                    try f.writeFloats("optimizer/exp_avg/" + spec.name, shape: spec.localShape, data: m.pointer(slot), attributes: attrs)
                    try f.writeFloats("optimizer/exp_avg_sq/" + spec.name, shape: spec.localShape, data: v.pointer(slot), attributes: attrs)
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

    /// The pieces holding the values of parameter `source`: its fp32 main parameter when the
    /// checkpoint has one (reduced-precision training), else its model weight.
    static func parameterPieces(_ source: String, _ files: [HDF5File]) throws -> [Piece] {
        let main = try pieces(mainParameterGroup + source, files, [])
        return main.isEmpty ? try pieces("model/" + source, files, []) : main
    }

    /// Writes this data-parallel rank's shard of the distributed optimizer's moments.
    static func writeOptimizerShard(path: String, _ optimizer: DistributedOptimizer, chunks: [GPTModel], parallel: ParallelState) throws {
        let f = try HDF5File.create(path)
        try f.setAttribute("format", string: format)
        try f.setAttribute("format_version", int: formatVersion)
        try f.setAttribute("tensor_model_parallel_rank", int: parallel.tensorRank)
        try f.setAttribute("pipeline_model_parallel_rank", int: parallel.pipelineRank)
        try f.setAttribute("data_parallel_rank", int: parallel.dataRank)
        try f.setAttribute("data_parallel_size", int: parallel.layout.data)
        try f.setAttribute("optimizer_step", int: optimizer.step)
        for s in optimizer.segments {
            let spec = chunks[s.chunk].table.specs[s.slot]
            let attrs = ["flat_offset": [s.elementOffset], "local_shape": spec.localShape,
                         "global_shape": spec.shape, "global_offset": spec.globalOffset]
            try f.writeFloats("exp_avg/" + spec.name, shape: [s.count], data: optimizer.expAvg.base + s.shardOffset, attributes: attrs)
            try f.writeFloats("exp_avg_sq/" + spec.name, shape: [s.count], data: optimizer.expAvgSq.base + s.shardOffset, attributes: attrs)
        }
        try f.flush()
    }

    /// Reads the latest checkpoint of `directory` into this rank's chunks and optimizers — on any
    /// grid: every tensor is assembled from whichever rank files hold pieces of it (each piece
    /// carries its global offset) and this rank's slice is cut out. Rows beyond the vocabulary padding
    /// of the writing grid stay zero (padding never affects results); the last stage's tied
    /// `output_layer.weight` comes from the word embedding when the writer had no separate copy.
    public static func load(from directory: CheckpointDirectory, chunks: [GPTModel], optimizer: TrainingOptimizer,
                            lossScaler: inout LossScaler?, schedule: inout LRSchedule, parallel: ParallelState) throws -> TrainingProgress {
        let (dir, files, shardFiles) = try open(directory, config: chunks[0].config)
        let f = files[0]
        // Moments go straight into per-chunk optimizers; the distributed optimizer takes its shard of full-size arenas.
        let moments: [(ParameterArena, ParameterArena)]
        switch optimizer {
        case .perChunk(let optimizers): moments = optimizers.map { ($0.expAvg, $0.expAvgSq) }
        case .distributed: moments = chunks.map { (ParameterArena(table: $0.table), ParameterArena(table: $0.table)) }
        }
        // A weights-only checkpoint (e.g. imported from Hugging Face) starts a fresh optimizer.
        let hasOptimizerState = !shardFiles.isEmpty || files.contains { $0.exists("optimizer") }
        for (c, chunk) in chunks.enumerated() {
            for (slot, spec) in chunk.table.specs.enumerated() {
                let source = storedName(of: spec, in: files)
                try assemble(source, into: chunk.params.pointer(slot), spec: spec, from: parameterPieces(source, files), checkpoint: dir)
                guard hasOptimizerState else { continue }
                try assemble(source, into: moments[c].0.pointer(slot), spec: spec,
                             from: pieces("optimizer/exp_avg/" + source, files, [("exp_avg/" + source, shardFiles)]), checkpoint: dir)
                try assemble(source, into: moments[c].1.pointer(slot), spec: spec,
                             from: pieces("optimizer/exp_avg_sq/" + source, files, [("exp_avg_sq/" + source, shardFiles)]), checkpoint: dir)
            }
        }
        for chunk in chunks { chunk.syncWeights() }
        if case .distributed(let sharded) = optimizer { sharded.loadState(expAvg: moments.map(\.0), expAvgSq: moments.map(\.1)) }
        optimizer.step = hasOptimizerState ? try f.intAttribute("optimizer_step") : 0
        if f.hasAttribute("grad_scaler_scale"), lossScaler != nil {
            lossScaler!.restore(scale: Float(try f.doubleAttribute("grad_scaler_scale")),
                                growthTracker: try f.intAttribute("grad_scaler_growth_tracker"),
                                hysteresisTracker: try f.intAttribute("grad_scaler_hysteresis_tracker"))
        }
        schedule.numSteps = try f.intAttribute("opt_param_scheduler_num_steps")
        var progress = TrainingProgress()
        progress.iteration = try f.intAttribute("iteration")
        progress.consumedSamples = try f.intAttribute("consumed_samples")
        return progress
    }

    /// The latest iteration's directory, its model files (mp_rank_*) and optimizer shards, after
    /// checking the format and that the stored model sizes match `config`.
    static func open(_ directory: CheckpointDirectory, config: GPTConfig) throws -> (String, [HDF5File], [HDF5File]) {
        let it = try directory.latestIteration()
        let dir = directory.iterationPath(it)
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".h5") }.sorted()
        let names = entries.filter { $0.hasPrefix("mp_rank_") }
        guard !names.isEmpty else { throw CheckpointError.incompatible(path: dir, reason: "it holds no mp_rank_*.h5 files") }
        let files = try names.map { try HDF5File.openReadOnly((dir as NSString).appendingPathComponent($0)) }
        let shardFiles = try entries.filter { $0.hasPrefix("distrib_optim_") }.map { try HDF5File.openReadOnly((dir as NSString).appendingPathComponent($0)) }
        let f = files[0]
        guard (try? f.stringAttribute("format")) == format else {
            throw CheckpointError.incompatible(path: f.path, reason: "it is not a \(format) checkpoint")
        }
        let version = try f.intAttribute("format_version")
        guard version == formatVersion else {
            throw CheckpointError.incompatible(path: f.path, reason: "format_version \(version); this build reads version \(formatVersion)")
        }
        for (k, v) in shapeAttributes(config) where k != "padded_vocab_size" {
            let stored = try f.intAttribute(k)
            if stored != v { throw TrainingError.checkpointMismatch(path: f.path, key: k, checkpoint: "\(stored)", config: "\(v)") }
        }
        return (dir, files, shardFiles)
    }

    /// Where `spec`'s values are stored: its own name, or, for a tied output layer the writer kept
    /// no separate copy of, the word embedding.
    static func storedName(of spec: ParameterSpec, in files: [HDF5File]) -> String {
        spec.name == GPTSlots.tiedOutputLayerName && !files.contains { $0.exists("model/" + spec.name) }
            ? "embedding.word_embeddings.weight" : spec.name
    }

    /// The stored training config (JSON) of the latest checkpoint in `directory`, if any.
    public static func storedConfigJSON(root: String) -> String? {
        let directory = CheckpointDirectory(root: root)
        guard let it = try? directory.latestIteration() else { return nil }
        let dir = directory.iterationPath(it)
        guard let name = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter({ $0.hasPrefix("mp_rank_") && $0.hasSuffix(".h5") }).sorted().first,
              let f = try? HDF5File.openReadOnly((dir as NSString).appendingPathComponent(name)) else { return nil }
        return try? f.stringAttribute("config_json")
    }

    /// Loads only the model weights (evaluation, fine-tuning); returns the checkpoint's iteration.
    public static func loadWeights(from directory: CheckpointDirectory, chunks: [GPTModel]) throws -> Int {
        let (dir, files, _) = try open(directory, config: chunks[0].config)
        for chunk in chunks {
            for (slot, spec) in chunk.table.specs.enumerated() {
                let source = storedName(of: spec, in: files)
                try assemble(source, into: chunk.params.pointer(slot), spec: spec, from: parameterPieces(source, files), checkpoint: dir)
            }
            chunk.syncWeights()
        }
        return try files[0].intAttribute("iteration")
    }

    /// A stored local tensor of some rank: where it sits in the global tensor, and its values.
    struct Piece {
        let path: String
        let globalShape: [Int], globalOffset: [Int], localShape: [Int]
        /// Read from files when a slice needs them, or already in memory (read in place, never copied).
        enum Values { case read(() throws -> [Float]), memory(UnsafePointer<Float>) }
        let values: Values
    }

    /// The pieces of dataset `name` in whole-tensor files, plus those reassembled from the 1-D runs
    /// of optimizer-shard files (`runs`: dataset name and the shard files, grouped here by the
    /// model-parallel rank that wrote them).
    static func pieces(_ name: String, _ files: [HDF5File], _ runs: [(String, [HDF5File])]) throws -> [Piece] {
        var result: [Piece] = []
        for file in files where file.exists(name) {
            result.append(Piece(path: file.path, globalShape: try file.intArrayAttribute(of: name, "global_shape"),
                                globalOffset: try file.intArrayAttribute(of: name, "global_offset"),
                                localShape: file.shape(of: name) ?? [], values: .read { try file.readFloats(name).values }))
        }
        for (runName, shardFiles) in runs {
            var bySource: [[Int]: [HDF5File]] = [:]
            for file in shardFiles where file.exists(runName) {
                let key = [try file.intAttribute("tensor_model_parallel_rank"), try file.intAttribute("pipeline_model_parallel_rank")]
                bySource[key, default: []].append(file)
            }
            for key in bySource.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                let group = bySource[key]!, first = group[0]
                let localShape = try first.intArrayAttribute(of: runName, "local_shape")
                let count = localShape.reduce(1, *)
                result.append(Piece(path: first.path, globalShape: try first.intArrayAttribute(of: runName, "global_shape"),
                                    globalOffset: try first.intArrayAttribute(of: runName, "global_offset"), localShape: localShape, values: .read {
                    var values = [Float](repeating: 0, count: count)
                    var covered = 0
                    for file in group {
                        let start = try file.intArrayAttribute(of: runName, "flat_offset")[0]
                        let run = try file.readFloats(runName).values
                        guard start >= 0, start + run.count <= count else {
                            throw CheckpointError.incompatible(path: file.path, reason: "'\(runName)' runs past its tensor of \(count) elements")
                        }
                        values.replaceSubrange(start..<start + run.count, with: run)
                        covered += run.count
                    }
                    guard covered == count else {
                        throw CheckpointError.incompatible(path: first.path, reason: "the optimizer shards of tensor rank \(key[0]), pipeline rank \(key[1]) cover \(covered) of the \(count) elements of '\(runName)': a distrib_optim file is missing")
                    }
                    return values
                }))
            }
        }
        return result
    }

    /// Fills this rank's slice of tensor `name` (`spec.localShape` at `spec.globalOffset`) from
    /// `pieces`, viewing every tensor as [rows, cols] (1-D: one row).
    static func assemble(_ name: String, into out: UnsafeMutablePointer<Float>, spec: ParameterSpec, from pieces: [Piece],
                         checkpoint: String) throws {
        let twoD = spec.shape.count > 1
        let cols = twoD ? spec.localShape[1] : spec.count
        let (r0, c0) = twoD ? (spec.globalOffset[0], spec.globalOffset[1]) : (0, spec.globalOffset.first ?? 0)
        let rows = twoD ? spec.localShape[0] : 1
        out.update(repeating: 0, count: spec.count)
        var covered = 0, wanted = 0
        guard let firstPath = pieces.first?.path else {
            throw CheckpointError.incompatible(path: checkpoint, reason: "no rank file holds '\(name)'")
        }
        for piece in pieces {
            let globalShape = piece.globalShape, offset = piece.globalOffset, localShape = piece.localShape
            if twoD && globalShape.count == 2 && globalShape[1] != spec.shape[1] || !twoD && globalShape.count != 1 {
                throw CheckpointError.incompatible(path: piece.path, reason: "'\(name)' has global shape \(globalShape), the model needs \(spec.shape)")
            }
            if wanted == 0 { wanted = min(rows, max(0, (twoD ? globalShape[0] : 1) - r0)) * cols }
            let pRows = twoD ? localShape[0] : 1, pCols = twoD ? localShape[1] : localShape.reduce(1, *)
            let (pr0, pc0) = twoD ? (offset[0], offset[1]) : (0, offset[0])
            // Overlap of [r0, r0+rows) × [c0, c0+cols) with [pr0, pr0+pRows) × [pc0, pc0+pCols);
            // pieces that do not overlap this rank's slice are never read.
            let rLo = max(r0, pr0), rHi = min(r0 + rows, pr0 + pRows), cLo = max(c0, pc0), cHi = min(c0 + cols, pc0 + pCols)
            guard rLo < rHi, cLo < cHi else { continue }
            func copyOverlap(from src: UnsafePointer<Float>) {
                for r in rLo..<rHi {
                    (out + (r - r0) * cols + (cLo - c0)).update(from: src + (r - pr0) * pCols + (cLo - pc0), count: cHi - cLo)
                }
            }
            switch piece.values {
            case .memory(let src): copyOverlap(from: src)
            case .read(let read): try read().withUnsafeBufferPointer { copyOverlap(from: $0.baseAddress!) }
            }
            covered += (rHi - rLo) * (cHi - cLo)
        }
        guard covered >= wanted else {
            throw CheckpointError.incompatible(path: firstPath, reason: "the rank files cover only \(covered) of the \(wanted) elements of '\(name)' this rank needs")
        }
    }
}

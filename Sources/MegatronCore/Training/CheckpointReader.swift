// CheckpointReader.swift — the one reader of our checkpoints, for resume, any-grid load,
// evaluation and conversion: it opens the latest iteration of a checkpoint directory (its
// mp_rank_* model files and any distrib_optim_* optimizer shards, format checked), finds where a
// tensor is stored, and assembles any rank's slice of it from the pieces the writing ranks hold
// (each carries its global shape and offset) — so a checkpoint written on any grid loads on any grid.
import Checkpoint
import Foundation
import Tensor

public struct CheckpointReader {
    /// The iteration read, its directory, the model files (first: the one whose attributes are read)
    /// and the optimizer shard files.
    public let iteration: Int
    public let path: String
    let files: [HDF5File]
    let shardFiles: [HDF5File]
    var first: HDF5File { files[0] }

    /// Opens the latest checkpoint of `directory`, checking its format and version.
    public init(_ directory: CheckpointDirectory) throws {
        iteration = try directory.latestIteration()
        path = directory.iterationPath(iteration)
        let (rankPaths, shardPaths) = CheckpointDirectory.listFiles(in: path)
        guard !rankPaths.isEmpty else {
            throw CheckpointError.incompatible(path: path, reason: "it holds no mp_rank_*.h5 files")
        }
        files = try rankPaths.map { try HDF5File.openReadOnly($0) }
        shardFiles = try shardPaths.map { try HDF5File.openReadOnly($0) }
        let f = files[0], format = ModelCheckpoint.format, version = try f.intAttribute("format_version")
        guard (try? f.stringAttribute("format")) == format else {
            throw CheckpointError.incompatible(path: f.path, reason: "it is not a \(format) checkpoint")
        }
        guard version == ModelCheckpoint.formatVersion else {
            throw CheckpointError.incompatible(
                path: f.path,
                reason: "format_version \(version); this build reads version \(ModelCheckpoint.formatVersion)")
        }
    }

    /// Checks the stored model sizes against the model's (vocabulary padding may differ: it depends on t).
    public func checkSizes(_ sizes: [(String, Int)]) throws {
        for (k, v) in sizes where k != "padded_vocab_size" {
            let stored = try first.intAttribute(k)
            if stored != v {
                throw TrainingError.checkpointMismatch(
                    path: first.path, key: k, checkpoint: "\(stored)", config: "\(v)")
            }
        }
    }

    /// Whether the checkpoint holds optimizer state (a weights-only one, e.g. imported, does not).
    public var hasOptimizerState: Bool { !shardFiles.isEmpty || files.contains { $0.exists("optimizer") } }

    /// The stored training config (JSON) of the latest checkpoint under `root`, if any.
    public static func storedConfigJSON(root: String) -> String? {
        guard let reader = try? CheckpointReader(CheckpointDirectory(root: root)) else { return nil }
        return try? reader.first.stringAttribute("config_json")
    }

    /// Where `spec`'s values are stored: its own name, or, for a tied copy the writer kept no
    /// separate copy of, the parameter it is tied to.
    func storedName(of spec: ParameterSpec) -> String {
        spec.isTiedCopy && !files.contains { $0.exists("model/" + spec.name) } ? spec.initKey : spec.name
    }

    /// Fills this rank's slice of `spec` with its stored values: the fp32 main parameter when the
    /// checkpoint has one (reduced-precision training), else the model weight.
    func readParameter(_ spec: ParameterSpec, into out: UnsafeMutablePointer<Float>) throws {
        let name = storedName(of: spec)
        let main = try ModelCheckpoint.pieces(ModelCheckpoint.mainParameterGroup + name, files, [])
        let pieces = main.isEmpty ? try ModelCheckpoint.pieces("model/" + name, files, []) : main
        try ModelCheckpoint.assemble(name, into: out, spec: spec, from: pieces, checkpoint: path)
        guard Kernels.allFinite(out, count: spec.count) else {
            throw CheckpointError.incompatible(
                path: path,
                reason:
                    "tensor \(name) holds NaN or infinite values (training had diverged before this save, or the "
                    + "file was altered); load an earlier iteration")
        }
    }

    /// The optimizer whose state the checkpoint holds (files before the attribute existed: Adam).
    public var storedOptimizer: OptimizerKind {
        OptimizerKind(rawValue: (try? first.stringAttribute("optimizer")) ?? "adam") ?? .adam
    }

    /// Fills this rank's slices of `spec`'s optimizer state (`storedOptimizer.stateNames` order),
    /// from the rank files or the optimizer shards.
    func readState(_ spec: ParameterSpec, into outs: [UnsafeMutablePointer<Float>]) throws {
        let name = storedName(of: spec)
        for (moment, out) in zip(storedOptimizer.stateNames, outs) {
            let pieces = try ModelCheckpoint.pieces(
                "optimizer/\(moment)/" + name, files, [("\(moment)/" + name, shardFiles)])
            try ModelCheckpoint.assemble(name, into: out, spec: spec, from: pieces, checkpoint: path)
        }
    }

    /// An integer root attribute of the first model file, or `fallback` when absent.
    func intAttribute(_ name: String, default fallback: Int) -> Int { (try? first.intAttribute(name)) ?? fallback }
}

extension ModelCheckpoint {
    /// Reads the latest checkpoint of `directory` into this rank's chunks and optimizers — on any
    /// grid: every tensor is assembled from whichever rank files hold pieces of it (each piece
    /// carries its global offset) and this rank's slice is cut out. Rows beyond the vocabulary padding
    /// of the writing grid stay zero (padding never affects results); a tied copy comes from the
    /// parameter it is tied to when the writer had no separate copy.
    public static func load(
        from directory: CheckpointDirectory, chunks: [any ParameterChunk], optimizer: TrainingOptimizer,
        lossScaler: inout LossScaler?, schedule: inout LRSchedule, optimizerState: Bool = true,
        schedulePolicy: SchedulerResumePolicy = .check, parallel: ParallelState
    ) throws -> TrainingProgress {
        let reader = try CheckpointReader(directory)
        try reader.checkSizes(chunks[0].modelSizes)
        let f = reader.first
        // A weights-only checkpoint (imported from Hugging Face, or saved with no_save_optim) starts a
        // fresh optimizer, schedule and loss scale; so does `optimizerState` false (no_load_optim), as
        // in Megatron, where the schedule and the loss scale belong to the optimizer state.
        let withOptimizer = optimizerState && reader.hasOptimizerState
        if withOptimizer && reader.storedOptimizer != optimizer.hyper.kind {
            throw CheckpointError.incompatible(
                path: reader.path,
                reason:
                    "it holds \(reader.storedOptimizer.rawValue) state and this run uses optimizer "
                    + "\(optimizer.hyper.kind.rawValue); give --no-load-optim to load the weights and start the "
                    + "optimizer afresh")
        }
        let state = optimizer.stateForLoading()
        for (c, chunk) in chunks.enumerated() {
            for (slot, spec) in chunk.table.specs.enumerated() {
                try reader.readParameter(spec, into: chunk.params.pointer(slot))
                guard withOptimizer else { continue }
                try reader.readState(spec, into: state[c].map { $0.pointer(slot) })
            }
        }
        for chunk in chunks { chunk.syncWeights() }
        optimizer.adoptState(state)
        optimizer.step = withOptimizer ? try f.intAttribute("optimizer_step") : 0
        var progress = TrainingProgress()
        progress.iteration = try f.intAttribute("iteration")
        progress.consumedSamples = try f.intAttribute("consumed_samples")
        guard withOptimizer else { return progress }
        if f.hasAttribute("grad_scaler_scale"), lossScaler != nil {
            lossScaler?.restore(
                scale: Float(try f.doubleAttribute("grad_scaler_scale")),
                growthTracker: try f.intAttribute("grad_scaler_growth_tracker"),
                hysteresisTracker: try f.intAttribute("grad_scaler_hysteresis_tracker"))
        }
        schedule = try schedulePolicy.reconcile(schedule, with: f)
        schedule.numSteps = try f.intAttribute("opt_param_scheduler_num_steps")
        return progress
    }

    /// Loads only the model weights (evaluation, fine-tuning); returns the checkpoint's iteration.
    /// With `keeping`, parameters it accepts keep their initial values (a finetuning head that the
    /// pretrained checkpoint does not have).
    public static func loadWeights(
        from directory: CheckpointDirectory, chunks: [any ParameterChunk], keeping: (String) -> Bool = { _ in false }
    ) throws -> Int {
        let reader = try CheckpointReader(directory)
        try reader.checkSizes(chunks[0].modelSizes)
        for chunk in chunks {
            for (slot, spec) in chunk.table.specs.enumerated() where !keeping(spec.name) {
                try reader.readParameter(spec, into: chunk.params.pointer(slot))
            }
            chunk.syncWeights()
        }
        return try reader.first.intAttribute("iteration")
    }

    /// A stored local tensor of some rank: where it sits in the global tensor, and its values.
    struct Piece {
        let path: String
        let globalShape: [Int], globalOffset: [Int], localShape: [Int]
        /// Read from files when a slice needs them, or already in memory (read in place, never copied).
        enum Values {
            case read(() throws -> [Float])
            case memory(UnsafePointer<Float>)
        }
        let values: Values
    }

    /// The pieces of dataset `name` in whole-tensor files, plus those reassembled from the 1-D runs
    /// of optimizer-shard files (`runs`: dataset name and the shard files, grouped here by the
    /// model-parallel rank that wrote them).
    static func pieces(_ name: String, _ files: [HDF5File], _ runs: [(String, [HDF5File])]) throws -> [Piece] {
        var result: [Piece] = []
        for file in files where file.exists(name) {
            result.append(
                Piece(
                    path: file.path, globalShape: try file.intArrayAttribute(of: name, "global_shape"),
                    globalOffset: try file.intArrayAttribute(of: name, "global_offset"),
                    localShape: file.shape(of: name) ?? [], values: .read { try file.readFloats(name).values }))
        }
        for (runName, shardFiles) in runs {
            var bySource: [[Int]: [HDF5File]] = [:]
            for file in shardFiles where file.exists(runName) {
                let key = [
                    try file.intAttribute("tensor_model_parallel_rank"),
                    try file.intAttribute("pipeline_model_parallel_rank"),
                ]
                bySource[key, default: []].append(file)
            }
            for key in bySource.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                let group = bySource[key]!, first = group[0]
                let localShape = try first.intArrayAttribute(of: runName, "local_shape")
                let count = localShape.reduce(1, *)
                result.append(
                    Piece(
                        path: first.path, globalShape: try first.intArrayAttribute(of: runName, "global_shape"),
                        globalOffset: try first.intArrayAttribute(of: runName, "global_offset"), localShape: localShape,
                        values: .read {
                            var values = [Float](repeating: 0, count: count)
                            var covered = 0
                            for file in group {
                                let start = try file.intArrayAttribute(of: runName, "flat_offset")[0]
                                let run = try file.readFloats(runName).values
                                guard start >= 0, start + run.count <= count else {
                                    throw CheckpointError.incompatible(
                                        path: file.path,
                                        reason: "'\(runName)' runs past its tensor of \(count) elements")
                                }
                                values.replaceSubrange(start..<start + run.count, with: run)
                                covered += run.count
                            }
                            guard covered == count else {
                                throw CheckpointError.incompatible(
                                    path: first.path,
                                    reason:
                                        "the optimizer shards of tensor rank \(key[0]), pipeline rank \(key[1]) "
                                        + "cover \(covered) of the \(count) elements of '\(runName)': a "
                                        + "distrib_optim file is missing"
                                )
                            }
                            return values
                        }))
            }
        }
        return result
    }

    /// Fills this rank's slice of tensor `name` (`spec.localShape` at `spec.globalOffset`) from
    /// `pieces`, viewing every tensor as [rows, cols] (1-D: one row).
    static func assemble(
        _ name: String, into out: UnsafeMutablePointer<Float>, spec: ParameterSpec, from pieces: [Piece],
        checkpoint: String
    ) throws {
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
                throw CheckpointError.incompatible(
                    path: piece.path, reason: "'\(name)' has global shape \(globalShape), the model needs \(spec.shape)"
                )
            }
            // What the writer's padding lets this slice cover: rows of a matrix, entries of a vector
            // (a vocabulary-split vector such as BERT's output bias is padded like the rows).
            if wanted == 0 {
                wanted =
                    twoD ? min(rows, max(0, globalShape[0] - r0)) * cols : max(0, min(cols, globalShape[0] - c0))
            }
            let pRows = twoD ? localShape[0] : 1, pCols = twoD ? localShape[1] : localShape.reduce(1, *)
            let (pr0, pc0) = twoD ? (offset[0], offset[1]) : (0, offset[0])
            // Overlap of [r0, r0+rows) × [c0, c0+cols) with [pr0, pr0+pRows) × [pc0, pc0+pCols);
            // pieces that do not overlap this rank's slice are never read.
            let rLo = max(r0, pr0), rHi = min(r0 + rows, pr0 + pRows), cLo = max(c0, pc0),
                cHi = min(c0 + cols, pc0 + pCols)
            guard rLo < rHi, cLo < cHi else { continue }
            func copyOverlap(from src: UnsafePointer<Float>) {
                for r in rLo..<rHi {
                    (out + (r - r0) * cols + (cLo - c0)).update(
                        from: src + (r - pr0) * pCols + (cLo - pc0), count: cHi - cLo)
                }
            }
            switch piece.values {
            case .memory(let src): copyOverlap(from: src)
            case .read(let read): try read().withUnsafeBufferPointer { copyOverlap(from: $0.baseAddress!) }
            }
            covered += (rHi - rLo) * (cHi - cLo)
        }
        guard covered >= wanted else {
            throw CheckpointError.incompatible(
                path: firstPath,
                reason: "the rank files cover only \(covered) of the \(wanted) elements of '\(name)' this rank needs")
        }
    }
}

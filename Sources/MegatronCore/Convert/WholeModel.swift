// WholeModel.swift — a checkpoint (GPT or BERT) held as whole (t = 1) tensors, for `convert-checkpoint`: read
// from our checkpoints written on any grid (moments included when present, from mp_rank files or
// distributed-optimizer shards) or from a Hugging Face GPT-2 directory (HFGPT2.swift), and written
// back laid out for any target (t, p, v) — each rank file holding exactly that rank's slices, with
// the vocabulary padding of the target t. Output is atomic (a temporary directory renamed at the end).
import Checkpoint
import Foundation
import Tensor

public enum ConversionError: Error, CustomStringConvertible {
    case tensor(name: String, found: [Int], expected: [Int], source: String)
    case missing(name: String, source: String)
    case invalid(String)

    public var description: String {
        switch self {
        case .tensor(let n, let f, let e, let s):
            return "tensor '\(n)' in \(s) has shape \(f), but the model needs \(e)"
        case .missing(let n, let s): return "tensor '\(n)' is missing from \(s)"
        case .invalid(let r): return r
        }
    }
}

public final class WholeModel {
    /// The training config (as stored) and the model it describes at t = 1.
    public var trainingConfig: TrainingConfig
    public let configJSON: [String: Any]
    public let architecture: ModelArchitecture
    /// The transformer's sizes (either model).
    public var transformer: GPTConfig { architecture.transformer }
    public let params: ParameterArena
    /// The optimizer state, whole (in `state.optimizer.stateNames` order), when the checkpoint has it.
    public var optimizerState: [ParameterArena]?
    public var state: ModelCheckpoint.RankFileState

    init(
        trainingConfig: TrainingConfig, configJSON: [String: Any], vocabSize: Int,
        params fill: (ParameterSpec, UnsafeMutablePointer<Float>) throws -> Void,
        state: (ModelArchitecture) -> ModelCheckpoint.RankFileState
    ) throws {
        var c = trainingConfig
        c.tensorModelParallelSize = 1; c.pipelineModelParallelSize = 1; c.resetPipelineSplit()
        self.trainingConfig = c
        self.configJSON = configJSON
        architecture = ModelArchitecture(training: c, vocabSize: vocabSize)
        let table = architecture.declare()
        // Memory preflight: a config.json or checkpoint claiming a huge model is refused before allocating.
        let bytes = table.totalCount.multipliedReportingOverflow(by: 4)
        let memory = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        guard !bytes.overflow, bytes.partialValue <= memory else {
            throw ConversionError.invalid(
                "the model has \(table.totalCount) parameters (\(bytes.overflow ? "more than Int" : "\(bytes.partialValue >> 20) MiB") "
                    + "in fp32), more than this machine's \(memory >> 20) MiB of memory; check the sizes in the config")
        }
        params = ParameterArena(table: table)
        for (slot, spec) in table.specs.enumerated() { try fill(spec, params.pointer(slot)) }
        self.state = state(architecture)
    }

    /// Reads the latest checkpoint under `root`, whatever grid (and optimizer) wrote it.
    public static func load(checkpoint root: String) throws -> WholeModel {
        guard let json = CheckpointReader.storedConfigJSON(root: root),
            let dict = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        else {
            throw ConversionError.invalid("'\(root)' holds no readable checkpoint with a stored config")
        }
        var cfg = TrainingConfig()
        try ConfigLoader.applyJSON(Data(json.utf8), source: "the config stored in \(root)", to: &cfg)
        let reader = try CheckpointReader(CheckpointDirectory(root: root))
        let vocab = try reader.first.intAttribute("vocab_size")
        var probe = cfg
        probe.tensorModelParallelSize = 1
        try reader.checkSizes(ModelArchitecture(training: probe, vocabSize: vocab).shapeAttributes)
        let model = try WholeModel(
            trainingConfig: cfg, configJSON: dict, vocabSize: vocab,
            params: { spec, out in
                try reader.readParameter(spec, into: out)
            }, state: { model in storedState(reader, model: model, json: json, cfg: cfg) })
        if reader.hasOptimizerState {
            let arenas = reader.storedOptimizer.stateNames.map { _ in ParameterArena(table: model.params.table) }
            for (slot, spec) in model.params.table.specs.enumerated() {
                try reader.readState(spec, into: arenas.map { $0.pointer(slot) })
            }
            model.optimizerState = arenas
        }
        return model
    }

    /// The training state recorded in a checkpoint's first rank file, for `model` at t = p = 1.
    static func storedState(_ reader: CheckpointReader, model: ModelArchitecture, json: String, cfg: TrainingConfig)
        -> ModelCheckpoint.RankFileState
    {
        let f = reader.first
        let schedule = LRSchedule(
            maxLR: (try? f.doubleAttribute("opt_param_scheduler_max_lr")) ?? cfg.lr,
            minLR: (try? f.doubleAttribute("opt_param_scheduler_min_lr")) ?? cfg.minLR,
            warmupSteps: reader.intAttribute("opt_param_scheduler_warmup_steps", default: 0),
            decaySteps: reader.intAttribute("opt_param_scheduler_decay_steps", default: 0),
            style: LRDecayStyle(rawValue: (try? f.stringAttribute("opt_param_scheduler_decay_style")) ?? "linear")
                ?? .linear)
        var s = ModelCheckpoint.RankFileState(
            sizes: model.shapeAttributes, seed: model.transformer.seed, configJSON: json,
            iteration: reader.iteration, consumedSamples: reader.intAttribute("consumed_samples", default: 0),
            optimizerStep: reader.intAttribute("optimizer_step", default: 0), schedule: schedule,
            tensorSize: 1, pipelineSize: 1, tensorRank: 0, pipelineRank: 0)
        s.schedule.numSteps = reader.intAttribute("opt_param_scheduler_num_steps", default: 0)
        s.precision = Precision(rawValue: (try? f.stringAttribute("precision")) ?? "fp32") ?? .fp32
        s.optimizer = reader.storedOptimizer
        if f.hasAttribute("grad_scaler_scale") {
            var scaler = LossScaler.constant(Float((try? f.doubleAttribute("grad_scaler_scale")) ?? 1))
            scaler.restore(
                scale: scaler.scale, growthTracker: reader.intAttribute("grad_scaler_growth_tracker", default: 0),
                hysteresisTracker: reader.intAttribute("grad_scaler_hysteresis_tracker", default: 1))
            s.lossScaler = scaler
        }
        return s
    }

    /// This model's tensor `name` (whole, as a piece at offset 0, read in place) for slicing into any rank's layout.
    func piece(_ arena: ParameterArena, _ name: String) -> [ModelCheckpoint.Piece] {
        guard let slot = arena.table.slot(named: name) else { return [] }
        let spec = arena.table.specs[slot]
        return [
            ModelCheckpoint.Piece(
                path: "the converted model", globalShape: spec.shape, globalOffset: spec.shape.map { _ in 0 },
                localShape: spec.shape, values: .memory(arena.pointer(slot)))
        ]
    }

    /// Writes the model as a checkpoint for tensor size `t`, pipeline size `p` and `layersPerVirtualStage`
    /// (nil: one chunk per stage) under `root` (iteration as recorded), atomically.
    public func write(to root: String, tensor t: Int, pipeline p: Int, layersPerVirtualStage: Int?) throws -> String {
        var target = trainingConfig
        target.tensorModelParallelSize = t; target.pipelineModelParallelSize = p;
        target.resetPipelineSplit()
        target.numLayersPerVirtualPipelineStage = layersPerVirtualStage
        // The target grid obeys the training rules: the same checks as a config, on a world of t·p.
        guard t >= 1, p >= 1 else {
            throw ConversionError.invalid("the target grid needs t ≥ 1 and p ≥ 1 (got t = \(t), p = \(p))")
        }
        try ConfigValidation.validateGrid(target, worldSize: t * p)
        let layout = try PipelineLayout(target)
        let targetModel = architecture.padded(for: target)
        var json = configJSON
        json["tensor_model_parallel_size"] = t
        json["pipeline_model_parallel_size"] = p
        json["num_layers_per_virtual_pipeline_stage"] = layersPerVirtualStage ?? NSNull()
        for key in [
            "decoder_first_pipeline_num_layers", "decoder_last_pipeline_num_layers",
            "account_for_embedding_in_pipeline_split", "account_for_loss_in_pipeline_split", "pipeline_auto_balance",
            "pipeline_balance_costs", "pipeline_balance_unit",
        ] {
            json.removeValue(forKey: key)
        }
        let jsonText = String(
            data: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), encoding: .utf8)!
        let directory = CheckpointDirectory(root: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let tmp = try directory.beginSave(iteration: state.iteration)
        do {
            for pr in 0..<p {
                for tr in 0..<t {
                    var chunks: [(params: ParameterArena, optimizerState: [ParameterArena])] = []
                    for plan in layout.plans(stage: pr) {
                        let table = targetModel.declare(tensorRank: tr, tensorSize: t, stage: plan)
                        let sources = [params] + (optimizerState ?? [])
                        let arenas = sources.map { _ in ParameterArena(table: table) }
                        for (slot, spec) in table.specs.enumerated() {
                            let name = spec.initKey  // a tied copy is sliced from the parameter it is tied to
                            for (arena, source) in zip(arenas, sources) {
                                try ModelCheckpoint.assemble(
                                    name, into: arena.pointer(slot), spec: spec, from: piece(source, name),
                                    checkpoint: "the converted model")
                            }
                        }
                        chunks.append((arenas[0], Array(arenas.dropFirst())))
                    }
                    var s = state
                    s.sizes = targetModel.shapeAttributes; s.configJSON = jsonText
                    s.tensorSize = t; s.pipelineSize = p; s.tensorRank = tr; s.pipelineRank = pr
                    s.distributedOptimizer = false; s.dataParallelSize = 1
                    let path = (tmp as NSString).appendingPathComponent(
                        CheckpointDirectory.rankFileName(tensorRank: tr, pipelineRank: pr))
                    try ModelCheckpoint.writeRankFile(path: path, state: s, chunks: chunks)
                }
            }
            try directory.commitSave(iteration: state.iteration)
        } catch {
            directory.abandonSave(iteration: state.iteration)
            throw error
        }
        return directory.iterationPath(state.iteration)
    }
}

// WholeModel.swift — a checkpoint held as whole (t = 1) tensors, for `convert-checkpoint`: read
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
        case .tensor(let n, let f, let e, let s): return "tensor '\(n)' in \(s) has shape \(f), but the model needs \(e)"
        case .missing(let n, let s): return "tensor '\(n)' is missing from \(s)"
        case .invalid(let r): return r
        }
    }
}

public final class WholeModel {
    /// The training config (as stored) and the model it describes at t = 1.
    public var trainingConfig: TrainingConfig
    public let configJSON: [String: Any]
    public let gpt: GPTConfig
    public let params: ParameterArena
    public var moments: (ParameterArena, ParameterArena)?
    public var state: ModelCheckpoint.RankFileState

    init(trainingConfig: TrainingConfig, configJSON: [String: Any], vocabSize: Int, params fill: (ParameterSpec, UnsafeMutablePointer<Float>) throws -> Void,
         state: (GPTConfig) -> ModelCheckpoint.RankFileState) rethrows {
        var c = trainingConfig
        c.tensorModelParallelSize = 1; c.pipelineModelParallelSize = 1; c.numLayersPerVirtualPipelineStage = nil
        self.trainingConfig = c
        self.configJSON = configJSON
        gpt = Trainer.modelConfig(c, vocabSize: vocabSize)
        let (table, _) = GPTSlots.declare(config: gpt)
        params = ParameterArena(table: table)
        for (slot, spec) in table.specs.enumerated() { try fill(spec, params.pointer(slot)) }
        self.state = state(gpt)
    }

    /// Reads the latest checkpoint under `root`, whatever grid (and optimizer) wrote it.
    public static func load(checkpoint root: String) throws -> WholeModel {
        let directory = CheckpointDirectory(root: root)
        guard let json = ModelCheckpoint.storedConfigJSON(root: root),
              let dict = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw ConversionError.invalid("'\(root)' holds no readable checkpoint with a stored config")
        }
        var cfg = TrainingConfig()
        try ConfigLoader.applyJSON(Data(json.utf8), source: "the config stored in \(root)", to: &cfg)
        let it = try directory.latestIteration()
        let dir = directory.iterationPath(it)
        let first = try HDF5File.openReadOnly((dir as NSString).appendingPathComponent(
            ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("mp_rank_") && $0.hasSuffix(".h5") }.sorted().first ?? "mp_rank_00_000.h5"))
        let vocab = try first.intAttribute("vocab_size")
        var probe = cfg
        probe.tensorModelParallelSize = 1
        let (_, files, shards) = try ModelCheckpoint.open(directory, config: Trainer.modelConfig(probe, vocabSize: vocab))
        let model = try WholeModel(trainingConfig: cfg, configJSON: dict, vocabSize: vocab, params: { spec, out in
            try ModelCheckpoint.assemble(spec.name, into: out, spec: spec, from: ModelCheckpoint.parameterPieces(spec.name, files), checkpoint: dir)
        }, state: { gpt in
            var s = ModelCheckpoint.RankFileState(config: gpt, configJSON: json, iteration: it, consumedSamples: (try? first.intAttribute("consumed_samples")) ?? 0,
                                                  optimizerStep: (try? first.intAttribute("optimizer_step")) ?? 0,
                                                  schedule: LRSchedule(maxLR: (try? first.doubleAttribute("opt_param_scheduler_max_lr")) ?? cfg.lr ?? 0,
                                                                       minLR: (try? first.doubleAttribute("opt_param_scheduler_min_lr")) ?? cfg.minLR,
                                                                       warmupSteps: (try? first.intAttribute("opt_param_scheduler_warmup_steps")) ?? 0,
                                                                       decaySteps: (try? first.intAttribute("opt_param_scheduler_decay_steps")) ?? 0,
                                                                       style: LRDecayStyle(rawValue: (try? first.stringAttribute("opt_param_scheduler_decay_style")) ?? "linear") ?? .linear),
                                                  tensorSize: 1, pipelineSize: 1, tensorRank: 0, pipelineRank: 0)
            s.schedule.numSteps = (try? first.intAttribute("opt_param_scheduler_num_steps")) ?? 0
            s.precision = Precision(rawValue: (try? first.stringAttribute("precision")) ?? "fp32") ?? .fp32
            if first.hasAttribute("grad_scaler_scale") {
                var scaler = LossScaler.constant(Float((try? first.doubleAttribute("grad_scaler_scale")) ?? 1))
                scaler.restore(scale: scaler.scale, growthTracker: (try? first.intAttribute("grad_scaler_growth_tracker")) ?? 0,
                               hysteresisTracker: (try? first.intAttribute("grad_scaler_hysteresis_tracker")) ?? 1)
                s.lossScaler = scaler
            }
            return s
        })
        if !shards.isEmpty || files.contains(where: { $0.exists("optimizer") }) {
            let m = ParameterArena(table: model.params.table), v = ParameterArena(table: model.params.table)
            for (slot, spec) in model.params.table.specs.enumerated() {
                try ModelCheckpoint.assemble(spec.name, into: m.pointer(slot), spec: spec,
                                             from: ModelCheckpoint.pieces("optimizer/exp_avg/" + spec.name, files, [("exp_avg/" + spec.name, shards)]), checkpoint: dir)
                try ModelCheckpoint.assemble(spec.name, into: v.pointer(slot), spec: spec,
                                             from: ModelCheckpoint.pieces("optimizer/exp_avg_sq/" + spec.name, files, [("exp_avg_sq/" + spec.name, shards)]), checkpoint: dir)
            }
            model.moments = (m, v)
        }
        return model
    }

    /// This model's tensor `name` (whole, as a piece at offset 0, read in place) for slicing into any rank's layout.
    func piece(_ arena: ParameterArena, _ name: String) -> [ModelCheckpoint.Piece] {
        guard let slot = arena.table.slot(named: name) else { return [] }
        let spec = arena.table.specs[slot]
        return [ModelCheckpoint.Piece(path: "the converted model", globalShape: spec.shape, globalOffset: spec.shape.map { _ in 0 },
                                      localShape: spec.shape, values: .memory(arena.pointer(slot)))]
    }

    /// Writes the model as a checkpoint for tensor size `t`, pipeline size `p` and `layersPerVirtualStage`
    /// (nil: one chunk per stage) under `root` (iteration as recorded), atomically.
    public func write(to root: String, tensor t: Int, pipeline p: Int, layersPerVirtualStage: Int?) throws -> String {
        let L = gpt.numLayers
        guard t >= 1, p >= 1, L % p == 0, gpt.numAttentionHeads % t == 0, gpt.ffnHiddenSize % t == 0 else {
            throw ConversionError.invalid("the target grid (t = \(t), p = \(p)) does not divide the model: \(L) layers must split into p stages, \(gpt.numAttentionHeads) heads and ffn \(gpt.ffnHiddenSize) into t")
        }
        let v = layersPerVirtualStage.map { L / p / $0 } ?? 1
        if let n = layersPerVirtualStage, (L / p) % n != 0 || p < 2 {
            throw ConversionError.invalid("num_layers_per_virtual_pipeline_stage \(n) needs p ≥ 2 and must divide each stage's \(L / p) layers")
        }
        var target = trainingConfig
        target.tensorModelParallelSize = t; target.pipelineModelParallelSize = p; target.numLayersPerVirtualPipelineStage = layersPerVirtualStage
        let targetGPT = Trainer.modelConfig(target, vocabSize: gpt.vocabSize)
        var json = configJSON
        json["tensor_model_parallel_size"] = t
        json["pipeline_model_parallel_size"] = p
        json["num_layers_per_virtual_pipeline_stage"] = layersPerVirtualStage ?? NSNull()
        let jsonText = String(data: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), encoding: .utf8)!
        let directory = CheckpointDirectory(root: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let tmp = try directory.beginSave(iteration: state.iteration)
        do {
            for pr in 0..<p {
                for tr in 0..<t {
                    var chunks: [(params: ParameterArena, moments: (ParameterArena, ParameterArena)?)] = []
                    for c in 0..<v {
                        let (table, _) = GPTSlots.declare(config: targetGPT, tensorRank: tr, tensorSize: t,
                                                          stage: .chunk(c, ofStage: pr, stages: p, chunks: v, layers: L))
                        let arenas = (0..<(moments == nil ? 1 : 3)).map { _ in ParameterArena(table: table) }
                        let sources = [params] + (moments.map { [$0.0, $0.1] } ?? [])
                        for (slot, spec) in table.specs.enumerated() {
                            let name = spec.name == GPTSlots.tiedOutputLayerName ? "embedding.word_embeddings.weight" : spec.name
                            for (arena, source) in zip(arenas, sources) {
                                try ModelCheckpoint.assemble(name, into: arena.pointer(slot), spec: spec, from: piece(source, name), checkpoint: "the converted model")
                            }
                        }
                        chunks.append((arenas[0], arenas.count == 3 ? (arenas[1], arenas[2]) : nil))
                    }
                    var s = state
                    s.config = targetGPT; s.configJSON = jsonText
                    s.tensorSize = t; s.pipelineSize = p; s.tensorRank = tr; s.pipelineRank = pr
                    s.distributedOptimizer = false; s.dataParallelSize = 1
                    let path = (tmp as NSString).appendingPathComponent(CheckpointDirectory.rankFileName(tensorRank: tr, pipelineRank: pr))
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

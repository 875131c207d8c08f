// ConfigValidation.swift — the rules a config must satisfy before any work starts. Each failure
// names the key(s), the value(s) and a valid alternative. Every rank runs them before any collective.

import Foundation

public enum ConfigValidation {
    /// The tokenizers a GPT model trains with.
    public static let trainingTokenizers: [TokenizerType] = [
        .byteLevel, .null, .gpt2BPE, .llama2, .gptSentencePiece, .sentencePiece, .huggingFace, .tikToken,
    ]

    /// Every rule, in the order a user would fix them: counts within 64-bit arithmetic, required keys,
    /// model shape, grid, batch, optimiser, precision, recomputation, logging, data, pipeline.
    /// `training` false (evaluation, generation) leaves out the rule of the interleaved training
    /// schedule's micro-batch count.
    public static func validate(_ c: TrainingConfig, worldSize: Int = 1, training: Bool = true) throws {
        try validateMagnitudes(c)
        try validateSampleSchedule(c)
        try validateWSD(c)
        try validateRequired(c)
        try validateModel(c)
        try validateGrid(c, worldSize: worldSize)
        try validateBatch(c, worldSize: worldSize)
        try validateRampup(c, worldSize: worldSize)
        try validateOptimizer(c)
        try validatePrecision(c)
        try validateRecompute(c)
        try validateLogging(c)
        try validateData(c)
        try validatePipeline(c, worldSize: worldSize, training: training)
        if let b = c.ddpBucketSize, b <= 0 {
            throw ConfigError.invalidValue(key: "ddp_bucket_size", value: "\(b)", rule: "must be positive")
        }
        if c.ddpSparseEmbeddingEnding == .on && c.pipelineModelParallelSize > 1 {
            throw ConfigError.inconsistent(
                keys: ["ddp_sparse_embedding_ending", "pipeline_model_parallel_size"],
                rule: "the sparse ending needs the embedding and the LM head on one stage: use auto or off with p > 1")
        }
        try validateMachine(c)
    }

    /// OpenBLAS's core names (its dynamic-architecture table), for `blas_coretype`.
    static let openBLASCores = [
        "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn", "Dunnington", "Nehalem",
        "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Sandybridge", "Bobcat", "Bulldozer", "Piledriver",
        "Haswell", "Steamroller", "Excavator", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids",
    ]

    /// Threads and BLAS kernels: values that would only waste memory or be ignored silently.
    static func validateMachine(_ c: TrainingConfig) throws {
        let most = max(8, 4 * ProcessInfo.processInfo.activeProcessorCount)
        if c.numThreads < 0 || c.numThreads > most {
            throw ConfigError.invalidValue(
                key: "num_threads", value: "\(c.numThreads)",
                rule:
                    "must be 0 (automatic: cores / ranks) to \(most) (4 × this machine's cores); each thread has its own scratch"
            )
        }
        let timeout = c.distributedTimeoutMinutes
        if !(timeout > 0 && timeout.isFinite) {
            throw ConfigError.invalidValue(
                key: "distributed_timeout_minutes", value: "\(timeout)", rule: "must be a positive number of minutes")
        }
        let core = c.blasCoretype
        if !["auto", "env"].contains(core) && !openBLASCores.contains(where: { $0.lowercased() == core.lowercased() }) {
            throw ConfigError.invalidValue(
                key: "blas_coretype", value: "\"\(core)\"",
                rule: "must be auto, env or one of OpenBLAS's core names: \(openBLASCores.joined(separator: ", "))")
        }
    }

    /// Required keys: set (a missing one is named as missing) and positive.
    /// Megatron's sample-based keys: train_samples instead of train_iters (with a global batch size to
    /// divide by), and the LR's sample keys only with it, never beside their iteration twins.
    static func validateSampleSchedule(_ c: TrainingConfig) throws {
        guard let samples = c.trainSamples else {
            for (key, v) in [("lr_decay_samples", c.lrDecaySamples), ("lr_warmup_samples", c.lrWarmupSamples)]
            where v != nil {
                throw ConfigError.inconsistent(
                    keys: [key, "train_samples"], rule: "\(key) is for sample-based training: give train_samples too")
            }
            return
        }
        if c.providedKeys.contains("train_iters") && !c.derivedTrainIters {
            throw ConfigError.inconsistent(keys: ["train_samples", "train_iters"], rule: "give only one of them")
        }
        guard let gbs = c.globalBatchSize else {
            throw ConfigError.inconsistent(
                keys: ["train_samples", "global_batch_size"],
                rule: "sample-based training needs global_batch_size (train_iters = train_samples ÷ it)")
        }
        if samples < gbs {
            throw ConfigError.invalidValue(
                key: "train_samples", value: "\(samples)", rule: "must be at least one global batch (\(gbs))")
        }
        for (key, twin, v, given) in [
            ("lr_decay_samples", "lr_decay_iters", c.lrDecaySamples, c.lrDecayIters != nil),
            ("lr_warmup_samples", "lr_warmup_iters", c.lrWarmupSamples, c.lrWarmupIters != 0),
        ] {
            if let v, v < 0 { throw ConfigError.invalidValue(key: key, value: "\(v)", rule: "must be ≥ 0") }
            if given {
                throw ConfigError.inconsistent(
                    keys: [twin, "train_samples"], rule: "sample-based training takes \(key) instead of \(twin)")
            }
        }
    }

    /// WSD needs the length of its final decay (iterations, or samples in sample-based training).
    static func validateWSD(_ c: TrainingConfig) throws {
        let (key, value) =
            c.trainSamples != nil
            ? ("lr_wsd_decay_samples", c.lrWsdDecaySamples) : ("lr_wsd_decay_iters", c.lrWsdDecayIters)
        guard c.lrDecayStyle == .wsd else { return }
        guard let value else {
            throw ConfigError.inconsistent(
                keys: ["lr_decay_style", key], rule: "WSD needs \(key): the length of its final decay")
        }
        if value <= 0 { throw ConfigError.invalidValue(key: key, value: "\(value)", rule: "must be positive") }
    }

    static func validateRequired(_ c: TrainingConfig) throws {
        for key in ConfigKeys.all where key.required {
            let value: Double
            switch key.field {
            case .int(let kp): value = Double(c[keyPath: kp])
            case .double(let kp): value = c[keyPath: kp]
            default: continue
            }
            if !c.providedKeys.contains(key.name) && value == 0 { throw ConfigError.missingKey(key: key.name) }
            if !(value > 0 && value.isFinite) {
                let rule =
                    key.field.typeName == "an integer" ? "must be a positive integer" : "must be a positive number"
                throw ConfigError.invalidValue(
                    key: key.name, value: "\(key.field.typeName == "an integer" ? "\(Int(value))" : "\(value)")",
                    rule: rule)
            }
        }
    }

    static func validateModel(_ c: TrainingConfig) throws {
        let h = c.hiddenSize, a = c.numAttentionHeads, s = c.seqLength
        if let kv = c.kvChannels, kv <= 0 {
            throw ConfigError.invalidValue(
                key: "kv_channels", value: "\(kv)", rule: "must be positive (each head's width; leave it out for h / a)"
            )
        }
        if c.kvChannels == nil && h % a != 0 {
            throw ConfigError.inconsistent(
                keys: ["hidden_size", "num_attention_heads"],
                rule:
                    "hidden_size \(h) must be divisible by num_attention_heads \(a) (e.g. num_attention_heads "
                    + "\(largestDivisor(of: h, atMost: a)))"
            )
        }
        if let f = c.ffnHiddenSize, f <= 0 {
            throw ConfigError.invalidValue(key: "ffn_hidden_size", value: "\(f)", rule: "must be positive")
        }
        let maxPos = c.maxPositionEmbeddings ?? s
        if maxPos <= 0 {
            throw ConfigError.invalidValue(key: "max_position_embeddings", value: "\(maxPos)", rule: "must be positive")
        }
        if s > maxPos {
            throw ConfigError.inconsistent(
                keys: ["seq_length", "max_position_embeddings"],
                rule:
                    "seq_length \(s) exceeds max_position_embeddings \(maxPos); raise max_position_embeddings to at "
                    + "least \(s) or lower seq_length"
            )
        }
        for (name, p) in [("hidden_dropout", c.hiddenDropout), ("attention_dropout", c.attentionDropout)]
        where !(p >= 0 && p < 1) {
            throw ConfigError.invalidValue(key: name, value: "\(p)", rule: "must be in [0, 1)")
        }
        if c.initMethodStd <= 0 {
            throw ConfigError.invalidValue(
                key: "init_method_std", value: "\(c.initMethodStd)", rule: "must be positive")
        }
        if c.normEpsilon <= 0 {
            throw ConfigError.invalidValue(key: "norm_epsilon", value: "\(c.normEpsilon)", rule: "must be positive")
        }
        if c.groupQueryAttention && !(c.numQueryGroups > 0 && a % c.numQueryGroups == 0) {
            throw ConfigError.inconsistent(
                keys: ["num_query_groups", "num_attention_heads"],
                rule:
                    "num_query_groups \(c.numQueryGroups) must be positive and divide num_attention_heads \(a) "
                    + "(each group shares its keys and values with a whole number of query heads)")
        }
        try validatePositions(c)
        if c.makeVocabSizeDivisibleBy <= 0 {
            throw ConfigError.invalidValue(
                key: "make_vocab_size_divisible_by", value: "\(c.makeVocabSizeDivisibleBy)", rule: "must be positive")
        }
    }

    /// The position keys: a table or rope, and rope's base, rotated share and scaling.
    static func validatePositions(_ c: TrainingConfig) throws {
        if !c.addPositionEmbedding && c.positionEmbeddingType == .learnedAbsolute {
            throw ConfigError.inconsistent(
                keys: ["add_position_embedding", "position_embedding_type"],
                rule:
                    "a model without any positions is not built: with add_position_embedding false "
                    + "(--no-position-embedding) set position_embedding_type rope")
        }
        if c.rotaryBase <= 0 {
            throw ConfigError.invalidValue(key: "rotary_base", value: "\(c.rotaryBase)", rule: "must be positive")
        }
        if !(c.rotaryPercent > 0 && c.rotaryPercent <= 1) {
            throw ConfigError.invalidValue(
                key: "rotary_percent", value: "\(c.rotaryPercent)", rule: "must be in (0, 1]")
        }
        _ = try c.slidingWindow()
        if c.useRopeScaling && c.positionEmbeddingType != .rope {
            throw ConfigError.inconsistent(
                keys: ["use_rope_scaling", "position_embedding_type"],
                rule: "rope scaling rescales rotary frequencies: set position_embedding_type rope, or drop it")
        }
        if !(c.ropeScalingFactor >= 1 && c.ropeScalingFactor < 1e6) {
            throw ConfigError.invalidValue(
                key: "rope_scaling_factor", value: "\(c.ropeScalingFactor)",
                rule: "must be at least 1 and below 1e6 (Llama 3.1 uses 8, Llama 3.2 32)")
        }
        let headWidth = c.headWidth
        if c.positionEmbeddingType == .rope && Int(Double(headWidth) * c.rotaryPercent) < 2 {
            throw ConfigError.inconsistent(
                keys: ["rotary_percent", "hidden_size", "num_attention_heads"],
                rule: "rope must rotate at least two of each head's \(headWidth) channels; raise rotary_percent")
        }
    }

    /// The grid: world = t · p · d, and what t must divide.
    static func validateGrid(_ c: TrainingConfig, worldSize: Int) throws {
        let t = c.tensorModelParallelSize, p = c.pipelineModelParallelSize, h = c.hiddenSize, a = c.numAttentionHeads,
            s = c.seqLength
        if t <= 0 {
            throw ConfigError.invalidValue(
                key: "tensor_model_parallel_size", value: "\(t)", rule: "must be a positive integer")
        }
        if p <= 0 {
            throw ConfigError.invalidValue(
                key: "pipeline_model_parallel_size", value: "\(p)", rule: "must be a positive integer")
        }
        if worldSize % (t * p) != 0 {
            throw ConfigError.inconsistent(
                keys: ["tensor_model_parallel_size", "pipeline_model_parallel_size"],
                rule:
                    "the world size \(worldSize) must be a multiple of tensor_model_parallel_size \(t) × "
                    + "pipeline_model_parallel_size \(p) = \(t * p); run with -np "
                    + "\(max(t * p, worldSize / (t * p) * t * p)) or choose sizes whose product divides "
                    + "\(worldSize)"
            )
        }
        if a % t != 0 {
            throw ConfigError.inconsistent(
                keys: ["num_attention_heads", "tensor_model_parallel_size"],
                rule:
                    "num_attention_heads \(a) must be divisible by tensor_model_parallel_size \(t) (each rank "
                    + "computes whole heads); try tensor_model_parallel_size \(largestDivisor(of: a, atMost: t))"
            )
        }
        if c.groupQueryAttention && c.numQueryGroups % t != 0 {
            throw ConfigError.inconsistent(
                keys: ["num_query_groups", "tensor_model_parallel_size"],
                rule:
                    "num_query_groups \(c.numQueryGroups) must be divisible by tensor_model_parallel_size \(t) "
                    + "(each rank computes whole groups); try tensor_model_parallel_size "
                    + "\(largestDivisor(of: c.numQueryGroups, atMost: t))")
        }
        if h % t != 0 {
            throw ConfigError.inconsistent(
                keys: ["hidden_size", "tensor_model_parallel_size"],
                rule:
                    "hidden_size \(h) must be divisible by tensor_model_parallel_size \(t); try "
                    + "tensor_model_parallel_size \(largestDivisor(of: h, atMost: t))"
            )
        }
        let ffn = c.ffnHiddenSize ?? GPTConfig.defaultFFN(hidden: h, swiglu: c.swiglu)
        if ffn % t != 0 {
            throw ConfigError.inconsistent(
                keys: ["ffn_hidden_size", "tensor_model_parallel_size"],
                rule:
                    "ffn_hidden_size \(ffn) must be divisible by tensor_model_parallel_size \(t); try "
                    + "tensor_model_parallel_size \(largestDivisor(of: ffn, atMost: t))"
            )
        }
        if c.sequenceParallel && t > 1 && s % t != 0 {
            throw ConfigError.inconsistent(
                keys: ["seq_length", "tensor_model_parallel_size", "sequence_parallel"],
                rule:
                    "with sequence_parallel, seq_length \(s) must be divisible by tensor_model_parallel_size \(t); "
                    + "try seq_length \(max(t, s / t * t)) or sequence_parallel false"
            )
        }
    }

    static func validateBatch(_ c: TrainingConfig, worldSize: Int) throws {
        let mbs = c.microBatchSize, dp = worldSize / (c.tensorModelParallelSize * c.pipelineModelParallelSize)
        guard let gbs = c.globalBatchSize else { return }
        if gbs <= 0 {
            throw ConfigError.invalidValue(key: "global_batch_size", value: "\(gbs)", rule: "must be positive")
        }
        let mostMicrobatches = 1 << 20
        if gbs / max(1, mbs * dp) > mostMicrobatches {
            throw ConfigError.invalidValue(
                key: "global_batch_size", value: "\(gbs)",
                rule:
                    "gives \(gbs / max(1, mbs * dp)) micro-batches per step on each replica (more than \(mostMicrobatches)): "
                    + "one iteration would take hours; check the value (Megatron's runs use hundreds to thousands)")
        }
        if gbs % (mbs * dp) != 0 {
            let lower = max(mbs * dp, gbs / (mbs * dp) * mbs * dp)
            throw ConfigError.inconsistent(
                keys: ["global_batch_size", "micro_batch_size"],
                rule:
                    "global_batch_size \(gbs) must be a multiple of micro_batch_size \(mbs) × data-parallel size "
                    + "\(dp) (world \(worldSize) / (t·p)) = \(mbs * dp); try global_batch_size \(lower)"
            )
        }
    }

    /// rampup_batch_size (Megatron's rules): sample-based training only, and every batch size of the
    /// ramp a whole number of micro-batches on every replica (so each is a valid global batch).
    static func validateRampup(_ c: TrainingConfig, worldSize: Int) throws {
        guard !c.rampupBatchSize.isEmpty else { return }
        guard let gbs = c.globalBatchSize else {
            throw ConfigError.inconsistent(
                keys: ["rampup_batch_size", "global_batch_size"], rule: "the ramp ends at global_batch_size: give it")
        }
        let ramp = try BatchRampup(values: c.rampupBatchSize, globalBatchSize: gbs)
        if c.trainSamples == nil {
            throw ConfigError.inconsistent(
                keys: ["rampup_batch_size", "train_iters"],
                rule: "batch-size ramp-up is for sample-based training: give train_samples instead of train_iters")
        }
        let unit = c.microBatchSize * worldSize / (c.tensorModelParallelSize * c.pipelineModelParallelSize)
        if let bad = ramp.batchSizes.first(where: { $0 % unit != 0 }) {
            throw ConfigError.inconsistent(
                keys: ["rampup_batch_size", "micro_batch_size"],
                rule:
                    "the ramp's batch size \(bad) must be a multiple of micro_batch_size × data-parallel size = "
                    + "\(unit), so every batch of the ramp (\(ramp.batchSizes.map(String.init).joined(separator: ", "))) "
                    + "is whole micro-batches on every replica")
        }
    }

    /// decoupled_lr > 0, and decoupled_min_lr (when given) between 0 and it.
    static func validateDecoupledLR(_ c: TrainingConfig) throws {
        guard let peak = c.decoupledLR else {
            if c.decoupledMinLR != nil {
                throw ConfigError.inconsistent(
                    keys: ["decoupled_min_lr", "decoupled_lr"], rule: "decoupled_min_lr needs decoupled_lr")
            }
            return
        }
        guard peak > 0, peak.isFinite else {
            throw ConfigError.invalidValue(key: "decoupled_lr", value: "\(peak)", rule: "must be a number > 0")
        }
        let floor = c.decoupledMinLR ?? c.minLR
        if !(floor >= 0 && floor <= peak) {
            throw ConfigError.inconsistent(
                keys: [c.decoupledMinLR == nil ? "min_lr" : "decoupled_min_lr", "decoupled_lr"],
                rule: "the decoupled schedule's floor \(floor) must be between 0 and decoupled_lr \(peak)")
        }
    }

    /// Learning-rate schedule, AdamW and clipping.
    static func validateOptimizer(_ c: TrainingConfig) throws {
        if c.minLR < 0 || c.minLR > c.lr {
            throw ConfigError.inconsistent(
                keys: ["min_lr", "lr"], rule: "min_lr \(c.minLR) must be between 0 and lr \(c.lr)")
        }
        try validateDecoupledLR(c)
        if c.lrWarmupIters < 0 {
            throw ConfigError.invalidValue(key: "lr_warmup_iters", value: "\(c.lrWarmupIters)", rule: "must be ≥ 0")
        }
        if let f = c.lrWarmupFraction {
            if !(0...1).contains(f) {
                throw ConfigError.invalidValue(key: "lr_warmup_fraction", value: "\(f)", rule: "must be in [0, 1]")
            }
            if c.lrWarmupIters > 0 {
                throw ConfigError.inconsistent(
                    keys: ["lr_warmup_fraction", "lr_warmup_iters"], rule: "set only one of them")
            }
        }
        if let d = c.lrDecayIters, d <= 0 {
            throw ConfigError.invalidValue(key: "lr_decay_iters", value: "\(d)", rule: "must be positive")
        }
        if !(c.layerWiseLrDecay > 0 && c.layerWiseLrDecay <= 1) {
            throw ConfigError.invalidValue(
                key: "layer_wise_lr_decay", value: "\(c.layerWiseLrDecay)",
                rule: "must be in (0, 1] (1: every layer at the full learning rate)")
        }
        for (name, v) in [("adam_beta1", c.adamBeta1), ("adam_beta2", c.adamBeta2), ("sgd_momentum", c.sgdMomentum)]
        where !(v >= 0 && v < 1) {
            throw ConfigError.invalidValue(key: name, value: "\(v)", rule: "must be in [0, 1)")
        }
        if c.adamEps <= 0 {
            throw ConfigError.invalidValue(key: "adam_eps", value: "\(c.adamEps)", rule: "must be positive")
        }
        if c.weightDecay < 0 {
            throw ConfigError.invalidValue(key: "weight_decay", value: "\(c.weightDecay)", rule: "must be ≥ 0")
        }
        if !(c.clipGrad >= 0 && c.clipGrad.isFinite) {
            throw ConfigError.invalidValue(
                key: "clip_grad", value: "\(c.clipGrad)", rule: "must be a finite number ≥ 0 (0 disables clipping)")
        }
    }

    /// bf16 / fp16 and the loss scaler.
    static func validatePrecision(_ c: TrainingConfig) throws {
        if let s = c.lossScale, !(s > 0 && s.isFinite) {
            throw ConfigError.invalidValue(
                key: "loss_scale", value: "\(s)", rule: "must be a positive number (a power of 2 keeps scaling exact)")
        }
        if c.bf16 && c.fp16 {
            throw ConfigError.inconsistent(keys: ["bf16", "fp16"], rule: "choose one reduced precision")
        }
        if !(c.initialLossScale > 0 && c.initialLossScale.isFinite) {
            throw ConfigError.invalidValue(
                key: "initial_loss_scale", value: "\(c.initialLossScale)", rule: "must be a positive number")
        }
        if !(c.minLossScale > 0 && c.minLossScale <= c.initialLossScale) {
            throw ConfigError.invalidValue(
                key: "min_loss_scale", value: "\(c.minLossScale)",
                rule: "must be positive and at most initial_loss_scale")
        }
        if c.lossScaleWindow < 1 {
            throw ConfigError.invalidValue(key: "loss_scale_window", value: "\(c.lossScaleWindow)", rule: "must be ≥ 1")
        }
        if c.hysteresis < 1 {
            throw ConfigError.invalidValue(key: "hysteresis", value: "\(c.hysteresis)", rule: "must be ≥ 1")
        }
    }

    static func validateRecompute(_ c: TrainingConfig) throws {
        guard let g = c.recomputeGranularity else {
            if c.recomputeMethod != nil {
                throw ConfigError.inconsistent(
                    keys: ["recompute_method", "recompute_granularity"],
                    rule: "recompute_method needs recompute_granularity full")
            }
            return
        }
        guard g == .full else { return }
        guard let m = c.recomputeMethod else {
            throw ConfigError.inconsistent(
                keys: ["recompute_granularity", "recompute_method"],
                rule: "full recomputation needs recompute_method uniform or block")
        }
        let least = m == .block ? 0 : 1
        guard let n = c.recomputeNumLayers, n >= least else {
            throw ConfigError.inconsistent(
                keys: ["recompute_method", "recompute_num_layers"],
                rule: "\(m.rawValue) recomputation needs recompute_num_layers ≥ \(least)")
        }
    }

    static func validateLogging(_ c: TrainingConfig) throws {
        for (name, v) in [
            ("eval_interval", c.evalInterval), ("log_interval", c.logInterval),
            ("tensorboard_log_interval", c.tensorboardLogInterval),
        ] where v <= 0 {
            throw ConfigError.invalidValue(key: name, value: "\(v)", rule: "must be positive")
        }
        if c.evalIters < 0 {
            throw ConfigError.invalidValue(key: "eval_iters", value: "\(c.evalIters)", rule: "must be ≥ 0")
        }
        if c.overrideOptParamScheduler && c.useCheckpointOptParamScheduler {
            throw ConfigError.inconsistent(
                keys: ["override_opt_param_scheduler", "use_checkpoint_opt_param_scheduler"],
                rule: "give at most one: use this run's schedule or the checkpoint's")
        }
        if let e = c.exitInterval, e <= 0 {
            throw ConfigError.invalidValue(key: "exit_interval", value: "\(e)", rule: "must be positive")
        }
        if ExitSignal.number(c.exitSignal) == nil {
            throw ConfigError.invalidValue(
                key: "exit_signal", value: "\"\(c.exitSignal)\"",
                rule: "must be one of " + ExitSignal.names.map(\.name).joined(separator: ", "))
        }
        if let d = c.exitDurationInMins, !(d >= 0 && d.isFinite) {
            throw ConfigError.invalidValue(key: "exit_duration_in_mins", value: "\(d)", rule: "must be a number ≥ 0")
        }
        if let si = c.saveInterval {
            if si <= 0 {
                throw ConfigError.invalidValue(key: "save_interval", value: "\(si)", rule: "must be positive")
            }
            if c.save == nil {
                throw ConfigError.inconsistent(
                    keys: ["save_interval", "save"],
                    rule: "save_interval \(si) needs a save directory; set save (e.g. --save checkpoints)")
            }
        }
    }

    /// Stages and virtual stages (PipelineLayout's rules) and the interleaved schedule's micro-batches.
    static func validatePipeline(_ c: TrainingConfig, worldSize: Int, training: Bool = true) throws {
        let p = c.pipelineModelParallelSize, mbs = c.microBatchSize
        let layout = try PipelineLayout(c)
        if training && c.pipelineSchedule == .zeroBubbleH1 {
            if layout.chunks > 1 {
                throw ConfigError.inconsistent(
                    keys: ["pipeline_schedule", "num_layers_per_virtual_pipeline_stage"],
                    rule: "zb-h1 runs one chunk per stage; remove num_layers_per_virtual_pipeline_stage or use 1f1b")
            }
            if c.recomputeGranularity == .full {
                throw ConfigError.inconsistent(
                    keys: ["pipeline_schedule", "recompute_granularity"],
                    rule:
                        "zb-h1 defers weight gradients, which need each layer's saved inputs, while full "
                        + "recomputation shares them between layers; use recompute_granularity selective or 1f1b")
            }
        }
        let dp = worldSize / (c.tensorModelParallelSize * p), v = layout.chunks
        let m = (c.globalBatchSize ?? mbs * dp) / (mbs * dp)
        if training && v > 1 && m % p != 0 {
            throw ConfigError.inconsistent(
                keys: ["global_batch_size", "pipeline_model_parallel_size"],
                rule:
                    "the interleaved schedule (v = \(v)) needs the number of micro-batches \(m) (global_batch_size / "
                    + "(micro_batch_size · data-parallel size)) to be a multiple of pipeline_model_parallel_size "
                    + "\(p); try global_batch_size \(max(p, (m + p - 1) / p * p) * mbs * dp)"
            )
        }
        if training && v > 1, let ramp = c.rampup,
            let bad = ramp.batchSizes.first(where: { ($0 / (mbs * dp)) % p != 0 })
        {
            throw ConfigError.inconsistent(
                keys: ["rampup_batch_size", "pipeline_model_parallel_size"],
                rule:
                    "the interleaved schedule (v = \(v)) needs every batch of the ramp to be a multiple of "
                    + "pipeline_model_parallel_size \(p) micro-batches; batch size \(bad) gives \(bad / (mbs * dp))")
        }
    }

    static func largestDivisor(of n: Int, atMost k: Int) -> Int {
        var d = min(n, k)
        while d > 1 && n % d != 0 { d -= 1 }
        return max(1, d)
    }
}

// MegatronArguments+Table.swift — Megatron-LM's whole argument list (MegatronArgumentList, generated
// from megatron-core's own parser) and what each argument is here: a config key, an alias, accepted
// and ignored, accepted for the value built here, or refused — by name with its own reason
// (MegatronArguments.unsupported), by a feature's name prefix (moe_, fp8, rope_, …) or, for the
// rest, with the reason of its Megatron argument group (RL, vision, inference engine, NVIDIA
// services, …).

/// What a Megatron-LM argument does in this trainer.
public enum MegatronDisposition: Equatable, Sendable {
    /// A config key of the same name.
    case key
    /// Sets other keys (MegatronArguments.aliases).
    case alias
    /// Accepted and named once at start-up (MegatronArguments.ignored).
    case ignored
    /// Accepted with the value this trainer builds (MegatronArguments.fixedChoices).
    case fixedChoice
    /// Refused with this reason.
    case refused(String)
}

extension MegatronArguments {
    /// Megatron-LM's arguments: name (config spelling) → argument group and whether it takes a value.
    public static let megatronLM: [String: (group: String, takesValue: Bool)] = {
        var table: [String: (group: String, takesValue: Bool)] = [:]
        for line in MegatronArgumentList.table.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            table[String(fields[0])] = (String(fields[1]), fields[2] == "value")
        }
        return table
    }()

    /// The megatron-core release the list was read from.
    public static var megatronLMVersion: String { MegatronArgumentList.version }

    /// Why the arguments of each Megatron argument group that are not keys here are refused.
    public static let groupReasons: [String: String] = [
        "transformer configuration":
            "a transformer option this trainer does not build (its transformer is GPT-2's and BERT's, with Megatron's "
            + "Llama-style options: rope, RMSNorm, SwiGLU, no linear biases, an untied head, grouped-query attention)",
        "network size":
            "a model-shape option this trainer does not build (GPT-2 and BERT shapes, and the Llama-style options)",
        "checkpointing":
            "a checkpoint option this trainer does not build (checkpoints are HDF5 directories; see save, load, "
            + "finetune, no_load_optim, no_save_optim)",
        "distributed init":
            "a torch.distributed / NCCL option with no counterpart here (ranks come from MPI; the grid is set by "
            + "the *_parallel_size keys)",
        "inference":
            "an option of Megatron's inference engine: use `megatron generate` or `megatron serve` and their flags",
        "training": "a training option this trainer does not build yet",
        "rl": "reinforcement learning (GRPO) is not built",
        "data and dataloader":
            "a data option this trainer does not build (data is MMIDIDX from preprocess-data, given by data_path "
            + "or train/valid/test_data_path)",
        "logging": "a logging option this trainer does not build (see the log_* and tensorboard_* keys)",
        "vision": "vision models are not built",
        "learning rate and weight decay": "a learning-rate or weight-decay option this trainer does not build yet",
        "tokenizer":
            "a tokenizer option this trainer does not build (its tokenizers: GPT2BPETokenizer, BertWordPiece*, "
            + "NullTokenizer, and over a SentencePiece tokenizer_model Llama2Tokenizer, GPTSentencePieceTokenizer and "
            + "SentencePieceTokenizer as Megatron's legacy tokenizers encode, and over a byte-level BPE tokenizer.json "
            + "(Llama 3, Qwen 2, GPT-2 style) HuggingFaceTokenizer, and over a tiktoken rank file TikTokenizer)",
        "regularization": "a regularization or optimizer option this trainer does not build yet",
        "experimental": "an experimental Megatron feature that is not built",
        "experimental_attention_variant": "an experimental attention variant that is not built",
        "In-process restart":
            "in-process restart is not built: a failed rank ends the whole job; resume it with --load",
        "biencoder": "biencoder / ICT retrieval models are not built",
        "profiling":
            "a CUDA or PyTorch profiler option: use --trace-dir (Chrome trace per rank) or `megatron benchmark`",
        "mixed precision": "a mixed-precision option this trainer does not build (bf16, fp16 and the loss-scaler keys)",
        "Logits Distillation": "knowledge distillation is not built",
        "validation": "a validation option this trainer does not build (see eval_interval, eval_iters)",
        "mla": "multi-latent attention is not built",
        "fault injector": "fault injection is not built",
        "one logger": "NVIDIA's one-logger service is not part of this trainer",
        "moe": "mixture-of-experts layers are not built: every layer has one dense MLP",
        "RNG and initialization": "an initialisation option this trainer does not build (see seed, init_method_std)",
        "straggler": "NVIDIA's straggler detector is not part of this trainer (`megatron benchmark` times ranks)",
        "rerun engine": "Megatron's rerun state machine is not built (NaN losses are skipped or stop the run here)",
        "ft_package": "NVIDIA's fault-tolerance package is not part of this trainer",
        "Transformer-Engine": "Transformer Engine is CUDA-only",
        "sft": "supervised finetuning of chat models is not built (`megatron finetune` runs RACE and GLUE tasks)",
        "msc": "the multi-storage client is not part of this trainer (paths are local files)",
        "heterogeneous architecture": "heterogeneous layer configurations are not built",
        "autoresume": "the SLURM autoresume hook is not part of this trainer",
        "workload inspector": "NVIDIA's workload inspector is not part of this trainer",
    ]

    static let ropeReason =
        "rope interpolation, YaRN and interleaved rope are not built: rope here is plain (rotary_base, rotary_percent) "
        + "or Llama 3.1's scaled rope (use_rope_scaling, rope_scaling_factor)"

    /// Reasons by name prefix, ahead of the group's: one feature's arguments spread over groups.
    static let prefixReasons: [(prefix: String, reason: String)] = [
        ("moe_", "mixture-of-experts layers are not built: every layer has one dense MLP"),
        ("expert_", "mixture-of-experts layers are not built: every layer has one dense MLP"),
        ("mtp_", "multi-token prediction is not built"),
        ("fp8", "fp8 is not built: use --bf16 or --fp16"),
        ("fp4", "fp4 is not built: use --bf16 or --fp16"),
        ("cuda_graph", "CUDA graphs have no counterpart on the CPU"),
        ("rotary_", ropeReason),
        ("rope_", ropeReason),
        ("retro_", "Retro is not built"),
        ("mamba_", "Mamba / hybrid models are not built"),
        ("hybrid_", "Mamba / hybrid models are not built"),
    ]

    /// What a Megatron-LM argument (or one this trainer knows from older Megatron scripts) does here;
    /// nil for a name that is neither.
    public static func disposition(of name: String) -> MegatronDisposition? {
        if ConfigKeys.named(name) != nil { return .key }
        if aliases[name] != nil { return .alias }
        if ignoredArgument(named: name) != nil { return .ignored }
        if fixedChoices[name] != nil { return .fixedChoice }
        if let reason = unsupported[name] { return .refused(reason) }
        guard let entry = megatronLM[name] else { return nil }
        if let byPrefix = prefixReasons.first(where: { name.hasPrefix($0.prefix) }) { return .refused(byPrefix.reason) }
        return .refused(groupReasons[entry.group] ?? "a Megatron-LM argument (\(entry.group)) that is not built here")
    }

    /// For `train --help`: how Megatron-LM's argument list divides here.
    public static var tableSummary: String {
        var counts: [String: Int] = [:]
        var refusedByGroup: [String: Int] = [:]
        for (name, entry) in megatronLM {
            switch disposition(of: name) {
            case .key: counts["config keys", default: 0] += 1
            case .alias: counts["aliases", default: 0] += 1
            case .ignored: counts["ignored", default: 0] += 1
            case .fixedChoice: counts["fixed choices", default: 0] += 1
            case .refused, .none: refusedByGroup[entry.group, default: 0] += 1
            }
        }
        let parts = ["config keys", "aliases", "ignored", "fixed choices"].map { "\(counts[$0, default: 0]) \($0)" }
        let refused = refusedByGroup.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }
        return "Megatron-LM's \(megatronLM.count) arguments (megatron-core \(megatronLMVersion)): "
            + parts.joined(separator: ", ") + "; refused with their group's reason (`--flag` names it): "
            + refused.joined(separator: ", ")
    }
}

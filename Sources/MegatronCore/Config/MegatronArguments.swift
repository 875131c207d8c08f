// MegatronArguments.swift — Megatron-LM training arguments that are not config keys of their own,
// so a launch line copied from a Megatron-LM script runs as it is:
//   - aliases: set implemented keys (`--checkpoint-activations` = full uniform recomputation);
//   - ignored: switches for CUDA fusions, backends and implementations with no meaning on this CPU
//     trainer (what they select is what runs here anyway); accepted, named once at start-up with
//     the reason;
//   - unsupported: arguments whose behaviour is not built yet; refused with the reason and what
//     to do instead, never silently dropped.
// Names are Megatron's (`arguments.py`), in the config spelling (dashes as underscores).

/// An argument accepted and ignored, with why it does not apply here.
public struct IgnoredArgument: Sendable {
    public let name: String
    /// Whether the flag takes a value (`--transformer-impl local`) or is a switch.
    public let takesValue: Bool
    public let reason: String
}

public enum MegatronArguments {
    static let fusion = "a CUDA kernel fusion switch: the CPU kernels here are fixed and compute the same function"
    static let overlap = "a CUDA stream-overlap switch: gradient buckets already reduce during the backward pass here"

    public static let ignored: [IgnoredArgument] =
        [
            "masked_softmax_fusion", "no_masked_softmax_fusion", "bias_gelu_fusion", "no_bias_gelu_fusion",
            "bias_dropout_fusion", "no_bias_dropout_fusion", "gradient_accumulation_fusion",
            "no_gradient_accumulation_fusion", "persist_layer_norm", "no_persist_layer_norm", "apply_rope_fusion",
            "no_rope_fusion", "cross_entropy_loss_fusion",
        ].map {
            IgnoredArgument(name: $0, takesValue: false, reason: fusion)
        }
        + [
            "overlap_grad_reduce", "overlap_param_gather", "async_tensor_model_parallel_allreduce",
            "no_async_tensor_model_parallel_allreduce", "tp_comm_overlap",
        ].map { IgnoredArgument(name: $0, takesValue: false, reason: overlap) }
        + ["apply_query_key_layer_scaling", "no_query_key_layer_scaling"].map {
            IgnoredArgument(
                name: $0, takesValue: false,
                reason: "it scales the scores down and the softmax input back up, the identity in fp32 softmax")
        } + [
            IgnoredArgument(
                name: "use_flash_attn", takesValue: false,
                reason: "attention here is always a tiled kernel that keeps only the log-sum-exp for backward"),
            IgnoredArgument(
                name: "transformer_impl", takesValue: true, reason: "there is one transformer implementation"),
            IgnoredArgument(
                name: "attention_backend", takesValue: true,
                reason: "attention here is always the tiled CPU kernel that keeps only the log-sum-exp for backward"),
            IgnoredArgument(name: "use_mcore_models", takesValue: false, reason: "there is one model implementation"),
            IgnoredArgument(name: "use_legacy_models", takesValue: false, reason: "there is one model implementation"),
            IgnoredArgument(name: "distributed_backend", takesValue: true, reason: "MPI is the only backend"),
            IgnoredArgument(
                name: "DDP_impl", takesValue: true, reason: "one data-parallel implementation (bucketed all-reduce)"),
            IgnoredArgument(name: "num_workers", takesValue: true, reason: "samples are built in the training process"),
            IgnoredArgument(
                name: "data_impl", takesValue: true, reason: "datasets are always read as MMIDIDX through mmap"),
            IgnoredArgument(
                name: "accumulate_allreduce_grads_in_fp32", takesValue: false,
                reason: "gradients are always accumulated and reduced in fp32 here"),
            IgnoredArgument(
                name: "attention_softmax_in_fp32", takesValue: false, reason: "softmax always runs in fp32 here"),
            IgnoredArgument(
                name: "fp32_residual_connection", takesValue: false,
                reason: "the residual stream is always fp32 here"),
            IgnoredArgument(
                name: "openai_gelu", takesValue: false,
                reason: "GELU here is always the tanh approximation, which openai_gelu selects in Megatron"),
            IgnoredArgument(
                name: "no_load_rng", takesValue: false,
                reason:
                    "dropout masks are a function of (seed, iteration, micro-batch, site): no random state is loaded"),
            IgnoredArgument(
                name: "use_cpu_initialization", takesValue: false, reason: "initialisation always runs on the CPU"),
            IgnoredArgument(name: "manual_gc", takesValue: false, reason: "there is no Python garbage collector"),
            IgnoredArgument(
                name: "empty_unused_memory_level", takesValue: true, reason: "there is no CUDA caching allocator"),
            IgnoredArgument(
                name: "tensorboard_queue_size", takesValue: true, reason: "events are written as they happen"),
            IgnoredArgument(
                name: "timing_log_level", takesValue: true,
                reason: "`megatron benchmark` prints the per-phase times; training logs none"),
        ]

    /// Aliases: the name, then the keys and values it sets (Megatron's own mapping in arguments.py);
    /// a value marked `default` only fills a key the run has not set (Megatron's default for it).
    public static let aliases: [String: [(key: String, value: String, isDefault: Bool)]] = [
        "checkpoint_activations": [
            ("recompute_granularity", "full", false), ("recompute_method", "uniform", false),
            ("recompute_num_layers", "1", true),
        ],
        "recompute_activations": [("recompute_granularity", "selective", false)],
        "no_log_loss_scale_to_tensorboard": [("log_loss_scale_to_tensorboard", "false", false)],
        // Megatron's switch (store_false into bert_binary_head): BERT without the sentence-order head.
        "bert_no_binary_head": [("bert_binary_head", "false", false)],
        "disable_bias_linear": [("add_bias_linear", "false", false)],
        "no_position_embedding": [("add_position_embedding", "false", false)],
        "use_rotary_position_embeddings": [("position_embedding_type", "rope", false)],
    ]

    /// Arguments that select what this trainer always does: the values it builds are accepted (and
    /// change nothing); any other value is refused with the reason.
    public static let fixedChoices: [String: (accepted: [String], reason: String)] = [
        "rotary_interleaved": (
            ["false"], "rope rotates the two halves of each head (Megatron's default), not interleaved pairs"
        ),
        "vocab_extra_ids": (["0"], "extra sentinel ids (T5's) are not built: 0, Megatron's default, is the only value"),
        "ckpt_format": (
            ["torch", "torch_dist"],
            "checkpoints are always HDF5 here (any grid loads them; convert-checkpoint exports to Hugging Face)"
        ),
    ]

    /// Arguments refused for now, with what to do instead.
    public static let unsupported: [String: String] = [
        "num_experts": "mixture-of-experts layers are not built yet: every layer has one dense MLP",
        "expert_model_parallel_size": "mixture-of-experts layers are not built yet: every layer has one dense MLP",
        "context_parallel_size":
            "context parallelism is not built yet: split long sequences with sequence_parallel at t > 1 instead",
        "fp8_format": "fp8 is not built: use --bf16 or --fp16",
    ]

    /// The table for `train --help`: aliases, ignored arguments with reasons, refused ones.
    public static var helpText: String {
        func flag(_ name: String) -> String { "--" + name.replacingOccurrences(of: "_", with: "-") }
        let aliasLines = aliases.keys.sorted().map { name in
            "  \(flag(name)) = " + aliases[name]!.map { "\(flag($0.key)) \($0.value)" }.joined(separator: " ")
        }
        var reasons: [(String, [String])] = []
        for arg in ignored {
            if let i = reasons.firstIndex(where: { $0.0 == arg.reason }) {
                reasons[i].1.append(flag(arg.name))
            } else {
                reasons.append((arg.reason, [flag(arg.name)]))
            }
        }
        return "Megatron-LM arguments that are not keys here:\n aliases:\n" + aliasLines.joined(separator: "\n")
            + "\n accepted and ignored (named at start-up):\n"
            + reasons.map { "  \($0.1.joined(separator: " ")): \($0.0)" }.joined(separator: "\n")
            + "\n refused for now (exit 2 with what to do instead):\n  "
            + unsupported.keys.sorted().map(flag).joined(separator: " ")
            + "\n accepted with the value this trainer builds, refused with any other:\n"
            + fixedChoices.keys.sorted().map {
                "  \(flag($0)) \(fixedChoices[$0]!.accepted.joined(separator: " | ")): \(fixedChoices[$0]!.reason)"
            }.joined(separator: "\n")
            + "\n " + tableSummary
    }

    public static func ignoredArgument(named name: String) -> IgnoredArgument? { ignored.first { $0.name == name } }

    /// The start-up line naming every ignored argument of a run with its reason (flags that share a
    /// reason grouped); nil when none was given.
    public static func ignoredNote(_ names: [String]) -> String? {
        var byReason: [(reason: String, flags: [String])] = []
        for name in names {
            guard let arg = ignoredArgument(named: name) else { continue }
            let flag = "--" + name.replacingOccurrences(of: "_", with: "-")
            if let i = byReason.firstIndex(where: { $0.reason == arg.reason }) {
                if !byReason[i].flags.contains(flag) { byReason[i].flags.append(flag) }
            } else {
                byReason.append((arg.reason, [flag]))
            }
        }
        guard !byReason.isEmpty else { return nil }
        return "ignored Megatron-LM arguments: "
            + byReason.map { "\($0.flags.joined(separator: ", ")) (\($0.reason))" }.joined(separator: "; ")
    }
}

// ConfigKeys.swift — the one table of config keys: JSON name, field, and help. JSON files, the
// `--kebab-case` flags that override them, `megatron train --help` and the README's key list all
// come from here (the data and machine keys in ConfigKeys+Data.swift).

public enum ConfigField: Sendable {
    case int(WritableKeyPath<TrainingConfig, Int> & Sendable)
    case optionalInt(WritableKeyPath<TrainingConfig, Int?> & Sendable)
    case double(WritableKeyPath<TrainingConfig, Double> & Sendable)
    case optionalDouble(WritableKeyPath<TrainingConfig, Double?> & Sendable)
    case string(WritableKeyPath<TrainingConfig, String> & Sendable)
    case optionalString(WritableKeyPath<TrainingConfig, String?> & Sendable)
    case bool(WritableKeyPath<TrainingConfig, Bool> & Sendable)
    case stringList(WritableKeyPath<TrainingConfig, [String]> & Sendable)
    case choice(ChoiceField)

    public var typeName: String {
        switch self {
        case .int, .optionalInt: return "an integer"
        case .double, .optionalDouble: return "a number"
        case .string, .optionalString: return "a string"
        case .bool: return "true or false"
        case .stringList: return "a string or a list of strings/numbers"
        case .choice(let c): return "one of " + c.allowed.joined(separator: ", ")
        }
    }

    /// A key whose value is one of `E`'s names.
    static func choice<E: RawRepresentable & CaseIterable & Sendable>(
        _ kp: WritableKeyPath<TrainingConfig, E> & Sendable
    ) -> ConfigField where E.RawValue == String {
        .choice(
            ChoiceField(
                allowed: E.allCases.map(\.rawValue), optional: false,
                get: { $0[keyPath: kp].rawValue },
                set: { c, name in
                    guard let name, let v = E(rawValue: name) else { return false }
                    c[keyPath: kp] = v
                    return true
                }))
    }

    /// A key whose value is one of `E`'s names, or unset (null).
    static func optionalChoice<E: RawRepresentable & CaseIterable & Sendable>(
        _ kp: WritableKeyPath<TrainingConfig, E?> & Sendable
    ) -> ConfigField where E.RawValue == String {
        .choice(
            ChoiceField(
                allowed: E.allCases.map(\.rawValue), optional: true,
                get: { $0[keyPath: kp]?.rawValue },
                set: { c, name in
                    guard let name else { c[keyPath: kp] = nil; return true }
                    guard let v = E(rawValue: name) else { return false }
                    c[keyPath: kp] = v
                    return true
                }))
    }
}

/// Reads and writes an enum-valued key by name; `set` returns false for a name not in `allowed`.
public struct ChoiceField: Sendable {
    public let allowed: [String]
    public let optional: Bool
    let get: @Sendable (TrainingConfig) -> String?
    let set: @Sendable (inout TrainingConfig, String?) -> Bool
}

public struct ConfigKey: Sendable {
    public let name: String
    public let field: ConfigField
    public let help: String
    /// Required keys have no default; validation names the one that is missing.
    public var required = false
    /// The flag spelling: `train_iters` → `--train-iters`.
    public var flag: String { "--" + name.replacingOccurrences(of: "_", with: "-") }
}

public enum ConfigKeys {
    public static let all: [ConfigKey] =
        [
            // Model
            ConfigKey(
                name: "model_type", field: .choice(\.modelType),
                help: "GPT (causal LM) or BERT (bidirectional encoder, masked-LM + sentence-order heads) (GPT)"),
            ConfigKey(
                name: "bert_binary_head", field: .bool(\.bertBinaryHead),
                help: "BERT: the sentence-order head and token types (true)"),
            ConfigKey(
                name: "layernorm_arrangement", field: .choice(\.layernormArrangement),
                help: "BERT: pre_ln (the Megatron paper's rearrangement: LayerNorm before attention and MLP, a final "
                    + "LayerNorm) or post_ln (the original BERT: LayerNorm after each residual add and on the embeddings) (pre_ln)"
            ),
            ConfigKey(
                name: "mask_prob", field: .double(\.maskProb),
                help: "BERT: share of the non-special tokens of a sample predicted by the masked-LM head (0.15)"),
            ConfigKey(
                name: "short_seq_prob", field: .double(\.shortSeqProb),
                help: "BERT: probability that a sample's target length is drawn below seq_length − 3 (0.1)"),
            ConfigKey(
                name: "num_layers", field: .int(\.numLayers), help: "transformer layers (required)", required: true),
            ConfigKey(name: "hidden_size", field: .int(\.hiddenSize), help: "hidden size h (required)", required: true),
            ConfigKey(
                name: "ffn_hidden_size", field: .optionalInt(\.ffnHiddenSize),
                help: "MLP hidden size (default 4·hidden_size)"),
            ConfigKey(
                name: "kv_channels", field: .optionalInt(\.kvChannels),
                help:
                    "per-head width d (default hidden_size / num_attention_heads); QKV gives (a + 2g)·d columns, the projection maps a·d to h"
            ),
            ConfigKey(
                name: "num_attention_heads", field: .int(\.numAttentionHeads), help: "attention heads (required)",
                required: true),
            ConfigKey(
                name: "seq_length", field: .int(\.seqLength), help: "tokens per sample (required)", required: true),
            ConfigKey(
                name: "max_position_embeddings", field: .optionalInt(\.maxPositionEmbeddings),
                help: "position table size (default seq_length)"),
            ConfigKey(
                name: "hidden_dropout", field: .double(\.hiddenDropout),
                help: "dropout on embeddings and residual branches (0.1)"),
            ConfigKey(
                name: "attention_dropout", field: .double(\.attentionDropout),
                help: "dropout on attention probabilities (0.1)"),
            ConfigKey(
                name: "init_method_std", field: .double(\.initMethodStd),
                help: "std of the normal init (0.02); output projections use std/√(2·num_layers)"),
            ConfigKey(name: "norm_epsilon", field: .double(\.normEpsilon), help: "LayerNorm epsilon (1e-5)"),
            ConfigKey(
                name: "make_vocab_size_divisible_by", field: .int(\.makeVocabSizeDivisibleBy),
                help: "pad the vocabulary to a multiple of this (128); padded rows never affect results"),
            ConfigKey(
                name: "position_embedding_type", field: .choice(\.positionEmbeddingType),
                help:
                    "GPT: learned_absolute (a learned table, GPT-2) or rope (rotary, on queries and keys) (learned_absolute)"
            ),
            ConfigKey(
                name: "add_position_embedding", field: .bool(\.addPositionEmbedding),
                help:
                    "the learned position table (true); false (--no-position-embedding) only with rope, which needs none"
            ),
            ConfigKey(
                name: "rotary_base", field: .int(\.rotaryBase), help: "rope: the base of the rotary frequencies (10000)"
            ),
            ConfigKey(
                name: "rotary_percent", field: .double(\.rotaryPercent),
                help: "rope: the share of each head's width that is rotated, in (0, 1] (1.0)"),
            ConfigKey(
                name: "window_size", field: .optionalString(\.windowSize),
                help:
                    "GPT: sliding-window attention as Megatron's (left, right): each query sees itself and the `left` "
                    + "keys before it; right must be 0. \"4095,0\" is Mistral's window of 4,096 (unset: full attention)"
            ),
            ConfigKey(
                name: "use_rope_scaling", field: .bool(\.useRopeScaling),
                help:
                    "rope: Llama 3.1's rescaled frequencies — those with wavelengths past 8,192 positions divided by "
                    + "rope_scaling_factor, those under 2,048 kept, the ones between blended (false)"),
            ConfigKey(
                name: "rope_scaling_factor", field: .double(\.ropeScalingFactor),
                help: "rope: the divisor of use_rope_scaling's low frequencies (8.0)"),
            ConfigKey(
                name: "normalization", field: .choice(\.normalization),
                help: "GPT: LayerNorm or RMSNorm (no mean, no bias) before each sub-layer and at the end (LayerNorm)"),
            ConfigKey(
                name: "swiglu", field: .bool(\.swiglu),
                help: "GPT: the MLP is FC2(SiLU(gate)·up), FC1 giving both halves; ffn_hidden_size defaults to "
                    + "int(8h/3/64)·64 (false)"),
            ConfigKey(
                name: "add_bias_linear", field: .bool(\.addBiasLinear),
                help: "GPT: biases in QKV, Proj, FC1 and FC2 (true; --disable-bias-linear turns them off)"),
            ConfigKey(
                name: "add_qkv_bias", field: .bool(\.addQKVBias),
                help: "GPT: QKV's bias even with add_bias_linear false (--add-qkv-bias; Qwen 2's layout) (false)"),
            ConfigKey(
                name: "qk_layernorm", field: .bool(\.qkLayernorm),
                help:
                    "GPT: the normalization (LayerNorm or RMSNorm) over each head's query and key after QKV, before rope, "
                    + "with weights of head size shared by the heads (--qk-layernorm; OLMo 2, Qwen 3) (false)"),
            ConfigKey(
                name: "untie_embeddings_and_output_weights", field: .bool(\.untieEmbeddingsAndOutputWeights),
                help:
                    "GPT: the LM head has its own weight (output_layer.weight) instead of the word embedding's (false)"),
            ConfigKey(
                name: "group_query_attention", field: .bool(\.groupQueryAttention),
                help: "GPT: grouped-query attention, num_query_groups key/value heads shared by the query heads (false)"
            ),
            ConfigKey(
                name: "num_query_groups", field: .int(\.numQueryGroups),
                help: "with group_query_attention: key/value heads; must divide num_attention_heads (1)"),
            // Parallelism
            ConfigKey(
                name: "tensor_model_parallel_size", field: .int(\.tensorModelParallelSize),
                help: "tensor-parallel size t (1); the data-parallel size is world / (t·p)"),
            ConfigKey(
                name: "pipeline_model_parallel_size", field: .int(\.pipelineModelParallelSize),
                help: "pipeline-parallel size p (1)"),
            ConfigKey(
                name: "sequence_parallel", field: .bool(\.sequenceParallel),
                help:
                    "split LayerNorm/dropout regions along the sequence across the tensor group (false; off when t = 1)"
            ),
            ConfigKey(
                name: "num_layers_per_virtual_pipeline_stage", field: .optionalInt(\.numLayersPerVirtualPipelineStage),
                help:
                    "layers per model chunk: v = num_layers / p / this chunks per rank, the interleaved 1F1B schedule "
                    + "(unset: v = 1, 1F1B)"
            ),
            ConfigKey(
                name: "decoder_first_pipeline_num_layers", field: .optionalInt(\.decoderFirstPipelineNumLayers),
                help: "layers of the first pipeline stage; the other stages share the rest evenly (v = 1)"),
            ConfigKey(
                name: "decoder_last_pipeline_num_layers", field: .optionalInt(\.decoderLastPipelineNumLayers),
                help: "layers of the last pipeline stage (it also runs the head and the loss); the rest share evenly"),
            ConfigKey(
                name: "account_for_embedding_in_pipeline_split", field: .bool(\.accountForEmbeddingInPipelineSplit),
                help: "count the embedding as a layer: the first virtual stage gets one transformer layer fewer (false)"
            ),
            ConfigKey(
                name: "account_for_loss_in_pipeline_split", field: .bool(\.accountForLossInPipelineSplit),
                help:
                    "count the head and loss as a layer: the last virtual stage gets one transformer layer fewer (false)"
            ),
            ConfigKey(
                name: "pipeline_auto_balance", field: .bool(\.pipelineAutoBalance),
                help:
                    "place layers so the costliest stage (then chunk) is as cheap as possible, from each layer's, the "
                    + "embedding's and the head's cost (pipeline_balance_costs); with virtual stages the chunk size is an "
                    + "average (false)"
            ),
            ConfigKey(
                name: "pipeline_balance_costs", field: .choice(\.pipelineBalanceCosts),
                help:
                    "what pipeline_auto_balance weighs: measured (times of one micro-batch through a one-layer probe "
                    + "at the run's shapes, taken at start-up) or flops (modelled, the same on every machine) (measured)"
            ),
            ConfigKey(
                name: "pipeline_balance_unit", field: .choice(\.pipelineBalanceUnit),
                help:
                    "what pipeline_auto_balance places: layer (whole layers) or sublayer (a stage boundary may fall "
                    + "between a layer's attention and its MLP, for a finer balance) (layer)"
            ),
            ConfigKey(
                name: "pipeline_schedule", field: .choice(\.pipelineSchedule),
                help:
                    "training schedule with p > 1: 1f1b (interleaved when v > 1) or zb-h1, zero bubble with the "
                    + "weight-gradient passes deferred into the bubble (v = 1; 1F1B's activation count)"
            ),
            ConfigKey(
                name: "scatter_gather_tensors_in_pipeline", field: .bool(\.scatterGatherTensorsInPipeline),
                help: "with t > 1: each tensor rank sends 1/t of a stage boundary and the receivers all-gather (true)"),
            ConfigKey(
                name: "ddp_bucket_size", field: .optionalInt(\.ddpBucketSize),
                help:
                    "gradient elements per data-parallel all-reduce bucket (max(40M, 1M·d)); buckets start during the "
                    + "last backward"
            ),
            ConfigKey(
                name: "ddp_sparse_embedding_ending", field: .choice(\.ddpSparseEmbeddingEnding),
                help:
                    "with d > 1 and p = 1: keep the word embedding's gradient rows of the last micro-batch apart, so "
                    + "the rest of its gradient all-reduces during the last backward pass, and exchange those rows "
                    + "after it: auto (when that moves fewer bytes: d·s·b ≤ vocabulary rows per tensor rank), on, "
                    + "off (auto)"
            ),
            ConfigKey(
                name: "ddp_reduction", field: .choice(\.ddpReduction),
                help:
                    "how data-parallel gradient buckets are reduced: auto (summed through a shared-memory window when "
                    + "the data-parallel group runs on one node, else MPI), mpi (always MPI's non-blocking "
                    + "collectives) (auto)"
            ),
            ConfigKey(
                name: "communication_progress", field: .choice(\.communicationProgress),
                help:
                    "how pipeline transfers and gradient-bucket reductions advance while this rank computes: "
                    + "layer-boundaries (MPI_Test between layers), thread (a progress thread probing every 200 µs, "
                    + "MPI_THREAD_MULTIPLE) or off (only in the final wait) (layer-boundaries)"
            ),
            ConfigKey(
                name: "idle_wait", field: .choice(\.idleWait),
                help:
                    "how a rank waits for its peers: spin (in MPI, yielding), sleep (polls with pauses doubling "
                    + "from 10 µs to 1 ms, so a waiting rank leaves its core to a computing one) or auto (sleep "
                    + "where the ranks on a node want more threads than it has cores, as under mpirun "
                    + "--oversubscribe) (auto)"
            ),
            ConfigKey(
                name: "use_distributed_optimizer", field: .bool(\.useDistributedOptimizer),
                help:
                    "shard the optimizer state and main gradients across the data-parallel group: reduce-scatter the "
                    + "gradients, update the own shard, all-gather the parameters (false)"
            ),
            // Batch and optimisation
            ConfigKey(
                name: "micro_batch_size", field: .int(\.microBatchSize), help: "sequences per micro-batch (required)",
                required: true),
            ConfigKey(
                name: "global_batch_size", field: .optionalInt(\.globalBatchSize),
                help:
                    "sequences per iteration (default micro_batch_size·data-parallel size); the rest is gradient "
                    + "accumulation"
            ),
            ConfigKey(
                name: "train_iters", field: .int(\.trainIters),
                help: "iterations to train (required, unless train_samples is given)", required: true),
            ConfigKey(
                name: "train_samples", field: .optionalInt(\.trainSamples),
                help: "samples to train instead of train_iters (train_iters = samples ÷ global_batch_size)"),
            ConfigKey(
                name: "rampup_batch_size", field: .stringList(\.rampupBatchSize),
                help:
                    "START INCREMENT SAMPLES: the global batch grows from START by INCREMENT, reaching "
                    + "global_batch_size after SAMPLES samples (needs train_samples)"),
            ConfigKey(
                name: "lr_decay_samples", field: .optionalInt(\.lrDecaySamples),
                help: "with train_samples: samples over which the LR decays (default train_samples)"),
            ConfigKey(
                name: "lr_warmup_samples", field: .optionalInt(\.lrWarmupSamples),
                help: "with train_samples: warm-up samples (0)"),
            ConfigKey(name: "lr", field: .double(\.lr), help: "peak learning rate (required)", required: true),
            ConfigKey(name: "min_lr", field: .double(\.minLR), help: "learning rate at the end of decay (0)"),
            ConfigKey(
                name: "decoupled_lr", field: .optionalDouble(\.decoupledLR),
                help: "the word embedding's (and the tied output layer's) peak learning rate, on the same schedule"),
            ConfigKey(
                name: "decoupled_min_lr", field: .optionalDouble(\.decoupledMinLR),
                help: "their learning rate at the end of decay (default: min_lr)"),
            ConfigKey(
                name: "lr_decay_style", field: .choice(\.lrDecayStyle),
                help: "constant, linear, cosine, inverse-square-root or WSD (linear)"),
            ConfigKey(
                name: "lr_wsd_decay_style", field: .choice(\.lrWsdDecayStyle),
                help: "WSD's final decay: linear, cosine, exponential or minus_sqrt (exponential)"),
            ConfigKey(
                name: "lr_wsd_decay_iters", field: .optionalInt(\.lrWsdDecayIters),
                help: "WSD: iterations of the final decay, ending at lr_decay_iters (required with WSD)"),
            ConfigKey(
                name: "lr_wsd_decay_samples", field: .optionalInt(\.lrWsdDecaySamples),
                help: "WSD with train_samples: samples of the final decay"),
            ConfigKey(name: "lr_warmup_iters", field: .int(\.lrWarmupIters), help: "linear warm-up iterations (0)"),
            ConfigKey(
                name: "lr_warmup_fraction", field: .optionalDouble(\.lrWarmupFraction),
                help: "warm-up as a fraction of lr_decay_iters (instead of lr_warmup_iters)"),
            ConfigKey(
                name: "lr_decay_iters", field: .optionalInt(\.lrDecayIters),
                help: "iterations over which the LR decays (default train_iters)"),
            ConfigKey(
                name: "weight_decay", field: .double(\.weightDecay),
                help: "AdamW decoupled weight decay (0.01); none on biases and norms"),
            ConfigKey(name: "adam_beta1", field: .double(\.adamBeta1), help: "Adam β1 (0.9)"),
            ConfigKey(name: "adam_beta2", field: .double(\.adamBeta2), help: "Adam β2 (0.999)"),
            ConfigKey(name: "adam_eps", field: .double(\.adamEps), help: "Adam ε (1e-8)"),
            ConfigKey(
                name: "optimizer", field: .choice(\.optimizer),
                help:
                    "adam (AdamW, decoupled weight decay) or sgd (momentum sgd_momentum, weight decay added to the gradient)"
            ),
            ConfigKey(name: "sgd_momentum", field: .double(\.sgdMomentum), help: "SGD momentum μ (0.9)"),
            ConfigKey(
                name: "layer_wise_lr_decay", field: .double(\.layerWiseLrDecay),
                help: "γ: layer l of L gets lr·γ^(L−l), embeddings lr·γ^L, heads lr (1: none)"),
            ConfigKey(
                name: "clip_grad", field: .double(\.clipGrad),
                help: "clip the global gradient norm to this (1.0; 0 disables)"),
            ConfigKey(
                name: "recompute_granularity", field: .optionalChoice(\.recomputeGranularity),
                help:
                    "activation recomputation: full (with recompute_method) or selective (core attention; always the "
                    + "case here: attention is tiled and never stores s×s probabilities)"
            ),
            ConfigKey(
                name: "recompute_method", field: .optionalChoice(\.recomputeMethod),
                help:
                    "with full: uniform (groups of recompute_num_layers layers) or block (the first recompute_num_layers "
                    + "layers of each chunk)"
            ),
            ConfigKey(
                name: "recompute_num_layers", field: .optionalInt(\.recomputeNumLayers),
                help: "layers per recomputed group (uniform) or recomputed layers per chunk (block)"),
            ConfigKey(
                name: "loss_scale", field: .optionalDouble(\.lossScale),
                help:
                    "static loss scale: backward runs on loss·scale, gradients are unscaled before clipping and a step "
                    + "with an overflow is skipped (unset: none in fp32 and bf16, dynamic in fp16)"
            ),
            ConfigKey(
                name: "bf16", field: .bool(\.bf16),
                help:
                    "bfloat16 matrix work: 16-bit weights and GEMM operands, fp32 main parameters, gradient "
                    + "accumulation, LayerNorm, softmax and loss (false)"
            ),
            ConfigKey(
                name: "fp16", field: .bool(\.fp16),
                help:
                    "IEEE half-precision matrix work as with bf16, with the dynamic loss scaler unless loss_scale is set "
                    + "(false)"
            ),
            ConfigKey(
                name: "initial_loss_scale", field: .double(\.initialLossScale),
                help: "fp16: the dynamic scaler's starting scale (2^32)"),
            ConfigKey(
                name: "min_loss_scale", field: .double(\.minLossScale),
                help: "fp16: the dynamic scaler never backs off below this (1)"),
            ConfigKey(
                name: "loss_scale_window", field: .int(\.lossScaleWindow),
                help: "fp16: clean steps in a row before the scale doubles (1000)"),
            ConfigKey(
                name: "hysteresis", field: .int(\.hysteresis),
                help: "fp16: overflows tolerated before the scale halves (2)"
            ),
            ConfigKey(name: "seed", field: .int(\.seed), help: "seed of init, dropout and data order (1234)"),
            // Checkpoints
            ConfigKey(name: "save", field: .optionalString(\.save), help: "directory to save HDF5 checkpoints into"),
            ConfigKey(
                name: "load", field: .optionalString(\.load),
                help: "directory to resume from (its latest_checkpointed_iteration.txt)"),
            ConfigKey(
                name: "save_interval", field: .optionalInt(\.saveInterval),
                help: "save every N iterations (and always at the end)"),
            ConfigKey(
                name: "log_params_norm", field: .bool(\.logParamsNorm),
                help: "log ‖parameters‖₂ after each step (log line and metrics params_norm) (false)"),
            ConfigKey(
                name: "log_num_zeros_in_grad", field: .bool(\.logNumZerosInGrad),
                help:
                    "log how many gradient elements are exactly 0 before clipping (num zeros; metrics num_zeros) (false)"
            ),
            ConfigKey(
                name: "finetune", field: .bool(\.finetune),
                help:
                    "load only the weights of load: iteration, optimizer, schedule and loss scale start afresh (false)"),
            ConfigKey(
                name: "no_load_optim", field: .bool(\.noLoadOptim),
                help:
                    "on resume, skip the optimizer state, schedule and loss scale (Megatron: the schedule restarts) (false)"
            ),
            ConfigKey(
                name: "no_save_optim", field: .bool(\.noSaveOptim),
                help: "write checkpoints without the optimizer state (a later resume starts a fresh optimizer) (false)"),
            ConfigKey(
                name: "override_opt_param_scheduler", field: .bool(\.overrideOptParamScheduler),
                help: "on resume, use this run's lr, min_lr, warm-up, decay length and style (false)"),
            ConfigKey(
                name: "use_checkpoint_opt_param_scheduler", field: .bool(\.useCheckpointOptParamScheduler),
                help: "on resume, keep the checkpoint's schedule values; with neither, a difference is an error (false)"
            ),
            ConfigKey(
                name: "exit_interval", field: .optionalInt(\.exitInterval),
                help: "stop after the first iteration that is a multiple of N (saving first when save is set)"),
            ConfigKey(
                name: "exit_duration_in_mins", field: .optionalDouble(\.exitDurationInMins),
                help:
                    "stop after the first iteration that ends past N minutes of training (saving first when save is set)"
            ),
            ConfigKey(
                name: "exit_signal_handler", field: .bool(\.exitSignalHandler),
                help:
                    "on exit_signal (to any rank), finish the iteration, save when save is set and stop with code 0 "
                    + "(mpirun passes SIGUSR1/SIGUSR2 on to every rank but turns SIGTERM into a kill)"),
            ConfigKey(
                name: "exit_signal", field: .string(\.exitSignal),
                help: "the signal exit_signal_handler catches: SIGTERM (default), SIGINT, SIGUSR1, SIGUSR2 or SIGHUP"),
            // Evaluation and logging
            ConfigKey(name: "eval_interval", field: .int(\.evalInterval), help: "validate every N iterations (1000)"),
            ConfigKey(name: "eval_iters", field: .int(\.evalIters), help: "validation iterations per evaluation (100)"),
            ConfigKey(
                name: "skip_train", field: .bool(\.skipTrain),
                help: "only evaluate (with load: the checkpoint's validation loss)"),
            ConfigKey(
                name: "log_interval", field: .int(\.logInterval),
                help: "print the training log line every N iterations (100)"),
            ConfigKey(
                name: "metrics_file", field: .optionalString(\.metricsFile),
                help: "append one JSON line of metrics per iteration to this file"),
            ConfigKey(
                name: "tensorboard_dir", field: .optionalString(\.tensorboardDir),
                help:
                    "write TensorBoard event files here (the last rank, Megatron's tags; a resumed run continues the curves)"
            ),
            ConfigKey(
                name: "tensorboard_log_interval", field: .int(\.tensorboardLogInterval),
                help: "write the training scalars every N iterations (1)"),
            ConfigKey(
                name: "log_validation_ppl_to_tensorboard", field: .bool(\.logValidationPplToTensorboard),
                help: "also write the validation perplexity, exp(loss) (false)"),
            ConfigKey(
                name: "log_timers_to_tensorboard", field: .bool(\.logTimersToTensorboard),
                help: "also write iteration-time (seconds) (false)"),
            ConfigKey(
                name: "log_memory_to_tensorboard", field: .bool(\.logMemoryToTensorboard),
                help: "also write mem-max-rss-bytes and mem-activation-bytes of the writing rank (false)"),
            ConfigKey(
                name: "log_loss_scale_to_tensorboard", field: .bool(\.logLossScaleToTensorboard),
                help: "write loss-scale (true; --no-log-loss-scale-to-tensorboard turns it off)"),
            ConfigKey(
                name: "log_world_size_to_tensorboard", field: .bool(\.logWorldSizeToTensorboard),
                help: "also write world-size (false)"),
            ConfigKey(
                name: "log_throughput", field: .bool(\.logThroughput),
                help: "write throughput (TFLOP/s per rank) to TensorBoard; the log line always shows it (false)"),
            ConfigKey(
                name: "trace_dir", field: .optionalString(\.traceDir),
                help:
                    "write each rank's measured timeline (forward, backward, send, receive wait, optimizer) as Chrome "
                    + "trace JSON here"
            ),
        ] + dataAndMachineKeys

    public static func named(_ name: String) -> ConfigKey? { all.first { $0.name == name } }

    /// The known key nearest to `name` (edit distance), for "did you mean" messages; nil when even
    /// the nearest differs in more than a third of the letters (no suggestion beats a wrong one).
    public static func nearest(to name: String) -> String? {
        // A key whose length differs by more than the limit is at least that far away: skipping it keeps
        // a hostile megabyte-long key linear instead of a megabyte × every key's length of work.
        let limit = max(2, name.utf8.count / 3)
        let scored = all.lazy.filter { abs($0.name.utf8.count - name.utf8.count) <= limit }
            .map { (key: $0.name, distance: editDistance($0.name, name)) }
        guard let best = scored.min(by: { $0.distance < $1.distance }) else { return nil }
        return best.distance <= limit ? best.key : nil
    }
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    var cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}

extension ConfigKeys {
    /// The effective config as a JSON object (every key, sorted), stored in checkpoints.
    public static func json(of c: TrainingConfig) -> String {
        func quote(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        let fields = all.map { key -> String in
            let v: String
            switch key.field {
            case .int(let kp): v = "\(c[keyPath: kp])"
            case .optionalInt(let kp): v = c[keyPath: kp].map { "\($0)" } ?? "null"
            case .double(let kp): v = "\(c[keyPath: kp])"
            case .optionalDouble(let kp): v = c[keyPath: kp].map { "\($0)" } ?? "null"
            case .string(let kp): v = quote(c[keyPath: kp])
            case .optionalString(let kp): v = c[keyPath: kp].map(quote) ?? "null"
            case .bool(let kp): v = "\(c[keyPath: kp])"
            case .stringList(let kp): v = "[" + c[keyPath: kp].map(quote).joined(separator: ", ") + "]"
            case .choice(let f): v = f.get(c).map(quote) ?? "null"
            }
            return "\(quote(key.name)): \(v)"
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

// HFLlama.swift — Hugging Face Llama (`LlamaForCausalLM`: config.json + model.safetensors) to and
// from a GPT with Megatron's Llama-style options (rope, RMSNorm, SwiGLU, no linear biases unless
// attention_bias = mlp_bias = true, grouped-query attention when num_key_value_heads < heads, an
// untied head unless tie_word_embeddings). The mapping (HF → ours; both store Linear weights as
// [out, in], and HF's rotate_half rope is Megatron's non-interleaved rope, so no row permutation):
//   model.embed_tokens [V, h] → embedding.word_embeddings [Vp, h] (rows V… zero: padding)
//   model.norm → decoder.final_layernorm;  lm_head [V, h] → output_layer (untied only)
//   layers.i.input_layernorm → input_layernorm;  post_attention_layernorm → pre_mlp_layernorm
//   layers.i.self_attn.{q,k,v}_proj → self_attention.linear_qkv: per group g of a/g heads, rows
//       [q of heads g·a/g … | k of group g | v of group g] (Megatron's layout)
//   o_proj → linear_proj;  mlp.gate_proj → linear_fc1.gate;  up_proj → linear_fc1.up;  down_proj → linear_fc2
// rope_theta is rotary_base; rope_type llama3 (Llama 3.1 and later) is use_rope_scaling with its factor.
// Mistral (`MistralForCausalLM`) is this model with sliding-window attention: sliding_window W is
// window_size (W − 1, 0), and a GPT with a window exports as Mistral. Qwen 2 (`Qwen2ForCausalLM`)
// is this model with biases in q, k and v alone: add_qkv_bias without add_bias_linear, both ways.
// Qwen 3 (`Qwen3ForCausalLM`) is this model with RMSNorm over each query and key head (q_norm, k_norm):
// qk_layernorm, both ways (self_attn.q_norm → self_attention.q_layernorm, k_norm → k_layernorm).
// The tokenizer: a tokenizer.model (SentencePiece: Llama 2, Mistral) with as many pieces as
// vocab_size is imported as Llama2Tokenizer (HFLlamaTokenizer), else a byte-level tokenizer.json
// with as many ids (Llama 3) as HuggingFaceTokenizer, and exported again; without either the import
// records NullTokenizer over the model's vocabulary, so token ids work (`generate --prompts-file`
// with "prompt_tokens", preprocessed data) and text prompts do not.
import Checkpoint
import Foundation

public enum HFLlama {
    /// Imports a Llama directory as a whole model (iteration 0, no optimizer state).
    public static func importModel(directory: String) throws -> WholeModel {
        let (hf, configPath) = try HFDirectory.readConfig(directory, model: "Llama or Mistral")
        var (cfg, vocab) = try trainingConfig(hf, configPath: configPath)
        cfg.vocabSize = vocab
        if case .tokenizer(let type, let path) = HFLlamaTokenizer.find(in: directory, vocabSize: vocab) {
            (cfg.tokenizerType, cfg.tokenizerModel) = (type, path)
        }
        let jsonText = ConfigKeys.json(of: cfg)
        let dict = (try? JSONSerialization.jsonObject(with: Data(jsonText.utf8)) as? [String: Any]) ?? [:]
        let source = try HFTensors(path: HFDirectory.weightsPath(directory))
        try source.checkNoLayer(
            beyond: cfg.numLayers, pattern: { "model.layers.\($0)." }, key: "num_hidden_layers", configPath: configPath)
        let g = GPTConfig(training: cfg, vocabSize: vocab)
        try source.requireBacking([
            ("model.embed_tokens.weight", [vocab, g.hiddenSize]),
            ("model.layers.\(g.numLayers - 1).mlp.gate_proj.weight", [g.ffnHiddenSize, g.hiddenSize]),
        ])
        return try WholeModel(
            trainingConfig: cfg, configJSON: dict, vocabSize: vocab,
            params: { spec, out in try importTensor(spec, into: out, from: source, g) },
            state: { HFDirectory.importedState($0, configJSON: jsonText) })
    }

    /// The HF tensor names (without the "model." prefix, but "lm_head.weight") that make up our
    /// parameter `name`, as row blocks in order: (HF name, first row, rows).
    static func sources(of name: String, _ g: GPTConfig) throws -> [(String, Int, Int)] {
        let h = g.hiddenSize, d = g.headDim, f = g.ffnHiddenSize, k = g.numAttentionHeads / g.queryGroups
        switch name {
        case GPTSlots.wordEmbeddingsName: return [("embed_tokens.weight", 0, g.vocabSize)]
        case GPTSlots.outputLayerName: return [("lm_head.weight", 0, g.vocabSize)]
        case GPTSlots.finalNormWeightName: return [("norm.weight", 0, h)]
        default: break
        }
        let parts = name.split(separator: ".", maxSplits: 3).map(String.init)
        guard parts.count == 4, parts[0] == "decoder", parts[1] == "layers", let i = Int(parts[2]) else {
            throw ConversionError.invalid("no Hugging Face source for parameter '\(name)'")
        }
        let p = "layers.\(i).", kind = parts[3].hasSuffix(".bias") ? "bias" : "weight"
        switch parts[3] {
        case "input_layernorm.weight": return [(p + "input_layernorm.weight", 0, h)]
        case "pre_mlp_layernorm.weight": return [(p + "post_attention_layernorm.weight", 0, h)]
        case "self_attention.linear_qkv.weight", "self_attention.linear_qkv.bias":
            var blocks: [(String, Int, Int)] = []
            let q = p + "self_attn.q_proj." + kind, kp = p + "self_attn.k_proj." + kind
            let v = p + "self_attn.v_proj." + kind
            for group in 0..<g.queryGroups {
                blocks.append((q, group * k * d, k * d))
                blocks.append((kp, group * d, d))
                blocks.append((v, group * d, d))
            }
            return blocks
        case "self_attention.q_layernorm.weight": return [(p + "self_attn.q_norm.weight", 0, d)]
        case "self_attention.k_layernorm.weight": return [(p + "self_attn.k_norm.weight", 0, d)]
        case "self_attention.linear_proj.weight", "self_attention.linear_proj.bias":
            return [(p + "self_attn.o_proj." + kind, 0, h)]
        case "mlp.linear_fc1.gate.weight", "mlp.linear_fc1.gate.bias": return [(p + "mlp.gate_proj." + kind, 0, f)]
        case "mlp.linear_fc1.up.weight", "mlp.linear_fc1.up.bias": return [(p + "mlp.up_proj." + kind, 0, f)]
        case "mlp.linear_fc2.weight", "mlp.linear_fc2.bias": return [(p + "mlp.down_proj." + kind, 0, h)]
        default: throw ConversionError.invalid("no Hugging Face source for parameter '\(name)'")
        }
    }

    /// The name in model.safetensors: under "model." but for the LM head.
    static func fileName(_ name: String) -> String { name == "lm_head.weight" ? name : "model." + name }

    /// The HF shape of tensor `hfName` (rows of the whole tensor).
    static func hfShape(_ hfName: String, _ g: GPTConfig) -> [Int] {
        let h = g.hiddenSize, d = g.headDim, f = g.ffnHiddenSize, bias = hfName.hasSuffix(".bias")
        let rows: Int, cols: Int
        switch hfName.split(separator: ".").suffix(2).first.map(String.init) ?? "" {
        case "embed_tokens", "lm_head": (rows, cols) = (g.vocabSize, h)
        case "q_proj": (rows, cols) = (g.numAttentionHeads * d, h)
        case "k_proj", "v_proj": (rows, cols) = (g.queryGroups * d, h)
        case "o_proj": (rows, cols) = (h, g.numAttentionHeads * d)
        case "gate_proj", "up_proj": (rows, cols) = (f, h)
        case "down_proj": (rows, cols) = (h, f)
        case "q_norm", "k_norm": (rows, cols) = (d, 1)
        default: (rows, cols) = (h, 1)  // norms
        }
        return bias || cols == 1 ? [rows] : [rows, cols]
    }

    static func importTensor(
        _ spec: ParameterSpec, into out: UnsafeMutablePointer<Float>, from src: HFTensors, _ g: GPTConfig
    ) throws {
        out.update(repeating: 0, count: spec.count)  // padded vocabulary rows stay zero
        let cols = spec.shape.count > 1 ? spec.shape[1] : 1
        var row = 0
        for (name, first, rows) in try sources(of: spec.name, g) {
            let w = try src.get(fileName(name), hfShape(name, g))
            w.withUnsafeBufferPointer {
                (out + row * cols).update(from: $0.baseAddress! + first * cols, count: rows * cols)
            }
            row += rows
        }
    }

    /// The training config a Llama config.json describes (checked for what this model supports),
    /// and its vocabulary size.
    static func trainingConfig(_ hf: [String: Any], configPath: String) throws -> (TrainingConfig, Int) {
        let values = HFConfigValues(hf: hf, path: configPath)
        func refuse(_ what: String) -> ConversionError { .invalid("'\(configPath)': \(what)") }
        if let act = hf["hidden_act"] as? String, act != "silu" {
            throw refuse("hidden_act '\(act)'; Llama's MLP here is SwiGLU with SiLU")
        }
        let rope = hf["rope_parameters"] as? [String: Any] ?? hf["rope_scaling"] as? [String: Any] ?? [:]
        let scaling = try ropeScaling(rope, refuse)
        let theta = (rope["rope_theta"] as? Double) ?? (hf["rope_theta"] as? Double) ?? 10000
        guard theta >= 1, theta == theta.rounded(), theta < 1e15 else {
            throw refuse("rope_theta \(theta) must be a whole number (rotary_base)")
        }
        let qwen2 = hf["model_type"] as? String == "qwen2", qwen3 = hf["model_type"] as? String == "qwen3"
        let attentionBias = hf["attention_bias"] as? Bool ?? false, mlpBias = hf["mlp_bias"] as? Bool ?? false
        guard qwen2 || attentionBias == mlpBias else {
            throw refuse(
                "attention_bias \(attentionBias) and mlp_bias \(mlpBias) differ; Megatron's add_bias_linear sets both")
        }
        let h = try values.positiveInt("hidden_size"), heads = try values.positiveInt("num_attention_heads")
        let groups = try values.optionalPositiveInt("num_key_value_heads") ?? heads
        // head_dim (Qwen 3's 128 at hidden 1024 or 2560, for example) is Megatron's kv_channels; without
        // it the heads split the hidden width.
        let headDim = try values.optionalPositiveInt("head_dim")
        guard headDim != nil || h % heads == 0, heads % groups == 0 else {
            throw refuse("hidden_size \(h), num_attention_heads \(heads), num_key_value_heads \(groups) do not divide")
        }
        var cfg = TrainingConfig()
        if let headDim, headDim * heads != h { cfg.kvChannels = headDim }
        cfg.numLayers = try values.positiveInt("num_hidden_layers")
        cfg.hiddenSize = h; cfg.numAttentionHeads = heads
        cfg.groupQueryAttention = groups != heads; cfg.numQueryGroups = groups
        cfg.ffnHiddenSize = try values.positiveInt("intermediate_size")
        let positions = try values.positiveInt("max_position_embeddings")
        if qwen2 || qwen3, hf["use_sliding_window"] as? Bool ?? false {
            throw refuse("use_sliding_window true (Qwen's windows from max_window_layers on) is not built")
        }
        // Mistral's sliding window of W keys (the query's own included) is Megatron's window_size
        // (W − 1, 0); Qwen 2's configs name one they do not use (use_sliding_window false).
        if let window = try values.optionalPositiveInt("sliding_window"), window < positions, !qwen3,
            hf["use_sliding_window"] as? Bool ?? true
        {
            cfg.windowSize = "\(window - 1),0"
        }
        cfg.seqLength = positions; cfg.maxPositionEmbeddings = positions
        cfg.positionEmbeddingType = .rope; cfg.rotaryBase = Int(theta)
        if let scaling { cfg.useRopeScaling = true; cfg.ropeScalingFactor = scaling.factor }
        cfg.normalization = .rmsNorm; cfg.swiglu = true; cfg.addBiasLinear = attentionBias && !qwen2
        cfg.addQKVBias = qwen2  // Qwen 2: biases in q, k and v only
        cfg.qkLayernorm = qwen3  // Qwen 3: RMSNorm over each query and key head
        cfg.untieEmbeddingsAndOutputWeights = !(hf["tie_word_embeddings"] as? Bool ?? false)
        cfg.normEpsilon = try values.double("rms_norm_eps", default: 1e-6, in: 1e-30...1)
        cfg.initMethodStd = try values.double("initializer_range", default: 0.02, in: 1e-30...10)
        cfg.hiddenDropout = 0
        cfg.attentionDropout = try values.double("attention_dropout", default: 0, in: 0...0.999)
        cfg.tokenizerType = .null
        cfg.microBatchSize = 1; cfg.trainIters = 1; cfg.lr = 1e-4
        return (cfg, try values.positiveInt("vocab_size"))
    }

    /// The rope scaling of a config.json's rope_parameters / rope_scaling: none for rope_type
    /// "default", Llama 3.1's for "llama3" with Megatron's fixed low/high frequency factors and
    /// original context (1, 4, 8,192: every Llama 3.x); anything else is refused.
    static func ropeScaling(_ rope: [String: Any], _ refuse: (String) -> ConversionError) throws -> RopeScaling? {
        let type = rope["rope_type"] as? String ?? rope["type"] as? String ?? "default"
        if type == "default" { return nil }
        guard type == "llama3" else {
            throw refuse("rope_type '\(type)' is not built; plain rope (default) and Llama 3.1's (llama3) only")
        }
        guard let factor = (rope["factor"] as? NSNumber)?.doubleValue, factor >= 1, factor < 1e6 else {
            throw refuse("rope_type llama3 needs a factor of at least 1, got \(rope["factor"] ?? "none")")
        }
        let scaling = RopeScaling(factor: factor)
        for (key, megatron) in [
            ("low_freq_factor", scaling.lowFrequencyFactor), ("high_freq_factor", scaling.highFrequencyFactor),
            ("original_max_position_embeddings", scaling.originalContext),
        ] {
            let value = (rope[key] as? NSNumber)?.doubleValue
            guard value == megatron else {
                throw refuse(
                    "rope_type llama3 with \(key) \(rope[key] ?? "missing"); Megatron's use_rope_scaling fixes it "
                        + "at \(Int(megatron)) (Llama 3.x's value)")
            }
        }
        return scaling
    }

    /// Why `g` cannot be written as LlamaForCausalLM (empty when it can).
    static func differences(_ g: GPTConfig) -> [String] {
        [
            ("position_embedding_type learned_absolute (Llama uses rope)", g.positionEmbedding != .rope),
            ("rotary_percent \(g.rotaryPercent) (Llama rotates whole heads)", g.rotaryPercent != 1),
            ("normalization LayerNorm (Llama uses RMSNorm)", g.normalization != .rmsNorm),
            ("no swiglu (Llama's MLP is SwiGLU)", !g.swiglu),
            (
                "qk_layernorm with linear biases or a window (Qwen 3, the Llama with query/key norms, has neither)",
                g.qkLayerNorm && (g.addBiasLinear || g.addQKVBias || g.slidingWindow != nil)
            ),
            (
                "window_size with linear biases (Mistral, the sliding-window Llama, has none)",
                g.slidingWindow != nil && (g.addBiasLinear || g.addQKVBias)
            ),
        ].filter(\.1).map(\.0)
    }

    /// Writes `model` as a Hugging Face LlamaForCausalLM directory (created atomically; must not exist),
    /// with its SentencePiece tokenizer when it has one (returns whether it had).
    @discardableResult
    public static func export(_ model: WholeModel, to directory: String) throws -> Bool {
        guard case .gpt(let g) = model.architecture else {
            throw ConversionError.invalid("this checkpoint holds a BERT model, not a Llama")
        }
        let differ = differences(g)
        guard differ.isEmpty else {
            throw ConversionError.invalid(
                "this GPT cannot be written as LlamaForCausalLM: \(differ.joined(separator: "; "))")
        }
        try HFDirectory.checkAbsent(directory)
        let params = model.params, table = params.table
        var blocks: [String: [Float]] = [:]
        for (slot, spec) in table.specs.enumerated() {
            let cols = spec.shape.count > 1 ? spec.shape[1] : 1
            var row = 0
            for (name, first, rows) in try sources(of: spec.name, g) {
                let shape = hfShape(name, g)
                var w = blocks[name] ?? [Float](repeating: 0, count: shape.reduce(1, *))
                w.withUnsafeMutableBufferPointer {
                    ($0.baseAddress! + first * cols).update(from: params.pointer(slot) + row * cols, count: rows * cols)
                }
                blocks[name] = w
                row += rows
            }
        }
        var tensors: [String: SafetensorsTensor] = [:]
        for (name, values) in blocks {
            tensors[fileName(name)] = .init(shape: hfShape(name, g), values: values)
        }
        let tokenizer = HFLlamaTokenizer.files(model.trainingConfig, maxPositions: g.maxPositionEmbeddings)
        try HFDirectory.write(directory, config: hfConfig(g), tensors: tensors, files: tokenizer ?? [:])
        return tokenizer != nil
    }

    /// The class an export of `g` is written as: MistralForCausalLM with a sliding window,
    /// Qwen2ForCausalLM with QKV's bias alone, Qwen3ForCausalLM with query/key norms, else LlamaForCausalLM.
    static func architecture(_ g: GPTConfig) -> String {
        g.slidingWindow != nil
            ? "MistralForCausalLM"
            : isQwen2(g) ? "Qwen2ForCausalLM" : g.qkLayerNorm ? "Qwen3ForCausalLM" : "LlamaForCausalLM"
    }

    static func isQwen2(_ g: GPTConfig) -> Bool { g.addQKVBias && !g.addBiasLinear }

    /// LlamaForCausalLM's (or MistralForCausalLM's) config.json for `g`.
    static func hfConfig(_ g: GPTConfig) -> [String: Any] {
        [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": g.hiddenSize,
            "intermediate_size": g.ffnHiddenSize, "num_hidden_layers": g.numLayers,
            "num_attention_heads": g.numAttentionHeads, "num_key_value_heads": g.queryGroups, "head_dim": g.headDim,
            "max_position_embeddings": g.maxPositionEmbeddings, "vocab_size": g.vocabSize, "hidden_act": "silu",
            "rms_norm_eps": Double("\(g.normEpsilon)") ?? Double(g.normEpsilon), "rope_theta": g.rotaryBase,
            "attention_bias": g.addBiasLinear,
            "mlp_bias": g.addBiasLinear, "tie_word_embeddings": !g.untieEmbeddings, "attention_dropout": 0.0,
            "initializer_range": Double("\(g.initMethodStd)") ?? Double(g.initMethodStd), "torch_dtype": "float32",
        ].merging(g.ropeScaling.map { ["rope_scaling": ropeScalingJSON($0)] } ?? [:]) { a, _ in a }
            .merging(
                g.slidingWindow.map {
                    // Sliding-window attention is Mistral's: MistralForCausalLM, window W = left + 1.
                    ["architectures": ["MistralForCausalLM"], "model_type": "mistral", "sliding_window": $0 + 1]
                } ?? [:]
            ) { _, b in b }
            .merging(
                isQwen2(g)
                    ? ["architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "use_sliding_window": false]
                    : [:]
            ) { _, b in b }
            .merging(
                g.qkLayerNorm
                    ? ["architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "use_sliding_window": false]
                    : [:]
            ) { _, b in b }
    }

    /// config.json's rope_scaling for Llama 3.1's rope.
    static func ropeScalingJSON(_ s: RopeScaling) -> [String: Any] {
        [
            "rope_type": "llama3", "factor": s.factor, "low_freq_factor": s.lowFrequencyFactor,
            "high_freq_factor": s.highFrequencyFactor, "original_max_position_embeddings": Int(s.originalContext),
        ]
    }
}

// HFGPT2.swift — Hugging Face GPT-2 (`config.json` + `model.safetensors`) to and from our model.
// The mapping (HF → ours; HF's Conv1D stores weights as [in, out], ours as [out, in]):
//   wte [V, h] → embedding.word_embeddings.weight [Vp, h] (rows V… zero: padding)
//   wpe → embedding.position_embeddings.weight;  ln_f → decoder.final_layernorm
//   h.i.ln_1 → input_layernorm;  h.i.ln_2 → pre_mlp_layernorm
//   h.i.attn.c_attn [h, 3h] → self_attention.linear_qkv [3h, h]: HF's output columns are
//       [q heads | k heads | v heads], ours are per head [q | k | v] (Megatron's layout), so
//       our row head·3D + j·D + d is HF column j·h + head·D + d
//   h.i.attn.c_proj [h, h] → linear_proj [h, h]ᵀ;  h.i.mlp.c_fc [h, f] → linear_fc1 [f, h]ᵀ;
//   h.i.mlp.c_proj [f, h] → linear_fc2 [h, f]ᵀ;  lm_head is tied to wte.
// Names may carry a "transformer." prefix (GPT2LMHeadModel) or not (GPT2Model).
import Checkpoint
import Foundation

public enum HFGPT2 {
    /// Imports a GPT-2 directory as a whole model (iteration 0, no optimizer state).
    public static func importModel(directory: String) throws -> WholeModel {
        let (hf, configPath) = try HFDirectory.readConfig(directory, model: "GPT-2")
        let weightsPath = HFDirectory.weightsPath(directory)
        var (cfg, vocab) = try trainingConfig(hf, configPath: configPath)
        // GPT-2 tokenizer files beside the weights are recorded (absolute paths), so the imported
        // checkpoint generates and evaluates without --vocab-file / --merge-file.
        let vocabPath = (directory as NSString).appendingPathComponent("vocab.json")
        let mergePath = (directory as NSString).appendingPathComponent("merges.txt")
        if FileManager.default.fileExists(atPath: vocabPath) && FileManager.default.fileExists(atPath: mergePath) {
            cfg.vocabFile = URL(fileURLWithPath: vocabPath).standardizedFileURL.path
            cfg.mergeFile = URL(fileURLWithPath: mergePath).standardizedFileURL.path
        }
        let h = cfg.hiddenSize, heads = cfg.numAttentionHeads, positions = cfg.seqLength
        let jsonText = ConfigKeys.json(of: cfg)
        let dict = (try? JSONSerialization.jsonObject(with: Data(jsonText.utf8)) as? [String: Any]) ?? [:]

        let source = try HFTensors(path: weightsPath, prefixProbe: "transformer.wte.weight")
        try source.checkNoLayer(beyond: cfg.numLayers, pattern: { "h.\($0)." }, key: "n_layer", configPath: configPath)
        let sizes = HFSizes(h: h, heads: heads, ffn: cfg.ffnHiddenSize ?? 4 * h, vocab: vocab, positions: positions)
        try source.requireBacking([
            ("wte.weight", [vocab, h]), ("wpe.weight", [positions, h]),
            ("h.\(cfg.numLayers - 1).mlp.c_fc.weight", [h, sizes.ffn]),
        ])
        return try WholeModel(
            trainingConfig: cfg, configJSON: dict, vocabSize: vocab,
            params: { spec, out in try importTensor(spec, into: out, from: source, sizes) },
            state: { HFDirectory.importedState($0, configJSON: jsonText) })
    }

    /// The sizes the mapping needs.
    struct HFSizes {
        let h: Int, heads: Int, ffn: Int, vocab: Int, positions: Int
    }

    /// Fills our parameter `spec` from its HF source (the mapping in the header).
    static func importTensor(
        _ spec: ParameterSpec, into out: UnsafeMutablePointer<Float>, from src: HFTensors,
        _ z: HFSizes
    ) throws {
        let name = spec.name, h = z.h
        switch name {
        case GPTSlots.wordEmbeddingsName:
            out.update(repeating: 0, count: spec.count)  // rows V… are padding
            try src.copy("wte.weight", [z.vocab, h], into: out)
        case GPTSlots.positionEmbeddingsName: try src.copy("wpe.weight", [z.positions, h], into: out)
        case GPTSlots.finalNormWeightName: try src.copy("ln_f.weight", [h], into: out)
        case GPTSlots.finalNormBiasName: try src.copy("ln_f.bias", [h], into: out)
        default:
            // decoder.layers.<i>.<rest>
            let parts = name.split(separator: ".", maxSplits: 3).map(String.init)
            guard parts.count == 4, parts[0] == "decoder", parts[1] == "layers", let i = Int(parts[2]) else {
                throw ConversionError.invalid("no Hugging Face source for parameter '\(name)'")
            }
            try importLayerTensor(parts[3], layer: i, into: out, from: src, z)
        }
    }

    /// Fills parameter `rest` of layer `i` (decoder.layers.i.rest) from HF's h.i.*.
    static func importLayerTensor(
        _ rest: String, layer i: Int, into out: UnsafeMutablePointer<Float>, from src: HFTensors,
        _ z: HFSizes
    ) throws {
        let p = "h.\(i).", h = z.h, f = z.ffn, heads = z.heads, d = h / heads
        switch rest {
        case "input_layernorm.weight": try src.copy(p + "ln_1.weight", [h], into: out)
        case "input_layernorm.bias": try src.copy(p + "ln_1.bias", [h], into: out)
        case "pre_mlp_layernorm.weight": try src.copy(p + "ln_2.weight", [h], into: out)
        case "pre_mlp_layernorm.bias": try src.copy(p + "ln_2.bias", [h], into: out)
        case "self_attention.linear_qkv.weight":
            // Our row head·3D + j·D + e is HF column j·h + head·D + e.
            let w = try src.get(p + "attn.c_attn.weight", [h, 3 * h])
            for head in 0..<heads {
                for j in 0..<3 {
                    for e in 0..<d {
                        let r = head * 3 * d + j * d + e, c = j * h + head * d + e
                        for i in 0..<h { out[r * h + i] = w[i * 3 * h + c] }
                    }
                }
            }
        case "self_attention.linear_qkv.bias":
            let b = try src.get(p + "attn.c_attn.bias", [3 * h])
            for head in 0..<heads {
                for j in 0..<3 {
                    for e in 0..<d { out[head * 3 * d + j * d + e] = b[j * h + head * d + e] }
                }
            }
        case "self_attention.linear_proj.weight":
            try src.transpose(p + "attn.c_proj.weight", rows: h, cols: h, into: out)
        case "self_attention.linear_proj.bias": try src.copy(p + "attn.c_proj.bias", [h], into: out)
        case "mlp.linear_fc1.weight": try src.transpose(p + "mlp.c_fc.weight", rows: h, cols: f, into: out)
        case "mlp.linear_fc1.bias": try src.copy(p + "mlp.c_fc.bias", [f], into: out)
        case "mlp.linear_fc2.weight": try src.transpose(p + "mlp.c_proj.weight", rows: f, cols: h, into: out)
        case "mlp.linear_fc2.bias": try src.copy(p + "mlp.c_proj.bias", [h], into: out)
        default: throw ConversionError.invalid("no Hugging Face source for parameter 'decoder.layers.\(i).\(rest)'")
        }
    }

    /// The training config a GPT-2 config.json describes (checked for what this model supports),
    /// and its vocabulary size.
    static func trainingConfig(_ hf: [String: Any], configPath: String) throws -> (TrainingConfig, Int) {
        let values = HFConfigValues(hf: hf, path: configPath)
        if let type = hf["model_type"] as? String, type != "gpt2" {
            throw ConversionError.invalid("'\(configPath)' describes model_type '\(type)'; only gpt2 converts")
        }
        let activation = hf["activation_function"] as? String ?? "gelu_new"
        guard ["gelu_new", "gelu_pytorch_tanh"].contains(activation) else {
            throw ConversionError.invalid(
                "'\(configPath)': activation_function '\(activation)'; this model uses GPT-2's tanh GELU (gelu_new)")
        }
        for key in ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"] where (hf[key] as? Bool) == true {
            throw ConversionError.invalid("'\(configPath)': \(key) is not supported")
        }
        let h = try values.positiveInt("n_embd"), layers = try values.positiveInt("n_layer"),
            heads = try values.positiveInt("n_head"), positions = try values.positiveInt("n_positions", or: "n_ctx")
        let vocab = try values.positiveInt("vocab_size")
        guard h % heads == 0 else {
            throw ConversionError.invalid("'\(configPath)': n_embd \(h) is not a multiple of n_head \(heads)")
        }
        var cfg = TrainingConfig()
        cfg.numLayers = layers; cfg.hiddenSize = h; cfg.numAttentionHeads = heads
        cfg.ffnHiddenSize = try values.optionalPositiveInt("n_inner")
        cfg.seqLength = positions; cfg.maxPositionEmbeddings = positions
        cfg.normEpsilon = try values.double("layer_norm_epsilon", default: 1e-5, in: 1e-30...1)
        cfg.initMethodStd = try values.double("initializer_range", default: 0.02, in: 1e-30...10)
        cfg.hiddenDropout = try values.double("resid_pdrop", default: 0.1, in: 0...0.999)
        cfg.attentionDropout = try values.double("attn_pdrop", default: 0.1, in: 0...0.999)
        cfg.tokenizerType = .gpt2BPE
        cfg.microBatchSize = 1; cfg.trainIters = 1; cfg.lr = 1e-4
        return (cfg, vocab)
    }

    /// GPT2LMHeadModel's config.json for a model of `g`'s sizes.
    static func hfConfig(_ g: GPTConfig, eod: Int) -> [String: Any] {
        [
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": g.hiddenSize, "n_layer": g.numLayers,
            "n_head": g.numAttentionHeads, "n_positions": g.maxPositionEmbeddings, "n_ctx": g.maxPositionEmbeddings,
            "n_inner": g.ffnHiddenSize, "vocab_size": g.vocabSize,
            "activation_function": "gelu_new", "layer_norm_epsilon": Double(g.normEpsilon),
            "initializer_range": Double(g.initMethodStd),
            "resid_pdrop": Double(g.hiddenDropout), "embd_pdrop": Double(g.hiddenDropout),
            "attn_pdrop": Double(g.attentionDropout),
            "bos_token_id": eod, "eos_token_id": eod, "tie_word_embeddings": true, "torch_dtype": "float32",
        ]
    }

    /// The Llama-style options `g` uses (none for a GPT-2; sliding-window attention counts as one).
    static func options(_ g: GPTConfig) -> [String] {
        [
            ("position_embedding_type rope", g.positionEmbedding == .rope),
            ("normalization RMSNorm", g.normalization == .rmsNorm), ("swiglu", g.swiglu),
            ("add_bias_linear false", !g.addBiasLinear), ("untie_embeddings_and_output_weights", g.untieEmbeddings),
            ("group_query_attention", g.isGroupedQuery), ("window_size", g.slidingWindow != nil),
            ("qk_layernorm", g.qkLayerNorm), ("kv_channels \(g.headDim)", g.attentionWidth != g.hiddenSize),
        ].filter(\.1).map(\.0)
    }

    /// Writes `model` as a Hugging Face GPT2LMHeadModel directory (created atomically; must not
    /// exist), with its tokenizer files when the checkpoint's tokenizer can be written (returns
    /// whether it was).
    @discardableResult
    public static func export(_ model: WholeModel, to directory: String) throws -> Bool {
        guard case .gpt(let g) = model.architecture else {
            throw ConversionError.invalid(
                "this checkpoint holds a BERT model; it exports as BertForPreTraining, not GPT-2")
        }
        let options = options(g)
        guard options.isEmpty else {
            throw ConversionError.invalid(
                "this GPT uses \(options.joined(separator: ", ")); the Hugging Face export writes GPT-2 "
                    + "(GPT2LMHeadModel) only, which has none of them — keep the HDF5 checkpoint")
        }
        try HFDirectory.checkAbsent(directory)
        let h = g.hiddenSize, heads = g.numAttentionHeads, d = h / heads, f = g.ffnHiddenSize,
            V = g.vocabSize
        let params = model.params, table = params.table
        func values(_ name: String) throws -> UnsafeMutablePointer<Float> {
            guard let slot = table.slot(named: name) else {
                throw ConversionError.missing(name: name, source: "the checkpoint")
            }
            return params.pointer(slot)
        }
        func copy(_ name: String, _ count: Int) throws -> [Float] {
            Array(UnsafeBufferPointer(start: try values(name), count: count))
        }
        func transposed(_ name: String, rows outRows: Int, cols inCols: Int) throws -> [Float] {
            // ours [out, in] → HF [in, out]
            let w = try values(name)
            var r = [Float](repeating: 0, count: outRows * inCols)
            for o in 0..<outRows { for i in 0..<inCols { r[i * outRows + o] = w[o * inCols + i] } }
            return r
        }
        var t: [String: SafetensorsTensor] = [:]
        t["transformer.wte.weight"] = .init(shape: [V, h], values: try copy(GPTSlots.wordEmbeddingsName, V * h))
        t["transformer.wpe.weight"] = .init(
            shape: [g.maxPositionEmbeddings, h],
            values: try copy(GPTSlots.positionEmbeddingsName, g.maxPositionEmbeddings * h))
        t["transformer.ln_f.weight"] = .init(shape: [h], values: try copy(GPTSlots.finalNormWeightName, h))
        t["transformer.ln_f.bias"] = .init(shape: [h], values: try copy(GPTSlots.finalNormBiasName, h))
        for i in 0..<g.numLayers {
            let p = "decoder.layers.\(i).", q = "transformer.h.\(i)."
            t[q + "ln_1.weight"] = .init(shape: [h], values: try copy(p + "input_layernorm.weight", h))
            t[q + "ln_1.bias"] = .init(shape: [h], values: try copy(p + "input_layernorm.bias", h))
            t[q + "ln_2.weight"] = .init(shape: [h], values: try copy(p + "pre_mlp_layernorm.weight", h))
            t[q + "ln_2.bias"] = .init(shape: [h], values: try copy(p + "pre_mlp_layernorm.bias", h))
            let qkv = try values(p + "self_attention.linear_qkv.weight"),
                qkvBias = try values(p + "self_attention.linear_qkv.bias")
            var w = [Float](repeating: 0, count: h * 3 * h), b = [Float](repeating: 0, count: 3 * h)
            for head in 0..<heads {
                for j in 0..<3 {
                    for e in 0..<d {
                        let r = head * 3 * d + j * d + e, c = j * h + head * d + e
                        for k in 0..<h { w[k * 3 * h + c] = qkv[r * h + k] }
                        b[c] = qkvBias[r]
                    }
                }
            }
            t[q + "attn.c_attn.weight"] = .init(shape: [h, 3 * h], values: w)
            t[q + "attn.c_attn.bias"] = .init(shape: [3 * h], values: b)
            t[q + "attn.c_proj.weight"] = .init(
                shape: [h, h], values: try transposed(p + "self_attention.linear_proj.weight", rows: h, cols: h))
            t[q + "attn.c_proj.bias"] = .init(shape: [h], values: try copy(p + "self_attention.linear_proj.bias", h))
            t[q + "mlp.c_fc.weight"] = .init(
                shape: [h, f], values: try transposed(p + "mlp.linear_fc1.weight", rows: f, cols: h))
            t[q + "mlp.c_fc.bias"] = .init(shape: [f], values: try copy(p + "mlp.linear_fc1.bias", f))
            t[q + "mlp.c_proj.weight"] = .init(
                shape: [f, h], values: try transposed(p + "mlp.linear_fc2.weight", rows: h, cols: f))
            t[q + "mlp.c_proj.bias"] = .init(shape: [h], values: try copy(p + "mlp.linear_fc2.bias", h))
        }
        let tokenizer = HFTokenizerFiles.gpt(model.trainingConfig, maxPositions: g.maxPositionEmbeddings)
        try HFDirectory.write(
            directory, config: hfConfig(g, eod: tokenizer?.eod ?? g.vocabSize - 1), tensors: t,
            files: tokenizer?.files ?? [:])
        return tokenizer != nil
    }
}

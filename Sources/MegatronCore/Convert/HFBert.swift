// HFBert.swift — Hugging Face BERT directories (config.json + model.safetensors) to and from our
// BERT: `BertForPreTraining` (model_type "bert", the original post-LN arrangement) is our
// layernorm_arrangement post_ln, and `MegatronBertForPreTraining` (model_type "megatron-bert",
// Megatron's pre-LN arrangement with a final LayerNorm) is our pre_ln. HF's Linear weights are
// [out, in] like ours. The mapping (HF → ours; every encoder name starts with "bert."):
//   embeddings.{word,position,token_type}_embeddings → embedding.{word,position,tokentype}_embeddings
//       (word rows V… zero: vocabulary padding)
//   encoder.layer.i.attention.self.{query,key,value} [h, h] each → self_attention.linear_qkv [3h, h]:
//       our row head·3D + j·D + e is row head·D + e of query (j = 0), key (1) or value (2)
//   encoder.layer.i.attention.output.dense → linear_proj;  .intermediate.dense → mlp.linear_fc1;
//   encoder.layer.i.output.dense → mlp.linear_fc2
//   post-LN: embeddings.LayerNorm → embedding.layernorm; attention.output.LayerNorm →
//       post_attention_layernorm; output.LayerNorm → post_mlp_layernorm
//   pre-LN: attention.ln → input_layernorm; layer.i.ln → pre_mlp_layernorm; encoder.ln → final_layernorm
//   cls.predictions.transform.{dense,LayerNorm} → lm_head.{dense,layer_norm}; cls.predictions.bias [V]
//       → output_layer.bias (padding zero); the decoder is tied to the word embeddings (not stored)
//   pooler.dense → pooler.dense;  cls.seq_relationship → binary_head
// LayerNorm parameters may be stored as gamma/beta (older files). Our GELU is the tanh form, so the
// config's hidden_act must be gelu_new or gelu_pytorch_tanh.
import Checkpoint
import Foundation

public enum HFBert {
    /// How an HF tensor lands in ours: as it is, or as the first V rows of our padded vocabulary rows.
    enum Placement { case same, vocabularyRows }

    /// Our parameter name → (HF name, placement), for every parameter except the fused QKV.
    static func mapping(layers: Int, postLayerNorm post: Bool) -> [String: (hf: String, placement: Placement)] {
        var m: [String: (hf: String, placement: Placement)] = [:]
        func pair(_ ours: String, _ hf: String, _ placement: Placement = .same) {
            m[ours + ".weight"] = (hf + ".weight", placement)
            m[ours + ".bias"] = (hf + ".bias", placement)
        }
        m[GPTSlots.wordEmbeddingsName] = ("bert.embeddings.word_embeddings.weight", .vocabularyRows)
        m[GPTSlots.positionEmbeddingsName] = ("bert.embeddings.position_embeddings.weight", .same)
        m[BertSlots.tokentypeEmbeddingsName] = ("bert.embeddings.token_type_embeddings.weight", .same)
        if post {
            pair("embedding.layernorm", "bert.embeddings.LayerNorm")
        } else {
            pair("decoder.final_layernorm", "bert.encoder.ln")
        }
        for i in 0..<layers {
            let p = "decoder.layers.\(i).", q = "bert.encoder.layer.\(i)."
            pair(p + "self_attention.linear_proj", q + "attention.output.dense")
            pair(p + "mlp.linear_fc1", q + "intermediate.dense")
            pair(p + "mlp.linear_fc2", q + "output.dense")
            if post {
                pair(p + "post_attention_layernorm", q + "attention.output.LayerNorm")
                pair(p + "post_mlp_layernorm", q + "output.LayerNorm")
            } else {
                pair(p + "input_layernorm", q + "attention.ln")
                pair(p + "pre_mlp_layernorm", q + "ln")
            }
        }
        pair("lm_head.dense", "cls.predictions.transform.dense")
        pair("lm_head.layer_norm", "cls.predictions.transform.LayerNorm")
        m[BertSlots.outputBiasName] = ("cls.predictions.bias", .vocabularyRows)
        pair("pooler.dense", "bert.pooler.dense")
        pair("binary_head", "cls.seq_relationship")
        return m
    }

    /// The HF name actually stored: LayerNorm weight/bias may be gamma/beta in older files.
    static func storedName(_ name: String, in src: HFTensors) -> String {
        guard !src.has(name), name.contains("LayerNorm.") else { return name }
        return name.replacingOccurrences(of: "LayerNorm.weight", with: "LayerNorm.gamma")
            .replacingOccurrences(of: "LayerNorm.bias", with: "LayerNorm.beta")
    }

    /// Imports a BertForPreTraining or MegatronBertForPreTraining directory as a whole model
    /// (iteration 0, no optimizer state).
    public static func importModel(directory: String) throws -> WholeModel {
        let (hf, configPath) = try HFDirectory.readConfig(directory, model: "BERT")
        let (cfg, vocab) = try trainingConfig(hf, configPath: configPath, directory: directory)
        let jsonText = ConfigKeys.json(of: cfg)
        let dict = (try? JSONSerialization.jsonObject(with: Data(jsonText.utf8)) as? [String: Any]) ?? [:]
        let source = try HFTensors(path: HFDirectory.weightsPath(directory))
        try source.checkNoLayer(
            beyond: cfg.numLayers, pattern: { "bert.encoder.layer.\($0)." }, key: "num_hidden_layers",
            configPath: configPath)
        let h = cfg.hiddenSize, heads = cfg.numAttentionHeads
        // Before anything of the config's size is built (the name mapping has entries per layer).
        try source.requireBacking([
            ("bert.embeddings.word_embeddings.weight", [vocab, h]),
            ("bert.encoder.layer.\(cfg.numLayers - 1).intermediate.dense.weight", [cfg.ffnHiddenSize ?? 4 * h, h]),
        ])
        let map = mapping(layers: cfg.numLayers, postLayerNorm: cfg.layernormArrangement == .postLN)
        return try WholeModel(
            trainingConfig: cfg, configJSON: dict, vocabSize: vocab,
            params: { spec, out in
                if let (layer, isBias) = qkvParameter(spec.name) {
                    try importQKV(layer: layer, bias: isBias, hidden: h, heads: heads, into: out, from: source)
                    return
                }
                guard let (name, placement) = map[spec.name] else {
                    throw ConversionError.invalid("no Hugging Face source for parameter '\(spec.name)'")
                }
                switch placement {
                case .same: try source.copy(storedName(name, in: source), spec.shape, into: out)
                case .vocabularyRows:
                    out.update(repeating: 0, count: spec.count)  // rows V… are padding
                    try source.copy(name, [vocab] + spec.shape.dropFirst(), into: out)
                }
            }, state: { HFDirectory.importedState($0, configJSON: jsonText) })
    }

    /// (layer, is-bias) when `name` is a layer's fused QKV weight or bias.
    static func qkvParameter(_ name: String) -> (Int, Bool)? {
        let parts = name.split(separator: ".").map(String.init)
        guard parts.count == 6, parts[0] == "decoder", parts[1] == "layers", let i = Int(parts[2]),
            parts[3] == "self_attention", parts[4] == "linear_qkv"
        else { return nil }
        return (i, parts[5] == "bias")
    }

    /// Our fused QKV of layer `i` from HF's separate query, key and value (the header's row rule).
    static func importQKV(
        layer i: Int, bias: Bool, hidden h: Int, heads: Int, into out: UnsafeMutablePointer<Float>, from src: HFTensors
    ) throws {
        let d = h / heads, width = bias ? 1 : h, prefix = "bert.encoder.layer.\(i).attention.self."
        let parts = try ["query", "key", "value"].map {
            try src.get(prefix + $0 + (bias ? ".bias" : ".weight"), bias ? [h] : [h, h])
        }
        for head in 0..<heads {
            for j in 0..<3 {
                for e in 0..<d {
                    let row = head * 3 * d + j * d + e, source = head * d + e
                    for k in 0..<width { out[row * width + k] = parts[j][source * width + k] }
                }
            }
        }
    }

    /// The training config a BERT config.json describes (checked for what this model supports), and
    /// its vocabulary size. The tokenizer is BertWordPieceLowerCase, with the directory's vocab.txt when present
    /// — BertWordPieceCase when the directory's tokenizer_config.json says `"do_lower_case": false` (a cased model).
    static func trainingConfig(_ hf: [String: Any], configPath: String, directory: String) throws -> (
        TrainingConfig, Int
    ) {
        let values = HFConfigValues(hf: hf, path: configPath)
        func int(_ key: String) throws -> Int { try values.positiveInt(key) }
        var cfg = TrainingConfig()
        cfg.modelType = .bert
        switch hf["model_type"] as? String {
        case "bert": cfg.layernormArrangement = .postLN
        case "megatron-bert": cfg.layernormArrangement = .preLN
        case let other:
            throw ConversionError.invalid(
                "'\(configPath)' describes model_type '\(other ?? "none")'; BERT conversion reads 'bert' "
                    + "(BertForPreTraining) or 'megatron-bert' (MegatronBertForPreTraining)")
        }
        let activation = hf["hidden_act"] as? String ?? "gelu"
        guard ["gelu_new", "gelu_pytorch_tanh"].contains(activation) else {
            throw ConversionError.invalid(
                "'\(configPath)': hidden_act '\(activation)'; this model uses the tanh GELU (gelu_new or "
                    + "gelu_pytorch_tanh), so a model trained with the erf GELU would not compute the same")
        }
        if let kind = hf["position_embedding_type"] as? String, kind != "absolute" {
            throw ConversionError.invalid("'\(configPath)': position_embedding_type '\(kind)'; only absolute converts")
        }
        let types = hf["type_vocab_size"] as? Int ?? 2
        guard types == 2 else {
            throw ConversionError.invalid(
                "'\(configPath)': type_vocab_size \(types); the sentence-order BERT has 2 token types")
        }
        cfg.numLayers = try int("num_hidden_layers"); cfg.hiddenSize = try int("hidden_size")
        cfg.numAttentionHeads = try int("num_attention_heads"); cfg.ffnHiddenSize = try int("intermediate_size")
        let positions = try int("max_position_embeddings")
        guard cfg.hiddenSize % cfg.numAttentionHeads == 0 else {
            throw ConversionError.invalid(
                "'\(configPath)': hidden_size \(cfg.hiddenSize) is not a multiple of num_attention_heads "
                    + "\(cfg.numAttentionHeads)")
        }
        cfg.seqLength = positions; cfg.maxPositionEmbeddings = positions
        cfg.normEpsilon = try values.double("layer_norm_eps", default: 1e-12, in: 1e-30...1)
        cfg.initMethodStd = try values.double("initializer_range", default: 0.02, in: 1e-30...10)
        cfg.hiddenDropout = try values.double("hidden_dropout_prob", default: 0.1, in: 0...0.999)
        cfg.attentionDropout = try values.double("attention_probs_dropout_prob", default: 0.1, in: 0...0.999)
        cfg.bertBinaryHead = true
        cfg.tokenizerType = .bertWordPieceLowerCase
        let tokenizerConfig = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        if let data = FileManager.default.contents(atPath: tokenizerConfig),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            object["do_lower_case"] as? Bool == false
        {
            cfg.tokenizerType = .bertWordPieceCase
        }
        let vocabFile = (directory as NSString).appendingPathComponent("vocab.txt")
        if FileManager.default.fileExists(atPath: vocabFile) { cfg.vocabFile = vocabFile }
        cfg.microBatchSize = 1; cfg.trainIters = 1; cfg.lr = 1e-4
        return (cfg, try int("vocab_size"))
    }

    /// The config.json of `b` as BertForPreTraining (post-LN) or MegatronBertForPreTraining (pre-LN).
    static func hfConfig(_ b: BertConfig) -> [String: Any] {
        let g = b.transformer, post = g.postLayerNorm
        return [
            "architectures": [post ? "BertForPreTraining" : "MegatronBertForPreTraining"],
            "model_type": post ? "bert" : "megatron-bert", "vocab_size": g.vocabSize, "hidden_size": g.hiddenSize,
            "num_hidden_layers": g.numLayers, "num_attention_heads": g.numAttentionHeads,
            "intermediate_size": g.ffnHiddenSize, "hidden_act": "gelu_new",
            "hidden_dropout_prob": Double(g.hiddenDropout), "attention_probs_dropout_prob": Double(g.attentionDropout),
            "max_position_embeddings": g.maxPositionEmbeddings, "type_vocab_size": 2,
            "initializer_range": Double(g.initMethodStd), "layer_norm_eps": Double(g.normEpsilon),
            "position_embedding_type": "absolute", "pad_token_id": 0, "tie_word_embeddings": true,
            "torch_dtype": "float32",
        ]
    }

    /// Writes `model` (a BERT with the binary head) as a Hugging Face directory (created atomically; must not exist).
    public static func export(_ model: WholeModel, to directory: String) throws {
        guard case .bert(let b) = model.architecture else {
            throw ConversionError.invalid("this checkpoint holds a GPT model; it exports as GPT-2, not BERT")
        }
        guard b.binaryHead else {
            throw ConversionError.invalid(
                "this BERT has no binary head (bert_binary_head false); Hugging Face's BertForPreTraining needs "
                    + "the sentence-order head and two token types")
        }
        guard b.transformer.attentionWidth == b.transformer.hiddenSize else {
            throw ConversionError.invalid(
                "this BERT's heads are \(b.transformer.headDim) wide (kv_channels), not hidden_size / "
                    + "num_attention_heads; Hugging Face's BertForPreTraining has no such setting")
        }
        try HFDirectory.checkAbsent(directory)
        let g = b.transformer, h = g.hiddenSize, d = h / g.numAttentionHeads, V = g.vocabSize
        let params = model.params, table = params.table
        var t: [String: SafetensorsTensor] = [:]
        for (name, (hfName, placement)) in mapping(layers: g.numLayers, postLayerNorm: g.postLayerNorm) {
            guard let slot = table.slot(named: name) else {
                throw ConversionError.missing(name: name, source: "the checkpoint")
            }
            let spec = table.specs[slot]
            let shape = placement == .vocabularyRows ? [V] + spec.shape.dropFirst() : spec.shape
            let count = shape.reduce(1, *)
            t[hfName] = .init(
                shape: shape, values: Array(UnsafeBufferPointer(start: params.pointer(slot), count: count)))
        }
        for i in 0..<g.numLayers {
            for isBias in [false, true] {
                let name = "decoder.layers.\(i).self_attention.linear_qkv." + (isBias ? "bias" : "weight")
                guard let slot = table.slot(named: name) else {
                    throw ConversionError.missing(name: name, source: "the checkpoint")
                }
                let qkv = params.pointer(slot), width = isBias ? 1 : h
                for (j, part) in ["query", "key", "value"].enumerated() {
                    var w = [Float](repeating: 0, count: h * width)
                    for head in 0..<g.numAttentionHeads {
                        for e in 0..<d {
                            let row = head * 3 * d + j * d + e, target = head * d + e
                            for k in 0..<width { w[target * width + k] = qkv[row * width + k] }
                        }
                    }
                    let hfName = "bert.encoder.layer.\(i).attention.self.\(part)." + (isBias ? "bias" : "weight")
                    t[hfName] = .init(shape: isBias ? [h] : [h, h], values: w)
                }
            }
        }
        try HFDirectory.write(directory, config: hfConfig(b), tensors: t)
    }
}

// HFDirectory.swift — the parts of a Hugging Face model directory that every conversion shares:
// `config.json` read as a JSON object, `model.safetensors` read as shape-checked tensors by name
// (optionally under a prefix such as "transformer."), and a new directory written atomically.
import Checkpoint
import Foundation

enum HFDirectory {
    /// `directory/config.json` as a JSON object and its path; `model` names the expected kind in errors.
    static func readConfig(_ directory: String, model: String) throws -> ([String: Any], String) {
        let path = (directory as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: path),
            let hf = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            throw ConversionError.invalid(
                "cannot read '\(path)' as a JSON object (a Hugging Face \(model) directory has config.json and "
                    + "model.safetensors)")
        }
        return (hf, path)
    }

    /// The state of an imported model: iteration 0, no optimizer state, one rank.
    static func importedState(_ model: ModelArchitecture, configJSON: String) -> ModelCheckpoint.RankFileState {
        ModelCheckpoint.RankFileState(
            sizes: model.shapeAttributes, seed: model.transformer.seed, configJSON: configJSON, iteration: 0,
            consumedSamples: 0, optimizerStep: 0,
            schedule: LRSchedule(maxLR: 1e-4, minLR: 0, warmupSteps: 0, decaySteps: 1, style: .linear),
            tensorSize: 1, pipelineSize: 1, tensorRank: 0, pipelineRank: 0)
    }

    static func weightsPath(_ directory: String) -> String {
        (directory as NSString).appendingPathComponent("model.safetensors")
    }

    /// Fails when `directory` exists (exports never overwrite).
    static func checkAbsent(_ directory: String) throws {
        guard !FileManager.default.fileExists(atPath: directory) else {
            throw ConversionError.invalid("'\(directory)' already exists; choose a new directory for the export")
        }
    }

    /// Writes config.json, model.safetensors and `files` (name → contents) into a new `directory`,
    /// atomically (a temporary directory renamed at the end).
    static func write(
        _ directory: String, config: [String: Any], tensors: [String: SafetensorsTensor], files: [String: Data] = [:]
    ) throws {
        let fm = FileManager.default
        try checkAbsent(directory)
        let tmp = directory + ".tmp-\(getpid())"
        try? fm.removeItem(atPath: tmp)
        do {
            try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
                .write(to: URL(fileURLWithPath: (tmp as NSString).appendingPathComponent("config.json")))
            try Safetensors.write(weightsPath(tmp), tensors: tensors, metadata: ["format": "pt"])
            for (name, contents) in files {
                try contents.write(to: URL(fileURLWithPath: (tmp as NSString).appendingPathComponent(name)))
            }
            try fm.moveItem(atPath: tmp, toPath: directory)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }
}

/// Typed reads of a Hugging Face config.json: a missing optional key takes its default; a key of
/// the wrong type or out of range is an error naming the key and the file (never a silent default).
struct HFConfigValues {
    let hf: [String: Any], path: String

    func positiveInt(_ key: String, or alternative: String? = nil) throws -> Int {
        for k in [key] + (alternative.map { [$0] } ?? []) {
            guard let value = hf[k] else { continue }
            guard let v = value as? Int, v > 0 else {
                throw ConversionError.invalid("'\(path)': '\(k)' is \(value); it must be a positive integer")
            }
            return v
        }
        throw ConversionError.invalid("'\(path)' lacks the positive integer '\(key)'")
    }

    func optionalPositiveInt(_ key: String) throws -> Int? {
        guard let value = hf[key], !(value is NSNull) else { return nil }
        return try positiveInt(key)
    }

    func double(_ key: String, default fallback: Double, in range: ClosedRange<Double>) throws -> Double {
        guard let value = hf[key], !(value is NSNull) else { return fallback }
        guard let v = value as? Double, range.contains(v) else {
            throw ConversionError.invalid("'\(path)': '\(key)' is \(value); it must be a number in \(range)")
        }
        return v
    }
}

/// A safetensors file's tensors by HF name (under `prefix` when the file uses it), shape-checked.
struct HFTensors {
    let tensors: [String: SafetensorsTensor]
    let prefix: String, path: String

    /// Reads `path`; the names carry `prefixProbe`'s prefix (the part before its first '.') when the
    /// file holds `prefixProbe`, and none otherwise.
    init(path: String, prefixProbe: String? = nil) throws {
        tensors = try Safetensors.read(path)
        if let probe = prefixProbe, tensors[probe] != nil, let dot = probe.firstIndex(of: ".") {
            prefix = String(probe[...dot])
        } else {
            prefix = ""
        }
        self.path = path
    }

    func has(_ name: String) -> Bool { tensors[prefix + name] != nil }

    /// Fails when the file holds layer `layers` (numbered from 0) or beyond: config.json says fewer
    /// layers than the weights have, and importing would drop some silently.
    func checkNoLayer(beyond layers: Int, pattern: (Int) -> String, key: String, configPath: String) throws {
        let extra = tensors.keys.filter { $0.hasPrefix(prefix + pattern(layers)) }
        guard extra.isEmpty else {
            throw ConversionError.invalid(
                "'\(path)' holds layer \(layers) (e.g. '\(extra.sorted()[0])') but '\(configPath)' says \(key) \(layers): "
                    + "the config and the weights disagree")
        }
    }

    /// Checks, before the model is allocated, that the file holds each named tensor with the shape
    /// config.json implies (the embeddings and the last layer): a config.json that claims a larger
    /// model than its weights is then an error, not an allocation of the claimed size.
    func requireBacking(_ checks: [(name: String, shape: [Int])]) throws {
        for c in checks { _ = try get(c.name, c.shape) }
    }

    func get(_ name: String, _ shape: [Int]) throws -> [Float] {
        guard let t = tensors[prefix + name] else {
            throw ConversionError.missing(name: prefix + name, source: path)
        }
        guard t.shape == shape else {
            throw ConversionError.tensor(name: prefix + name, found: t.shape, expected: shape, source: path)
        }
        return t.values
    }

    /// Copies tensor `name` of `shape` as it is.
    func copy(_ name: String, _ shape: [Int], into out: UnsafeMutablePointer<Float>) throws {
        let w = try get(name, shape)
        w.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: w.count) }
    }

    /// Copies HF's Conv1D weight [in, out] as ours [out, in].
    func transpose(_ name: String, rows inRows: Int, cols outCols: Int, into out: UnsafeMutablePointer<Float>) throws {
        let w = try get(name, [inRows, outCols])
        for o in 0..<outCols { for i in 0..<inRows { out[o * inRows + i] = w[i * outCols + o] } }
    }
}

/// Import and export by model kind: config.json's model_type picks the reader (gpt2, llama, mistral,
/// qwen2 or qwen3, bert, megatron-bert), the checkpoint's model picks the writer.
public enum HuggingFace {
    public static func importModel(directory: String) throws -> WholeModel {
        let (hf, _) = try HFDirectory.readConfig(directory, model: "GPT-2, Llama or BERT")
        switch hf["model_type"] as? String {
        case "bert", "megatron-bert": return try HFBert.importModel(directory: directory)
        case "llama", "mistral", "qwen2", "qwen3": return try HFLlama.importModel(directory: directory)
        default: return try HFGPT2.importModel(directory: directory)
        }
    }

    /// Writes GPT as GPT2LMHeadModel (with its tokenizer and generation files when its tokenizer
    /// can be written), a GPT with Megatron's Llama-style options as LlamaForCausalLM, BERT as BertForPreTraining (post-LN) or MegatronBertForPreTraining (pre-LN).
    /// Returns the architecture written and, when a GPT export has no tokenizer files, why.
    @discardableResult
    public static func export(_ model: WholeModel, to directory: String) throws -> (
        architecture: String, tokenizerNote: String?
    ) {
        switch model.architecture {
        case .gpt(let g) where HFGPT2.options(g).count > 0:
            let withTokenizer = try HFLlama.export(model, to: directory)
            let c = model.trainingConfig
            let note =
                withTokenizer
                ? nil
                : "no tokenizer files written: the checkpoint's tokenizer is \(c.tokenizerType.rawValue)"
                    + (c.tokenizerType.readsTokenizerModel ? " with tokenizer_model \(c.tokenizerModel ?? "none")" : "")
                    + "; a Llama export carries a Llama2Tokenizer's or GPTSentencePieceTokenizer's readable "
                    + "tokenizer.model, or a HuggingFaceTokenizer's tokenizer.json"
            return (HFLlama.architecture(g), note)
        case .gpt:
            let withTokenizer = try HFGPT2.export(model, to: directory)
            let c = model.trainingConfig
            let note =
                withTokenizer
                ? nil
                : "no tokenizer files written: the checkpoint's config names \(c.tokenizerType.rawValue) without "
                    + "readable vocab_file and merge_file (vocab_file: \(c.vocabFile ?? "none"), merge_file: "
                    + "\(c.mergeFile ?? "none")); copy GPT-2's vocab.json and merges.txt into the export yourself"
            return ("GPT2LMHeadModel", note)
        case .bert(let b):
            try HFBert.export(model, to: directory)
            return (b.transformer.postLayerNorm ? "BertForPreTraining" : "MegatronBertForPreTraining", nil)
        }
    }
}

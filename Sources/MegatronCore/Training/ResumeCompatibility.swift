// ResumeCompatibility.swift — resuming must continue the same function. The stored shapes are
// compared when tensors are read (CheckpointReader.checkSizes); this compares the keys that change
// what the model computes without changing a shape — the tokenizer (its type, and the contents of
// its vocabulary and merges files when both runs' files can be read), norm_epsilon, the LayerNorm
// arrangement, the GPT architecture options (normalization, rope and its base and share, SwiGLU,
// linear biases, an untied head) and the model type — between the checkpoint's stored config and this run's, and
// refuses a resume that changes any, naming each (Megatron's check_checkpoint_args does the same
// for its keys). A finetune run loads weights on purpose under a new setting and is not checked.
import Foundation

enum ResumeCompatibility {
    /// The keys that differ, as "key: checkpoint → this run".
    static func differences(stored: TrainingConfig, current: TrainingConfig) -> [String] {
        var out: [String] = []
        func compare<T: Equatable>(_ key: String, _ a: T, _ b: T) { if a != b { out.append("\(key): \(a) → \(b)") } }
        compare("model_type", stored.modelType.rawValue, current.modelType.rawValue)
        compare("tokenizer_type", stored.tokenizerType.rawValue, current.tokenizerType.rawValue)
        compare("norm_epsilon", stored.normEpsilon, current.normEpsilon)
        compare("layernorm_arrangement", stored.layernormArrangement.rawValue, current.layernormArrangement.rawValue)
        compare("normalization", stored.normalization.rawValue, current.normalization.rawValue)
        compare(
            "position_embedding_type", stored.positionEmbeddingType.rawValue, current.positionEmbeddingType.rawValue)
        if current.positionEmbeddingType == .rope {
            compare("rotary_base", stored.rotaryBase, current.rotaryBase)
            compare("rotary_percent", stored.rotaryPercent, current.rotaryPercent)
            compare("use_rope_scaling", stored.useRopeScaling, current.useRopeScaling)
            if current.useRopeScaling {
                compare("rope_scaling_factor", stored.ropeScalingFactor, current.ropeScalingFactor)
            }
        }
        compare("swiglu", stored.swiglu, current.swiglu)
        compare("window_size", (try? stored.slidingWindow()) ?? nil, (try? current.slidingWindow()) ?? nil)
        compare("num_query_groups", stored.queryGroups, current.queryGroups)
        compare("add_bias_linear", stored.addBiasLinear, current.addBiasLinear)
        compare("add_qkv_bias", stored.addQKVBias, current.addQKVBias)
        compare(
            "untie_embeddings_and_output_weights", stored.untieEmbeddingsAndOutputWeights,
            current.untieEmbeddingsAndOutputWeights)
        for (key, a, b) in [
            ("vocab_file", stored.vocabFile, current.vocabFile), ("merge_file", stored.mergeFile, current.mergeFile),
            ("tokenizer_model", stored.tokenizerModel, current.tokenizerModel),
        ] {
            guard let a, let b, a != b, let x = FileManager.default.contents(atPath: a),
                let y = FileManager.default.contents(atPath: b), x != y
            else { continue }
            out.append("\(key): '\(a)' → '\(b)' (different contents)")
        }
        return out
    }

    /// Throws when the checkpoint under `root` was trained with a different function than `current`.
    static func check(root: String, current: TrainingConfig) throws {
        guard let json = CheckpointReader.storedConfigJSON(root: root) else { return }
        var stored = TrainingConfig()
        guard (try? ConfigLoader.applyJSON(Data(json.utf8), source: root, to: &stored)) != nil else { return }
        let changed = differences(stored: stored, current: current)
        guard changed.isEmpty else {
            throw ConfigError.inconsistent(
                keys: changed.map { String($0.prefix { $0 != ":" }) },
                rule:
                    "resuming \(root) would change what the model computes (\(changed.joined(separator: "; "))); "
                    + "resume with the checkpoint's settings, or start a new run from its weights with finetune")
        }
    }
}

// ConfigValidation+Magnitudes.swift — the first rule: every count a config gives, and the products
// of them the trainer forms (elements of a layer's tensors, of the attention's dropout stream, of a
// weight matrix stack; samples of the LR schedule), must stay far inside 64-bit integers. A value
// like hidden_size 2^62 is refused here by name, where it had trapped on an arithmetic overflow
// inside a later rule or the trainer's set-up. The bound, 2^50 (about 10^15) elements, is beyond
// any machine's memory, so the memory preflight still decides for every real model.
import Foundation

extension ConfigValidation {
    /// The largest count or product of counts a config may give.
    public static let largestCount = 1 << 50

    static func validateMagnitudes(_ c: TrainingConfig) throws {
        let limit = Double(largestCount)
        // The seed is only mixed into random streams, never multiplied.
        for key in ConfigKeys.all where key.name != "seed" {
            let value: Int?
            switch key.field {
            case .int(let kp): value = c[keyPath: kp]
            case .optionalInt(let kp): value = c[keyPath: kp]
            default: value = nil
            }
            if let value, value.magnitude > UInt(largestCount) {
                throw ConfigError.invalidValue(
                    key: key.name, value: "\(value)", rule: "must be at most 2^50 (\(largestCount)) in size")
            }
        }
        let h = Double(c.hiddenSize), l = Double(c.numLayers), a = Double(c.numAttentionHeads)
        let s = Double(c.seqLength), b = Double(c.microBatchSize)
        let width = max(h, Double(c.ffnHiddenSize ?? 4 * c.hiddenSize), 3 * a * Double(c.kvChannels ?? 1))
        let gbs = Double(c.globalBatchSize ?? c.microBatchSize)
        let products: [([String], Double, String)] = [
            (
                ["seq_length", "micro_batch_size", "hidden_size", "ffn_hidden_size"], s * b * width,
                "values per layer tensor"
            ),
            (
                ["micro_batch_size", "num_attention_heads", "seq_length"], b * a * s * s,
                "attention scores per micro-batch"
            ),
            (["num_layers", "hidden_size", "ffn_hidden_size"], l * h * width, "weights in the layer stack"),
            (["max_position_embeddings", "hidden_size"], Double(c.maxPositionEmbeddings ?? 0) * h, "position weights"),
            (["train_iters", "global_batch_size"], Double(c.trainIters) * gbs, "samples in training"),
            (["lr_decay_iters", "global_batch_size"], Double(c.lrDecayIters ?? 0) * gbs, "samples of LR decay"),
            (["lr_warmup_iters", "global_batch_size"], Double(c.lrWarmupIters) * gbs, "samples of LR warm-up"),
            (
                ["lr_wsd_decay_iters", "global_batch_size"], Double(c.lrWsdDecayIters ?? 0) * gbs,
                "samples of WSD decay"
            ),
        ]
        for (keys, product, what) in products where product > limit {
            throw ConfigError.inconsistent(
                keys: keys,
                rule: String(
                    format: "together they give %.3g %@, more than the 2^50 (%.3g) this trainer counts", product,
                    what as NSString, limit) + ": use smaller values")
        }
    }
}

// Sampling.swift — choosing the next token from a row of logits, with Megatron's text-generation
// semantics (megatron/inference/text_generation/sampling.py): greedy (temperature 0 or top_k 1),
// else logits / temperature, then top-k or top-p (nucleus: keep the most probable tokens until
// their probability mass first exceeds p, the token that crosses it included), then a draw from the
// softmax. Top-k and top-p together are refused, as Megatron does. Padded vocabulary entries are
// never chosen. The draw for (seed, prompt, position) is a Philox counter value, so it does not
// depend on the grid, on batching, or on anything drawn before.
import Foundation
import Tensor

public struct SamplingOptions: Sendable, Equatable, Codable {
    public var temperature: Double = 1
    public var topK: Int = 0
    public var topP: Double = 0
    public var seed: Int = 1234

    public init(temperature: Double = 1, topK: Int = 0, topP: Double = 0, seed: Int = 1234) {
        (self.temperature, self.topK, self.topP, self.seed) = (temperature, topK, topP, seed)
    }

    public var isGreedy: Bool { temperature == 0 || topK == 1 }

    /// The problems with these options, each naming its key (empty when they are valid).
    public func problems(vocabSize: Int) -> [String] {
        var out: [String] = []
        if !temperature.isFinite || temperature < 0 || temperature > 100 {
            out.append("temperature \(temperature) must be between 0 (greedy) and 100")
        }
        if topK < 0 || topK > vocabSize { out.append("top_k \(topK) must be between 0 (off) and \(vocabSize)") }
        if !topP.isFinite || topP < 0 || topP > 1 { out.append("top_p \(topP) must be between 0 (off) and 1") }
        if topK > 1 && topP > 0 { out.append("top_k and top_p cannot both be set (Megatron refuses it too)") }
        return out
    }
}

public enum Sampler {
    /// The token chosen from `logits` (the first `vocabSize` entries are real) for position
    /// `position` of prompt `prompt`.
    public static func choose(
        _ logits: UnsafeBufferPointer<Float>, vocabSize v: Int, options o: SamplingOptions, prompt: Int, position: Int
    ) -> Int32 {
        if o.isGreedy { return argmax(logits, count: v) }
        let t = Float(o.temperature)
        // Candidates in the order the draw walks them: all tokens, or the top-k / top-p ones by logit.
        var candidates: [Int]
        if o.topK > 1 || o.topP > 0 {
            candidates = Array(0..<v)
            candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            if o.topK > 1 { candidates.removeSubrange(min(o.topK, v)...) }
        } else {
            candidates = Array(0..<v)
        }
        let top = candidates.reduce(-Float.infinity) { max($0, logits[$1] / t) }
        var weights = candidates.map { Foundation.exp(Double(logits[$0] / t - top)) }
        if o.topP > 0 {
            let total = weights.reduce(0, +)
            var mass = 0.0, keep = 0
            while keep < weights.count && (keep == 0 || mass <= o.topP) {
                mass += weights[keep] / total
                keep += 1
            }
            candidates.removeSubrange(keep...)
            weights.removeSubrange(keep...)
        }
        let u = Double(uniform(seed: o.seed, prompt: prompt, position: position)) * weights.reduce(0, +)
        var acc = 0.0
        for (i, w) in weights.enumerated() {
            acc += w
            if u < acc { return Int32(candidates[i]) }
        }
        return Int32(candidates[weights.lastIndex { $0 > 0 } ?? 0])
    }

    /// The first index of the largest of `logits[0 ..< count]`.
    public static func argmax(_ logits: UnsafeBufferPointer<Float>, count: Int) -> Int32 {
        var best = 0
        for i in 1..<count where logits[i] > logits[best] { best = i }
        return Int32(best)
    }

    /// log softmax(logits)[token] over the real vocabulary (temperature 1, nothing filtered), as
    /// Megatron's `logprobs` report it.
    public static func logProbability(_ logits: UnsafeBufferPointer<Float>, vocabSize v: Int, token: Int32) -> Float {
        var top = -Float.infinity
        for i in 0..<v { top = max(top, logits[i]) }
        var sum = 0.0
        for i in 0..<v { sum += Foundation.exp(Double(logits[i] - top)) }
        return Float(Double(logits[Int(token)] - top) - Foundation.log(sum))
    }

    /// The uniform draw in [0, 1) for (seed, prompt, position).
    static func uniform(seed: Int, prompt: Int, position: Int) -> Float {
        Philox4x32(seed: UInt64(truncatingIfNeeded: seed), stream: 0x5EED_7E47).uniform(
            index: position, UInt32(truncatingIfNeeded: prompt), 0)
    }
}

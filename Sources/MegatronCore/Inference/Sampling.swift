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
        var top = -Float.infinity
        for i in 0..<v { top = max(top, logits[i] / t) }
        let weight = { (i: Int) in Foundation.exp(Double(logits[i] / t - top)) }
        // The candidates in the order the draw walks them: every token in vocabulary order, or the
        // top-k / top-p ones by descending logit (ties by id).
        let candidates: [Int]
        if o.topK > 1 {
            candidates = largest(logits, count: v, k: min(o.topK, v))
        } else if o.topP > 0 {
            candidates = nucleus(logits, count: v, temperature: t, top: top, p: o.topP, weight: weight)
        } else {
            candidates = Array(0..<v)
        }
        let weights = candidates.map(weight)
        let u = Double(uniform(seed: o.seed, prompt: prompt, position: position)) * weights.reduce(0, +)
        var acc = 0.0
        for (i, w) in weights.enumerated() {
            acc += w
            if u < acc { return Int32(candidates[i]) }
        }
        return Int32(candidates[weights.lastIndex { $0 > 0 } ?? 0])
    }

    /// Whether token a ranks before token b: larger logit, then smaller id.
    @inline(__always)
    static func before(_ logits: UnsafeBufferPointer<Float>, _ a: Int, _ b: Int) -> Bool {
        logits[a] > logits[b] || (logits[a] == logits[b] && a < b)
    }

    /// The k best tokens, best first: a k-element min-heap over the vocabulary (V log k, not V log V).
    static func largest(_ logits: UnsafeBufferPointer<Float>, count v: Int, k: Int) -> [Int] {
        var heap: [Int] = []  // heap[0] is the worst kept token
        heap.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var worst = i
                if l < heap.count && before(logits, heap[worst], heap[l]) { worst = l }
                if r < heap.count && before(logits, heap[worst], heap[r]) { worst = r }
                if worst == i { return }
                heap.swapAt(i, worst)
                i = worst
            }
        }
        for token in 0..<v {
            if heap.count < k {
                heap.append(token)
                var i = heap.count - 1
                while i > 0 && before(logits, heap[(i - 1) / 2], heap[i]) {
                    heap.swapAt(i, (i - 1) / 2)
                    i = (i - 1) / 2
                }
            } else if before(logits, token, heap[0]) {
                heap[0] = token
                siftDown(0)
            }
        }
        return heap.sorted { before(logits, $0, $1) }
    }

    /// The smallest set of best tokens whose probability first exceeds p (the token that crosses it
    /// included), best first. Only tokens within `gap` of the best logit are sorted; the gap doubles
    /// until the set is complete inside it, which gives exactly the full sort's prefix.
    static func nucleus(
        _ logits: UnsafeBufferPointer<Float>, count v: Int, temperature t: Float, top: Float, p: Double,
        weight: (Int) -> Double
    ) -> [Int] {
        var total = 0.0
        for i in 0..<v { total += weight(i) }
        var gap: Float = 8
        while true {
            let inside = (0..<v).filter { logits[$0] / t >= top - gap }.sorted { before(logits, $0, $1) }
            var mass = 0.0, keep = 0
            while keep < inside.count && (keep == 0 || mass <= p) {
                mass += weight(inside[keep]) / total
                keep += 1
            }
            if mass > p || inside.count == v { return Array(inside.prefix(keep)) }
            gap *= 2
        }
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

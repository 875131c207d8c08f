// SamplingTests.swift — the sampler against a direct transcription of Megatron's rules (sort the
// whole vocabulary by logit; top-k keeps the first k; top-p keeps tokens until their mass first
// exceeds p; draw from the softmax of what is kept): the heap selection and the widening nucleus
// window must pick exactly the same token for every draw, including tied logits.
import Foundation
import MegatronCore
import Tensor
import XCTest

final class SamplingTests: XCTestCase {
    /// The reference: full sort, then the same draw.
    func reference(_ logits: [Float], _ o: SamplingOptions, prompt: Int, position: Int) -> Int32 {
        let t = Float(o.temperature)
        var order = Array(logits.indices)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let top = logits.map { $0 / t }.max()!
        let w = { (i: Int) in Foundation.exp(Double(logits[i] / t - top)) }
        var kept = order
        if o.topK > 1 { kept = Array(order.prefix(o.topK)) }
        if o.topP > 0 {
            let total = order.reduce(0.0) { $0 + w($1) }
            var mass = 0.0, keep = 0
            while keep < order.count && (keep == 0 || mass <= o.topP) { mass += w(order[keep]) / total; keep += 1 }
            kept = Array(order.prefix(keep))
        }
        if o.topK <= 1 && o.topP == 0 { kept = Array(logits.indices) }
        let weights = kept.map(w)
        let u =
            Double(Philox4x32(seed: UInt64(o.seed), stream: 0x5EED_7E47).uniform(index: position, UInt32(prompt), 0))
            * weights.reduce(0, +)
        var acc = 0.0
        for (i, x) in weights.enumerated() {
            acc += x
            if u < acc { return Int32(kept[i]) }
        }
        return Int32(kept.last!)
    }

    func testTopKAndTopPPickWhatAFullSortPicks() {
        var rng = Philox4x32(seed: 3, stream: 9)
        var checked = 0
        for trial in 0..<60 {
            let v = 500 + trial * 37
            // Logits with repeats (ties) and a long tail.
            var logits = (0..<v).map { i in Float(Int(rng.uniform(index: i, UInt32(trial)) * 40)) / 4 - 5 }
            logits[trial % v] = 9
            for options in [
                SamplingOptions(temperature: 0.7, topK: 5, seed: trial),
                SamplingOptions(temperature: 1.3, topK: 200, seed: trial),
                SamplingOptions(temperature: 0.9, topP: 0.5, seed: trial),
                SamplingOptions(temperature: 1, topP: 0.999, seed: trial),
                SamplingOptions(temperature: 1, seed: trial),
            ] {
                for position in 0..<4 {
                    let ours = logits.withUnsafeBufferPointer {
                        Sampler.choose($0, vocabSize: v, options: options, prompt: trial, position: position)
                    }
                    XCTAssertEqual(ours, reference(logits, options, prompt: trial, position: position), "\(options)")
                    checked += 1
                }
            }
            rng = Philox4x32(seed: UInt64(trial), stream: 10)
        }
        XCTAssertEqual(checked, 60 * 5 * 4)
    }
}

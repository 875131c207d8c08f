// GPTSamples.swift — samples of seq_length + 1 tokens for GPT training and the order in which they
// are drawn. Sample j of a split covers tokens [j·s, j·s + s + 1) (consecutive samples share one
// token, as Megatron's). Training draws a fresh Philox-seeded permutation every epoch; sample k of
// the global stream is a pure function of (seed, k), so `consumed_samples` alone resumes the data.
import Tensor

public protocol SampleSource: Sendable {
    var count: Int { get }
    /// Writes the `seqLength + 1` tokens of sample `index` (0 ≤ index < count).
    func sample(_ index: Int, into out: UnsafeMutablePointer<Int32>)
}

/// Non-overlapping windows over a token range.
public struct TokenWindows: SampleSource {
    public let tokens: [Int32]
    public let range: Range<Int>
    public let seqLength: Int

    public init(tokens: [Int32], range: Range<Int>, seqLength: Int) {
        self.tokens = tokens; self.range = range; self.seqLength = seqLength
    }

    public var count: Int { max(0, (range.count - 1) / seqLength) }

    public func sample(_ index: Int, into out: UnsafeMutablePointer<Int32>) {
        let start = range.lowerBound + index * seqLength
        tokens.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + start, count: seqLength + 1) }
    }
}

/// Uniformly random tokens (Megatron's `--mock-data`), for benchmarks: sample i is a function of (seed, i).
public struct MockSamples: SampleSource {
    public let vocabSize: Int, seqLength: Int, count: Int
    let rng: Philox4x32

    public init(vocabSize: Int, seqLength: Int, seed: Int, count: Int = 1 << 30) {
        self.vocabSize = vocabSize; self.seqLength = seqLength; self.count = count
        rng = Philox4x32(seed: UInt64(truncatingIfNeeded: seed), stream: stableHash("mock_data"))
    }

    public func sample(_ index: Int, into out: UnsafeMutablePointer<Int32>) {
        for t in 0...seqLength {
            out[t] = Int32(
                min(vocabSize - 1, Int(rng.uniform(index: t, UInt32(truncatingIfNeeded: index), 0) * Float(vocabSize))))
        }
    }
}

/// The epoch-wise shuffled order of a source: global index k → (epoch k / n, permuted position).
public final class ShuffledOrder: @unchecked Sendable {
    public let source: SampleSource
    public let seed: Int
    /// False for sources that are already random (mock data): k → k mod count.
    public let shuffles: Bool
    private var epoch = -1
    private var permutation: [Int] = []

    public init(source: SampleSource, seed: Int, shuffles: Bool = true) {
        self.source = source; self.seed = seed; self.shuffles = shuffles
    }

    public func sampleIndex(_ k: Int) -> Int {
        let n = source.count
        if !shuffles { return k % n }
        let e = k / n
        if e != epoch { permutation = Self.permutation(count: n, seed: seed, epoch: e); epoch = e }
        return permutation[k % n]
    }

    /// Fisher–Yates driven by Philox(seed, "shuffle", epoch).
    static func permutation(count n: Int, seed: Int, epoch: Int) -> [Int] {
        permutation(count: n, seed: seed, label: "shuffle.\(epoch)")
    }

    /// Fisher–Yates driven by Philox(seed, stream named `label`).
    static func permutation(count n: Int, seed: Int, label: String) -> [Int] {
        var p = Array(0..<n)
        let rng = Philox4x32(seed: UInt64(truncatingIfNeeded: seed), stream: stableHash(label))
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int((UInt64(rng.block(UInt32(truncatingIfNeeded: i), 0, 0, 0)[0]) * UInt64(i + 1)) >> 32)
            p.swapAt(i, j)
        }
        return p
    }
}

public enum BatchAssembly {
    /// Fills `tokens`/`targets` ([s, b], row index i·b + j) from the b samples `indices`.
    public static func fill(
        tokens: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>,
        from source: SampleSource, indices: [Int], seqLength s: Int
    ) {
        let b = indices.count
        var sample = [Int32](repeating: 0, count: s + 1)
        for (j, idx) in indices.enumerated() {
            sample.withUnsafeMutableBufferPointer { source.sample(idx, into: $0.baseAddress!) }
            for i in 0..<s {
                tokens[i * b + j] = sample[i]
                targets[i * b + j] = sample[i + 1]
            }
        }
    }
}

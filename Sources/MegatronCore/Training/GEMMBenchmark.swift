// GEMMBenchmark.swift — the SGEMM rate of OpenBLAS on exactly the matrix products one training
// step of this model runs (every linear layer's forward and two backward products, the chunked LM
// head's three), weighted by how often each runs. It is the yardstick `megatron benchmark`
// divides the model's throughput by, and the same shapes in bf16 (BF16.gemm). Attention's per-head
// tile products are not included.
import Foundation
import Tensor

public struct GEMMShape: Sendable {
    public let name: String
    public let m: Int, n: Int, k: Int
    public let transA: Bool, transB: Bool
    /// Calls per training micro-batch.
    public let calls: Int
    /// B is a layer's input as a bf16 run keeps it, in 16-bit words (a linear layer's weight gradient,
    /// Linear.backward); otherwise bf16 runs pass fp32 operands, rounded while packed.
    public var keptInput = false
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
}

public enum GEMMBenchmark {
    public static func shapes(config c: GPTConfig, microBatch b: Int) -> [GEMMShape] {
        let rows = c.seqLength * b, h = c.hiddenSize, f = c.ffnHiddenSize, L = c.numLayers, V = c.vocabSize
        var out: [GEMMShape] = []
        for (name, i, o) in [("qkv", h, 3 * h), ("proj", h, h), ("fc1", h, f), ("fc2", f, h)] {
            out.append(GEMMShape(name: "\(name) forward", m: rows, n: o, k: i, transA: false, transB: true, calls: L))
            out.append(GEMMShape(name: "\(name) dgrad", m: rows, n: i, k: o, transA: false, transB: false, calls: L))
            out.append(
                GEMMShape(
                    name: "\(name) wgrad", m: o, n: i, k: rows, transA: true, transB: false, calls: L, keptInput: true))
        }
        let chunk = VocabCrossEntropy.chunkRows(rows: rows, vocab: V)
        var r = 0
        var sizes: [Int: Int] = [:]
        while r < rows { sizes[min(chunk, rows - r), default: 0] += 1; r += chunk }
        for (cr, count) in sizes.sorted(by: { $0.key > $1.key }) {
            out.append(
                GEMMShape(
                    name: "lm head forward [\(cr) rows]", m: cr, n: V, k: h, transA: false, transB: true, calls: count))
            out.append(
                GEMMShape(
                    name: "lm head dgrad [\(cr) rows]", m: cr, n: h, k: V, transA: false, transB: false, calls: count))
            out.append(
                GEMMShape(
                    name: "lm head wgrad [\(cr) rows]", m: V, n: h, k: cr, transA: true, transB: false, calls: count))
        }
        return out
    }

    /// Times each shape (best of `repeats` after a warm-up) and returns per-shape seconds and the
    /// overall rate Σ calls·flops / Σ calls·seconds in FLOP/s.
    /// `before` runs ahead of each timed repetition, untimed (the planner's calibration empties the caches).
    public static func measure(_ shapes: [GEMMShape], repeats: Int = 3, before: () -> Void = {}) -> (
        perShape: [Double], rate: Double
    ) {
        measure(shapes, repeats: repeats, before: before) { s, o in
            BLAS.sgemm(
                transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: o.a.base, lda: o.lda(s),
                b: o.b.base, ldb: o.ldb(s), c: o.c.base, ldc: s.n)
        }
    }

    /// The same shapes on the bf16 kernel (BF16.gemm) with the operands as bf16 training passes them:
    /// fp32, rounded while packed, but B in 16-bit words where the shape reads a kept input
    /// (`keptInput`); packing included in each call.
    public static func measureBF16(_ shapes: [GEMMShape], repeats: Int = 3, before: () -> Void = {}) -> (
        perShape: [Double], rate: Double
    ) {
        measure(shapes, repeats: repeats, before: before) { s, o in
            if s.keptInput {
                o.words.withUnsafeBufferPointer { w in
                    BF16.gemm(
                        transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: o.a.base, lda: o.lda(s),
                        b: w.baseAddress!, ldb: o.ldb(s), c: o.c.base, ldc: s.n)
                }
            } else {
                BF16.gemm(
                    transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: o.a.base, lda: o.lda(s),
                    b: o.b.base, ldb: o.ldb(s), c: o.c.base, ldc: s.n)
            }
        }
    }

    /// The operands every shape is timed over, sized for the largest and filled once; B's 16-bit
    /// words made on first use.
    final class Operands {
        let a: FloatBuffer, b: FloatBuffer, c: FloatBuffer
        lazy var words: [UInt16] = {
            var w = [UInt16](repeating: 0, count: max(1, b.count))
            w.withUnsafeMutableBufferPointer { BF16.round(b.base, into: $0.baseAddress!, count: b.count) }
            return w
        }()
        init(_ shapes: [GEMMShape]) {
            let (maxA, maxB, maxC) = GEMMBenchmark.sizes(shapes)
            a = FloatBuffer(count: maxA); b = FloatBuffer(count: maxB); c = FloatBuffer(count: maxC)
            GEMMBenchmark.fill(a, b, maxA, maxB)
        }
        /// Leading dimensions as the sgemm convention has them (C's is the shape's n).
        func lda(_ s: GEMMShape) -> Int { s.transA ? s.m : s.k }
        func ldb(_ s: GEMMShape) -> Int { s.transB ? s.k : s.n }
    }

    /// `product` timed on every shape over one set of operands.
    static func measure(
        _ shapes: [GEMMShape], repeats: Int, before: () -> Void = {}, product: (GEMMShape, Operands) -> Void
    ) -> (perShape: [Double], rate: Double) {
        let operands = Operands(shapes)
        return time(shapes, repeats: repeats, before: before) { product($0, operands) }
    }

    /// The largest A, B and C any shape needs.
    static func sizes(_ shapes: [GEMMShape]) -> (Int, Int, Int) {
        (
            shapes.map { $0.m * $0.k }.max() ?? 0, shapes.map { $0.k * $0.n }.max() ?? 0,
            shapes.map { $0.m * $0.n }.max() ?? 0
        )
    }

    static func fill(_ a: FloatBuffer, _ b: FloatBuffer, _ countA: Int, _ countB: Int) {
        for i in 0..<countA { a[i] = Float(i % 13) * 0.01 }
        for i in 0..<countB { b[i] = Float(i % 11) * 0.01 }
    }

    /// Best of `repeats` timings (after a warm-up) of `run` per shape, and the overall rate
    /// Σ calls·flops / Σ calls·seconds in FLOP/s.
    static func time(_ shapes: [GEMMShape], repeats: Int, before: () -> Void = {}, _ run: (GEMMShape) -> Void) -> (
        perShape: [Double], rate: Double
    ) {
        var per: [Double] = []
        var totalFlops = 0.0, totalSeconds = 0.0
        for s in shapes {
            run(s)
            var best = Double.infinity
            for _ in 0..<repeats {
                before()
                let t0 = DispatchTime.now().uptimeNanoseconds
                run(s)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            per.append(best)
            totalFlops += Double(s.calls) * s.flops
            totalSeconds += Double(s.calls) * best
        }
        return (per, totalFlops / totalSeconds)
    }
}

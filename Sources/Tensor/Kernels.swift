// Kernels.swift — fused elementwise passes over raw pointers: add, scale, finiteness, sum of squares,
// the AdamW update. Each is one vectorised pass (SIMD16 loads, scalar tail) and splits across the
// thread budget, except AdamW's (in C, on the calling thread; its caller splits the parameters).
import CBF16

/// 16 floats from `p + i` (any alignment).
@inlinable @inline(__always) public func load16(_ p: UnsafePointer<Float>, _ i: Int) -> F16 {
    UnsafeRawPointer(p + i).loadUnaligned(as: F16.self)
}
/// Stores 16 floats at `p + i` (any alignment).
@inlinable @inline(__always) public func store16(_ v: F16, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: F16.self)
}

public enum Kernels {
    /// `out[i] = a[i] + b[i]` (out may alias a or b).
    public static func add(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        into out: UnsafeMutablePointer<Float>, count n: Int
    ) {
        ThreadBudget.parallelFor(n, grain: 1 << 14) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound { store16(load16(a, i) + load16(b, i), out, i); i += 16 }
            while i < r.upperBound { out[i] = a[i] + b[i]; i += 1 }
        }
    }

    /// `x[i] *= s`.
    public static func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count n: Int) {
        ThreadBudget.parallelFor(n, grain: 1 << 14) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound { store16(load16(x, i) * s, x, i); i += 16 }
            while i < r.upperBound { x[i] *= s; i += 1 }
        }
    }

    /// True when no element is ±∞ or NaN (x·0 is NaN exactly for those; one vector pass).
    public static func allFinite(_ x: UnsafePointer<Float>, count n: Int) -> Bool {
        var acc = F16(repeating: 0)
        var i = 0
        while i + 16 <= n { acc += load16(x, i) * 0; i += 16 }
        var tail: Float = 0
        while i < n { tail += x[i] * 0; i += 1 }
        return acc.sum() == 0 && tail == 0
    }

    /// How many of x[0..<n] are exactly 0 (±0), counted on the thread budget.
    public static func zeroCount(_ x: UnsafePointer<Float>, count n: Int) -> Int {
        let block = 1 << 16, blocks = (n + block - 1) / block
        guard blocks > 0 else { return 0 }
        var partial = [Int](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { part in
            let out = part.baseAddress!
            ThreadBudget.parallelFor(blocks) { br in
                let zero = F16(repeating: 0), one = F16(repeating: 1)
                for b in br {
                    let hi = min(n, (b + 1) * block)
                    var acc = zero  // per-lane counts, exact in fp32 (≤ 4096 per lane per block)
                    var i = b * block
                    while i + 16 <= hi { acc += zero.replacing(with: one, where: load16(x, i) .== zero); i += 16 }
                    var zeros = Int(acc.sum())
                    while i < hi { if x[i] == 0 { zeros += 1 }; i += 1 }
                    out[b] = zeros
                }
            }
        }
        return partial.reduce(0, +)
    }

    /// Σ x[i]² in Double, summed in fixed blocks so the result does not depend on the thread count.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count n: Int) -> Double {
        let block = 1 << 16
        let blocks = (n + block - 1) / block
        if blocks == 0 { return 0 }
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { part in
            let out = part.baseAddress!
            ThreadBudget.parallelFor(blocks) { br in
                for bIdx in br {
                    let lo = bIdx * block, hi = min(n, lo + block)
                    var acc = F16(repeating: 0)
                    var i = lo
                    var s: Double = 0
                    while i + 16 <= hi {
                        let v = load16(x, i); acc = acc.addingProduct(v, v); i += 16
                        if (i - lo) & 1023 == 0 { s += Double(acc.sum()); acc = F16(repeating: 0) }
                    }
                    s += Double(acc.sum())
                    while i < hi { s += Double(x[i]) * Double(x[i]); i += 1 }
                    out[bIdx] = s
                }
            }
        }
        return partial.reduce(0, +)
    }
}

extension Kernels {
    /// The fused AdamW update of `count` elements on the calling thread (CBF16's adamw.c: the square
    /// root and divisions as AVX-512 instructions, which Swift's SIMD16 compiled lane by lane):
    /// m = (1−β1)·g + β1·m;  v = β2·v + (1−β2)·g² (one fused multiply-add);
    /// p −= lr·((m / c1) / (√(v / c2) + ε) + wd·p), (c1, c2) = `corrections`, where g is the stored
    /// gradient times `gradientScale` (the clipping coefficient; the stored gradient is not written).
    public static func adamW(
        params p: UnsafeMutablePointer<Float>, grads g: UnsafePointer<Float>, expAvg m: UnsafeMutablePointer<Float>,
        expAvgSq v: UnsafeMutablePointer<Float>, count n: Int, beta1: Float, beta2: Float, eps: Float, lr: Float,
        weightDecay wd: Float, corrections: (Float, Float), gradientScale: Float = 1
    ) {
        adamw_update(p, g, m, v, n, beta1, beta2, eps, lr, wd, corrections.0, corrections.1, gradientScale)
    }
}

extension Kernels {
    /// The softmax's exponential pass over one row (CBF16's softmaxrows.c, AVX-512 or its portable
    /// loop): `row[j] = exp(scale·row[j] − shift)` for first ≤ j < valid, each bit for bit
    /// simdExp(scale·row[j] − shift), zeros before `first` and from `valid` to `width`; returns their sum.
    @inline(__always)
    public static func softmaxExpRow(
        _ row: UnsafeMutablePointer<Float>, from first: Int, valid: Int, width: Int, scale: Float, shift: Float
    ) -> Float {
        softmax_exp_row(row, first, valid, width, scale, shift)
    }

    /// Σ exp(row[j] − shift) for j < count: softmaxExpRow's sum at scale 1, nothing stored.
    @inline(__always)
    public static func expSum(_ row: UnsafePointer<Float>, count: Int, shift: Float) -> Float {
        softmax_exp_sum(row, count, shift)
    }

    /// max(row[first ..< valid]), −∞ for an empty range.
    @inline(__always)
    public static func rowMax(_ row: UnsafePointer<Float>, from first: Int, valid: Int) -> Float {
        softmax_row_max(row, first, valid)
    }

    /// Tests: the portable loops of softmaxrows.c even where AVX-512 is available.
    public static func forcePortableSoftmaxRows(_ portable: Bool) { softmax_rows_force_portable(portable ? 1 : 0) }
}

// Precision.swift — the number format of a model's matrix work (Megatron's --bf16 / --fp16).
// In reduced precision every GEMM operand — weights, the activations that feed a GEMM and the
// gradients that flow back into one — holds a 16-bit value (rounded to nearest even, kept in fp32
// storage), products are exact and accumulate in fp32, and the outputs are fp32. LayerNorm,
// softmax, GELU, the residual stream and the loss stay fp32; main parameters, gradients and the
// optimizer state are fp32 (the trainer's concern).
import CBF16

public enum Precision: String, Sendable, CaseIterable {
    case fp32, bf16, fp16

    /// Whether values are rounded to a 16-bit format.
    public var isReduced: Bool { self != .fp32 }

    /// Rounds `x[0..<count]` in place to this format (fp32: unchanged). fp16 overflows to ±∞ beyond
    /// 65504, which the loss scaler's overflow check then finds.
    public func round(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        guard isReduced else { return }
        ThreadBudget.parallelFor(n, grain: 1 << 15) { r in roundOnThisThread(x + r.lowerBound, count: r.count) }
    }

    /// `round` on the calling thread alone (for a caller already inside a parallel loop).
    public func roundOnThisThread(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        switch self {
        case .fp32: return
        case .bf16: bf16_round_in_place(x, n)
        case .fp16: fp16_round_in_place(x, n)
        }
    }

    /// `y[0..<count]` = `x[0..<count]` rounded as `round` rounds it, in one pass (fp32: a copy).
    public func round(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count n: Int) {
        guard isReduced else { y.update(from: x, count: n); return }
        let fp16: Int32 = self == .fp16 ? 1 : 0
        ThreadBudget.parallelFor(n, grain: 1 << 15) { r in
            half_round_copy(x + r.lowerBound, y + r.lowerBound, r.count, fp16)
        }
    }

    /// Rounds `x[0..<count]` in place as `round` does and writes the values' 16-bit words to `words`
    /// (reduced precision only): what a layer keeps of a tensor for its backward pass.
    public func roundKeeping(_ x: UnsafeMutablePointer<Float>, words: UnsafeMutablePointer<UInt16>, count n: Int) {
        precondition(isReduced, "fp32 values have no 16-bit words")
        let fp16: Int32 = self == .fp16 ? 1 : 0
        ThreadBudget.parallelFor(n, grain: 1 << 15) { r in
            half_round_keep(x + r.lowerBound, words + r.lowerBound, r.count, fp16)
        }
    }

    /// The fp32 values of 16-bit words written by `roundKeeping` (exact).
    public func restore(_ words: UnsafePointer<UInt16>, into x: UnsafeMutablePointer<Float>, count n: Int) {
        precondition(isReduced, "fp32 values have no 16-bit words")
        let fp16: Int32 = self == .fp16 ? 1 : 0
        ThreadBudget.parallelFor(n, grain: 1 << 15) { r in
            half_restore(words + r.lowerBound, x + r.lowerBound, r.count, fp16)
        }
    }

    /// Row-major `C = op(A)·op(B) + β·C` (BLAS sgemm convention) on operands already in this
    /// format — or, for bf16 on a CPU with a bf16 instruction set, in fp32: bf16 runs the bf16 kernels
    /// (AMX or vdpbf16ps, whichever `BF16.kernel` is, a forced portable one included), which round
    /// fp32 operands while packing; fp16, fp32 and bf16 without the instructions run SGEMM, which on
    /// 16-bit values is the same arithmetic: exact products (11 or 8 significant bits squared fit
    /// fp32's 24) accumulated in fp32.
    public func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if self == .bf16 && BF16.available {
            BF16.gemm(
                transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
                ldc: ldc)
        } else {
            BLAS.sgemm(
                transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
                ldc: ldc)
        }
    }
}

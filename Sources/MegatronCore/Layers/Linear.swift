// Linear.swift — y = x·Wᵀ + b with Megatron's weight layout W [out, in]. Forward and both backward
// products are single GEMM calls on contiguous panels (SGEMM, or the reduced-precision product of
// `Precision.gemm` on 16-bit operands); no transpose is ever copied.
// The tensor-parallel Column/RowParallelLinear wrap these with their communication pairs.
import Tensor

public enum Linear {
    /// - x: [n, in]   - weight: [out, in]   - bias: [out] or nil   - y: [n, out] (overwritten)
    public static func forward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        y: UnsafeMutablePointer<Float>, rows n: Int, inFeatures k: Int, outFeatures m: Int,
        precision: Precision = .fp32
    ) {
        var beta: Float = 0
        if let bias {
            ThreadBudget.parallelFor(n, grain: 64) { rr in
                for r in rr { (y + r * m).update(from: bias, count: m) }
            }
            beta = 1
        }
        precision.gemm(transB: true, m: n, n: m, k: k, a: x, lda: k, b: weight, ldb: k, beta: beta, c: y, ldc: m)
    }

    /// `forward` for a layer whose output is kept for its backward pass (`output`, whose values are
    /// y), then rounded and kept (`output.roundAndKeep()`), and with `gelu` FC1's GELU applied to it
    /// and kept as `gelu`. In bf16 runs on a bf16 kernel the bias, rounding, keeping and GELU happen
    /// as the product stores each result (BF16.gemmKeeping: bit for bit the separate passes), and
    /// with `gelu` `output`'s values are then left unwritten; elsewhere (fp32, fp16, no bf16 kernel,
    /// values not held as words) the separate passes run.
    public static func forward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        keeping output: HeldTensor, gelu: HeldTensor? = nil, rows n: Int, inFeatures k: Int, outFeatures m: Int
    ) {
        let precision = output.precision
        if precision == .bf16, BF16.available, let keep = output.words, gelu == nil || gelu?.words != nil {
            BF16.gemmKeeping(
                m: n, n: m, k: k, a: x, lda: k, b: weight, ldb: k, c: gelu?.values ?? output.values, ldc: m,
                bias: bias, keep: keep, geluKeep: gelu?.words)
            return
        }
        forward(
            x: x, weight: weight, bias: bias, y: output.values, rows: n, inFeatures: k, outFeatures: m,
            precision: precision)
        output.roundAndKeep()
        if let gelu {
            GELU.forward(x: output.values, y: gelu.values, count: n * m)
            gelu.roundAndKeep()
        }
    }

    /// - dy: [n, out]   - dx: [n, in], overwritten (or accumulated when `accumulateInput`); nil skips it
    /// - dweight: [out, in] += dyᵀ·x   - dbias: [out] += Σ_rows dy
    /// With `deferring`, only dx is computed now; the weight and bias gradients are queued there
    /// (x must stay as it is until the queue runs). `heldInput`, when given, is x kept as a held
    /// tensor: in bf16 runs the weight gradient reads its 16-bit words where they lie (bit for bit the
    /// product on them widened), elsewhere they are widened into x (its staging buffer) just before.
    /// With `geluOf` (FC2, whose input is GELU(FC1's output held there)), dx is carried on through
    /// the GELU's backward pass and rounded as `precision` rounds: in bf16 runs on a bf16 kernel the
    /// product does it as it stores each result (bit for bit the separate passes).
    public static func backward(
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
        dbias: UnsafeMutablePointer<Float>?, rows n: Int, inFeatures k: Int, outFeatures m: Int,
        accumulateInput: Bool = false, precision: Precision = .fp32, deferring: DeferredWeightGradients? = nil,
        heldInput: HeldTensor? = nil, geluOf: HeldTensor? = nil
    ) {
        if let dx, let fc1 = geluOf, precision == .bf16, BF16.available, let words = fc1.words {
            precondition(!accumulateInput, "the GELU's backward pass overwrites dx")
            BF16.gemmFinishingGELUGradient(
                m: n, n: k, k: m, a: dy, lda: m, b: weight, ldb: k, c: dx, ldc: k, geluInput: words)
        } else if let dx {
            precision.gemm(
                m: n, n: k, k: m, a: dy, lda: m, b: weight, ldb: k, beta: accumulateInput ? 1 : 0, c: dx, ldc: k)
            if let fc1 = geluOf {
                fc1.restore()
                GELU.backward(dy: dx, x: fc1.values, dx: dx, count: n * k)
                precision.round(dx, count: n * k)
            }
        }
        func weightGradients(_ dy: UnsafePointer<Float>) {
            if precision == .bf16, BF16.available, let words = heldInput?.words {
                BF16.gemm(transA: true, m: m, n: k, k: n, a: dy, lda: m, b: words, ldb: k, beta: 1, c: dweight, ldc: k)
            } else {
                heldInput?.restore()
                precision.gemm(
                    transA: true, m: m, n: k, k: n, a: dy, lda: m, b: x, ldb: k, beta: 1, c: dweight, ldc: k)
            }
            if let dbias { ColumnSums.accumulate(dy, rows: n, cols: m, into: dbias) }
        }
        if let queue = deferring {
            let kept = queue.keep(dy, count: n * m)
            queue.add { weightGradients(kept) }
        } else {
            weightGradients(dy)
        }
    }
}

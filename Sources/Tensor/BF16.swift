// BF16.swift — bfloat16 storage and matrix products (the CBF16 kernels: Intel AMX tiles or
// AVX512-BF16 `vdpbf16ps` when the CPU has them, a portable fp32 loop otherwise). Conversions
// round to nearest even, bit-exact.
// `gemm` takes the BLAS sgemm convention (row-major, C[m,n] = β·C + op(A)·op(B)) with bf16
// operands and fp32 accumulation and output; B is packed once, shared by all threads, and the rows
// of C are split over the thread budget.
import CBF16

public enum BF16 {
    /// The kernels, slowest to fastest.
    public enum Kernel: Int32, Sendable, CaseIterable {
        /// fp32 arithmetic on widened values (any CPU).
        case portable = 0
        /// AVX512-BF16's vdpbf16ps, an 8 × 32 register tile.
        case avx512bf16 = 1
        /// Intel AMX's TDPBF16PS on 16 × 16 fp32 tiles (Linux grants the tile state on request).
        case amx = 2

        public var name: String { ["portable", "AVX512-BF16 (vdpbf16ps)", "AMX (TDPBF16PS)"][Int(rawValue)] }
    }

    /// The kernel products run on: the fastest the CPU and OS offer, unless forced lower.
    public static var kernel: Kernel { Kernel(rawValue: bf16_kernel()) ?? .portable }

    /// The fastest kernel this machine offers, whatever is forced.
    public static var bestKernel: Kernel { Kernel(rawValue: bf16_best_kernel()) ?? .portable }

    /// True when a bf16 instruction set (AVX512-BF16 or AMX) runs the products.
    public static var native: Bool { kernel != .portable }

    /// True when this CPU has a bf16 instruction set, whatever kernel is forced: reduced-precision
    /// products then run on the bf16 kernels (a forced portable one included), which round fp32
    /// operands while packing.
    public static var available: Bool { bestKernel != .portable }

    /// Single-core peak rates (GFLOP/s) of AMX TDPBF16PS, vdpbf16ps and 512-bit fp32 FMA on this CPU (0 if absent).
    public static var peakGFLOPS: (amx: Double, dpbf16: Double, fma: Double) {
        (bf16_peak_amx_gflops(), bf16_peak_dpbf16_gflops(), bf16_peak_fma_gflops())
    }

    /// The peak loop of `kernel` on `threads` threads started together, their rates summed (GFLOP/s;
    /// nil if a thread could not start): hardware threads of one core share its units, so this, not
    /// `threads` × one thread's peak, bounds a product on that many threads.
    public static func peakTogetherGFLOPS(_ kernel: Kernel, threads: Int) -> Double? {
        let rate = bf16_peak_together_gflops(kernel.rawValue, Int32(threads))
        return rate < 0 ? nil : rate
    }

    /// Runs products on `kernel` (tests compare kernels; one the machine lacks falls back to the
    /// fastest below it); nil restores the automatic choice.
    public static func force(_ kernel: Kernel?) {
        bf16_force_kernel(kernel.map(\.rawValue) ?? -1)
    }

    public static func round(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<UInt16>, count n: Int) {
        ThreadBudget.parallelFor(n, grain: 1 << 16) { r in bf16_round(x + r.lowerBound, y + r.lowerBound, r.count) }
    }

    public static func widen(_ x: UnsafePointer<UInt16>, into y: UnsafeMutablePointer<Float>, count n: Int) {
        ThreadBudget.parallelFor(n, grain: 1 << 16) { r in bf16_widen(x + r.lowerBound, y + r.lowerBound, r.count) }
    }

    /// bf16 operands (bits).
    public static func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        product(
            transA: transA, transB: transB, m: m, n: n, k: k, a: UnsafeRawPointer(a), aF32: false, lda: lda,
            b: UnsafeRawPointer(b), bF32: false, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// fp32 operands, each element rounded to bf16 (nearest even) as it is packed; exact and free
    /// when the values are bf16 already (mixed-precision training keeps them so).
    public static func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        product(
            transA: transA, transB: transB, m: m, n: n, k: k, a: UnsafeRawPointer(a), aF32: true, lda: lda,
            b: UnsafeRawPointer(b), bF32: true, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// fp32 A (rounded while packed) and B already held as bf16 words: a weight gradient reading a
    /// bf16 run's kept input where it lies. Bit for bit `gemm` on those words widened to fp32.
    public static func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        product(
            transA: transA, transB: transB, m: m, n: n, k: k, a: UnsafeRawPointer(a), aF32: true, lda: lda,
            b: UnsafeRawPointer(b), bF32: false, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// The forward product C = A·Bᵀ (+ bias) of a layer whose output is kept for its backward pass,
    /// finished where each result is computed instead of in passes over C afterwards: the result
    /// rounded to bf16 and its word stored in `keep` (C gets the rounded value), and with `geluKeep`
    /// GPT-2's tanh GELU of that, rounded, its word stored there (C gets it instead). Bit for bit
    /// `gemm` over C pre-filled with the bias, then `Precision.roundKeeping` (and `GELU.forward` and
    /// `roundKeeping` again). fp32 operands; needs `available`. `keep` and `geluKeep` are [m, ldc].
    public static func gemmKeeping(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?, keep: UnsafeMutablePointer<UInt16>,
        geluKeep: UnsafeMutablePointer<UInt16>?
    ) {
        precondition(available, "finished products need a bf16 instruction set (and its AVX-512)")
        product(
            transA: false, transB: true, m: m, n: n, k: k, a: UnsafeRawPointer(a), aF32: true, lda: lda,
            b: UnsafeRawPointer(b), bF32: true, ldb: ldb, beta: 0, c: c, ldc: ldc,
            epilogue: bf16_epilogue(bias: bias, keep: keep, gelu_keep: geluKeep, gelu_grad_of: nil))
    }

    /// FC2's input-gradient product C = A·B (A [m, k], B [k, n], both fp32 rounded while packed)
    /// finished as the GELU's backward pass: each result times GELU′ of FC1's kept bf16 output
    /// (`geluInput`, indexed as C), rounded to bf16 — bit for bit the product, then GELU.backward,
    /// then Precision.bf16.round.
    public static func gemmFinishingGELUGradient(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, geluInput: UnsafePointer<UInt16>
    ) {
        precondition(available, "finished products need a bf16 instruction set (and its AVX-512)")
        product(
            transA: false, transB: false, m: m, n: n, k: k, a: UnsafeRawPointer(a), aF32: true, lda: lda,
            b: UnsafeRawPointer(b), bF32: true, ldb: ldb, beta: 0, c: c, ldc: ldc,
            epilogue: bf16_epilogue(bias: nil, keep: nil, gelu_keep: nil, gelu_grad_of: geluInput))
    }

    /// The fp32-operand product on the calling thread alone (its own packing workspace), for callers
    /// that already split work over threads: attention's per-(batch, head) tiles.
    public static func gemmOnThisThread(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        let (si, ska) = transA ? (1, lda) : (lda, 1)
        let (sj, skb) = transB ? (ldb, 1) : (1, ldb)
        let count = max(1, bf16_packed_b_count(Int32(n), Int32(k)))
        let packed = bf16_thread_workspace(0, count * 2).assumingMemoryBound(to: UInt16.self)
        bf16_pack_b(Int32(n), Int32(k), b, 1, sj, skb, packed, 0, Int32((n + 15) / 16))
        bf16_gemm_rows(Int32(m), Int32(n), Int32(k), a, 1, si, ska, packed, c, ldc, beta, 0, Int32(m))
    }

    /// 16-bit words per packed panel of 16 columns of a B with `k` rows (a packed B's column 16·p
    /// begins p panels in; its row kk, for even kk, 16·kk words into each panel).
    public static func packedPanelWords(k: Int) -> Int { bf16_packed_b_count(16, Int32(k)) }

    /// B packed once on the calling thread into its workspace `slot` (2, 3 or 4; 0 for a single
    /// product) for `gemmOnThisThread(packed:)` products: B[j, kk] for j < n, kk < k, as `gemm` reads it (fp32,
    /// rounded while packed). Valid until the slot is packed again on this thread.
    public static func packOnThisThread(
        transB: Bool = false, n: Int, k: Int, b: UnsafePointer<Float>, ldb: Int, slot: Int
    ) -> UnsafePointer<UInt16> {
        precondition(slot != 1, "slot 1 holds the products' packed A")
        let (sj, skb) = transB ? (ldb, 1) : (1, ldb)
        let count = max(1, bf16_packed_b_count(Int32(n), Int32(k)))
        let packed = bf16_thread_workspace(Int32(slot), count * 2).assumingMemoryBound(to: UInt16.self)
        bf16_pack_b(Int32(n), Int32(k), b, 1, sj, skb, packed, 0, Int32((n + 15) / 16))
        return UnsafePointer(packed)
    }

    /// `gemmOnThisThread` against a B from `packOnThisThread` with `packedK` ≥ k rows and at least
    /// n columns: the product of its first n columns and k rows, bit for bit what packing only those
    /// would give (for finite B).
    /// With `trim`, only the part of C a causal tile needs (`TileTrim`).
    public static func gemmOnThisThread(
        transA: Bool = false, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
        packed: UnsafePointer<UInt16>, packedK: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
        trim: TileTrim = .none
    ) {
        guard m > 0, n > 0 else { return }
        precondition(k <= packedK, "the packed B has \(packedK) rows, the product needs \(k)")
        let (si, ska) = transA ? (1, lda) : (lda, 1)
        bf16_gemm_rows_trimmed(
            Int32(m), Int32(n), Int32(k), a, 1, si, ska, packed, Int32(packedK), c, ldc, beta, 0, Int32(m),
            trim.c)
    }

    private static func product(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafeRawPointer, aF32: Bool, lda: Int,
        b: UnsafeRawPointer, bF32: Bool, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
        epilogue: bf16_epilogue? = nil
    ) {
        guard m > 0, n > 0 else { return }
        let (si, ska) = transA ? (1, lda) : (lda, 1)
        let (sj, skb) = transB ? (ldb, 1) : (1, ldb)
        let count = max(1, bf16_packed_b_count(Int32(n), Int32(k)))
        let packed = bf16_thread_workspace(0, count * 2).assumingMemoryBound(to: UInt16.self)
        let panels = (n + 15) / 16
        ThreadBudget.parallelFor(panels, grain: 4) { r in
            bf16_pack_b(Int32(n), Int32(k), b, bF32 ? 1 : 0, sj, skb, packed, Int32(r.lowerBound), Int32(r.upperBound))
        }
        let rowBlock = Int(bf16_row_block())
        let blocks = (m + rowBlock - 1) / rowBlock
        ThreadBudget.parallelFor(blocks, grain: 1) { r in
            let (i0, i1) = (Int32(r.lowerBound * rowBlock), Int32(min(m, r.upperBound * rowBlock)))
            if var e = epilogue {
                bf16_gemm_rows_epilogue(
                    Int32(m), Int32(n), Int32(k), a, aF32 ? 1 : 0, si, ska, packed, c, ldc, &e, i0, i1)
            } else {
                bf16_gemm_rows(Int32(m), Int32(n), Int32(k), a, aF32 ? 1 : 0, si, ska, packed, c, ldc, beta, i0, i1)
            }
        }
    }
}

// GEMM.swift — the only importer of COpenBLAS: row-major SGEMM on raw pointers, and the BLAS
// thread/kernel controls. Every linear layer's forward and both backward products are one call here.
import COpenBLAS

public enum BLAS {
    /// Row-major `C[m, n] = alpha · op(A) · op(B) + beta · C`.
    /// - A: `[m, k]` (`[k, m]` if `transA`), leading dimension `lda`.
    /// - B: `[k, n]` (`[n, k]` if `transB`), leading dimension `ldb`.
    @inline(__always)
    public static func sgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size")
        if m == 0 || n == 0 { return }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The kernel family OpenBLAS chose at load time (e.g. "Cooperlake", "SkylakeX", "Haswell").
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    /// OpenBLAS's build configuration string (version, DYNAMIC_ARCH, …).
    public static var configString: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }
}

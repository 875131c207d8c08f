// F32Tiles.swift — the attention core's fp32 tile products (CBF16's tileproducts.c) and the trim
// both its fp32 and bf16 tile products take: single-threaded products against a B packed once per
// (batch, head) for all its query tiles, skipping what a causal tile leaves empty.
import CBF16

/// The part of a product C = A·B a causal tile needs, by row i of C (from 0).
public enum TileTrim: Sendable, Equatable {
    /// All of C.
    case none
    /// Row i needs only the columns j < i + offset (C's other columns may be left as they were).
    case columnsBelow(Int)
    /// A[i, k] = 0 for k ≥ i + offset: those k are skipped.
    case zeroFrom(Int)
    /// A[i, k] = 0 for k < i + offset: those k are skipped.
    case zeroBefore(Int)

    var c: tile_trim {
        switch self {
        case .none: return tile_trim(kind: 0, offset: 0)
        case .columnsBelow(let o): return tile_trim(kind: 1, offset: Int32(o))
        case .zeroFrom(let o): return tile_trim(kind: 2, offset: Int32(o))
        case .zeroBefore(let o): return tile_trim(kind: 3, offset: Int32(o))
        }
    }
}

public enum F32Tiles {
    /// Whether this CPU has the kernel (AVX-512); without it callers use SGEMM.
    public static let available: Bool = f32_tiles_available() != 0

    /// Floats per packed panel of 16 columns of a B with `k` rows (a packed B's column 16·p begins p
    /// panels in; its row kk, 16·kk floats into each panel).
    public static func packedPanelFloats(k: Int) -> Int { f32_packed_b_count(16, Int32(k)) }

    /// B[j, kk] for j < n, kk < k (as `gemm` reads `b` with `transB`) packed on the calling thread
    /// into its workspace `slot` (2, 3 or 4; 0 for a single product); valid until the slot is
    /// packed again on this thread.
    public static func packOnThisThread(
        transB: Bool = false, n: Int, k: Int, b: UnsafePointer<Float>, ldb: Int, slot: Int
    ) -> UnsafePointer<Float> {
        precondition(slot != 1, "slot 1 holds the products' packed A")
        let (sj, sk) = transB ? (ldb, 1) : (1, ldb)
        let count = max(1, f32_packed_b_count(Int32(n), Int32(k)))
        let packed = bf16_thread_workspace(Int32(slot), count * 4).assumingMemoryBound(to: Float.self)
        f32_pack_b(Int32(n), Int32(k), b, sj, sk, packed)
        return UnsafePointer(packed)
    }

    /// C = alpha·A·B + beta·C on the calling thread, B packed with `packedK` ≥ k rows and at least
    /// n columns (its first n columns and k rows are used).
    public static func gemmOnThisThread(
        transA: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        packed: UnsafePointer<Float>, packedK: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
        trim: TileTrim = .none
    ) {
        guard m > 0, n > 0 else { return }
        precondition(k <= packedK, "the packed B has \(packedK) rows, the product needs \(k)")
        let (si, sk) = transA ? (1, lda) : (lda, 1)
        f32_gemm_packed(Int32(m), Int32(n), Int32(k), a, si, sk, packed, Int32(packedK), c, ldc, alpha, beta, trim.c)
    }
}

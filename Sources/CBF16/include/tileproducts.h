// tileproducts.h — fp32 products for the attention core's tiles (tileproducts.c): single-threaded,
// against a B packed once for many products, and trimmed to the part of a causal tile that holds
// anything (tile_trim, which the bf16 products of bf16gemm.h take as well).
//   C[i, j] = alpha · Σ_k A[i, k] · B[j, k] + beta · C[i, j]
// A is read through element strides as in bf16gemm.h; B is packed into panels of 16 columns × k.
#ifndef TILEPRODUCTS_H
#define TILEPRODUCTS_H
#include <stddef.h>

/// The part of a product a causal tile needs, by row i of C (0-based in the call). A trim is only
/// a promise about the operands and a licence about C, never a change of the values computed.
typedef struct {
    int kind;    /* 0: all of C;
                    1: row i needs only columns j < i + offset (C's other columns may be left as they were);
                    2: A[i, k] = 0 for k ≥ i + offset (those k are skipped);
                    3: A[i, k] = 0 for k < i + offset (those k are skipped) */
    int offset;
} tile_trim;

/// Whether this CPU runs the fp32 tile kernel (AVX-512F).
int f32_tiles_available(void);
/// Floats of the packed form of an n × k B.
size_t f32_packed_b_count(int n, int k);
/// Packs B[j, k] = B[j·sj + k·sk] (j < n, k < k) into panels of 16 columns: packed[p·16·k + k·16 + jj].
void f32_pack_b(int n, int k, const float *B, long sj, long sk, float *packed);
/// Rows [0, m) of C from A[i, k] = A[i·si + k·sk] and the first n columns and k rows of a B packed
/// with packed_k ≥ k rows (B's further rows are not read), on the calling thread.
void f32_gemm_packed(int m, int n, int k, const float *A, long si, long sk, const float *packed, int packed_k,
                     float *C, long ldc, float alpha, float beta, tile_trim trim);
#endif

// tileproducts.c — see include/tileproducts.h: the attention core's fp32 tile products. The layout
// follows bf16gemm.c with single values for pairs: B in panels of 16 columns × k (packed once per
// (batch, head) for all of its query tiles, where SGEMM would repack it in every call), A packed
// per block of 8 rows as [k][row], an 8 × 32 register tile (16 accumulators, per k two B vectors
// and eight broadcasts). Trimming skips, per 8-row block, the k and the columns a causal tile
// leaves empty, so the products cover the lower triangle at 8-row steps instead of whole tiles.
#include "tileproducts.h"
#include "bf16gemm.h"
#include "bf16_internal.h"
#include <string.h>

#define FR 8     /* rows per block */
#define FKB 256  /* k per block: a row block's A (8 KB) stays in L1 beside the B panels it meets */
#define FMC 128  /* rows per packed chunk of A (128 KB, in L2) */
#define FNCP 16  /* B panels swept by each row block of a chunk */

int f32_tiles_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

size_t f32_packed_b_count(int n, int k) { return (size_t)((n + NR - 1) / NR) * NR * (size_t)(k > 0 ? k : 1); }

__attribute__((target("avx512f,avx512bw,avx512vl")))
void f32_pack_b(int n, int k, const float *B, long sj, long sk, float *packed) {
    int panels = (n + NR - 1) / NR;
    for (int p = 0; p < panels; p++) {
        float *o = packed + (size_t)p * NR * k;
        int cols = n - p * NR < NR ? n - p * NR : NR;
        __mmask16 m = cols == NR ? 0xffff : (__mmask16)((1u << cols) - 1);
        const float *b = B + (long)p * NR * sj;
        int kk = 0;
        if (sj == 1) {  /* each k's 16 columns are contiguous */
            for (; kk < k; kk++) _mm512_storeu_ps(o + (size_t)kk * NR, _mm512_maskz_loadu_ps(m, b + (long)kk * sk));
        } else if (sk == 1) {  /* each column's k are contiguous: 16 columns × 16 k transposed in registers */
            for (; kk + 16 <= k; kk += 16) {
                __m512i r[16];
                for (int jj = 0; jj < 16; jj++)
                    r[jj] = jj < cols ? _mm512_castps_si512(_mm512_loadu_ps(b + (long)jj * sj + kk)) : _mm512_setzero_si512();
                transpose16x16(r);
                for (int t = 0; t < 16; t++) _mm512_storeu_si512(o + (size_t)(kk + t) * NR, r[t]);
            }
        }
        for (; kk < k; kk++)
            for (int jj = 0; jj < NR; jj++) o[(size_t)kk * NR + jj] = jj < cols ? b[(long)jj * sj + (long)kk * sk] : 0.0f;
    }
}

/* Rows [i0, i1) and k [k0, k1) of A as blocks of 8 rows, each [k][row] (rows past i1 zero). */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void pack_a(const float *A, long si, long sk, int i0, int i1, int k0, int k1, float *out) {
    int nk = k1 - k0, blocks = (i1 - i0 + FR - 1) / FR;
    for (int b = 0; b < blocks; b++) {
        float *o = out + (size_t)b * nk * FR;
        int first = i0 + b * FR, valid = i1 - first < FR ? i1 - first : FR;
        int kk = k0;
        if (si == 1) {  /* transposed A: each k's rows are contiguous */
            __mmask8 m = (__mmask8)((1u << valid) - 1);
            for (; kk < k1; kk++)
                _mm256_storeu_ps(o + (size_t)(kk - k0) * FR, _mm256_maskz_loadu_ps(m, A + (long)kk * sk + first));
        } else if (sk == 1) {  /* rows: eight rows × 16 k transposed in registers */
            for (; kk + 16 <= k1; kk += 16) {
                __m512i p[FR];
                for (int r = 0; r < FR; r++)
                    p[r] = r < valid ? _mm512_castps_si512(_mm512_loadu_ps(A + (long)(first + r) * si + kk)) : _mm512_setzero_si512();
                store_pairs_8x16(p, (uint32_t *)(o + (size_t)(kk - k0) * FR));
            }
        }
        for (; kk < k1; kk++)
            for (int r = 0; r < FR; r++) o[(size_t)(kk - k0) * FR + r] = r < valid ? A[(long)(first + r) * si + (long)kk * sk] : 0.0f;
    }
}

/* acc[r][0..1] = Σ over nk of a[k][r] · b{0,1}[k][0..15]. */
__attribute__((target("avx512f")))
static inline void kernel_8x32(const float *a, const float *b0, const float *b1, int nk, __m512 acc[FR][2]) {
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
    for (int q = 0; q < nk; q++) {
        const float *ap = a + (size_t)q * FR;
        __m512 v0 = _mm512_loadu_ps(b0 + (size_t)q * NR), v1 = _mm512_loadu_ps(b1 + (size_t)q * NR), x;
#define ROW(i, ci0, ci1) x = _mm512_set1_ps(ap[i]); ci0 = _mm512_fmadd_ps(x, v0, ci0); ci1 = _mm512_fmadd_ps(x, v1, ci1);
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31)
        ROW(4, c40, c41) ROW(5, c50, c51) ROW(6, c60, c61) ROW(7, c70, c71)
#undef ROW
    }
    acc[0][0] = c00; acc[0][1] = c01; acc[1][0] = c10; acc[1][1] = c11; acc[2][0] = c20; acc[2][1] = c21; acc[3][0] = c30; acc[3][1] = c31;
    acc[4][0] = c40; acc[4][1] = c41; acc[5][0] = c50; acc[5][1] = c51; acc[6][0] = c60; acc[6][1] = c61; acc[7][0] = c70; acc[7][1] = c71;
}

/* C tile (rows × cols ≤ 32) = alpha·acc + (first k block ? beta·C : C); C is not read when it is overwritten. */
__attribute__((target("avx512f")))
static inline void store_tile(float *C, long ldc, int rows, int cols, float alpha, float beta, int first, __m512 acc[FR][2]) {
    __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xffff : (cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0);
    __m512 va = _mm512_set1_ps(alpha);
    float s = first ? beta : 1.0f;
    for (int r = 0; r < rows; r++) {
        float *c = C + (long)r * ldc;
        __m512 v0 = _mm512_mul_ps(va, acc[r][0]), v1 = _mm512_mul_ps(va, acc[r][1]);
        if (s != 0.0f) {
            v0 = _mm512_fmadd_ps(_mm512_set1_ps(s), _mm512_maskz_loadu_ps(m0, c), v0);
            if (m1) v1 = _mm512_fmadd_ps(_mm512_set1_ps(s), _mm512_maskz_loadu_ps(m1, c + 16), v1);
        }
        _mm512_mask_storeu_ps(c, m0, v0);
        if (m1) _mm512_mask_storeu_ps(c + 16, m1, v1);
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl")))
void f32_gemm_packed(int m, int n, int k, const float *A, long si, long sk, const float *packed, int packed_k,
                     float *C, long ldc, float alpha, float beta, tile_trim trim) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) C[(long)i * ldc + j] = beta != 0.0f ? beta * C[(long)i * ldc + j] : 0.0f;
        return;
    }
    size_t panel = (size_t)NR * packed_k;
    int panels = (n + NR - 1) / NR;
    float *a = bf16_thread_workspace(1, (size_t)FMC * FKB * sizeof(float));
    for (int k0 = 0; k0 < k; k0 += FKB) {
        int k1 = k0 + FKB < k ? k0 + FKB : k, nk = k1 - k0;
        for (int c0 = 0; c0 < m; c0 += FMC) {
            int c1 = c0 + FMC < m ? c0 + FMC : m, blocks = (c1 - c0 + FR - 1) / FR;
            pack_a(A, si, sk, c0, c1, k0, k1, a);
            for (int n0 = 0; n0 < panels; n0 += FNCP) {
                int n1 = n0 + FNCP < panels ? n0 + FNCP : panels;
                for (int b = 0; b < blocks; b++) {
                    int i = c0 + b * FR, rows = c1 - i < FR ? c1 - i : FR, last = i + rows - 1;
                    int ks = k0, ke = k1, pe = n1;
                    if (trim.kind == 1) {
                        int cols = last + trim.offset, p = cols <= 0 ? 0 : (cols + NR - 1) / NR;
                        if (p < pe) pe = p;
                    } else if (trim.kind == 2) {
                        if (last + trim.offset < ke) ke = last + trim.offset;
                    } else if (trim.kind == 3) {
                        if (i + trim.offset > ks) ks = i + trim.offset;
                    }
                    if (ke < ks) ke = ks;
                    for (int p = n0; p < pe; p += 2) {
                        const float *b0 = packed + (size_t)p * panel + (size_t)ks * NR;
                        const float *b1 = p + 1 < panels ? b0 + panel : b0;
                        int cols = n - p * NR < 2 * NR ? n - p * NR : 2 * NR;
                        __m512 acc[FR][2];
                        kernel_8x32(a + (size_t)b * nk * FR + (size_t)(ks - k0) * FR, b0, b1, ke - ks, acc);
                        store_tile(C + (long)i * ldc + p * NR, ldc, rows, cols, alpha, beta, k0 == 0, acc);
                    }
                }
            }
        }
    }
}

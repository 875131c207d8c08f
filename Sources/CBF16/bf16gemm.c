// bf16gemm.c — see include/bf16gemm.h; the AVX512-BF16 and portable kernels, kernel selection,
// rounding. Packed B: panel p (columns 16p…16p+15) holds, for each k pair q, 16 columns × 2
// values: packed[p·16·kp + q·32 + 2·jj + (k & 1)], kp = the pairs of k rounded up to 16, zero
// padded (columns past n, the odd k, the pairs past k). A is packed per block of 8 rows as
// [pair q][row r] 32-bit words, so one broadcast word feeds vdpbf16ps, which adds
// a[2q]·b[2q] + a[2q+1]·b[2q+1] to each fp32 lane, and the microkernel reads A as one stream.
// Blocking (GotoBLAS order): KB pairs of k at a time; per k block, chunks of MC rows of A packed
// (256 KB, L2); 2 panels (32 columns) × 8 rows per microkernel = 16 accumulators. Both fp32
// layouts of A (rows, and transposed as in weight gradients) are packed with AVX-512 rounding.
#include "bf16gemm.h"
#include "bf16_internal.h"
#include "epilogue.h"
#include "tileproducts.h"
#include <stdlib.h>
#include <string.h>

#define MR 8
#define KB 512      /* k pairs per block: k ≤ 1024 needs no reload of C */
#define MC 128      /* rows per packed chunk of A: MC × KB words = 256 KB (2·MC for a huge B, below) */
#define NCP 16      /* B panels (16 columns each) per block swept by each row block */

static int forced_kernel = -1;   /* bf16_force_kernel; -1: the fastest available */

void bf16_round(const float *x, uint16_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = rne(x[i]);
}

void bf16_round_in_place(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)rne(x[i]) << 16;
        memcpy(&x[i], &u, 4);
    }
}

/* fp16 (IEEE binary16) rounding: F16C's vcvtps2ph with round-to-nearest-even when the CPU has
   AVX-512, else the compiler's _Float16 conversion (also nearest even). */
__attribute__((target("avx512f")))
static void fp16_round_avx512(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm512_storeu_ps(x + i, _mm512_cvtph_ps(h));
    }
    for (; i < n; i++) x[i] = (float)(_Float16)x[i];
}

void fp16_round_in_place(float *x, size_t n) {
    static int avx512 = -1;
    if (avx512 < 0) { __builtin_cpu_init(); avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0; }
    if (avx512 && forced_kernel != 0) { fp16_round_avx512(x, n); return; }
    for (size_t i = 0; i < n; i++) x[i] = (float)(_Float16)x[i];
}

void bf16_widen(const uint16_t *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)x[i] << 16;
        memcpy(&y[i], &u, 4);
    }
}

size_t bf16_packed_b_count(int n, int k) { return (size_t)((n + NR - 1) / NR) * NR * 2 * (size_t)padded_pairs(k); }

void bf16_pack_b(int n, int k, const void *B, int b_f32, long sj, long sk, uint16_t *packed, int p0, int p1) {
    int kp = padded_pairs(k);
    if (b_f32 && bf16_kernel() >= 1 && bf16_pack_b_f32_vector(n, k, (const float *)B, sj, sk, packed, p0, p1)) return;
    if (!b_f32 && bf16_kernel() >= 1 && bf16_pack_b_words_vector(n, k, (const uint16_t *)B, sj, sk, packed, p0, p1)) return;
    for (int p = p0; p < p1; p++) {
        uint16_t *out = packed + (size_t)p * NR * 2 * kp;
        for (int q = 0; q < kp; q++) {
            for (int jj = 0; jj < NR; jj++) {
                int j = p * NR + jj;
                for (int h = 0; h < 2; h++) {
                    int kk = 2 * q + h;
                    out[(size_t)q * 2 * NR + 2 * jj + h] = (j < n && kk < k) ? element(B, b_f32, (long)j * sj + (long)kk * sk) : 0;
                }
            }
        }
    }
}

/* Packed A of the AVX512-BF16 kernel: rows i0…i1 of A and k pairs q0…q1 as blocks of MR rows, each
   [pair q][row r] 32-bit pair words ((q1 − q0) × MR), so the microkernel reads one contiguous
   stream; rows past i1 and the odd k's missing partner are zero. */

/* Any layout, element by element. */
static void pack_a_scalar(int k, const void *A, int a_f32, long si, long sk, int i0, int i1, int q0, int q1, uint32_t *out) {
    int nq = q1 - q0, blocks = (i1 - i0 + MR - 1) / MR;
    memset(out, 0, (size_t)blocks * nq * MR * sizeof(uint32_t));
    for (int i = i0; i < i1; i++) {
        uint32_t *o = out + (size_t)((i - i0) / MR) * nq * MR + (i - i0) % MR;
        for (int q = q0; q < q1; q++) {
            uint32_t lo = 2 * q < k ? element(A, a_f32, (long)i * si + (long)(2 * q) * sk) : 0;
            uint32_t hi = 2 * q + 1 < k ? element(A, a_f32, (long)i * si + (long)(2 * q + 1) * sk) : 0;
            o[(size_t)(q - q0) * MR] = lo | hi << 16;
        }
    }
}

/* fp32 A stored transposed (si == 1, a weight-gradient product: A = dYᵀ): for each pair of k, the
   rows are contiguous, so 16 rows × 2 k become 16 pair words with two loads. Two pairs at a time,
   so each of the two row blocks they feed gets whole 64-byte lines (pairs q and q + 1 of its 8
   rows) where it got half lines (its 16 blocks lie nq · 32 bytes apart, one L1 set), and the
   source rows a few pairs ahead are fetched by hand (they lie 3–12 KB apart). This pack had taken
   about a tenth of a weight-gradient product, 3× the row-layout pack's share; scripts/
   bench_gemm_versus.sh (AMD EPYC, gpt2-124m weight gradients): whole lines 1.01–1.08×, with the
   fetches 1.03–1.07× (2, 4, 6 or 8 pairs ahead alike). The same words. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void pack_a_transposed_f32(int k, const float *A, long sk, int i0, int i1, int q0, int q1, uint32_t *out) {
    int rows = i1 - i0;
    size_t block = (size_t)(q1 - q0) * MR;
    const int ahead = 6;    /* pairs */
    for (int q = q0; q < q1; q += 2) {
        int two = q + 1 < q1;
        const float *a0 = A + i0;
        size_t at = (size_t)(q - q0) * MR;
        for (int r = 0; r < rows; r += 2 * MR) {
            int n = rows - r < 2 * MR ? rows - r : 2 * MR;
            if (2 * (q + ahead) + 3 < k) {
                const float *f = a0 + r + (long)(2 * (q + ahead)) * sk;
                _mm_prefetch((const char *)f, _MM_HINT_T0);
                _mm_prefetch((const char *)(f + sk), _MM_HINT_T0);
                _mm_prefetch((const char *)(f + 2 * sk), _MM_HINT_T0);
                _mm_prefetch((const char *)(f + 3 * sk), _MM_HINT_T0);
            }
            uint32_t *o0 = out + (size_t)(r / MR) * block + at, *o1 = o0 + block;
            __m512i p = pair_lanes(a0 + r, sk, q, k, n);
            if (two) {
                __m512i p2 = pair_lanes(a0 + r, sk, q + 1, k, n);
                _mm512_storeu_si512(o0, _mm512_shuffle_i64x2(p, p2, 0x44));
                if (n > MR) _mm512_storeu_si512(o1, _mm512_shuffle_i64x2(p, p2, 0xee));
            } else {
                _mm256_storeu_si256((__m256i *)o0, _mm512_castsi512_si256(p));
                if (n > MR) _mm256_storeu_si256((__m256i *)o1, _mm512_extracti64x4_epi64(p, 1));
            }
        }
    }
}

/* fp32 A stored by rows (sk == 1): 32 values of a row become 16 pair words (even and odd k split
   apart); eight rows' words are transposed into the block's [q][r] layout in registers
   (store_pairs_8x16), where a scatter per row had made the products with k = 2304 or 3072 about
   10% slower on AMD EPYC. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void pack_a_rows_f32(int k, const float *A, long si, int i0, int i1, int q0, int q1, uint32_t *out) {
    int nq = q1 - q0, blocks = (i1 - i0 + MR - 1) / MR;
    size_t block = (size_t)nq * MR;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int b = 0; b < blocks; b++) {
        uint32_t *o = out + (size_t)b * block;
        int valid = i1 - (i0 + b * MR) < MR ? i1 - (i0 + b * MR) : MR;
        const float *a0 = A + (long)(i0 + b * MR) * si;
        int q = q0;
        for (; q + 16 <= q1 && 2 * q + 32 <= k; q += 16) {
            __m512i p[MR];
            if (2 * q + 64 <= k)  /* the next 32 values of the block's rows */
                for (int r = 0; r < valid; r++) {
                    const char *f = (const char *)(a0 + (long)r * si + 2 * q + 32);
                    _mm_prefetch(f, _MM_HINT_T0);
                    _mm_prefetch(f + 64, _MM_HINT_T0);
                }
            for (int r = 0; r < MR; r++) {
                if (r >= valid) { p[r] = _mm512_setzero_si512(); continue; }
                const float *a = a0 + (long)r * si + 2 * q;
                __m512 lo = _mm512_loadu_ps(a), hi = _mm512_loadu_ps(a + 16);
                p[r] = pair16(_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi));
            }
            store_pairs_8x16(p, o + (size_t)(q - q0) * MR);
        }
        for (int r = 0; r < MR; r++) {
            const float *a = a0 + (long)r * si;
            for (int qq = q; qq < q1; qq++) {
                uint32_t lo16 = r < valid && 2 * qq < k ? rne(a[2 * qq]) : 0;
                uint32_t hi16 = r < valid && 2 * qq + 1 < k ? rne(a[2 * qq + 1]) : 0;
                o[(size_t)(qq - q0) * MR + r] = lo16 | hi16 << 16;
            }
        }
    }
}

static void pack_a(int k, const void *A, int a_f32, long si, long sk, int i0, int i1, int q0, int q1, uint32_t *out) {
    if (a_f32 && si == 1) pack_a_transposed_f32(k, (const float *)A, sk, i0, i1, q0, q1, out);
    else if (a_f32 && sk == 1) pack_a_rows_f32(k, (const float *)A, si, i0, i1, q0, q1, out);
    else pack_a_scalar(k, A, a_f32, si, sk, i0, i1, q0, q1, out);
}

/* C tile (rows × cols, cols ≤ 32) += or = the block's products, held in acc[r][2]; with an
   epilogue, the bias joins the first k block's sums (as a C pre-filled with it and beta 1 would) and
   the last k block's results are finished (finish16) before they are stored. `at`: the tile's
   first element's index into C. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline void store_tile(float *C, long ldc, int rows, int cols, float beta, int first, int last,
                              const bf16_epilogue *e, long at, __m512 acc[MR][2]) {
    __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xffff : (cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0);
    const float *bias = first && e && e->bias ? e->bias + at % ldc : NULL;
    __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 b1 = bias && m1 ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        float *c = C + (long)r * ldc;
        __m512 v0 = acc[r][0], v1 = acc[r][1];
        if (bias) {
            v0 = _mm512_fmadd_ps(_mm512_set1_ps(1.0f), b0, v0);
            v1 = _mm512_fmadd_ps(_mm512_set1_ps(1.0f), b1, v1);
        } else if (!first || beta != 0.0f) {
            float s = first ? beta : 1.0f;
            v0 = _mm512_fmadd_ps(_mm512_set1_ps(s), _mm512_maskz_loadu_ps(m0, c), v0);
            if (m1) v1 = _mm512_fmadd_ps(_mm512_set1_ps(s), _mm512_maskz_loadu_ps(m1, c + 16), v1);
        }
        if (last && e) {
            v0 = finish16(v0, e, at + (long)r * ldc, m0);
            if (m1) v1 = finish16(v1, e, at + (long)r * ldc + 16, m1);
        }
        _mm512_mask_storeu_ps(c, m0, v0);
        if (m1) _mm512_mask_storeu_ps(c + 16, m1, v1);
    }
}

/* Fetches what storing the next tile (rows × 32 at `at`) will touch while this one computes: its C
   lines for writing when the first k block writes C afresh (the lines come from memory, C being
   larger than the caches), and on the last k block the epilogue's words — FC1's kept output that
   GELU′ reads, the words it keeps. Without it each tile's stores waited on 8 to 32 lines from
   memory. With the packs' fetches ahead (bf16amx.c, pack_a_rows_f32), bert-base bf16 steps on AMD
   EPYC measured 1.06× (scripts/bench_versus.sh, three alternated rounds, GEMM phases 3–9% shorter).
   The values are the same. */
__attribute__((target("avx512f,prfchw")))
static inline void prefetch_tile_outputs(const float *C, long ldc, const bf16_epilogue *e, long at, int rows,
                                         int first, int last) {
    for (int r = 0; r < rows; r++) {
        long x = at + (long)r * ldc;
        if (first) {
            _mm_prefetch((const char *)(C + x), _MM_HINT_ET0);
            _mm_prefetch((const char *)(C + x + 16), _MM_HINT_ET0);
        }
        if (e && last) {
            if (e->gelu_grad_of) _mm_prefetch((const char *)(e->gelu_grad_of + x), _MM_HINT_T0);
            if (e->keep) _mm_prefetch((const char *)(e->keep + x), _MM_HINT_ET0);
            if (e->gelu_keep) _mm_prefetch((const char *)(e->gelu_keep + x), _MM_HINT_ET0);
        }
    }
}

/* The 8 × 32 microkernel over nq k pairs: 16 accumulators in registers; per pair, two B vectors
   and one broadcast pair word per row from the block's [q][r] stream (written out so the
   accumulators never leave registers). */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline void kernel_8x32(const uint32_t *a, const uint16_t *b0, const uint16_t *b1, int nq, __m512 acc[MR][2]) {
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
    for (int q = 0; q < nq; q++) {
        const int32_t *ap = (const int32_t *)a + (size_t)q * MR;
        __m512bh v0 = (__m512bh)_mm512_loadu_si512(b0 + (size_t)q * 2 * NR);
        __m512bh v1 = (__m512bh)_mm512_loadu_si512(b1 + (size_t)q * 2 * NR);
        __m512bh x;
#define ROW(i, ci0, ci1) x = (__m512bh)_mm512_set1_epi32(ap[i]); ci0 = _mm512_dpbf16_ps(ci0, x, v0); ci1 = _mm512_dpbf16_ps(ci1, x, v1);
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31)
        ROW(4, c40, c41) ROW(5, c50, c51) ROW(6, c60, c61) ROW(7, c70, c71)
#undef ROW
    }
    acc[0][0] = c00; acc[0][1] = c01; acc[1][0] = c10; acc[1][1] = c11; acc[2][0] = c20; acc[2][1] = c21; acc[3][0] = c30; acc[3][1] = c31;
    acc[4][0] = c40; acc[4][1] = c41; acc[5][0] = c50; acc[5][1] = c51; acc[6][0] = c60; acc[6][1] = c61; acc[7][0] = c70; acc[7][1] = c71;
}

/* Rows i0…i1 of C, GotoBLAS order: for each k block (KB pairs) and chunk of MC rows, the chunk's A
   is packed (MC × KB words, 256 KB: stays in L2); then for each block of NCP B panels (256 columns
   × KB pairs, 512 KB, also in L2) each row block of the chunk (8 rows × KB pairs, 16 KB: stays in
   L1) meets the block's panel pairs in turn. Sweeping the panels under one row block, rather than
   the row blocks under one 64 KB panel pair (which does not stay in a 48 KB L1 beside the A
   stream), measured 0.99–1.15× (mostly 1.03–1.07×) on the gpt2-124m shapes
   (scripts/bench_gemm_versus.sh, AMD EPYC); the sums are the same. (KB 512 × MC 128 measured best of KB 256…1024 × MC 64…256.)
   A product whose packed B is far larger than the caches and whose k fits 384 pairs (the LM head's
   logits, 1,024 × 50,257 × 768) takes chunks of 2·MC rows: each chunk streams all of B from memory,
   so fewer chunks stream it fewer times, while the chunk (384 KB) and a B block (384 KB) still share
   L2 — 1.09× there on AMD EPYC (bench_gemm_versus.sh, SHAPES="1024 50257 768 nt"), the same sums. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,prfchw")))
static void rows_native_finishing(int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                                  size_t panel, float *C, long ldc, float beta, int i0, int i1,
                                  const bf16_epilogue *e, tile_trim trim) {
    int kp = pairs(k), panels = (n + NR - 1) / NR;
    int mc = kp <= 384 && (size_t)panels * NR * kp * 4 > ((size_t)16 << 20) ? 2 * MC : MC;
    uint32_t *a = bf16_thread_workspace(1, (size_t)mc * KB * sizeof(uint32_t));
    for (int q0 = 0; q0 < kp; q0 += KB) {
        int q1 = q0 + KB < kp ? q0 + KB : kp, nq = q1 - q0;
        for (int c0 = i0; c0 < i1; c0 += mc) {
            int c1 = c0 + mc < i1 ? c0 + mc : i1, blocks = (c1 - c0 + MR - 1) / MR;
            pack_a(k, A, a_f32, si, sk, c0, c1, q0, q1, a);
            for (int n0 = 0; n0 < panels; n0 += NCP) {
                int n1 = n0 + NCP < panels ? n0 + NCP : panels;
                for (int b = 0; b < blocks; b++) {
                    int i = c0 + b * MR, rows = c1 - i < MR ? c1 - i : MR, last = i + rows - 1;
                    int qs = q0, qe = q1, pe = n1;  /* the pairs and panels this row block needs */
                    if (trim.kind == 1) {
                        int cols = last + trim.offset, p = cols <= 0 ? 0 : (cols + NR - 1) / NR;
                        if (p < pe) pe = p;
                    } else if (trim.kind == 2) {
                        int q = pairs(last + trim.offset);
                        if (q < qe) qe = q;
                    } else if (trim.kind == 3) {
                        int q = i + trim.offset > 0 ? (i + trim.offset) / 2 : 0;
                        if (q > qs) qs = q;
                    }
                    if (qe < qs) qe = qs;
                    for (int p = n0; p < pe; p += 2) {
                        if (p + 2 < pe) prefetch_tile_outputs(C, ldc, e, (long)i * ldc + (p + 2) * NR, rows, q0 == 0, q1 == kp);
                        const uint16_t *b0 = packed + (size_t)p * panel + (size_t)qs * 2 * NR;
                        const uint16_t *b1 = p + 1 < panels ? b0 + panel : b0;
                        int cols = n - p * NR;
                        if (cols > 2 * NR) cols = 2 * NR;
                        __m512 acc[MR][2];
                        kernel_8x32(a + (size_t)b * nq * MR + (size_t)(qs - q0) * MR, b0, b1, qe - qs, acc);
                        store_tile(C + (long)i * ldc + p * NR, ldc, rows, cols, beta, q0 == 0, q1 == kp, e,
                                   (long)i * ldc + p * NR, acc);
                    }
                }
            }
        }
    }
}

static void rows_native(int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                        size_t panel, float *C, long ldc, float beta, int i0, int i1) {
    rows_native_finishing(n, k, A, a_f32, si, sk, packed, panel, C, ldc, beta, i0, i1, NULL, (tile_trim){0, 0});
}

/* The same products without AVX512-BF16: widen the pairs and accumulate in fp32. */
static void rows_portable(int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                          size_t panel, float *C, long ldc, float beta, int i0, int i1) {
    int kp = pairs(k), panels = (n + NR - 1) / NR;
    float *arow = malloc((size_t)2 * kp * sizeof(float));
    float acc[NR];
    for (int i = i0; i < i1; i++) {
        for (int kk = 0; kk < 2 * kp; kk++) {
            uint32_t u = kk < k ? (uint32_t)element(A, a_f32, (long)i * si + (long)kk * sk) << 16 : 0;
            memcpy(&arow[kk], &u, 4);
        }
        for (int p = 0; p < panels; p++) {
            const uint16_t *b = packed + (size_t)p * panel;
            for (int jj = 0; jj < NR; jj++) acc[jj] = 0;
            for (int q = 0; q < kp; q++) {
                for (int jj = 0; jj < NR; jj++) {
                    uint32_t u0 = (uint32_t)b[(size_t)q * 2 * NR + 2 * jj] << 16, u1 = (uint32_t)b[(size_t)q * 2 * NR + 2 * jj + 1] << 16;
                    float b0, b1;
                    memcpy(&b0, &u0, 4); memcpy(&b1, &u1, 4);
                    acc[jj] += arow[2 * q] * b0 + arow[2 * q + 1] * b1;
                }
            }
            for (int jj = 0; jj < NR && p * NR + jj < n; jj++) {
                float *c = C + (long)i * ldc + p * NR + jj;
                *c = (beta != 0.0f ? beta * *c : 0.0f) + acc[jj];
            }
        }
    }
    free(arow);
}

void *bf16_thread_workspace(int slot, size_t bytes) {
    static __thread void *buffers[5];
    static __thread size_t capacity[5];
    if (bytes > capacity[slot]) {
        free(buffers[slot]);
        capacity[slot] = (bytes + 4095) / 4096 * 4096;
        buffers[slot] = aligned_alloc(64, capacity[slot]);
    }
    return buffers[slot];
}

/* Kernels, slowest to fastest: 0 portable, 1 AVX512-BF16, 2 AMX. */
static int avx512bf16_available(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") ? 1 : 0;
    }
    return cached;
}

void bf16_force_kernel(int kernel) { forced_kernel = kernel; }

int bf16_best_kernel(void) { return bf16_amx_available() ? 2 : avx512bf16_available() ? 1 : 0; }

int bf16_kernel(void) {
    int best = bf16_best_kernel();
    return forced_kernel >= 0 && forced_kernel < best ? forced_kernel : best;
}

int bf16_row_block(void) { return bf16_kernel() == 2 ? 32 : MR; }

void bf16_gemm_rows(int m, int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                    float *C, long ldc, float beta, int i0, int i1) {
    bf16_gemm_rows_packed(m, n, k, A, a_f32, si, sk, packed, k, C, ldc, beta, i0, i1);
}

void bf16_gemm_rows_packed(int m, int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                           int packed_k, float *C, long ldc, float beta, int i0, int i1) {
    bf16_gemm_rows_trimmed(m, n, k, A, a_f32, si, sk, packed, packed_k, C, ldc, beta, i0, i1, (tile_trim){0, 0});
}

void bf16_gemm_rows_trimmed(int m, int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                            int packed_k, float *C, long ldc, float beta, int i0, int i1, tile_trim trim) {
    (void)m;
    size_t panel = (size_t)NR * 2 * padded_pairs(packed_k);
    if (i0 >= i1 || n <= 0) return;
    if (k <= 0) {
        for (int i = i0; i < i1; i++) for (int j = 0; j < n; j++) C[(long)i * ldc + j] = beta != 0.0f ? beta * C[(long)i * ldc + j] : 0.0f;
        return;
    }
    switch (bf16_kernel()) {
    case 2: bf16_rows_amx(n, k, A, a_f32, si, sk, packed, panel, C, ldc, beta, i0, i1); break;
    case 1:
        if (trim.kind == 0) rows_native(n, k, A, a_f32, si, sk, packed, panel, C, ldc, beta, i0, i1);
        else rows_native_finishing(n, k, A, a_f32, si, sk, packed, panel, C, ldc, beta, i0, i1, NULL, trim);
        break;
    default: rows_portable(n, k, A, a_f32, si, sk, packed, panel, C, ldc, beta, i0, i1);
    }
}

/* Rows [i0, i1) finished after a kernel without the tile hook has written their sums into C. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void finish_rows(float *C, long ldc, int n, const bf16_epilogue *e, int i0, int i1) {
    if (!e->keep && !e->gelu_grad_of) return;
    for (int i = i0; i < i1; i++) {
        for (int j = 0; j < n; j += 16) {
            __mmask16 m = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
            float *c = C + (long)i * ldc + j;
            _mm512_mask_storeu_ps(c, m, finish16(_mm512_maskz_loadu_ps(m, c), e, (long)i * ldc + j, m));
        }
    }
}

void bf16_gemm_rows_epilogue(int m, int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                             float *C, long ldc, const bf16_epilogue *e, int i0, int i1) {
    if (i0 >= i1 || n <= 0) return;
    if (bf16_kernel() == 1 && k > 0) {
        size_t panel = (size_t)NR * 2 * padded_pairs(k);
        rows_native_finishing(n, k, A, a_f32, si, sk, packed, panel, C, ldc, 0.0f, i0, i1, e, (tile_trim){0, 0});
        return;
    }
    float beta = 0.0f;
    if (e->bias) {
        for (int i = i0; i < i1; i++) memcpy(C + (long)i * ldc, e->bias, (size_t)n * sizeof(float));
        beta = 1.0f;
    }
    bf16_gemm_rows_packed(m, n, k, A, a_f32, si, sk, packed, k, C, ldc, beta, i0, i1);
    finish_rows(C, ldc, n, e, i0, i1);
}

/* Peak rates: 12 independent accumulator chains, so only throughput limits the loop. */
#include <time.h>
static double seconds_now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

/* Twelve chains c0…c11 updated by STEP(c) n times; the empty asm keeps each chain alive. */
#define TWELVE_CHAINS(n, STEP)                                                                                     \
    for (long i = 0; i < (n); i++) {                                                                               \
        c0 = STEP(c0); c1 = STEP(c1); c2 = STEP(c2); c3 = STEP(c3); c4 = STEP(c4); c5 = STEP(c5);                  \
        c6 = STEP(c6); c7 = STEP(c7); c8 = STEP(c8); c9 = STEP(c9); c10 = STEP(c10); c11 = STEP(c11);              \
        __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7),    \
                         "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));                                               \
    }

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static double peak_dpbf16(void) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = x;
    const long n = 20000000;
    double t = seconds_now();
#define DPBF16(c) _mm512_dpbf16_ps(c, x, y)
    TWELVE_CHAINS(n, DPBF16)
#undef DPBF16
    return (double)n * 12 * 64 / (seconds_now() - t) / 1e9;
}

__attribute__((target("avx512f")))
static double peak_fma(void) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
    __m512 f = _mm512_set1_ps(1.0001f), g = _mm512_set1_ps(0.9999f);
    const long n = 20000000;
    double t = seconds_now();
#define FMA(c) _mm512_fmadd_ps(c, f, g)
    TWELVE_CHAINS(n, FMA)
#undef FMA
    return (double)n * 12 * 32 / (seconds_now() - t) / 1e9;
}

double bf16_peak_dpbf16_gflops(void) { return avx512bf16_available() ? peak_dpbf16() : 0; }
double bf16_peak_fma_gflops(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx512f") ? peak_fma() : 0; }

/* The peak loops on `threads` threads at once (the caller is one), their rates summed. Two hardware
   threads of one core share its units: on the Intel VMs of this project the two vCPUs are such a
   pair (either one alone measures AMX's full rate, the two together about that rate in all), so this,
   not threads × one thread's peak, is what a product on that many threads can reach. */
#include <pthread.h>
#include <stdatomic.h>
typedef struct { double (*peak)(void); double rate; atomic_int *go; } peak_job;

static void *peak_worker(void *arg) {
    peak_job *job = arg;
    while (!atomic_load(job->go)) {}        /* start together: the threads are created one by one */
    job->rate = job->peak();
    return NULL;
}

double bf16_peak_together_gflops(int kernel, int threads) {
    double (*peak)(void) = kernel == 2 ? bf16_peak_amx_gflops : kernel == 1 ? bf16_peak_dpbf16_gflops : bf16_peak_fma_gflops;
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    peak_job jobs[64];
    pthread_t ids[64];
    atomic_int go = 0;
    int started = 1;
    for (int t = 0; t < threads; t++) jobs[t] = (peak_job){peak, 0, &go};
    for (int t = 1; t < threads && pthread_create(&ids[t], NULL, peak_worker, &jobs[t]) == 0; t++) started++;
    atomic_store(&go, 1);
    peak_worker(&jobs[0]);
    double sum = jobs[0].rate;
    for (int t = 1; t < started; t++) { pthread_join(ids[t], NULL); sum += jobs[t].rate; }
    return started == threads ? sum : -1;
}

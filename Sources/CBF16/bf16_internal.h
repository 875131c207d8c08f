/* bf16_internal.h — what the kernels of bf16gemm.c and bf16amx.c share: the packed-B layout
   (panels of NR = 16 columns, k in pairs padded to 16 pairs) and fp32 -> bf16 rounding. */
#ifndef BF16_INTERNAL_H
#define BF16_INTERNAL_H
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

#define NR 16

static inline int pairs(int k) { return (k + 1) / 2; }
/* k pairs of a packed B panel, rounded up to 16 (one AMX tile of pairs); the extra pairs are zero. */
static inline int padded_pairs(int k) { return (pairs(k) + 15) & ~15; }

/* One fp32 value rounded to bf16 bits (nearest even; NaN stays NaN, quiet). */
static inline uint16_t rne(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Element idx of an operand held as bf16 bits or as fp32 (rounded here). */
static inline uint16_t element(const void *src, int f32, long idx) {
    return f32 ? rne(((const float *)src)[idx]) : ((const uint16_t *)src)[idx];
}

/* The bf16 bits of 16 fp32 values, nearest even exactly as rne() (NaN kept, quiet), in the low
   half of each 32-bit lane. */
__attribute__((target("avx512f,avx512bw")))
static inline __m512i round16_lanes(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb));
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
    return _mm512_srli_epi32(r, 16);
}

/* 16 k pairs (x0 = element 2q, x1 = element 2q + 1 of 16 lanes) as 32-bit pair words. */
__attribute__((target("avx512f,avx512bw")))
static inline __m512i pair16(__m512 x0, __m512 x1) {
    return _mm512_or_si512(round16_lanes(x0), _mm512_slli_epi32(round16_lanes(x1), 16));
}

/* Pair words of 16 lanes: elements 2q and 2q + 1 of a k-major source (lanes contiguous), the
   lanes past `lanes` and the k past k zero. Packs fp32 B and transposed fp32 A (both kernels). */
__attribute__((target("avx512f,avx512bw")))
static inline __m512i pair_lanes(const float *x, long sk, int q, int k, int lanes) {
    if (2 * q >= k) return _mm512_setzero_si512();
    __mmask16 m = lanes >= 16 ? 0xffff : (__mmask16)((1u << lanes) - 1);
    const float *x0 = x + (long)(2 * q) * sk;
    __m512 v0 = _mm512_maskz_loadu_ps(m, x0);
    __m512 v1 = 2 * q + 1 < k ? _mm512_maskz_loadu_ps(m, x0 + sk) : _mm512_setzero_ps();
    return pair16(v0, v1);
}

/* Transposes a 16 × 16 block of 32-bit words held as 16 rows r[0…15]: afterwards r[j] holds what
   was column j. Four shuffle stages (32-bit, 64-bit, 128-bit and 256-bit lanes). */
__attribute__((target("avx512f,avx512bw")))
static inline void transpose16x16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    /* r[4g + c] now holds, in each 128-bit lane L, rows 4g…4g+3 of column 4L + c. */
    for (int i = 0; i < 16; i += 8)
        for (int c = 0; c < 4; c++) {
            t[i + c] = _mm512_shuffle_i32x4(r[i + c], r[i + 4 + c], 0x88);     /* lanes 0, 2 of each */
            t[i + 4 + c] = _mm512_shuffle_i32x4(r[i + c], r[i + 4 + c], 0xdd); /* lanes 1, 3 */
        }
    for (int c = 0; c < 8; c++) {
        r[c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0xdd);
    }
}

/* Eight rows' 16 32-bit words each (p[r]: pair words q…q+15 of row r, or fp32 values) as a row
   block's [q][r] layout: 128 words, 512 contiguous bytes (out[qq·8 + r]). 32-bit, then 64-bit interleaves leave in each
   128-bit lane L of u[c] (c < 4) rows 0–3 and of u[4 + c] rows 4–7 of pair 4L + c; output vector j
   (pairs 2j, 2j + 1) gathers its four lanes with two lane shuffles and a blend. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static inline void store_pairs_8x16(const __m512i p[8], uint32_t *out) {
    __m512i t[8], u[8];
    for (int r = 0; r < 8; r += 2) {
        t[r] = _mm512_unpacklo_epi32(p[r], p[r + 1]);     /* lane L: r, r+1 of pairs 4L, 4L+1 */
        t[r + 1] = _mm512_unpackhi_epi32(p[r], p[r + 1]); /* lane L: r, r+1 of pairs 4L+2, 4L+3 */
    }
    for (int h = 0; h < 8; h += 4) {
        u[h / 4 * 4 + 0] = _mm512_unpacklo_epi64(t[h], t[h + 2]);
        u[h / 4 * 4 + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]);
        u[h / 4 * 4 + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);
        u[h / 4 * 4 + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);
    }
#define LANE4(L) ((L) | (L) << 2 | (L) << 4 | (L) << 6)
#define OUT(j, L)                                                                                                   \
    {                                                                                                               \
        int c0 = 2 * ((j) % 2), c1 = c0 + 1;                                                                        \
        __m512i lo = _mm512_shuffle_i32x4(u[c0], u[c1], LANE4(L)), hi = _mm512_shuffle_i32x4(u[4 + c0], u[4 + c1], LANE4(L)); \
        _mm512_storeu_si512(out + 16 * (j), _mm512_mask_blend_epi64(0xcc, lo, hi));                                 \
    }
    OUT(0, 0) OUT(1, 0) OUT(2, 1) OUT(3, 1) OUT(4, 2) OUT(5, 2) OUT(6, 3) OUT(7, 3)
#undef OUT
#undef LANE4
}

/* Vector packing of an fp32 B (bf16amx.c, AVX-512); 0 when it does not apply. */
int bf16_pack_b_f32_vector(int n, int k, const float *B, long sj, long sk, uint16_t *packed, int p0, int p1);
/* The same for B held as 16-bit words, columns contiguous (AVX-512 with VL and BW). */
int bf16_pack_b_words_vector(int n, int k, const uint16_t *B, long sj, long sk, uint16_t *packed, int p0, int p1);

/* The AMX kernel (bf16amx.c): rows [i0, i1) of C, as bf16_gemm_rows_packed (`panel`: elements per
   packed B panel). */
int bf16_amx_available(void);
void bf16_rows_amx(int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed, size_t panel,
                   float *C, long ldc, float beta, int i0, int i1);
#endif

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

/* Vector packing of an fp32 B (bf16amx.c, AVX-512); 0 when it does not apply. */
int bf16_pack_b_f32_vector(int n, int k, const float *B, long sj, long sk, uint16_t *packed, int p0, int p1);

/* The AMX kernel (bf16amx.c): rows [i0, i1) of C, as bf16_gemm_rows_packed (`panel`: elements per
   packed B panel). */
int bf16_amx_available(void);
void bf16_rows_amx(int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed, size_t panel,
                   float *C, long ldc, float beta, int i0, int i1);
#endif

// bf16amx.c — the bf16 GEMM on Intel AMX (TDPBF16PS: a 16 × 32 bf16 tile times a 32 × 16 tile of
// k pairs, accumulated into a 16 × 16 fp32 tile). The packed B of bf16gemm.c is already AMX's
// pair-interleaved ("VNNI") layout: 16 pairs of one 16-column panel are one B tile (64-byte rows).
// Each thread packs its rows of A into 32-row blocks (two A tiles), k padded to tile multiples,
// and runs a 32 × 32 block of C as four accumulator tiles over KBA pairs of k at a time; C is
// reloaded between k blocks (interior tiles straight from C, edge tiles through a staging block).
// Loop order per k block: column blocks of about 768 KB of packed B (kept in L2), row blocks, then
// the column block's panel pairs, so a row block's A (32 rows × the k block) stays in L1/L2.
// Linux grants AMX's tile state per process on request (arch_prctl ARCH_REQ_XCOMP_PERM); without
// the grant, the CPU feature or a Linux that knows it, this kernel is not used. The AVX-512 packers
// of fp32 operands here (exact nearest-even rounding, 16 lanes at a time) also serve the
// AVX512-BF16 kernel's B.
#include "bf16gemm.h"
#include "bf16_internal.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#define MA 32       /* rows per block: two A tiles */
#define KBA 512     /* k pairs per block */
#define NB_BYTES (768 * 1024)   /* packed B per column block */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

int bf16_amx_available(void) {
    static int state = -1;
    if (state < 0) {
        __builtin_cpu_init();
        int cpu = __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16") && __builtin_cpu_supports("avx512bw");
        state = cpu && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 1 : 0;
    }
    return state;
}

/* Rows [r0, r0 + rows) of A into `out` (MA rows of `stride` bf16 each, zero beyond k and rows). */
__attribute__((target("avx512f,avx512bw")))
static void pack_rows(int k, const void *A, int a_f32, long si, long sk, int r0, int rows, uint16_t *out, int stride) {
    memset(out, 0, (size_t)MA * stride * sizeof(uint16_t));
    if (a_f32 && sk == 1) {
        for (int r = 0; r < rows; r++) {
            const float *a = (const float *)A + (long)(r0 + r) * si;
            uint16_t *o = out + (size_t)r * stride;
            int kk = 0;
            for (; kk + 16 <= k; kk += 16) _mm256_storeu_si256((__m256i *)(o + kk), _mm512_cvtepi32_epi16(round16_lanes(_mm512_loadu_ps(a + kk))));
            for (; kk < k; kk++) o[kk] = rne(a[kk]);
        }
    } else if (a_f32 && si == 1) {
        /* Transposed A (a weight-gradient product): for each k, 16 rows are contiguous; a pair of
           k values of 16 rows becomes 16 pair words scattered down the rows. */
        __m512i rowIndex = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32(stride / 2));
        int kk = 0;
        for (; kk + 2 <= k; kk += 2) {
            const float *a0 = (const float *)A + (long)kk * sk + r0, *a1 = a0 + sk;
            int r = 0;
            for (; r + 16 <= rows; r += 16)
                _mm512_i32scatter_epi32((int *)(out + (size_t)r * stride + kk), rowIndex, pair16(_mm512_loadu_ps(a0 + r), _mm512_loadu_ps(a1 + r)), 4);
            for (; r < rows; r++) { out[(size_t)r * stride + kk] = rne(a0[r]); out[(size_t)r * stride + kk + 1] = rne(a1[r]); }
        }
        for (; kk < k; kk++) {
            const float *a0 = (const float *)A + (long)kk * sk + r0;
            for (int r = 0; r < rows; r++) out[(size_t)r * stride + kk] = rne(a0[r]);
        }
    } else {
        for (int r = 0; r < rows; r++)
            for (int kk = 0; kk < k; kk++) out[(size_t)r * stride + kk] = element(A, a_f32, (long)(r0 + r) * si + (long)kk * sk);
    }
}

/* Packs panels [p0, p1) of an fp32 B (see bf16_pack_b) with vector rounding, for the two dense
   layouts: columns contiguous (sj == 1: B is [k, n] row-major) or k contiguous (sk == 1: [n, k]).
   Returns 0 when the layout is neither (the caller packs element by element). */
__attribute__((target("avx512f,avx512bw")))
int bf16_pack_b_f32_vector(int n, int k, const float *B, long sj, long sk, uint16_t *packed, int p0, int p1) {
    int kpb = padded_pairs(k);
    if (sj != 1 && sk != 1) return 0;
    for (int p = p0; p < p1; p++) {
        uint32_t *out = (uint32_t *)(packed + (size_t)p * NR * 2 * kpb);      /* [q][16] pair words */
        int j0 = p * NR, cols = n - j0 < NR ? n - j0 : NR;
        memset(out, 0, (size_t)kpb * NR * sizeof(uint32_t));
        if (sj == 1 && cols == NR) {
            for (int q = 0; q < kpb && 2 * q < k; q++) {
                __m512 x0 = _mm512_loadu_ps(B + (long)(2 * q) * sk + j0);
                __m512 x1 = 2 * q + 1 < k ? _mm512_loadu_ps(B + (long)(2 * q + 1) * sk + j0) : _mm512_setzero_ps();
                _mm512_storeu_si512(out + (size_t)q * NR, pair16(x0, x1));
            }
        } else if (sk == 1 && sj != 1) {
            for (int jj = 0; jj < cols; jj++) {
                const float *b = B + (long)(j0 + jj) * sj;
                int kk = 0;
                for (; kk + 32 <= k; kk += 32) {
                    /* 16 pairs of column j: even and odd k split out of 32 consecutive values. */
                    __m512 lo = _mm512_loadu_ps(b + kk), hi = _mm512_loadu_ps(b + kk + 16);
                    __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                    __m512 x0 = _mm512_permutex2var_ps(lo, even, hi);
                    __m512 x1 = _mm512_permutex2var_ps(lo, _mm512_add_epi32(even, _mm512_set1_epi32(1)), hi);
                    uint32_t w[16];
                    _mm512_storeu_si512(w, pair16(x0, x1));
                    for (int t = 0; t < 16; t++) out[(size_t)(kk / 2 + t) * NR + jj] = w[t];
                }
                for (; kk < k; kk++) ((uint16_t *)(out + (size_t)(kk / 2) * NR + jj))[kk & 1] = rne(b[kk]);
            }
        } else {
            for (int jj = 0; jj < cols; jj++)
                for (int kk = 0; kk < k; kk++) ((uint16_t *)(out + (size_t)(kk / 2) * NR + jj))[kk & 1] = rne(B[(long)(j0 + jj) * sj + (long)kk * sk]);
        }
    }
    return 1;
}

typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } tile_config;

/* Tiles 0-7 as 16 rows × 64 bytes: C tiles 0-3 (16 × 16 fp32), A tiles 4-5, B tiles 6-7. The tile
   configuration belongs to the calling thread. */
__attribute__((target("amx-tile")))
static void configure_tiles(void) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
}

__attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))
void bf16_rows_amx(int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                   float *C, long ldc, float beta, int i0, int i1) {
    int kpb = padded_pairs(k), panels = (n + NR - 1) / NR;
    int stride = 2 * kpb;                                   /* bf16 per packed A row */
    int blocks = (i1 - i0 + MA - 1) / MA;
    uint16_t *a = bf16_thread_workspace(1, (size_t)blocks * MA * stride * sizeof(uint16_t));
    for (int b = 0; b < blocks; b++) {
        int r0 = i0 + b * MA;
        pack_rows(k, A, a_f32, si, sk, r0, i1 - r0 < MA ? i1 - r0 : MA, a + (size_t)b * MA * stride, stride);
    }
    if (beta != 0.0f && beta != 1.0f)
        for (int i = i0; i < i1; i++) for (int j = 0; j < n; j++) C[(long)i * ldc + j] *= beta;
    configure_tiles();
    float stage[MA * 32] __attribute__((aligned(64)));
    for (int q0 = 0; q0 < kpb; q0 += KBA) {
        int q1 = q0 + KBA < kpb ? q0 + KBA : kpb;
        int load = q0 > 0 || beta != 0.0f;                 /* accumulate onto C, else start from zero */
        /* Column blocks whose B (this k block) fits in about half of L2, so it stays there while
           every row block passes; a row block's A (32 rows × the k block) stays in L1. */
        int panelsPerBlock = (int)(NB_BYTES / ((size_t)(q1 - q0) * 2 * NR * sizeof(uint16_t))) & ~1;
        if (panelsPerBlock < 2) panelsPerBlock = 2;
        for (int pb = 0; pb < panels; pb += panelsPerBlock) {
            int pe = pb + panelsPerBlock < panels ? pb + panelsPerBlock : panels;
            for (int b = 0; b < blocks; b++) {
                int r0 = i0 + b * MA, rows = i1 - r0 < MA ? i1 - r0 : MA;
                const uint16_t *ab = a + (size_t)b * MA * stride;
                for (int p = pb; p < pe; p += 2) {
                    int cols = n - p * NR < 2 * NR ? n - p * NR : 2 * NR;
                    const uint16_t *b0 = packed + (size_t)p * NR * 2 * kpb;
                    const uint16_t *b1 = p + 1 < panels ? b0 + (size_t)NR * 2 * kpb : b0;
                    float *c = C + (long)r0 * ldc + p * NR;
                    int full = rows == MA && cols == 2 * NR;
                    float *t = full ? c : stage;
                    long ts = full ? ldc : 32;
                    if (!full) {
                        memset(stage, 0, sizeof stage);
                        if (load) for (int r = 0; r < rows; r++) memcpy(stage + r * 32, c + (long)r * ldc, (size_t)cols * sizeof(float));
                    }
                    if (load) {
                        _tile_loadd(0, t, ts * 4); _tile_loadd(1, t + 16, ts * 4);
                        _tile_loadd(2, t + 16 * ts, ts * 4); _tile_loadd(3, t + 16 * ts + 16, ts * 4);
                    } else {
                        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                    }
                    for (int q = q0; q < q1; q += 16) {
                        _tile_loadd(4, ab + 2 * q, stride * 2);
                        _tile_loadd(5, ab + (size_t)16 * stride + 2 * q, stride * 2);
                        _tile_loadd(6, b0 + (size_t)q * 2 * NR, 64);
                        _tile_loadd(7, b1 + (size_t)q * 2 * NR, 64);
                        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7);
                        _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
                    }
                    _tile_stored(0, t, ts * 4); _tile_stored(1, t + 16, ts * 4);
                    _tile_stored(2, t + 16 * ts, ts * 4); _tile_stored(3, t + 16 * ts + 16, ts * 4);
                    if (!full) for (int r = 0; r < rows; r++) memcpy(c + (long)r * ldc, stage + r * 32, (size_t)cols * sizeof(float));
                }
            }
        }
    }
    _tile_release();
}

/* Peak: four independent accumulator tiles fed by the same two A and two B tiles. */
#include <time.h>
__attribute__((target("amx-tile,amx-bf16")))
static double peak_amx(void) {
    configure_tiles();
    static uint16_t ones[16 * 32] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 32; i++) ones[i] = 0x3f80;
    _tile_loadd(4, ones, 64); _tile_loadd(5, ones, 64); _tile_loadd(6, ones, 64); _tile_loadd(7, ones, 64);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    const long n = 2000000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    _tile_release();
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    return (double)n * 4 * 16 * 16 * 32 * 2 / s / 1e9;
}

double bf16_peak_amx_gflops(void) { return bf16_amx_available() ? peak_amx() : 0; }

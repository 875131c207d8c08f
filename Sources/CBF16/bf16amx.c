// bf16amx.c — the bf16 GEMM on Intel AMX (TDPBF16PS: a 16 × 32 bf16 tile times a 32 × 16 tile of
// k pairs, accumulated into a 16 × 16 fp32 tile). The packed B of bf16gemm.c is already AMX's
// pair-interleaved ("VNNI") layout: 16 pairs of one 16-column panel are one B tile (64-byte rows,
// 1 KB contiguous). Each thread packs its rows of A into 32-row blocks laid out as tiles: per chunk
// of 16 k pairs, two contiguous 1 KB tiles (rows 0-15, 16-31), so every tile load reads 1 KB in
// order, whatever k is (row-strided tiles put 16 rows of a large power-of-two k in one L1 set).
// A 32 × 32 block of C is four accumulator tiles. Tiles are not renamed, so a load into a tile
// waits for the products still reading it: the inner loop is software-pipelined, each next
// operand loaded as soon as its last reader is issued (on operands in L1, one Intel Xeon core:
// 1.7 TFLOP/s, 80% of the TDPBF16PS peak, against 0.55–0.66 in the load-all-then-multiply order).
// C is computed in L2-resident tiles (see bf16_rows_amx), so it travels to memory once.
// Linux grants AMX's tile state per process on request (arch_prctl ARCH_REQ_XCOMP_PERM); without
// the grant, the CPU feature or a Linux that knows it, this kernel is not used. The AVX-512 packers
// of fp32 operands here (exact nearest-even rounding, 16 lanes at a time, 16 × 16 transposes for the
// k-contiguous B and the transposed A) also serve the AVX512-BF16 kernel's B.
#include "bf16gemm.h"
#include "bf16_internal.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#define MA 32       /* rows per block: two A tiles */
#define KBA 256     /* k pairs per block: a 32-row block of A is 32 KB */
#define MC 256      /* rows per C tile */
#define NC 384      /* columns per C tile: B of a k block is 384 KB */
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

/* The tile of A at chunk c (16 k pairs) and half t (rows 16t…16t+15) of a packed 32-row block. */
static inline uint16_t *a_tile(uint16_t *block, int c, int t) { return block + ((size_t)c * 2 + t) * 512; }

/* 32 consecutive fp32 values (those past `count` read as 0) as 16 pair words (even k low, odd k high). */
__attribute__((target("avx512f,avx512bw")))
static inline __m512i pairs_of_32(const float *x, int count) {
    __mmask16 m0 = count >= 16 ? 0xffff : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
    __mmask16 m1 = count >= 32 ? 0xffff : count <= 16 ? 0 : (__mmask16)((1u << (count - 16)) - 1);
    __m512 lo = _mm512_maskz_loadu_ps(m0, x), hi = _mm512_maskz_loadu_ps(m1, x + 16);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    return pair16(_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi));
}

/* Rows [i0, i1) of A into tile-layout blocks of 32 rows (`chunks` chunks each, zero beyond k and
   rows). fp32 A by rows: 32 values of a row are one 64-byte tile row. fp32 A transposed (si == 1, a
   weight-gradient product): 16 k pairs of 16 rows are read as 16 vectors across rows and turned by
   one 16 × 16 transpose into the tile's rows; chunks are the outer loop, so the source's rows (k)
   are read in order, 32 at a time. */
__attribute__((target("avx512f,avx512bw")))
static void pack_a_tiles(int k, const void *A, int a_f32, long si, long sk, int i0, int i1, uint16_t *out, int chunks) {
    int blocks = (i1 - i0 + MA - 1) / MA;
    size_t blockElems = (size_t)MA * 32 * chunks;
    if (a_f32 && sk == 1) {
        for (int b = 0; b < blocks; b++)
            for (int r = 0; r < MA; r++) {
                int i = i0 + b * MA + r;
                for (int c = 0; c < chunks; c++) {
                    uint32_t *dst = (uint32_t *)(a_tile(out + b * blockElems, c, r / 16) + (r % 16) * 32);
                    __m512i w = i < i1 ? pairs_of_32((const float *)A + (long)i * si + 32 * c, k - 32 * c) : _mm512_setzero_si512();
                    _mm512_storeu_si512(dst, w);
                }
            }
    } else if (a_f32 && si == 1) {
        for (int c = 0; c < chunks; c++)
            for (int b = 0; b < blocks; b++)
                for (int t = 0; t < 2; t++) {
                    int r0 = i0 + b * MA + 16 * t, lanes = i1 - r0;
                    __m512i w[16];
                    for (int qq = 0; qq < 16; qq++)
                        w[qq] = lanes > 0 ? pair_lanes((const float *)A + r0, sk, 16 * c + qq, k, lanes) : _mm512_setzero_si512();
                    transpose16x16(w);
                    uint32_t *dst = (uint32_t *)a_tile(out + b * blockElems, c, t);
                    for (int r = 0; r < 16; r++) _mm512_storeu_si512(dst + 16 * r, w[r]);
                }
    } else {
        memset(out, 0, (size_t)blocks * blockElems * sizeof(uint16_t));
        for (int i = i0; i < i1; i++)
            for (int kk = 0; kk < k; kk++)
                a_tile(out + (size_t)((i - i0) / MA) * blockElems, kk / 32, (i - i0) % MA / 16)[(i - i0) % 16 * 32 + kk % 32] =
                    element(A, a_f32, (long)i * si + (long)kk * sk);
    }
}

/* Packs panels [p0, p1) of an fp32 B (see bf16_pack_b) with vector rounding, for the two dense
   layouts. Columns contiguous (sj == 1: B is [k, n] row-major): per chunk of 16 pairs (32 rows of
   B, read once), every panel's 16 pair vectors. k contiguous (sk == 1: [n, k]): per panel and chunk,
   16 columns × 32 k as 16 pair vectors, transposed into the chunk's 16 pair rows. Returns 0 when
   the layout is neither (the caller packs element by element). B comes from memory (a model's
   weights and kept activations are larger than the caches) in 16 or 32 strided streams that the
   hardware does not follow, so each step fetches the lines of the step after next by hand. */
__attribute__((target("avx512f,avx512bw")))
int bf16_pack_b_f32_vector(int n, int k, const float *B, long sj, long sk, uint16_t *packed, int p0, int p1) {
    int kpb = padded_pairs(k), chunks = kpb / 16;
    if (sj == 1) {
        int np = p1 - p0;
        for (int c = 0; c < chunks; c++)
            for (int p = p0; p < p1; p++) {
                uint32_t *out = (uint32_t *)(packed + (size_t)p * NR * 2 * kpb) + (size_t)16 * c * NR;
                int cols = n - p * NR < NR ? n - p * NR : NR;
                /* the 32 rows of the step after next (panels within a chunk, then the next chunk) */
                int ahead = c * np + (p - p0) + 2, ca = ahead / np, pa = p0 + ahead % np;
                if (ca < chunks)
                    for (int kk = 32 * ca; kk < 32 * ca + 32 && kk < k; kk++)
                        _mm_prefetch((const char *)(B + pa * NR + (long)kk * sk), _MM_HINT_T0);
                for (int qq = 0; qq < 16; qq++) _mm512_storeu_si512(out + (size_t)qq * NR, pair_lanes(B + p * NR, sk, 16 * c + qq, k, cols));
            }
        return 1;
    }
    if (sk != 1) return 0;
    for (int p = p0; p < p1; p++) {
        uint32_t *out = (uint32_t *)(packed + (size_t)p * NR * 2 * kpb);
        for (int c = 0; c < chunks; c++) {
            __m512i w[16];
            /* the 16 columns' next 32 k: the panel's next chunk, or the next panel's first */
            int ca = c + 1 < chunks ? c + 1 : 0, pa = c + 1 < chunks ? p : p + 1;
            if (pa < p1 && 32 * ca < k)
                for (int jj = 0; jj < NR && pa * NR + jj < n; jj++) {
                    const char *f = (const char *)(B + (long)(pa * NR + jj) * sj + 32 * ca);
                    _mm_prefetch(f, _MM_HINT_T0);
                    _mm_prefetch(f + 64, _MM_HINT_T0);
                }
            for (int jj = 0; jj < NR; jj++)
                w[jj] = p * NR + jj < n ? pairs_of_32(B + (long)(p * NR + jj) * sj + 32 * c, k - 32 * c) : _mm512_setzero_si512();
            transpose16x16(w);
            for (int qq = 0; qq < 16; qq++) _mm512_storeu_si512(out + (size_t)(16 * c + qq) * NR, w[qq]);
        }
    }
    return 1;
}

/* The same for a B already held as 16-bit words (a bf16 run's kept activations, as a weight
   gradient reads them), columns contiguous (sj == 1): rows 2q and 2q + 1 of a panel's 16 columns
   interleaved into 16 pair words; nothing to round. Returns 0 for any other layout. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
int bf16_pack_b_words_vector(int n, int k, const uint16_t *B, long sj, long sk, uint16_t *packed, int p0, int p1) {
    if (sj != 1) return 0;
    int kpb = padded_pairs(k), chunks = kpb / 16;
    for (int c = 0; c < chunks; c++)
        for (int p = p0; p < p1; p++) {
            uint32_t *out = (uint32_t *)(packed + (size_t)p * NR * 2 * kpb) + (size_t)16 * c * NR;
            int cols = n - p * NR < NR ? n - p * NR : NR;
            __mmask16 m = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
            const uint16_t *b = B + p * NR;
            if (p + 2 < p1)  /* the chunk's 32 rows, two panels on */
                for (int kk = 32 * c; kk < 32 * c + 32 && kk < k; kk++)
                    _mm_prefetch((const char *)(B + (p + 2) * NR + (long)kk * sk), _MM_HINT_T0);
            for (int qq = 0; qq < 16; qq++) {
                int q = 16 * c + qq;
                __m512i w = _mm512_setzero_si512();
                if (2 * q < k) {
                    __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, b + (long)(2 * q) * sk));
                    __m512i hi = 2 * q + 1 < k ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, b + (long)(2 * q + 1) * sk))
                                               : _mm512_setzero_si512();
                    w = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
                }
                _mm512_storeu_si512(out + (size_t)qq * NR, w);
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

/* The 32 × 32 block of C at `t` (row stride ts floats) += A block × B panel pair over chunks
   [c0, c1) of 16 pairs; `load` takes C's current values, else starts from zero. Software-pipelined:
   each tile is reloaded for the next chunk right after its last reader of this chunk. `ahead`, when
   not NULL, is the next block of C (same stride): its 64 lines are fetched for writing (PREFETCHW),
   spread over the chunks, so the first stores into C lines not yet cached do not wait for memory
   (each tile store of 16 such lines otherwise stalls the tiles behind it). */
__attribute__((target("amx-tile,amx-bf16,prfchw")))
static inline void block_32x32(const uint16_t *ab, const uint16_t *b0, const uint16_t *b1, int c0, int c1,
                               float *t, long ts, int load, const float *ahead) {
    int per = (64 + (c1 - c0) - 1) / (c1 - c0);    /* lines of `ahead` fetched per chunk */
    if (load) {
        _tile_loadd(0, t, ts * 4); _tile_loadd(1, t + 16, ts * 4);
        _tile_loadd(2, t + 16 * ts, ts * 4); _tile_loadd(3, t + 16 * ts + 16, ts * 4);
    } else {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    }
    _tile_loadd(4, ab + (size_t)c0 * 1024, 64);
    _tile_loadd(6, b0 + (size_t)c0 * 512, 64);
    _tile_loadd(7, b1 + (size_t)c0 * 512, 64);
    _tile_loadd(5, ab + (size_t)c0 * 1024 + 512, 64);
    for (int c = c0; c < c1; c++) {
        int next = c + 1 < c1 ? c + 1 : c;
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(4, ab + (size_t)next * 1024, 64);
        _tile_dpbf16ps(2, 5, 6);
        _tile_loadd(6, b0 + (size_t)next * 512, 64);
        _tile_dpbf16ps(3, 5, 7);
        _tile_loadd(7, b1 + (size_t)next * 512, 64);
        _tile_loadd(5, ab + (size_t)next * 1024 + 512, 64);
        if (ahead)
            for (int l = (c - c0) * per; l < (c - c0 + 1) * per && l < 64; l++)
                _m_prefetchw((void *)(ahead + (long)(l >> 1) * ts + (l & 1) * 16));
    }
    _tile_stored(0, t, ts * 4); _tile_stored(1, t + 16, ts * 4);
    _tile_stored(2, t + 16 * ts, ts * 4); _tile_stored(3, t + 16 * ts + 16, ts * 4);
}

/* Rows [i0, i1) of C. C is computed in tiles of MC rows × NC columns that stay in L2 across the k
   blocks (KBA pairs), so C travels to memory once; per k block, each 32-row block of A (KBA pairs,
   32 KB: stays in L1) meets the tile's panel pairs, whose B (NC columns × KBA pairs, 384 KB) stays
   in L2. */
__attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,prfchw")))
void bf16_rows_amx(int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed, size_t panel,
                   float *C, long ldc, float beta, int i0, int i1) {
    int kpb = padded_pairs(k), chunks = kpb / 16, panels = (n + NR - 1) / NR;
    int blocks = (i1 - i0 + MA - 1) / MA;
    size_t blockElems = (size_t)MA * 2 * kpb;
    uint16_t *a = bf16_thread_workspace(1, (size_t)blocks * blockElems * sizeof(uint16_t));
    pack_a_tiles(k, A, a_f32, si, sk, i0, i1, a, chunks);
    if (beta != 0.0f && beta != 1.0f)
        for (int i = i0; i < i1; i++) for (int j = 0; j < n; j++) C[(long)i * ldc + j] *= beta;
    configure_tiles();
    float stage[MA * 32] __attribute__((aligned(64)));
    for (int pb = 0; pb < panels; pb += NC / NR) {
        int pe = pb + NC / NR < panels ? pb + NC / NR : panels;
        for (int bb = 0; bb < blocks; bb += MC / MA) {
            int be = bb + MC / MA < blocks ? bb + MC / MA : blocks;
            for (int q0 = 0; q0 < kpb; q0 += KBA) {
                int q1 = q0 + KBA < kpb ? q0 + KBA : kpb;
                int load = q0 > 0 || beta != 0.0f;         /* accumulate onto C, else start from zero */
                for (int b = bb; b < be; b++) {
                    int r0 = i0 + b * MA, rows = i1 - r0 < MA ? i1 - r0 : MA;
                    const uint16_t *ab = a + (size_t)b * blockElems;
                    for (int p = pb; p < pe; p += 2) {
                        int cols = n - p * NR < 2 * NR ? n - p * NR : 2 * NR;
                        const uint16_t *b0 = packed + (size_t)p * panel;
                        const uint16_t *b1 = p + 1 < panels ? b0 + panel : b0;
                        float *c = C + (long)r0 * ldc + p * NR;
                        int full = rows == MA && cols == 2 * NR;
                        if (!full) {
                            memset(stage, 0, sizeof stage);
                            if (load) for (int r = 0; r < rows; r++) memcpy(stage + r * 32, c + (long)r * ldc, (size_t)cols * sizeof(float));
                        }
                        /* On the first k block, C's lines come from memory: fetch the next full block's
                           for writing — when C is only written (beta 0); a product that reads C first (a
                           weight gradient accumulating) measured no gain from it (bench_gemm_versus.sh). */
                        const float *ahead = NULL;
                        if (q0 == 0 && full && !load) {
                            if (p + 2 < pe) ahead = c + 2 * NR;
                            else if (b + 1 < be && i1 - (r0 + MA) >= MA) ahead = C + (long)(r0 + MA) * ldc + pb * NR;
                            if (ahead && n - (int)((ahead - C) % ldc) < 2 * NR) ahead = NULL;
                        }
                        block_32x32(ab, b0, b1, q0 / 16, q1 / 16, full ? c : stage, full ? ldc : 32, load, ahead);
                        if (!full) for (int r = 0; r < rows; r++) memcpy(c + (long)r * ldc, stage + r * 32, (size_t)cols * sizeof(float));
                    }
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

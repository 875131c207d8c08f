// bf16gemm.h — bfloat16 matrix products with fp32 accumulation, for CPUs with Intel AMX
// (TDPBF16PS, bf16amx.c) or AVX512-BF16 (vdpbf16ps), with a portable fallback; plus exact
// fp32 <-> bf16 conversion and fp32 -> bf16/fp16 rounding in place (round to nearest even).
//   C[i, j] = beta · C[i, j] + Σ_k A[i, k] · B[j, k]
// A and B are read through element strides (any layout: A[i,k] = A[i·a_si + k·a_sk]), as bf16 bits
// or as fp32 (flag `*_f32`: each element rounded to bf16 while packing). B is packed
// once into panels of 16 columns × k pairs, padded to 16 pairs (bf16_pack_b, which callers may split over threads by
// panels), then rows of C are computed in any split (bf16_gemm_rows, one call per thread).
#ifndef BF16GEMM_H
#define BF16GEMM_H
#include <stddef.h>
#include <stdint.h>
#include "tileproducts.h"

/// The kernel products run on: 0 portable (fp32 arithmetic), 1 AVX512-BF16 (vdpbf16ps), 2 AMX
/// (TDPBF16PS tiles) — the fastest this CPU and OS offer, unless forced lower.
int bf16_kernel(void);
/// The fastest kernel this machine offers, whatever is forced.
int bf16_best_kernel(void);
/// Forces a kernel (tests compare them; a kernel the CPU lacks is never chosen); -1 restores the choice.
void bf16_force_kernel(int kernel);
/// Rows per block of the current kernel (callers split rows among threads in multiples of it).
int bf16_row_block(void);

/// fp32 -> bf16, round to nearest even (NaN stays NaN, quiet); exact for every input, denormals included.
void bf16_round(const float *x, uint16_t *y, size_t n);
/// Rounds fp32 values in place to the nearest bf16 value (kept as fp32).
void bf16_round_in_place(float *x, size_t n);
/// Rounds fp32 values in place to the nearest IEEE fp16 value (kept as fp32): nearest even,
/// beyond ±65504 (from 65520) to ±∞, subnormals below 2^-14.
void fp16_round_in_place(float *x, size_t n);
/// bf16 -> fp32 (exact).
void bf16_widen(const uint16_t *x, float *y, size_t n);
/// Rounds fp32 values in place to bf16 (fp16 = 0) or IEEE fp16 (fp16 = 1), as the two functions
/// above, and writes their 16-bit words to `w` (halfwords.c).
void half_round_keep(float *x, uint16_t *w, size_t n, int fp16);
/// The fp32 values of 16-bit words written by half_round_keep (exact).
void half_restore(const uint16_t *w, float *x, size_t n, int fp16);
/// y = x rounded to bf16 (fp16 when fp16 != 0) as half_round_keep rounds, in one pass (x unchanged).
void half_round_copy(const float *x, float *y, size_t n, int fp16);

/// A 64-byte aligned buffer of at least `bytes` owned by the calling thread, grown as needed and
/// kept for the thread's life (slot 0: the caller's packed B, slot 1: a kernel's packed rows of A,
/// slots 2-4: B operands a caller packs once for many products), so repeated products allocate
/// and fault in no memory.
void *bf16_thread_workspace(int slot, size_t bytes);
/// Elements of the packed form of an n × k B.
size_t bf16_packed_b_count(int n, int k);
/// Packs panels [p0, p1) (16 columns each) of B[j, k] = B[j·sj + k·sk] into `packed`.
void bf16_pack_b(int n, int k, const void *B, int b_f32, long sj, long sk, uint16_t *packed, int p0, int p1);
/// Rows [i0, i1) of C (row stride ldc) from A[i, k] = A[i·si + k·sk] and the packed B.
void bf16_gemm_rows(int m, int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                    float *C, long ldc, float beta, int i0, int i1);
/// The same against a B packed once for a larger operand (bf16_pack_b with n' ≥ n columns and
/// packed_k ≥ k): the product uses its first n columns and first k rows, exactly as if only those
/// had been packed (A is zero past k, so B's further rows, when finite, add nothing).
void bf16_gemm_rows_packed(int m, int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                           int packed_k, float *C, long ldc, float beta, int i0, int i1);

/// bf16_gemm_rows_packed trimmed to the part of C a causal tile needs (tileproducts.h; rows of C
/// counted from 0, not from i0). The AVX512-BF16 kernel skips what the trim allows; the others
/// compute everything, which gives the same C where the trim promises zeros.
void bf16_gemm_rows_trimmed(int m, int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                            int packed_k, float *C, long ldc, float beta, int i0, int i1, tile_trim trim);
/// What a forward product does with each result where it is computed (bf16_gemm_rows_epilogue),
/// instead of in passes over C afterwards: a layer's bias, its output rounded to bf16 and kept as
/// words, and for FC1 GPT-2's tanh GELU of that rounded output, rounded and kept as well.
typedef struct {
    const float *bias;    /* [n], added to every row's sums; or NULL */
    uint16_t *keep;       /* or NULL: each result (sums + bias) rounded to bf16, its word at keep[i·ldc + j] */
    uint16_t *gelu_keep;  /* or NULL (needs keep): GELU of the rounded result, rounded, its word here */
    const uint16_t *gelu_grad_of; /* or NULL (without bias and keep): FC2's input-gradient product finished
                                     as the GELU's backward pass — each result times GELU′ of the bf16 word
                                     gelu_grad_of[i·ldc + j] (FC1's kept output), rounded to bf16 */
} bf16_epilogue;
/// Rows [i0, i1) of C = A·B (+ bias), finished by `e`: C receives the last value computed (the
/// rounded GELU with gelu_keep, else the rounded result with keep, else the sum; with gelu_grad_of
/// the rounded product of the sum and GELU′). Bit for bit what bf16_gemm_rows with C pre-filled with
/// the bias and beta 1, then half_round_keep (and GELU, then half_round_keep) give, or with
/// gelu_grad_of, bf16_gemm_rows then GELU.backward and bf16_round_in_place. Needs AVX-512 (callers
/// check bf16_best_kernel() ≥ 1).
void bf16_gemm_rows_epilogue(int m, int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed,
                             float *C, long ldc, const bf16_epilogue *e, int i0, int i1);

/// Single-core peak instruction rates in GFLOP/s, measured by a loop of 12 independent chains:
/// vdpbf16ps (64 FLOP each; 0 without AVX512-BF16) and 512-bit fp32 FMA (32 FLOP each).
double bf16_peak_dpbf16_gflops(void);
double bf16_peak_fma_gflops(void);
/// Single-core peak of AMX TDPBF16PS (16·16·32·2 FLOP each), 0 without AMX.
double bf16_peak_amx_gflops(void);
/// The peak loop of `kernel` (2 AMX, 1 vdpbf16ps, 0 fp32 FMA) on `threads` threads started together,
/// their rates summed: what that many threads reach at once (hardware threads of one core share its
/// units). -1 when a thread could not be started.
double bf16_peak_together_gflops(int kernel, int threads);

#endif

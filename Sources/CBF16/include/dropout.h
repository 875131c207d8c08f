// dropout.h — dropout masks from Philox4x32-10 (dropout.c), the generator of CounterRNG.swift:
// element e of a stream keyed (key0, key1) uses word e mod 4 of the block at counter
// (e/4 mod 2³², e/2³⁴, c2, c3) and is dropped when (word >> 8)·2⁻²⁴ < p. In AVX-512 two groups of
// sixteen blocks (128 elements) are made at once, each group's four words' comparisons interleaved
// into one 64-bit mask (pdep); without AVX-512 a scalar loop gives the same bits.
#ifndef MEGATRON_DROPOUT_H
#define MEGATRON_DROPOUT_H
#include <stdint.h>

/// dst[i] = 0 if element start + i is dropped, else src[i]·keep, for i < n (keep = 1/(1−p), passed
/// in so it is the caller's rounding); src may equal dst.
void dropout_apply_mask(const float *src, float *dst, long n, long start, uint32_t key0, uint32_t key1,
                        uint32_t c2, uint32_t c3, float p, float keep);

/// The attention backward's row under dropout, in place. P: the row's probabilities, dP: ∂loss/∂(the
/// probabilities after dropout) — with m the keep mask of elements start … start + valid − 1:
/// dP ← m·keep·dP (∂loss/∂P), then P ← P·(dP − Σ P·dP)·scale (∂loss/∂scores) and dP ← m·keep·P (the
/// probabilities the forward's PV used); both 0 in [valid, width). One mask for both.
void dropout_softmax_backward_row(float *P, float *dP, long valid, long width, long start, uint32_t key0,
                                  uint32_t key1, uint32_t c2, uint32_t c3, float p, float keep, float scale);

/// 1: use the scalar loop even where AVX-512 is available (tests compare the two); 0: the fastest.
void dropout_force_portable(int portable);
#endif

// dropout.h — dropout masks from Philox4x32-10 (dropout.c), the generator of CounterRNG.swift:
// element e of a stream keyed (key0, key1) uses word e mod 4 of the block at counter
// (e/4 mod 2³², e/2³⁴, c2, c3) and is dropped when (word >> 8)·2⁻²⁴ < p. In AVX-512 sixteen blocks
// (64 elements) are made at once and their four words' comparisons interleaved into one 64-bit
// mask (pdep), so each element costs about a cycle; without AVX-512 a scalar loop gives the same bits.
#ifndef MEGATRON_DROPOUT_H
#define MEGATRON_DROPOUT_H
#include <stdint.h>

/// dst[i] = 0 if element start + i is dropped, else src[i]·keep, for i < n (keep = 1/(1−p), passed
/// in so it is the caller's rounding); src may equal dst.
void dropout_apply_mask(const float *src, float *dst, long n, long start, uint32_t key0, uint32_t key1,
                        uint32_t c2, uint32_t c3, float p, float keep);

/// 1: use the scalar loop even where AVX-512 is available (tests compare the two); 0: the fastest.
void dropout_force_portable(int portable);
#endif

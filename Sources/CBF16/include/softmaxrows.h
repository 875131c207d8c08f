// softmaxrows.h — the attention core's exponential pass over a row of scores (softmaxrows.c):
// exp(scale·x − shift) by the same range reduction and degree-7 polynomial as SIMDMath.swift's
// simdExp (so the results are bit for bit the same), with 2ⁿ applied by one vscalefps and the
// scale and shift by a multiply and a subtract (two roundings, not fused); Swift's generic SIMD
// code spent about twice the instructions on the clamps, the float→int rounding and the exponent
// bits.
#ifndef MEGATRON_SOFTMAXROWS_H
#define MEGATRON_SOFTMAXROWS_H

/// row[j] = exp(scale·row[j] − shift) for first ≤ j < valid (0 where the argument is below −87;
/// arguments above 88 taken as 88), row[j] = 0 for j < first and valid ≤ j < width; returns the sum
/// of the exponentials (summed in 16 lanes, then the lanes in order, then the tail).
float softmax_exp_row(float *row, long first, long valid, long width, float scale, float shift);

/// Σ exp(row[j] − shift) for j < n, the same values and order of summation as softmax_exp_row with
/// scale 1 (x·1 is x exactly), without storing them.
float softmax_exp_sum(const float *row, long n, float shift);

/// max(row[first ..< valid]) (−∞ for an empty range).
float softmax_row_max(const float *row, long first, long valid);

/// 1: the portable loop even where AVX-512 is available (tests compare the two); 0: the fastest.
void softmax_rows_force_portable(int portable);
#endif

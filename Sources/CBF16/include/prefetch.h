// prefetch.h — a software prefetch hint for Swift kernels that stream memory (decoding's
// weight-by-vector products): the hardware prefetcher alone keeps too few lines in flight per
// core to reach the memory bandwidth; asking a few KiB ahead does.
#ifndef MEGATRON_PREFETCH_H
#define MEGATRON_PREFETCH_H

/// Hints that the cache line holding `p` will be read soon (never faults, whatever `p` is).
static inline void megatron_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif

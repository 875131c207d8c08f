/* COpenBLAS: OpenBLAS's CBLAS interface for Swift. Nothing to wrap: cblas.h imports cleanly.
   Imported only by the Tensor module (GEMM.swift). */
#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
#include <cblas.h>
#endif

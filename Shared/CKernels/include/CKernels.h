#ifndef SEGFLOW_CKERNELS_H
#define SEGFLOW_CKERNELS_H
#include <stdint.h>

/// 1 when this CPU runs the AVX-512 kernels below (AVX512F, BW and VL), else 0.
int segflow_kernels_avx512(void);

/// In-place stable softmax of `rows` contiguous rows of `cols` floats, 16 lanes wide.
/// Same polynomial exp and NaN/-inf rules as Tensor's 8-lane Swift version
/// (Ops.softmaxRows); only the order of the row sum differs. With `bf16_out` non-null the
/// probabilities go there (round to nearest even, quiet NaNs) and `row0` keeps the
/// unscaled exps. Call only when segflow_kernels_avx512() returned 1.
void segflow_softmax_rows_avx512(float *row0, long rows, long cols, uint16_t *bf16_out);

#endif

#include "CKernels.h"
#include <immintrin.h>
#include <math.h>

int segflow_kernels_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

/* The Cephes-style exp of Activations.swift `exp8`, op for op (the same fused
 * multiply-adds in the same order), 16 lanes. */
AVX512 static inline __m512 exp16(__m512 v) {
    const __m512 lo = _mm512_set1_ps(-87.0f);
    __mmask16 under = _mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ);
    __m512 x = _mm512_mask_blend_ps(under, v, lo);
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
    __m512 fx = _mm512_sub_ps(t, magic);
    x = _mm512_fmadd_ps(fx, _mm512_set1_ps(-0.693359375f), x);
    x = _mm512_fmadd_ps(fx, _mm512_set1_ps(2.12194440e-4f), x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, z, _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    __m512i n = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23));
    __m512 r = _mm512_mul_ps(y, scale);
    return _mm512_mask_blend_ps(under, r, _mm512_setzero_ps());
}

/* BF16.from8/convert: round to nearest even; NaN -> its top half with the quiet bit. */
AVX512 static inline __m256i bf16x16(__m512 v) {
    __m512i b = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
    __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
}

AVX512 void segflow_softmax_rows_avx512(float *row0, long rows, long cols, uint16_t *bf16_out) {
    const long body = cols & ~15L;
    const __mmask16 tail = (__mmask16)((1u << (cols - body)) - 1u);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (long r = 0; r < rows; r++) {
        float *row = row0 + r * cols;
        uint16_t *out = bf16_out ? bf16_out + r * cols : 0;
        /* Max; NaNs are skipped (a lane keeps its value unless the new one is greater). */
        __m512 mv = ninf;
        for (long j = 0; j < body; j += 16) {
            __m512 v = _mm512_loadu_ps(row + j);
            mv = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, mv, _CMP_GT_OQ), mv, v);
        }
        if (tail) {
            __m512 v = _mm512_mask_loadu_ps(ninf, tail, row + body);
            mv = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, mv, _CMP_GT_OQ), mv, v);
        }
        float m = _mm512_reduce_max_ps(mv);
        if (m == -INFINITY) {
            /* Fully masked row: torch.softmax yields NaN (0/0). */
            for (long j = 0; j < cols; j++) row[j] = NAN;
            if (out) for (long j = 0; j < cols; j++) out[j] = 0x7FC0;
            continue;
        }
        const __m512 mm = _mm512_set1_ps(m);
        __m512 acc = _mm512_setzero_ps();
        for (long j = 0; j < body; j += 16) {
            __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j), mm));
            _mm512_storeu_ps(row + j, e);
            acc = _mm512_add_ps(acc, e);
        }
        if (tail) {
            __m512 e = exp16(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, tail, row + body), mm)); /* padding: exp(-inf) = 0 */
            _mm512_mask_storeu_ps(row + body, tail, e);
            acc = _mm512_add_ps(acc, e);
        }
        const float inv = 1.0f / _mm512_reduce_add_ps(acc);
        const __m512 iv = _mm512_set1_ps(inv);
        if (out) {
            for (long j = 0; j < body; j += 16)
                _mm256_storeu_si256((__m256i *)(out + j), bf16x16(_mm512_mul_ps(_mm512_loadu_ps(row + j), iv)));
            if (tail)
                _mm256_mask_storeu_epi16(out + body, tail, bf16x16(_mm512_mul_ps(_mm512_maskz_loadu_ps(tail, row + body), iv)));
            continue;
        }
        for (long j = 0; j < body; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(_mm512_loadu_ps(row + j), iv));
        if (tail) _mm512_mask_storeu_ps(row + body, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, row + body), iv));
    }
}

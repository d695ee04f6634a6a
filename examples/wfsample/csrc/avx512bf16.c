/* AVX-512 BF16 path (-mavx512bf16): converts to bf16 with VCVTNE2PS2BF16, accumulates with VDPBF16PS. */
#include <immintrin.h>
#include "kernels.h"

float wf_dot_bf16_avx512bf16(const float *a, const float *b, size_t n) {
    __m512 acc = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh va = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(a + i));
        __m512bh vb = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(b + i + 16), _mm512_loadu_ps(b + i));
        acc = _mm512_dpbf16_ps(acc, va, vb);
    }
    float sum = _mm512_reduce_add_ps(acc);
    for (; i < n; i++) sum += wf_round_bf16(a[i]) * wf_round_bf16(b[i]);
    return sum;
}

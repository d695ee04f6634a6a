/* AVX-512 VNNI path (-mavx512vnni): u8 x s8 dot product with VPDPBUSD. */
#include <immintrin.h>
#include "kernels.h"

int32_t wf_dot_u8s8_avx512vnni(const uint8_t *a, const int8_t *b, size_t n) {
    __m512i acc = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
    if (i < n) {
        __mmask64 m = (n - i) == 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i));
    }
    return _mm512_reduce_add_epi32(acc);
}

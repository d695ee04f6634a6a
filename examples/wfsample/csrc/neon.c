/* arm64 path: Advanced SIMD (NEON), part of the aarch64 baseline. */
#include <arm_neon.h>
#include "kernels.h"

float wf_dot_neon(const float *a, const float *b, size_t n) {
    float32x4_t acc = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) acc = vfmaq_f32(acc, vld1q_f32(a + i), vld1q_f32(b + i));
    float sum = vaddvq_f32(acc);
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

int32_t wf_dot_u8s8_neon(const uint8_t *a, const int8_t *b, size_t n) {
    int32x4_t acc = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        int16x8_t wa = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(a + i)));
        int16x8_t wb = vmovl_s8(vld1_s8(b + i));
        acc = vmlal_s16(acc, vget_low_s16(wa), vget_low_s16(wb));
        acc = vmlal_s16(acc, vget_high_s16(wa), vget_high_s16(wb));
    }
    int32_t sum = vaddvq_s32(acc);
    for (; i < n; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

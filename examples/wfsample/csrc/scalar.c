#include <string.h>
#include "kernels.h"

float wf_dot_scalar(const float *a, const float *b, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)a[i] * (double)b[i];
    return (float)sum;
}

uint16_t wf_to_bf16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u); /* NaN stays NaN */
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

float wf_round_bf16(float x) {
    uint32_t bits = (uint32_t)wf_to_bf16(x) << 16;
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

float wf_dot_bf16_scalar(const float *a, const float *b, size_t n) {
    float sum = 0;
    for (size_t i = 0; i < n; i++) sum += wf_round_bf16(a[i]) * wf_round_bf16(b[i]);
    return sum;
}

int32_t wf_dot_u8s8_scalar(const uint8_t *a, const int8_t *b, size_t n) {
    int32_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

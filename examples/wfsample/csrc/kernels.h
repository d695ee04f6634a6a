/* Kernel entry points of wfsample._kernels.
 *
 * Each ISA path lives in its own file and is compiled only when setup.py enables that path; the
 * whole extension is compiled with the union of the enabled paths' -m flags, as vLLM compiles its
 * CPU extension. WFSAMPLE_HAVE_<PATH> macros say which paths were compiled in.
 */
#ifndef WFSAMPLE_KERNELS_H
#define WFSAMPLE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Portable reference kernels (always compiled). */
float wf_dot_scalar(const float *a, const float *b, size_t n);
float wf_dot_bf16_scalar(const float *a, const float *b, size_t n);
int32_t wf_dot_u8s8_scalar(const uint8_t *a, const int8_t *b, size_t n);

/* Rounds a float to bfloat16 (round to nearest even) and back; the reference for bf16 paths. */
float wf_round_bf16(float x);
uint16_t wf_to_bf16(float x);

#ifdef WFSAMPLE_HAVE_AVX2
float wf_dot_avx2(const float *a, const float *b, size_t n);
/* u8 x s8 dot product with AVX2 integer instructions (vpmaddubsw, vpmaddwd, vpaddd on ymm). */
int32_t wf_dot_u8s8_avx2(const uint8_t *a, const int8_t *b, size_t n);
#endif
#ifdef WFSAMPLE_HAVE_AVX512
float wf_dot_avx512(const float *a, const float *b, size_t n);
#endif
#ifdef WFSAMPLE_HAVE_AVX512VNNI
int32_t wf_dot_u8s8_avx512vnni(const uint8_t *a, const int8_t *b, size_t n);
#endif
#ifdef WFSAMPLE_HAVE_AVX512BF16
float wf_dot_bf16_avx512bf16(const float *a, const float *b, size_t n);
#endif
#ifdef WFSAMPLE_HAVE_AMXBF16
/* Returns 0 and stores the result, or -1 when the kernel refuses to run AMX (no permission). */
int wf_dot_bf16_amx(const float *a, const float *b, size_t n, float *out);
#endif
#ifdef WFSAMPLE_HAVE_NEON
float wf_dot_neon(const float *a, const float *b, size_t n);
int32_t wf_dot_u8s8_neon(const uint8_t *a, const int8_t *b, size_t n);
#endif

#endif

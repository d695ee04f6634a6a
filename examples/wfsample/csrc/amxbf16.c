/* AMX path (-mamx-tile -mamx-bf16): a bf16 dot product with TDPBF16PS on one tile row. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "kernels.h"

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

struct tile_config {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

int wf_dot_bf16_amx(const float *a, const float *b, size_t n, float *out) {
    /* Linux hands out AMX tile state only on request. */
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return -1;

    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    cfg.rows[0] = 1;  cfg.colsb[0] = 4;   /* C: 1 x 1 float */
    cfg.rows[1] = 1;  cfg.colsb[1] = 64;  /* A: 1 x 32 bf16 */
    cfg.rows[2] = 16; cfg.colsb[2] = 4;   /* B: 16 rows of one bf16 pair */
    _tile_loadconfig(&cfg);

    uint16_t ta[32], tb[32];
    float c = 0;
    _tile_zero(0);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 32; k++) { ta[k] = wf_to_bf16(a[i + k]); tb[k] = wf_to_bf16(b[i + k]); }
        _tile_loadd(1, ta, 64);
        _tile_loadd(2, tb, 4);
        _tile_dpbf16ps(0, 1, 2);
    }
    _tile_stored(0, &c, 4);
    _tile_release();
    for (; i < n; i++) c += wf_round_bf16(a[i]) * wf_round_bf16(b[i]);
    *out = c;
    return 0;
}

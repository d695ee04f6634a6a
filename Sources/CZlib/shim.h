#ifndef WHEELFARM_CZLIB_SHIM_H
#define WHEELFARM_CZLIB_SHIM_H
#include <zlib.h>

/* inflateInit2/deflateInit2 are macros Swift cannot import: wrap them. */
static inline int wf_inflate_init_raw(z_stream *stream) {
    return inflateInit2(stream, -MAX_WBITS);
}
static inline int wf_deflate_init_raw(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
}
#endif

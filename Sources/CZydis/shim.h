#ifndef WHEELFARM_CZYDIS_SHIM_H
#define WHEELFARM_CZYDIS_SHIM_H
#include <Zydis/Zydis.h>
#include <stdint.h>
#include <stddef.h>

/* Number of ISA-set and mnemonic counters the sweep below fills. */
static inline size_t wf_zydis_isa_set_count(void) { return (size_t)ZYDIS_ISA_SET_MAX_VALUE + 1; }
static inline size_t wf_zydis_mnemonic_count(void) { return (size_t)ZYDIS_MNEMONIC_MAX_VALUE + 1; }

/*
 * Initialises a 64-bit long-mode decoder; returns non-zero on success. With `minimal`, Zydis's
 * MINIMAL mode skips attributes, AVX details and CPU-flag tables, about 40% of the decode time.
 * In Zydis 4.0 that mode still sets the length, `mnemonic` and `meta.isa_set` (assigned before
 * the mode is consulted), which is all the audit reads; the tests compare both modes instruction
 * class by instruction class so a Zydis that behaves otherwise is caught.
 */
static inline int wf_zydis_init64(ZydisDecoder *decoder, int minimal) {
    if (!ZYAN_SUCCESS(ZydisDecoderInit(decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64))) return 0;
    if (minimal && !ZYAN_SUCCESS(ZydisDecoderEnableMode(decoder, ZYDIS_DECODER_MODE_MINIMAL, ZYAN_TRUE))) return 0;
    return 1;
}

/*
 * Linear sweep over machine code in `buffer[0, length)`: decodes one instruction after another
 * and counts each by Zydis ISA set (`set_counts`, wf_zydis_isa_set_count() entries) and, when
 * `mnemonic_counts` is not NULL, by mnemonic. A byte that does not start a valid instruction is
 * counted in `*invalid_bytes` and skipped. Only instructions that start before `stop`
 * (<= `length`) are decoded. Unless `is_final`, decoding also stops when fewer than 15 bytes
 * (the longest x86 instruction) remain, so the caller can carry the tail into the next chunk.
 * Returns the offset reached: the first instruction boundary at or after `stop`, or where the
 * tail begins. Kept in C so the per-instruction loop does not cross the Swift/C boundary (the
 * audit decodes ~100 MB of code per large wheel).
 */
static inline size_t wf_zydis_sweep(const ZydisDecoder *decoder, const uint8_t *buffer, size_t length, size_t stop,
                                    int is_final, uint64_t *set_counts, uint64_t *mnemonic_counts,
                                    uint64_t *instructions, uint64_t *invalid_bytes) {
    size_t offset = 0;
    ZydisDecoderContext context;
    ZydisDecodedInstruction instruction;
    if (stop > length) stop = length;
    while (offset < stop) {
        size_t remaining = length - offset;
        if (!is_final && remaining < ZYDIS_MAX_INSTRUCTION_LENGTH) break;
        if (ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(decoder, &context, buffer + offset, remaining, &instruction))) {
            set_counts[instruction.meta.isa_set] += 1;
            if (mnemonic_counts) mnemonic_counts[instruction.mnemonic] += 1;
            *instructions += 1;
            offset += instruction.length;
        } else {
            *invalid_bytes += 1;
            offset += 1;
        }
    }
    return offset;
}

/*
 * Decodes the single instruction at `buffer` (at most `length` bytes are read). Returns its
 * length and sets `*isa_set` and `*mnemonic`, or returns 0 when the bytes do not start a valid
 * instruction. Used for the few KiB around the boundaries of pieces decoded in parallel.
 */
static inline size_t wf_zydis_decode_one(const ZydisDecoder *decoder, const uint8_t *buffer, size_t length,
                                         uint32_t *isa_set, uint32_t *mnemonic) {
    ZydisDecoderContext context;
    ZydisDecodedInstruction instruction;
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(decoder, &context, buffer, length, &instruction))) return 0;
    *isa_set = (uint32_t)instruction.meta.isa_set;
    *mnemonic = (uint32_t)instruction.mnemonic;
    return instruction.length;
}
#endif

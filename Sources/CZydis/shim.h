#ifndef WHEELFARM_CZYDIS_SHIM_H
#define WHEELFARM_CZYDIS_SHIM_H
#include <Zydis/Zydis.h>
#include <stdint.h>
#include <stddef.h>

/* Number of ISA-set and mnemonic counters the sweep below fills. */
static inline size_t wf_zydis_isa_set_count(void) { return (size_t)ZYDIS_ISA_SET_MAX_VALUE + 1; }
static inline size_t wf_zydis_mnemonic_count(void) { return (size_t)ZYDIS_MNEMONIC_MAX_VALUE + 1; }

/* Initialises a 64-bit long-mode decoder; returns non-zero on success. */
static inline int wf_zydis_init64(ZydisDecoder *decoder) {
    return ZYAN_SUCCESS(ZydisDecoderInit(decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64));
}

/*
 * Linear sweep over `length` bytes of machine code: decodes one instruction after another and
 * counts each by Zydis ISA set (`set_counts`, wf_zydis_isa_set_count() entries) and, when
 * `mnemonic_counts` is not NULL, by mnemonic. A byte that does not start a valid instruction is
 * counted in `*invalid_bytes` and skipped. Unless `is_final`, decoding stops when fewer than 15
 * bytes (the longest x86 instruction) remain, so the caller can carry the tail into the next
 * chunk. Returns the number of bytes consumed. Kept in C so the per-instruction loop does not
 * cross the Swift/C boundary (the audit decodes ~100 MB of code per large wheel).
 */
static inline size_t wf_zydis_sweep(const ZydisDecoder *decoder, const uint8_t *buffer, size_t length,
                                    int is_final, uint64_t *set_counts, uint64_t *mnemonic_counts,
                                    uint64_t *instructions, uint64_t *invalid_bytes) {
    size_t offset = 0;
    ZydisDecoderContext context;
    ZydisDecodedInstruction instruction;
    while (offset < length) {
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
#endif

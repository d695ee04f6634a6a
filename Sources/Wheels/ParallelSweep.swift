internal import CZydis
import Foundation
import Synchronization

/// Raw Zydis counts of a linear sweep: per ISA set, per mnemonic (when asked), instructions and
/// undecodable bytes. Plain arrays indexed by Zydis's enums so the C loop can fill them.
struct SweepTally: Sendable, Hashable {
    var sets: [UInt64]
    var mnemonics: [UInt64]
    var instructions: UInt64 = 0
    var invalid: UInt64 = 0
    var codeBytes: Int64 = 0

    init(countMnemonics: Bool) {
        sets = [UInt64](repeating: 0, count: wf_zydis_isa_set_count())
        mnemonics = [UInt64](repeating: 0, count: countMnemonics ? wf_zydis_mnemonic_count() : 0)
    }

    mutating func add(_ other: SweepTally) {
        for i in other.sets.indices where other.sets[i] != 0 { sets[i] += other.sets[i] }
        for i in other.mnemonics.indices where other.mnemonics[i] != 0 { mnemonics[i] += other.mnemonics[i] }
        instructions += other.instructions
        invalid += other.invalid
        codeBytes += other.codeBytes
    }

    /// Counts one decoded instruction, or one undecodable byte when `step.length` is 0.
    mutating func add(_ step: SweepCursor.Step) {
        if step.isInstruction {
            instructions += 1
            sets[Int(step.isaSet)] += 1
            if !mnemonics.isEmpty { mnemonics[Int(step.mnemonic)] += 1 }
        } else {
            invalid += 1
        }
    }
}

/// Decodes one code range front to back through a bounded buffer.
///
/// Every instruction is decoded with at least 15 bytes (the longest x86 instruction) in view, or
/// with everything up to the end of the range, exactly as one sequential sweep sees it: so two
/// cursors that stand on the same offset decode the same instructions from there on.
struct SweepCursor {
    /// One decoded instruction, or (length 0) one byte that starts none.
    struct Step {
        var length: Int
        var isaSet: UInt32
        var mnemonic: UInt32
        var isInstruction: Bool { length > 0 }
    }

    let file: ReadOnlyFile
    var decoder: ZydisDecoder
    /// End of the code range: decoding never looks past it.
    private(set) var end: Int64
    let buffer: UnsafeMutableRawBufferPointer
    private var bufferStart: Int64
    private var bufferCount = 0
    /// The next instruction boundary.
    private(set) var position: Int64

    init(file: ReadOnlyFile, decoder: ZydisDecoder, position: Int64, end: Int64, buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count > 2 * 15)
        self.file = file; self.decoder = decoder; self.position = position; self.end = end
        self.buffer = buffer; self.bufferStart = position
    }

    private var isFinal: Bool { bufferStart + Int64(bufferCount) >= end }

    /// Makes at least 15 bytes from `position` available, or every byte up to `end`.
    private mutating func fill() throws(WheelError) {
        if position < bufferStart || position > bufferStart + Int64(bufferCount) {
            bufferStart = position
            bufferCount = 0
        }
        let offset = Int(position - bufferStart)
        if bufferCount - offset >= 15 || isFinal { return }
        let keep = bufferCount - offset
        if keep > 0, offset > 0 { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + offset, byteCount: keep) }
        bufferStart = position
        bufferCount = keep
        let want = Int(min(Int64(buffer.count - keep), end - (bufferStart + Int64(keep))))
        let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[keep..<(keep + want)]), at: bufferStart + Int64(keep))
        bufferCount += n
        // A short read means the file ended early: the range ends there.
        if n < want { end = bufferStart + Int64(bufferCount) }
    }

    /// Decodes every instruction that starts before `stop` (bounded by `end`) into `tally`;
    /// afterwards `position` is the first boundary at or after `stop`, or `end`.
    mutating func sweep(until stop: Int64, into tally: inout SweepTally) throws(WheelError) {
        let countMnemonics = !tally.mnemonics.isEmpty
        while position < min(stop, end) {
            try fill()
            let offset = Int(position - bufferStart)
            let length = bufferCount - offset
            guard length > 0 else { break }
            let limit = Int(min(stop - position, Int64(length)))
            let final: Int32 = isFinal ? 1 : 0
            let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + offset
            let consumed = tally.sets.withUnsafeMutableBufferPointer { sets in
                tally.mnemonics.withUnsafeMutableBufferPointer { mnemonics in
                    wf_zydis_sweep(&decoder, base, length, limit, final, sets.baseAddress!,
                                   countMnemonics ? mnemonics.baseAddress : nil, &tally.instructions, &tally.invalid)
                }
            }
            position += Int64(consumed)
        }
    }

    /// Decodes the instruction at `position` and moves past it (one byte when it is undecodable);
    /// `nil` at the end of the range.
    mutating func step() throws(WheelError) -> Step? {
        try fill()
        let offset = Int(position - bufferStart)
        let length = bufferCount - offset
        guard position < end, length > 0 else { return nil }
        var set: UInt32 = 0, mnemonic: UInt32 = 0
        let n = wf_zydis_decode_one(&decoder, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + offset, length, &set, &mnemonic)
        position += Int64(max(n, 1))
        return Step(length: n, isaSet: set, mnemonic: mnemonic)
    }
}

/// A linear sweep of one code range split into pieces decoded in parallel, with results
/// identical to one sequential sweep.
///
/// A piece that starts at an arbitrary offset may begin inside an instruction, so its first few
/// instructions can differ from the sequential sweep's. x86 decoding resynchronises within a few
/// bytes, and two sweeps that reach the same boundary decode identically from there on. So:
/// 1. Each piece but the first records its instruction boundaries (undecodable bytes, skipped one
///    at a time, are boundaries too) and instructions over its first few KiB: its *window*.
/// 2. Each piece then decodes the rest of itself and keeps going past its end into the next
///    piece until its own boundary lands on one the next piece recorded (the *sync point*).
///    Instructions before the sync point belong to this piece, from it on to the next piece.
/// 3. The pieces are joined in order. When a piece runs through the next piece's whole window
///    without meeting a recorded boundary (possible with crafted bytes, e.g. a run of one
///    5-byte opcode seen at two phases), that next piece's own results are discarded and the
///    region is decoded sequentially from where the predecessor stopped, up to the next sync.
/// Each thread owns one buffer of ``Tuning/bufferBytes``, so memory is bounded by the thread
/// count, not the section size.
struct ParallelSweep {
    struct Tuning: Sendable, Hashable {
        /// Pieces are at least this large (smaller ranges are swept by one thread).
        var minimumPieceBytes: Int64 = 1 << 20
        /// Pieces per thread: more pieces than threads balance the load when a thread is slowed
        /// (the verifier streams the rest of the wheel on another thread meanwhile) and keep the
        /// last piece short.
        var piecesPerThread = 16
        /// Bytes of a piece's start whose boundaries are recorded for resynchronisation.
        var windowBytes = 4096
        /// Read buffer of each thread.
        var bufferBytes = 4 << 20
    }

    let file: ReadOnlyFile
    let decoder: ZydisDecoder
    let start: Int64
    let end: Int64
    let countMnemonics: Bool
    let parallelism: Int
    let tuning: Tuning

    /// How the sweep went, for the tests: pieces, and pieces whose start did not resynchronise.
    struct Stats: Sendable { var pieces = 0, fallbacks = 0 }

    /// The boundaries and instructions of a piece's first bytes.
    struct Window: Sendable {
        var start: Int64
        /// `start` plus the window size: boundaries are recorded below it.
        var limit: Int64
        /// The first boundary at or after `limit`, where the piece's main sweep continues.
        var end: Int64
        var boundaries: [UInt64]
        var steps: [(offset: Int64, step: SweepCursor.Step)]

        func isBoundary(_ p: Int64) -> Bool {
            if p == end { return true }
            guard p >= start, p < limit else { return false }
            let bit = Int(p - start)
            return boundaries[bit >> 6] & (1 << UInt64(bit & 63)) != 0
        }
    }

    /// Where a piece's predecessor stopped: at a boundary of the piece's window, or past the
    /// window without meeting one.
    enum Link: Sendable { case synced(Int64), gaveUp(Int64) }

    struct PieceResult: Sendable {
        var tally: SweepTally
        var next: Link?
    }

    func runWithStats() throws(WheelError) -> (tally: SweepTally, stats: Stats) {
        let length = end - start
        let threads = max(1, parallelism)
        let wanted = threads == 1 ? 1 : threads * max(1, tuning.piecesPerThread)
        let count = Int(max(1, min(Int64(wanted), length / max(1, tuning.minimumPieceBytes))))
        let bufferBytes = max(64, tuning.bufferBytes)
        if count == 1 {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferBytes, alignment: 16)
            defer { buffer.deallocate() }
            var cursor = SweepCursor(file: file, decoder: decoder, position: start, end: end, buffer: buffer)
            var tally = SweepTally(countMnemonics: countMnemonics)
            try cursor.sweep(until: end, into: &tally)
            return (tally, Stats(pieces: 1))
        }
        let starts = (0...count).map { start + length * Int64($0) / Int64(count) }

        // 1. Windows, on this thread: a few KiB per piece.
        var windows: [Window?] = [nil]
        for i in 1..<count {
            windows.append(try window(from: starts[i], size: min(Int64(max(1, tuning.windowBytes)), starts[i + 1] - starts[i])))
        }

        // 2. The pieces, in parallel: each thread takes the next piece until none is left. The
        // helpers are threads of their own, not Dispatch work: Dispatch adds a worker only when
        // it sees an idle core, and while the verifier streams the rest of the wheel there is
        // none, so the audit ran on one thread until the streaming ended.
        let results = PieceResults(count: count)
        let frozenWindows = windows
        let sweepPieces: @Sendable () -> Void = { [self] in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferBytes, alignment: 16)
            defer { buffer.deallocate() }
            while let i = results.claim() {
                do throws(WheelError) {
                    var cursor = SweepCursor(file: file, decoder: decoder, position: frozenWindows[i]?.end ?? starts[i], end: end, buffer: buffer)
                    var tally = SweepTally(countMnemonics: countMnemonics)
                    try cursor.sweep(until: starts[i + 1], into: &tally)
                    let next = i + 1 < count ? try Self.link(&cursor, to: frozenWindows[i + 1]!, into: &tally) : nil
                    results.store(i, .success(PieceResult(tally: tally, next: next)))
                } catch {
                    results.store(i, .failure(error))
                }
            }
        }
        let helpers = DispatchGroup()
        for _ in 1..<min(threads, count) {
            helpers.enter()
            let thread = Thread { sweepPieces(); helpers.leave() }
            thread.stackSize = 1 << 20
            thread.start()
        }
        sweepPieces()
        helpers.wait()

        // 3. Join in order.
        var stats = Stats(pieces: count)
        var total = SweepTally(countMnemonics: countMnemonics)
        var fallbackBuffer: UnsafeMutableRawBufferPointer?
        defer { fallbackBuffer?.deallocate() }
        var link: Link?
        for i in 0..<count {
            let piece = try results.result(i)
            switch link {
            case nil:  // the first piece starts where the sequential sweep does
                total.add(piece.tally)
                link = piece.next
            case .synced(let p)?:
                for (offset, step) in windows[i]!.steps where offset >= p { total.add(step) }
                total.add(piece.tally)
                link = piece.next
            case .gaveUp(let q)?:
                // The piece's own start never met the sequential boundaries: decode on from where
                // its predecessor stopped, through the piece, until the next piece's window syncs.
                stats.fallbacks += 1
                if fallbackBuffer == nil { fallbackBuffer = .allocate(byteCount: bufferBytes, alignment: 16) }
                var cursor = SweepCursor(file: file, decoder: decoder, position: q, end: end, buffer: fallbackBuffer!)
                try cursor.sweep(until: starts[i + 1], into: &total)
                link = i + 1 < count ? try Self.link(&cursor, to: windows[i + 1]!, into: &total) : nil
            }
        }
        return (total, stats)
    }

    /// Records the boundaries and instructions of `[from, from + size)`.
    func window(from: Int64, size: Int64) throws(WheelError) -> Window {
        // The window's bytes plus one longest instruction: a small buffer is enough.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(size) + 64, alignment: 16)
        defer { buffer.deallocate() }
        var cursor = SweepCursor(file: file, decoder: decoder, position: from, end: end, buffer: buffer)
        var w = Window(start: from, limit: from + size, end: from, boundaries: [UInt64](repeating: 0, count: Int(size + 63) / 64), steps: [])
        while cursor.position < w.limit {
            let bit = Int(cursor.position - from)
            w.boundaries[bit >> 6] |= 1 << UInt64(bit & 63)
            let offset = cursor.position
            guard let step = try cursor.step() else { break }
            w.steps.append((offset, step))
        }
        w.end = cursor.position
        return w
    }

    /// Decodes on from the cursor (at or past the start of `window`) until its boundary is one
    /// the window recorded, counting into `tally` what it decodes before that.
    static func link(_ cursor: inout SweepCursor, to window: Window, into tally: inout SweepTally) throws(WheelError) -> Link {
        while true {
            let p = cursor.position
            if window.isBoundary(p) { return .synced(p) }
            if p >= window.limit { return .gaveUp(p) }
            guard let step = try cursor.step() else { return .gaveUp(cursor.position) }
            tally.add(step)
        }
    }
}

/// Piece results written by the sweep threads: the slots and the next-piece counter behind a `Mutex`.
private final class PieceResults: Sendable {
    private struct State { var slots: [Result<ParallelSweep.PieceResult, WheelError>?]; var next = 0 }
    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(slots: Array(repeating: nil, count: count))) }

    func claim() -> Int? {
        state.withLock { s in
            guard s.next < s.slots.count else { return nil }
            s.next += 1
            return s.next - 1
        }
    }

    func store(_ i: Int, _ r: Result<ParallelSweep.PieceResult, WheelError>) { state.withLock { $0.slots[i] = r } }

    func result(_ i: Int) throws(WheelError) -> ParallelSweep.PieceResult {
        let r = state.withLock { $0.slots[i]! }
        return try r.get()
    }
}

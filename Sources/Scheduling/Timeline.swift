/// Text rendering of schedules: durations and a per-slot timeline chart.
public enum Timeline {
    /// `1h05m`, `12m30s`, `45s`.
    public static func format(seconds: Double) -> String {
        guard seconds.isFinite else { return "∞" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format2: (s % 3600) / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format2: s % 60))s" }
        return "\(s)s"
    }

    /// One bar of the chart: an attempt on a host's slot.
    public struct Segment: Sendable, Codable, Hashable {
        /// Host name.
        public var host: String
        /// Slot number on the host, from 1.
        public var slot: Int
        /// The job's id.
        public var job: String
        /// The job's variant short name.
        public var variant: String
        /// Seconds since the start.
        public var start: Double
        /// Seconds since the start.
        public var end: Double
        /// True when the attempt built the wheel.
        public var succeeded: Bool
    }

    /// A chart with one row per host slot and `width` columns over `[0, span]`.
    ///
    /// Each column shows the variant of the build running in the middle of its time span: the
    /// variant's letter from the legend, lowercase for an attempt that failed, `.` for idle.
    public static func render(segments: [Segment], hosts: [(name: String, slots: Int)], span: Double, width: Int = 72) -> String {
        let variants = Array(Set(segments.map(\.variant))).sorted()
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        func letter(_ v: String) -> Character { letters[(variants.firstIndex(of: v) ?? 0) % letters.count] }
        let label = max(8, hosts.map { $0.name.count + ($0.slots > 1 ? 3 : 0) }.max() ?? 8)
        var out = ""
        let step = span > 0 ? span / Double(width) : 1
        for (name, slots) in hosts {
            for slot in 1...max(1, slots) {
                let title = slots > 1 ? "\(name)#\(slot)" : name
                var row = Array(repeating: Character("."), count: width)
                for seg in segments where seg.host == name && seg.slot == slot {
                    for col in 0..<width {
                        let t = (Double(col) + 0.5) * step
                        if t >= seg.start, t < seg.end {
                            let c = letter(seg.variant)
                            row[col] = seg.succeeded ? c : Character(c.lowercased())
                        }
                    }
                }
                out += title + String(repeating: " ", count: max(0, label - title.count)) + " |" + String(row) + "|\n"
            }
        }
        out += String(repeating: " ", count: label) + " 0" + String(repeating: " ", count: max(0, width - 1 - format(seconds: span).count)) + format(seconds: span) + "\n"
        if !variants.isEmpty {
            out += "legend: " + variants.map { "\(letter($0))=\($0)" }.joined(separator: " ") + " (lowercase: failed attempt, .: idle)\n"
        }
        return out
    }
}

extension String {
    init(format2 n: Int) { self = n < 10 ? "0\(n)" : "\(n)" }
}

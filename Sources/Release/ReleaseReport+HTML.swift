import Foundation

extension ReleaseReport {
    /// A self-contained HTML page: the summary, a timeline (one row per host, one lane per build
    /// running on it at once, one labelled bar per attempt, coloured by outcome, linking to the
    /// attempt's log), the failed attempts with their reasons, and per-wheel verification and ISA
    /// audit results. Written to `<dist>/reports/`, so logs are linked as `../logs/<file>`.
    public func html() -> String {
        let span = max(finishedAt.timeIntervalSince(startedAt), 1)
        let counts = stateCounts.sorted { $0.key < $1.key }.map { "\($0.value) \(Self.escape($0.key))" }.joined(separator: ", ")
        let failedAttempts = jobs.flatMap { j in j.attempts.filter { $0.outcome != "succeeded" }.map { (j, $0) } }
        var failures = ""
        if !failedAttempts.isEmpty {
            failures = "<h2>Failed attempts</h2><ul class=\"failures\">"
            for (job, a) in failedAttempts {
                failures += "<li><b>\(Self.escape(job.id))</b> on \(Self.escape(a.host)) (\(Self.escape(a.outcome)), \(Self.duration(a.end.timeIntervalSince(a.start))))"
                failures += a.log.map { " · <a href=\"\(Self.logHref($0))\">log</a>" } ?? ""
                failures += "<br><span class=\"reason\">\(Self.escape(a.detail ?? "no reason recorded"))</span></li>"
            }
            failures += "</ul>"
        }
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>wheelfarm release \(Self.escape(runID))</title>
        <style>
        body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
        table{border-collapse:collapse;margin-top:16px}td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}
        .host{font:12px monospace;fill:#222}.axis{font:11px monospace;fill:#555}.grid{stroke:#eee}.tick{stroke:#ccc}
        .bar{stroke:#333;stroke-width:.5}.bar.succeeded{fill:#3a9d5d}.bar.build-failed{fill:#d9534f}.bar.host-failed{fill:#f0ad4e}
        .bar.verify-failed{fill:#b03a2e}.bar.cancelled{fill:#999}.label{font:11px sans-serif;fill:#fff;pointer-events:none}
        .bar.host-failed+.label{fill:#222}a.bar-link:hover .bar{stroke-width:2}
        tr.failed td,tr.unplaceable td,tr.cancelled td{background:#fdecea}code{font-size:11px}
        .failures li{margin-bottom:6px}.reason{font:12px monospace;white-space:pre-wrap;color:#8a1f11}
        .legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle;border:1px solid #333}
        </style></head><body>
        <h1>Release \(Self.escape(runID)): \(Self.escape(status))</h1>
        <p>recipe <b>\(Self.escape(recipe))</b> · \(jobs.count) jobs: \(counts) · started \(Self.escape(startedAt.formatted(.iso8601))) · took \(Self.duration(span))</p>
        \(fault.map { "<p class=\"reason\">the run stopped early: \(Self.escape($0))</p>" } ?? "")
        <h2>Timeline</h2>
        \(timelineSVG(span: span))
        <p class="legend"><span style="background:#3a9d5d"></span>built<span style="background:#d9534f"></span>build failed<span style="background:#f0ad4e"></span>host failed<span style="background:#b03a2e"></span>failed verification<span style="background:#999"></span>cancelled · click a bar for its build log</p>
        \(failures)
        <h2>Wheels</h2>
        <table><tr><th>job</th><th>state</th><th>attempts</th><th>wheel / reason</th><th>verification</th><th>ISA audit (instructions)</th><th>published</th></tr>
        \(jobRows())
        </table></body></html>
        """
    }

    /// The timeline: one row per host, a lane per concurrent build, a labelled, linked bar per
    /// attempt, and time ticks at round values.
    func timelineSVG(span: Double) -> String {
        let laneHeight = 26.0, labelWidth = 150.0, chartWidth = 1000.0
        let hostRows = hosts.isEmpty ? Array(Set(jobs.flatMap { $0.attempts.map(\.host) })).sorted() : hosts
        // Lanes: each attempt takes the first lane of its host that is free when it starts.
        var lanes: [String: [Date]] = [:]              // host → end time of each lane's last bar
        var placed: [(job: Job, attempt: Attempt, number: Int, lane: Int)] = []
        for job in jobs {
            for (n, a) in job.attempts.enumerated() {
                var ends = lanes[a.host, default: []]
                let lane = ends.firstIndex { $0 <= a.start } ?? ends.count
                if lane == ends.count { ends.append(a.end) } else { ends[lane] = a.end }
                lanes[a.host] = ends
                placed.append((job, a, n + 1, lane))
            }
        }
        var top: [String: Double] = [:], y = 10.0
        for host in hostRows { top[host] = y; y += Double(max(1, lanes[host]?.count ?? 1)) * laneHeight + 6 }
        let height = y + 30
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(labelWidth + chartWidth + 40))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"timeline\">"
        for host in hostRows {
            let t = top[host]!
            svg += "<text x=\"4\" y=\"\(Self.fmt(t + 17))\" class=\"host\">\(Self.escape(host))</text>"
            svg += "<line x1=\"0\" x2=\"\(Self.fmt(labelWidth + chartWidth))\" y1=\"\(Self.fmt(t - 3))\" y2=\"\(Self.fmt(t - 3))\" class=\"grid\"/>"
        }
        let step = Self.tickStep(span: span)
        var tick = 0.0
        while tick <= span + 1e-9 {
            let x = labelWidth + tick / span * chartWidth
            svg += "<line x1=\"\(Self.fmt(x))\" x2=\"\(Self.fmt(x))\" y1=\"6\" y2=\"\(Self.fmt(height - 24))\" class=\"tick\"/>"
            svg += "<text x=\"\(Self.fmt(x))\" y=\"\(Self.fmt(height - 8))\" class=\"axis\" text-anchor=\"middle\">\(Self.tickLabel(tick))</text>"
            tick += step
        }
        for p in placed {
            guard let t = top[p.attempt.host] else { continue }
            let x = labelWidth + p.attempt.start.timeIntervalSince(startedAt) / span * chartWidth
            let w = max(3, p.attempt.end.timeIntervalSince(p.attempt.start) / span * chartWidth)
            let label = "\(p.job.package) \(p.job.version) py\(p.job.python) #\(p.number)"
            let title = "\(p.job.id) on \(p.attempt.host), attempt \(p.number): \(p.attempt.outcome), \(Self.duration(p.attempt.end.timeIntervalSince(p.attempt.start)))"
                + (p.attempt.detail.map { " — " + $0 } ?? "")
            let href = p.attempt.log.map(Self.logHref) ?? "#job-\(Self.anchor(p.job.id))"
            // A nested svg clips its label to the bar.
            svg += "<a class=\"bar-link\" href=\"\(href)\"><title>\(Self.escape(title))</title>"
            svg += "<svg x=\"\(Self.fmt(x))\" y=\"\(Self.fmt(t + Double(p.lane) * laneHeight))\" width=\"\(Self.fmt(w))\" height=\"\(Self.fmt(laneHeight - 4))\">"
            svg += "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" class=\"bar \(Self.escape(p.attempt.outcome))\"/>"
            svg += "<text x=\"4\" y=\"15\" class=\"label\">\(Self.escape(label))</text></svg></a>"
        }
        return svg + "</svg>"
    }

    /// One table row per job, each attempt with its outcome, reason and log.
    func jobRows() -> String {
        var rows = ""
        for j in jobs {
            let failed = j.checks.filter { $0.outcome == "fail" }
            let warned = j.checks.filter { $0.outcome == "warn" }
            var verification = j.checks.isEmpty ? "—" : failed.isEmpty ? "passed (\(j.checks.count) checks)" : "<b>failed</b>: " + failed.map { Self.escape("\($0.id): \($0.message)") }.joined(separator: "<br>")
            if !warned.isEmpty { verification += "<br>warnings: " + warned.map { Self.escape("\($0.id): \($0.message)") }.joined(separator: "<br>") }
            let isa = j.isaCounts.isEmpty ? "—" : j.isaCounts.sorted { $0.key < $1.key }.map { "\(Self.escape($0.key)) \($0.value)" }.joined(separator: "<br>")
            let attempts = j.attempts.enumerated().map { n, a in
                let text = "#\(n + 1) \(Self.escape(a.host)): \(Self.escape(a.outcome))"
                let linked = a.log.map { "<a href=\"\(Self.logHref($0))\">\(text)</a>" } ?? text
                return linked + (a.outcome == "succeeded" ? "" : a.detail.map { "<br><span class=\"reason\">\(Self.escape($0))</span>" } ?? "")
            }.joined(separator: "<br>")
            let name = j.attempts.last?.log.map { "<a href=\"\(Self.logHref($0))\">\(Self.escape(j.id))</a>" } ?? Self.escape(j.id)
            rows += "<tr id=\"job-\(Self.anchor(j.id))\" class=\"\(Self.escape(j.state))\"><td>\(name)</td><td>\(Self.escape(j.state))</td>"
            rows += "<td>\(attempts.isEmpty ? "—" : attempts)</td>"
            rows += "<td>\(Self.escape(j.wheel ?? j.detail ?? ""))\(j.wheel != nil && j.detail != nil ? "<br><span class=\"reason\">\(Self.escape(j.detail!))</span>" : "")"
            rows += "\(j.sha256.map { "<br><code>sha256 \(Self.escape($0))</code>" } ?? "")</td>"
            rows += "<td>\(verification)</td><td>\(isa)</td><td>\(j.publications.map(Self.escape).joined(separator: "<br>"))</td></tr>\n"
        }
        return rows
    }

    /// A tick step that gives at most about eight ticks at round values (1, 2, 5, 10, 15, 30 s,
    /// 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h, …).
    static func tickStep(span: Double) -> Double {
        let steps: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
        return steps.first { span / $0 <= 8 } ?? (span / 8).rounded(.up)
    }

    /// `0`, `30s`, `5m`, `1h 30m`: a tick's label.
    static func tickLabel(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s == 0 { return "0" }
        if s < 60 { return "\(s)s" }
        if s < 3600 { return s % 60 == 0 ? "\(s / 60)m" : "\(s / 60)m \(s % 60)s" }
        return s % 3600 == 0 ? "\(s / 3600)h" : "\(s / 3600)h \(s % 3600 / 60)m"
    }

    static func logHref(_ log: String) -> String {
        "../logs/" + (log.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? log)
    }

    static func anchor(_ id: String) -> String { String(id.map { $0.isLetter || $0.isNumber ? $0 : "-" }) }

    static func fmt(_ d: Double) -> String { String(format: "%.1f", d) }
}

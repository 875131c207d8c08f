// ScheduleTimeline.swift — draws a schedule's timeline: as text (one row per rank, one cell per
// time unit) and as Chrome/Perfetto trace JSON (chrome://tracing, ui.perfetto.dev). The same trace
// format serves simulated timelines (unit costs) and, later, measured ones.
import Foundation

public enum ScheduleTimeline {
    /// One row per rank: `F3` forward of micro-batch 3, `B3` its backward (two cells; one in a
    /// zero-bubble schedule, whose weight pass `W3` takes the other), `·` idle;
    /// with v > 1 chunks the cell ends with the chunk's letter (F3a, F3b, …).
    public static func text(_ s: PipelineSchedule, _ report: ScheduleReport) -> String {
        let width = Int(report.makespan.rounded(.up))
        let cell = s.chunks > 1 ? 5 : 4
        var lines: [String] = []
        let ruler = (0..<width).map { t in
            t % 5 == 0
                ? String(t).padding(toLength: cell, withPad: " ", startingAt: 0) : String(repeating: " ", count: cell)
        }
        lines.append("time    " + ruler.joined())
        for r in 0..<s.stages {
            var cells = [String](repeating: "·".padding(toLength: cell, withPad: " ", startingAt: 0), count: width)
            for e in report.timeline[r] {
                let label: String
                switch e.action {
                case .forward(let c, let k):
                    label = "F\(k)" + (s.chunks > 1 ? String(UnicodeScalar(UInt8(97 + c))) : "")
                case .backward(let c, let k):
                    label = "B\(k)" + (s.chunks > 1 ? String(UnicodeScalar(UInt8(97 + c))) : "")
                case .weightGradient(_, let k):
                    label = "W\(k)"
                default: continue
                }
                for t in Int(e.start)..<min(width, Int(e.end.rounded(.up))) {
                    cells[t] = label.padding(toLength: cell, withPad: " ", startingAt: 0)
                }
            }
            lines.append("rank \(r)  " + cells.joined())
        }
        return lines.joined(separator: "\n")
    }

    /// A schedule action's trace name and category (the categories are stable: forward, backward,
    /// weight, wait, send).
    public static func describe(_ action: PipelineAction) -> (name: String, category: String) {
        switch action {
        case .forward(let c, let k): return ("forward mb \(k) chunk \(c)", "forward")
        case .backward(let c, let k): return ("backward mb \(k) chunk \(c)", "backward")
        case .weightGradient(let c, let k): return ("weight gradients mb \(k) chunk \(c)", "weight")
        case .receiveActivation(let c, let k, _): return ("wait activation mb \(k) chunk \(c)", "wait")
        case .receiveGradient(let c, let k, _): return ("wait gradient mb \(k) chunk \(c)", "wait")
        case .sendActivation(let c, let k, _): return ("send activation mb \(k) chunk \(c)", "send")
        case .sendGradient(let c, let k, _): return ("send gradient mb \(k) chunk \(c)", "send")
        }
    }

    /// Chrome trace events of a simulated schedule: one thread per rank, one complete event per
    /// compute, wait and send span; `unitMicroseconds` converts timeline units to microseconds.
    public static func chromeTrace(_ timeline: [[TimelineEvent]], unitMicroseconds: Double, label: String) -> String {
        var events: [String] = []
        for rankEvents in timeline {
            guard let r = rankEvents.first?.rank else { continue }
            events.append(
                #"{"name": "thread_name", "ph": "M", "pid": 0, "tid": \#(r), "args": {"name": "rank \#(r)"}}"#)
            for e in rankEvents {
                let (name, category) = describe(e.action)
                events.append(
                    String(
                        format:
                            #"{"name": "%@", "cat": "%@", "ph": "X", "pid": 0, "tid": %d, "ts": %.3f, "dur": %.3f}"#,
                        name as NSString, category as NSString, r, e.start * unitMicroseconds,
                        (e.end - e.start) * unitMicroseconds))
            }
        }
        return "{\"otherData\": {\"label\": \"\(label)\"}, \"traceEvents\": [\n" + events.joined(separator: ",\n")
            + "\n]}\n"
    }
}

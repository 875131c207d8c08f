// StepTracer.swift — `trace_dir`: this rank's measured timeline of training (pipeline forward,
// backward, send and receive-wait spans from the executor, plus optimizer spans) as a Chrome /
// Perfetto trace, one file per rank, in the format `megatron schedule` writes for the simulated one.
import Distributed
import Foundation

final class StepTracer {
    let rank: Int
    let origin = MPIRuntime.wallTime
    private(set) var spans: [ScheduleTimeline.Span] = []

    init(rank: Int) { self.rank = rank }

    func record<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        let t0 = MPIRuntime.wallTime
        defer {
            spans.append(
                ScheduleTimeline.Span(rank: rank, name: name, start: t0 - origin, end: MPIRuntime.wallTime - origin))
        }
        return try body()
    }

    /// Writes `<dir>/rank_<r>.json`; returns its path.
    func write(to dir: String, pipelineEvents: [TimelineEvent], label: String) throws -> String {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = (dir as NSString).appendingPathComponent("rank_\(rank).json")
        let json = ScheduleTimeline.chromeTrace(
            pipelineEvents.isEmpty ? [] : [pipelineEvents], unitMicroseconds: 1e6,
            label: label, extra: spans)
        guard FileManager.default.createFile(atPath: path, contents: Data(json.utf8)) else {
            throw TraceWriteError(path: path)
        }
        return path
    }
}

struct TraceWriteError: Error, CustomStringConvertible {
    let path: String
    var description: String { "cannot write the trace file '\(path)': check that trace_dir is a writable directory" }
}

extension Optional where Wrapped == StepTracer {
    /// Runs `body`, recording it as a span when tracing.
    func span<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        if let t = self { return try t.record(name, body) }
        return try body()
    }
}

// StepTracer.swift — `trace_dir`: this rank's measured timeline of training as a Chrome / Perfetto
// trace, one file per rank that loads together with every other rank's: the process id is the
// global rank and the process is named by its (tp, pp, dp) place. Threads: the pipeline schedule
// (forward, backward from the executor; forward+backward and optimizer spans), pipeline transfers
// (send, wait), collectives of the tensor- and data-parallel groups (each operation a span), and
// markers (iteration, evaluation, checkpoint). Categories are stable names, so a trace viewer can
// filter them across ranks.
import Distributed
import Foundation

final class StepTracer {
    struct Span {
        let name: String, category: String, thread: Thread, start: Double, end: Double
    }

    enum Thread: Int, CaseIterable {
        case compute = 0
        case transfers, collectives, markers
        var label: String {
            switch self {
            case .compute: return "compute (forward, backward, optimizer)"
            case .transfers: return "pipeline transfers (send, wait)"
            case .collectives: return "tensor- and data-parallel collectives"
            case .markers: return "iterations, evaluation, checkpoints"
            }
        }
    }

    let parallel: ParallelState
    let origin = MPIRuntime.wallTime
    private(set) var spans: [Span] = []
    var rank: Int { parallel.world.rank }

    /// Records the collectives of the tensor and data groups (while this tracer lives).
    init(parallel: ParallelState) {
        self.parallel = parallel
        let groups: [(Communicator, String)] = [(parallel.tensor, "tensor-parallel"), (parallel.data, "data-parallel")]
        for (group, category) in groups where group.size > 1 {
            group.observer = { [unowned self] operation, t0, t1, bytes in
                let size = bytes > 0 ? " \(bytes) B" : ""
                spans.append(
                    Span(
                        name: "\(category) \(operation)\(size)", category: category, thread: .collectives,
                        start: t0 - origin, end: t1 - origin))
            }
        }
    }

    /// Stops recording collectives.
    func detach() { for group in [parallel.tensor, parallel.data] { group.observer = nil } }

    func record<R>(_ name: String, category: String, thread: Thread = .compute, _ body: () throws -> R) rethrows
        -> R
    {
        let t0 = MPIRuntime.wallTime
        defer {
            spans.append(
                Span(
                    name: name, category: category, thread: thread, start: t0 - origin,
                    end: MPIRuntime.wallTime - origin))
        }
        return try body()
    }

    /// Writes `<dir>/rank_<r>.json`; returns its path.
    func write(to dir: String, pipelineEvents: [TimelineEvent], label: String) throws -> String {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = (dir as NSString).appendingPathComponent("rank_\(rank).json")
        guard FileManager.default.createFile(atPath: path, contents: Data(chromeTrace(pipelineEvents, label).utf8))
        else {
            throw TraceWriteError(path: path)
        }
        return path
    }

    func chromeTrace(_ pipelineEvents: [TimelineEvent], _ label: String) -> String {
        let p = parallel, pid = rank
        let place = "rank \(rank) (tp \(p.tensorRank), pp \(p.pipelineRank), dp \(p.dataRank))"
        var events = [
            #"{"name": "process_name", "ph": "M", "pid": \#(pid), "args": {"name": "\#(place)"}}"#,
            #"{"name": "process_sort_index", "ph": "M", "pid": \#(pid), "args": {"sort_index": \#(pid)}}"#,
        ]
        for thread in Thread.allCases {
            events.append(
                #"{"name": "thread_name", "ph": "M", "pid": \#(pid), "tid": \#(thread.rawValue), "args": {"name": "\#(thread.label)"}}"#
            )
        }
        func event(_ name: String, _ category: String, _ thread: Thread, _ start: Double, _ end: Double) -> String {
            String(
                format: #"{"name": "%@", "cat": "%@", "ph": "X", "pid": %d, "tid": %d, "ts": %.3f, "dur": %.3f}"#,
                name as NSString, category as NSString, pid, thread.rawValue, start * 1e6, (end - start) * 1e6)
        }
        for e in pipelineEvents {
            let (name, category) = ScheduleTimeline.describe(e.action)
            let thread: Thread = category == "forward" || category == "backward" ? .compute : .transfers
            events.append(event(name, category, thread, e.start, e.end))
        }
        events += spans.map { event($0.name, $0.category, $0.thread, $0.start, $0.end) }
        return "{\"otherData\": {\"label\": \"\(label)\"}, \"traceEvents\": [\n" + events.joined(separator: ",\n")
            + "\n]}\n"
    }
}

struct TraceWriteError: Error, CustomStringConvertible {
    let path: String
    var description: String { "cannot write the trace file '\(path)': check that trace_dir is a writable directory" }
}

extension Optional where Wrapped == StepTracer {
    /// Runs `body`, recording it as a span when tracing.
    func span<R>(
        _ name: String, category: String, thread: StepTracer.Thread = .compute, _ body: () throws -> R
    ) rethrows -> R {
        if let t = self { return try t.record(name, category: category, thread: thread, body) }
        return try body()
    }
}

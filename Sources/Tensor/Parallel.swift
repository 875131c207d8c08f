// Parallel.swift — one thread budget per rank, shared by OpenBLAS and our kernels (DESIGN §11).
// `ThreadBudget.parallelFor` splits a range into contiguous chunks, one per thread;
// `parallelTasks` hands out tasks one at a time, for tasks of unequal cost.
// The budget is process-wide state on purpose: it mirrors OpenBLAS's own thread count, which is
// process-global; it is set once at start-up and never changes while a step runs.
import Dispatch
import Synchronization

public enum ThreadBudget {
    nonisolated(unsafe) private static var count = 1

    /// Set once at start-up (before any kernel runs): OpenBLAS and our loops use `n` threads.
    public static func configure(threads n: Int) {
        count = max(1, n)
        BLAS.setThreads(count)
    }

    public static var threads: Int { count }

    /// Runs `body(range)` over `0..<n` split into at most `threads` contiguous chunks whose sizes are
    /// multiples of `grain` (except the last). Runs inline when the work is a single chunk.
    public static func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        parallelChunks(n, grain: grain) { _, range in body(range) }
    }

    /// Like `parallelFor`, also passing the chunk's worker index in `0..<threads`, so a caller can
    /// give each worker its own preallocated scratch.
    public static func parallelChunks(_ n: Int, grain: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        if n <= 0 { return }
        let g = max(1, grain)
        let units = (n + g - 1) / g
        let parts = min(count, units)
        if parts <= 1 { body(0, 0..<n); return }
        let perPart = (units + parts - 1) / parts
        withoutActuallyEscaping(body) { body in
            // The kernels hand raw pointers to disjoint ranges; the closure is safe to share.
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = p * perPart * g
                let hi = min(n, (p + 1) * perPart * g)
                if lo < hi { shared.value(p, lo..<hi) }
            }
        }
    }
}

extension ThreadBudget {
    /// Runs `body(worker, task)` for every task in `order` (default 0..<n) on up to `threads`
    /// workers, each taking the next task when it finishes one — for tasks of unequal cost (attention
    /// over sequences of different lengths), where contiguous chunks would leave a worker idle. Put
    /// the costliest tasks first. `worker` is in 0..<threads, for per-worker scratch.
    public static func parallelTasks(_ n: Int, order: [Int]? = nil, _ body: (Int, Int) -> Void) {
        if n <= 0 { return }
        precondition(order.map { $0.count == n } ?? true, "the task order must list every task once")
        let parts = min(count, n)
        if parts <= 1 {
            for i in 0..<n { body(0, order?[i] ?? i) }
            return
        }
        let next = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            // Each task writes only its own outputs; the closure is safe to share.
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                while true {
                    let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    if i >= n { break }
                    shared.value(p, order?[i] ?? i)
                }
            }
        }
    }
}

/// Wraps a value the caller guarantees is used race-free across threads.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

extension ThreadBudget {
    /// Runs `body` with OpenBLAS on one thread, for regions where our own threads each call small
    /// GEMMs in parallel (attention tiles); restores the budget afterwards.
    public static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        if threads == 1 { return try body() }
        BLAS.setThreads(1)
        defer { BLAS.setThreads(threads) }
        return try body()
    }
}

// IdleWait.swift — how a rank waits for a peer: spinning in MPI when it has a core to itself, or, when
// the node's ranks want more threads than it has cores (`mpirun --oversubscribe`), polling with short
// sleeps so that a waiting rank is not runnable and the kernel gives its core to a computing one.
// Open MPI's own wait only yields (`mpi_yield_when_idle`): a yielding rank stays runnable, so the
// scheduler keeps balancing waiting and computing ranks alike over the cores — two ranks of one
// pipeline stage could share a core while the other core ran two idle pollers.
import Foundation

/// The `idle_wait` setting: `auto` sleeps only where ranks outnumber cores.
public enum IdleWaitMode: String, Sendable, CaseIterable {
    case auto, spin, sleep
}

public enum IdleWait {
    /// Whether waits sleep between polls (set once at start-up, before any wait).
    nonisolated(unsafe) public private(set) static var sleeps = false

    /// Sleeps between polls for `sleep`, or for `auto` when, on any node of `world`, `ranksOnNode`
    /// ranks (this job's on this node) of `threads` threads each want more than its `cores` (this
    /// process's). Every rank takes the same choice, since a blocking collective and its non-blocking
    /// form do not match across a group's ranks.
    public static func configure(
        _ mode: IdleWaitMode, threads: Int, world: Communicator, ranksOnNode: Int = MPIRuntime.ranksOnThisNode,
        cores: Int = ProcessInfo.processInfo.activeProcessorCount
    ) throws {
        let wants = mode == .sleep || (mode == .auto && ranksOnNode * threads > cores)
        sleeps = try world.allReduceMax(wants ? 1 : 0) == 1
    }

    /// The first pause between polls and the longest. A message that arrives during a pause waits at
    /// most that long — a few waits per pipeline pass, against passes of tens of milliseconds — while
    /// each wake-up of a waiting rank interrupts the rank computing on its core: with pauses of at
    /// most 200 µs the oversubscribed layouts of `scripts/bench_idle_wait.sh` ran 0.95–1.27× as fast
    /// as spinning, with at most 1 ms 1.01–1.24× (README, Speed).
    static let firstPause = 10.0e-6, longestPause = 1.0e-3

    /// Polls `done` until it returns true, pausing between polls (doubling from `firstPause` to
    /// `longestPause`) when `sleeping` (by default: when `sleeps`), else yielding after the first few.
    public static func poll(sleeping: Bool = sleeps, _ done: () throws -> Bool) rethrows {
        var polls = 0, pause = firstPause
        while try !done() {
            polls += 1
            if sleeping {
                var t = timespec(tv_sec: 0, tv_nsec: Int(pause * 1e9))
                nanosleep(&t, nil)
                pause = min(longestPause, pause * 2)
            } else if polls > 64 {
                sched_yield()
            }
        }
    }
}

// CommunicationProgress.swift — MPI progress during compute. Open MPI advances non-blocking
// operations (pipeline transfers, gradient-bucket reductions) only inside MPI calls, so without
// help they move mostly in the final wait. `communication_progress` picks the help:
//   layer-boundaries (default)  whoever has operations outstanding (the pipeline executor, the
//                               gradient buckets during the last backward) registers a tester;
//                               model code calls `atLayerBoundary()`, which runs it (MPI_Test).
//   thread                      a progress thread calls MPI_Iprobe on MPI_COMM_SELF (which never
//                               matches a message, but runs Open MPI's progress engine, libnbc's
//                               collectives included) every `interval` while operations are
//                               outstanding, and sleeps otherwise. Needs MPI_THREAD_MULTIPLE.
//   off                         no progress before the wait (for measurement).
// One training loop runs per process; owners bracket their outstanding operations with
// `begin(tester:)` / `end()`.
import Foundation

public enum CommunicationProgressMode: String, Sendable, CaseIterable {
    case layerBoundaries = "layer-boundaries"
    case thread
    case off
}

public enum CommunicationProgress {
    /// Set once at start-up (MPIRuntime.start), before any operation.
    nonisolated(unsafe) public private(set) static var mode: CommunicationProgressMode = .layerBoundaries
    nonisolated(unsafe) private static var tester: (() -> Void)? = nil
    nonisolated(unsafe) static var progressThread: ProgressThread? = nil

    static func configure(_ mode: CommunicationProgressMode, probe: (@Sendable () -> Void)?) {
        self.mode = mode
        if mode == .thread, let probe { progressThread = ProgressThread(probe: probe) }
    }

    /// Operations are outstanding until `end()`; `tester` lets MPI move them (MPI_Test).
    public static func begin(tester: @escaping () -> Void) {
        switch mode {
        case .layerBoundaries: self.tester = tester
        case .thread: progressThread?.activate()
        case .off: break
        }
    }

    /// Stops the progress (a no-op when none is active, so it may be called more than once); in
    /// thread mode it returns only when no probe is running.
    public static func end() {
        tester = nil
        if mode == .thread { progressThread?.deactivate() }
    }

    /// Model code calls this between layers.
    @inline(__always) public static func atLayerBoundary() { tester?() }
}

/// The progress thread of `communication_progress: thread`: probes while activated, sleeps otherwise.
final class ProgressThread: @unchecked Sendable {
    /// Between two probes: short against a layer (tens of ms), long against a probe (about a µs).
    static let interval: useconds_t = 200
    private let condition = NSCondition()
    private var active = 0
    private var thread: Thread? = nil
    private let probe: @Sendable () -> Void

    init(probe: @escaping @Sendable () -> Void) { self.probe = probe }

    func activate() {
        condition.lock()
        active += 1
        if thread == nil {
            let t = Thread { [unowned self] in self.loop() }
            t.name = "megatron MPI progress"
            thread = t
            t.start()
        }
        condition.broadcast()
        condition.unlock()
    }

    /// When the last owner ends, returns only once no probe is running (MPI may then be finalized).
    func deactivate() {
        condition.lock()
        active = max(0, active - 1)
        while active == 0 && probing { condition.wait() }
        condition.unlock()
    }

    private var probing = false

    private func loop() {
        while true {
            condition.lock()
            while active == 0 { condition.wait() }
            probing = true
            condition.unlock()
            probe()
            condition.lock()
            probing = false
            condition.broadcast()
            condition.unlock()
            usleep(Self.interval)
        }
    }
}

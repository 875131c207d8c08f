// Watchdog.swift — Megatron's `distributed_timeout_minutes` for MPI: every blocking MPI operation
// of a Communicator (collectives, receives, waits) is registered here while it runs; a thread
// checks twice a second, and when this rank has waited in one operation longer than the timeout
// (a peer stopped, hangs or lost its link) it prints which operation, on which group, with which
// world ranks, and ends this process — mpirun then ends the whole job, so a stuck rank never
// hangs it. Nothing runs until `start`.
import Foundation

public final class Watchdog: @unchecked Sendable {
    public static let shared = Watchdog()
    private let lock = NSLock()
    private var current: (operation: String, group: String, members: [Int], since: Date)? = nil
    private var timeout: TimeInterval = 0
    private var rank = 0
    private var thread: Thread? = nil
    private var idle = 0

    /// Starts watching (once); `seconds` ≤ 0 leaves it off.
    public func start(timeout seconds: TimeInterval, worldRank: Int) {
        lock.lock()
        defer { lock.unlock() }
        guard seconds > 0, thread == nil else { return }
        (timeout, rank) = (seconds, worldRank)
        let t = Thread { [unowned self] in
            while true {
                Thread.sleep(forTimeInterval: 0.5)
                check()
            }
        }
        t.name = "megatron watchdog"
        thread = t
        t.start()
    }

    /// Runs `body` unwatched: a wait that may rightly last any time (a server's ranks waiting for
    /// the next request).
    public func whileIdle<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        idle += 1
        lock.unlock()
        defer {
            lock.lock()
            idle -= 1
            lock.unlock()
        }
        return try body()
    }

    func enter(_ operation: String, group: String, members: [Int]) {
        lock.lock()
        current = (operation, group, members, Date())
        lock.unlock()
    }

    func leave() {
        lock.lock()
        current = nil
        lock.unlock()
    }

    private func check() {
        lock.lock()
        let state = idle > 0 ? nil : current, limit = timeout
        lock.unlock()
        guard let state, Date().timeIntervalSince(state.since) > limit else { return }
        let others = state.members.filter { $0 != rank }.map(String.init).joined(separator: ", ")
        let message =
            "error (rank \(rank)): no progress for \(Int(limit)) s in \(state.operation) on the \(state.group) group "
            + "(world ranks \(state.members.map(String.init).joined(separator: ", "))): one of ranks \(others) stopped, "
            + "hangs or lost its connection (distributed_timeout_minutes \(limit / 60)). Ending the job.\n"
        FileHandle.standardError.write(Data(message.utf8))
        _exit(3)
    }
}

// Watchdog.swift — Megatron's `distributed_timeout_minutes` for MPI: every blocking MPI operation
// of a Communicator (collectives, receives, waits) is registered here while it runs; a thread
// checks five times a second (and answers peers' questions), and when this rank has waited in one
// operation longer than the timeout (a peer stopped, hangs or lost its link) it prints which
// operation, on which group, with which world ranks, and ends this process — mpirun then ends
// the whole job, so a stuck rank never hangs it. Nothing runs until `start`. With `connect`, the
// message also names the ranks that did not arrive and where the others are (WatchdogPeers: a UDP
// side channel outside MPI).
import Foundation

public final class Watchdog: @unchecked Sendable {
    public static let shared = Watchdog()
    private let lock = NSLock()
    private var current: (operation: String, group: String, members: [Int], since: Date)? = nil
    private var peers: WatchdogPeers? = nil
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
                Thread.sleep(forTimeInterval: 0.2)
                answerPeers()
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

    /// Opens the side channel and exchanges its addresses over `world` (one MPI_Allgather); after
    /// this a timed-out rank can ask its peers where they are. Without it (or if the socket cannot
    /// be made) the message names the group's ranks only.
    public func connect(world: Communicator) throws {
        guard world.size > 1, let channel = WatchdogPeers() else { return }
        let records = try world.allGather(record: channel.record)
        channel.setPeers(records)
        lock.lock()
        peers = channel
        lock.unlock()
    }

    func enter(_ operation: String, group: String, members: [Int]) {
        lock.lock()
        current = (operation, group, members, Date())
        lock.unlock()
    }

    private var status: WatchdogPeers.Status? {
        guard idle == 0, let c = current else { return nil }
        return .init(operation: c.operation, group: c.group, members: c.members)
    }

    private func answerPeers() {
        lock.lock()
        let (channel, now) = (peers, status)
        lock.unlock()
        _ = channel?.drain(rank: rank, status: now)
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
        let others = state.members.filter { $0 != rank }
        var message =
            "error (rank \(rank)): no progress for \(Int(limit)) s in \(state.operation) on the \(state.group) group "
            + "(world ranks \(state.members.map(String.init).joined(separator: ", ")))"
        lock.lock()
        let channel = peers
        lock.unlock()
        if let channel {
            let mine = WatchdogPeers.Status(operation: state.operation, group: state.group, members: state.members)
            message +=
                ": "
                + Self.whoDidNotArrive(others, mine: mine, me: rank) {
                    channel.ask($0, rank: self.rank, status: mine, seconds: 0.7)
                }
        } else {
            message +=
                ": one of ranks \(others.map(String.init).joined(separator: ", ")) stopped, hangs or lost its connection"
        }
        message += " (distributed_timeout_minutes \(limit / 60)). Ending the job.\n"
        FileHandle.standardError.write(Data(message.utf8))
        _exit(3)
    }

    /// Which of `others` did not arrive, where each of them waits, and — following the groups they
    /// wait on, up to three rounds of questions — the ranks everything waits on.
    static func whoDidNotArrive(
        _ others: [Int], mine: WatchdogPeers.Status, me: Int, ask: ([Int]) -> [Int: WatchdogPeers.Status?]
    ) -> String {
        var answers = ask(others), asked = Set(others)
        for _ in 0..<3 {
            let next = Set(answers.values.compactMap { $0 }.filter { !$0.sameCall(mine) }.flatMap(\.members))
                .subtracting(asked).subtracting([me])
            if next.isEmpty { break }
            asked.formUnion(next)
            answers.merge(ask(Array(next))) { a, _ in a }
        }
        let late = others.filter { r in answers[r].map { $0.map { !$0.sameCall(mine) } ?? true } ?? true }
        guard !late.isEmpty else {
            return "every peer is in this call too; the transport between them makes no progress"
        }
        func ranks(_ list: [Int]) -> String {
            (list.count > 1 ? "ranks " : "rank ") + list.sorted().map(String.init).joined(separator: ", ")
        }
        let silent = asked.filter { answers[$0] == nil }.sorted()
        let computing = asked.filter { answers[$0].map { $0 == nil } ?? false }.sorted()
        var parts = ["\(ranks(late)) did not arrive"]
        for r in asked.sorted() {
            if let status = answers[r] ?? nil, !status.sameCall(mine) {
                parts.append(
                    "rank \(r) waits in \(status.operation) on the \(status.group) group (world ranks "
                        + "\(status.members.map(String.init).joined(separator: ", ")))")
            }
        }
        if !computing.isEmpty {
            parts.append("\(ranks(computing)) \(computing.count > 1 ? "are" : "is") computing, not in MPI")
        }
        if !silent.isEmpty {
            parts.append(
                "\(ranks(silent)) do\(silent.count > 1 ? "" : "es") not answer (stopped, hung in the kernel, or its host is "
                    + "unreachable)")
        }
        if !(silent + computing).isEmpty { parts.append("the job waits on \(ranks(silent + computing))") }
        return parts.joined(separator: "; ")
    }
}

// MPIRuntime.swift — the only importer of CMPI: start-up/shutdown, abort, and the Communicator
// type with the collectives the trainer needs. Return codes become `MPIError`s. The process grid
// (ParallelState) and its sub-communicators are built on top of this in MegatronCore.
import CMPI
import Foundation

public struct MPIError: Error, CustomStringConvertible {
    public let operation: String
    public let code: Int32
    public var description: String {
        "MPI \(operation) failed (code \(code)); check that every rank runs the same command"
    }
}

/// `communication_progress: thread` on an MPI built without MPI_THREAD_MULTIPLE.
public struct MPIThreadSupportError: Error, CustomStringConvertible {
    public let provided: Int32
    public var description: String {
        "communication_progress thread needs MPI_THREAD_MULTIPLE, but this MPI provides thread level \(provided) "
            + "(0 single, 1 funneled, 2 serialized); set communication_progress to layer-boundaries"
    }
}

@inline(__always)
func check(_ rc: Int32, _ what: @autoclosure () -> String) throws {
    if rc != MPI_SUCCESS { throw MPIError(operation: what(), code: rc) }
}

/// MPI_Test on `request` until it completes or fails (IdleWait.poll's pauses between tests); its code.
func testUntilComplete(_ request: inout MPI_Request?, sleeping: Bool = IdleWait.sleeps) -> Int32 {
    var rc = MPI_SUCCESS, flag: Int32 = 0
    IdleWait.poll(sleeping: sleeping) {
        rc = MPI_Test(&request, &flag, mpi_status_ignore())
        return rc != MPI_SUCCESS || flag != 0
    }
    return rc
}

/// The MPI environment of this process. Create once with `MPIRuntime.start()`; pass it on.
public final class MPIRuntime: @unchecked Sendable {
    public let world: Communicator

    private init(world: Communicator) { self.world = world }

    /// Ranks of this job on this node, as Open MPI's launcher tells each process (1 outside mpirun).
    public static var ranksOnThisNode: Int {
        Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
    }

    /// Open MPI's non-blocking all-reduce (libnbc), which the data-parallel gradient buckets use, picks
    /// a binomial tree for fewer than 4 ranks or any in-place call: one rank receives and sums every
    /// bucket whole and sends it back. Algorithm 3, Rabenseifner's reduce-scatter then all-gather,
    /// splits the sums over the ranks and moves half the bytes per rank; each part is summed once,
    /// so every replica still holds the same bits. At d = 2 (gpt2-124m, 1 thread per rank, AMD EPYC)
    /// it took weak scaling from 0.92 to 0.96 (README, Speed). Set before `MPI_Init`, unless the
    /// environment already chooses (`OMPI_MCA_coll_libnbc_iallreduce_algorithm`).
    static let nonBlockingAllReduceAlgorithm = (name: "OMPI_MCA_coll_libnbc_iallreduce_algorithm", value: "3")

    /// `MPI_Init` (works under `mpirun` and as a singleton without it), or `MPI_Init_thread` with
    /// MPI_THREAD_MULTIPLE when `progress` is `.thread` (its progress thread calls MPI beside the
    /// training thread). Errors are returned, not fatal.
    public static func start(progress: CommunicationProgressMode = .layerBoundaries) throws -> MPIRuntime {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            setenv(nonBlockingAllReduceAlgorithm.name, nonBlockingAllReduceAlgorithm.value, 0)  // unless set
            if progress == .thread {
                var provided: Int32 = 0
                try check(MPI_Init_thread(nil, nil, mpi_thread_multiple(), &provided), "MPI_Init_thread")
                if provided < mpi_thread_multiple() {
                    throw MPIThreadSupportError(provided: provided)
                }
            } else {
                try check(MPI_Init(nil, nil), "MPI_Init")
            }
        }
        CommunicationProgress.configure(
            progress,
            probe: {
                var flag: Int32 = 0
                MPI_Iprobe(mpi_any_source(), mpi_any_tag(), mpi_comm_self(), &flag, mpi_status_ignore())
            })
        MPI_Comm_set_errhandler(mpi_comm_world(), mpi_errors_return())
        return MPIRuntime(world: Communicator(handle: mpi_comm_world(), owned: false))
    }

    public func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    /// Ends every rank of the job at once (used when one rank fails, so no rank hangs).
    public func abort(code: Int32) -> Never {
        MPI_Abort(mpi_comm_world(), code)
        while true {}
    }

    public static var wallTime: Double { MPI_Wtime() }
}

/// Bytes sent and seconds spent in collectives of one communicator since the last reset.
public struct CommunicationCounters: Sendable {
    public var bytes = 0
    public var seconds = 0.0
    public var calls = 0
}

/// A communicator with its rank and size; owned sub-communicators are freed on deinit. Every
/// collective adds its payload bytes (what this rank contributes) and wall time to `counters`.
public final class Communicator: @unchecked Sendable {
    let handle: MPI_Comm?
    private let owned: Bool
    public let rank: Int
    public let size: Int
    public let name: String
    /// The world rank of each member, in this group's rank order.
    public let worldRanks: [Int]
    public var counters = CommunicationCounters()
    /// Called after every operation of this group with (operation, start, end, bytes) — start and
    /// end in MPI wall-clock seconds; a non-blocking operation reports its start call and its wait.
    public var observer: ((String, Double, Double, Int) -> Void)? = nil

    init(handle: MPI_Comm?, owned: Bool, name: String = "world") {
        self.handle = handle
        self.owned = owned
        self.name = name
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(handle, &r)
        MPI_Comm_size(handle, &s)
        rank = Int(r); size = Int(s)
        // The world ranks of this group's members, in group order (for messages).
        var group: MPI_Group? = nil, world: MPI_Group? = nil
        MPI_Comm_group(handle, &group)
        MPI_Comm_group(mpi_comm_world(), &world)
        var local = (0..<Int32(s)).map { $0 }, global = [Int32](repeating: 0, count: Int(s))
        MPI_Group_translate_ranks(group, s, &local, world, &global)
        MPI_Group_free(&group)
        MPI_Group_free(&world)
        worldRanks = global.map(Int.init)
    }

    deinit {
        if owned {
            var h = handle
            var finalized: Int32 = 0
            MPI_Finalized(&finalized)
            if finalized == 0 { MPI_Comm_free(&h) }
        }
    }

    /// `MPI_Comm_split`: ranks with the same `color` form a group, ordered by `key`; a nil color
    /// leaves this rank out (the result is nil).
    public func split(color: Int?, key: Int, name: String) throws -> Communicator? {
        var sub: MPI_Comm? = nil
        try check(
            MPI_Comm_split(handle, color.map { Int32($0) } ?? MPI_UNDEFINED, Int32(key), &sub),
            "MPI_Comm_split(\(name))")
        guard color != nil else { return nil }
        MPI_Comm_set_errhandler(sub, mpi_errors_return())
        return Communicator(handle: sub, owned: true, name: name)
    }

    @inline(__always)
    private func timed(_ bytes: Int, _ what: String, _ body: () -> Int32) throws {
        Watchdog.shared.enter(what, group: name, members: worldRanks)
        let t0 = MPI_Wtime()
        let rc = body()
        let t1 = MPI_Wtime()
        Watchdog.shared.leave()
        counters.seconds += t1 - t0
        counters.bytes += bytes
        counters.calls += 1
        observer?(what, t0, t1, bytes)
        try check(rc, "\(what) on the \(name) group")
    }

    /// Runs a blocking collective as `blocking`, or — when waits sleep (`sleeping`: by default
    /// `IdleWait.sleeps`, agreed by every rank at start-up, so a group's ranks all take the same
    /// branch) — starts its non-blocking form with `start` and polls it with pauses, so a rank waiting
    /// for its group leaves its core.
    @inline(__always)
    private func collective(
        _ bytes: Int, _ what: String, sleeping: Bool = IdleWait.sleeps, blocking: () -> Int32,
        start: (_ request: UnsafeMutablePointer<MPI_Request?>) -> Int32
    ) throws {
        try timed(bytes, what) {
            guard sleeping else { return blocking() }
            var request: MPI_Request? = nil
            let rc = start(&request)
            return rc == MPI_SUCCESS ? testUntilComplete(&request, sleeping: true) : rc
        }
    }

    public func barrier() throws {
        try collective(0, "MPI_Barrier", blocking: { MPI_Barrier(handle) }, start: { MPI_Ibarrier(handle, $0) })
    }

    /// Floats per MPI_Allreduce of `allReduceSum`. Open MPI takes a temporary buffer that grows with the
    /// message; above glibc's mmap threshold (at most 32 MiB) it is mapped and unmapped on every call,
    /// so a large sum faulted its pages in afresh each step (the tied word embedding's gradient at
    /// p > 1: 154 MB for GPT-2, 18,865 faults per step on the first stage). Pieces of 16 MiB keep the
    /// buffer on the heap, reused; each element's sum is the same.
    public static let allReduceSumPiece = 1 << 22

    /// In-place sum over the group (in pieces of `allReduceSumPiece` floats).
    public func allReduceSum(_ x: UnsafeMutablePointer<Float>, count: Int) throws {
        if size == 1 { return }
        var start = 0
        while start < count {
            let n = min(Self.allReduceSumPiece, count - start), piece = x + start
            try collective(
                n * 4, "MPI_Allreduce(sum)",
                blocking: { MPI_Allreduce(mpi_in_place(), piece, Int32(n), mpi_float(), mpi_sum(), handle) },
                start: { MPI_Iallreduce(mpi_in_place(), piece, Int32(n), mpi_float(), mpi_sum(), handle, $0) })
            start += n
        }
    }

    /// In-place maximum over the group.
    public func allReduceMax(_ x: UnsafeMutablePointer<Float>, count: Int) throws {
        if size == 1 { return }
        try collective(
            count * 4, "MPI_Allreduce(max)",
            blocking: { MPI_Allreduce(mpi_in_place(), x, Int32(count), mpi_float(), mpi_max(), handle) },
            start: { MPI_Iallreduce(mpi_in_place(), x, Int32(count), mpi_float(), mpi_max(), handle, $0) })
    }

    /// Concatenates every rank's `count` floats in rank order into `output` (size × count).
    public func allGather(_ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>) throws {
        if size == 1 { if UnsafePointer(output) != input { output.update(from: input, count: count) }; return }
        try collective(
            count * 4, "MPI_Allgather",
            blocking: { MPI_Allgather(input, Int32(count), mpi_float(), output, Int32(count), mpi_float(), handle) },
            start: { MPI_Iallgather(input, Int32(count), mpi_float(), output, Int32(count), mpi_float(), handle, $0) })
    }

    /// In-place all-gather: block `rank` of `buffer` (size × count) is this rank's; on return every block is filled.
    public func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        if size == 1 { return }
        try collective(
            count * 4, "MPI_Allgather",
            blocking: { MPI_Allgather(mpi_in_place(), 0, mpi_float(), buffer, Int32(count), mpi_float(), handle) },
            start: { MPI_Iallgather(mpi_in_place(), 0, mpi_float(), buffer, Int32(count), mpi_float(), handle, $0) })
    }

    /// Sums `input` (size × count) over the group and leaves block `rank` of the sum in `output` (count).
    public func reduceScatter(_ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>)
        throws
    {
        if size == 1 { if UnsafePointer(output) != input { output.update(from: input, count: count) }; return }
        try collective(
            count * size * 4, "MPI_Reduce_scatter_block",
            blocking: { MPI_Reduce_scatter_block(input, output, Int32(count), mpi_float(), mpi_sum(), handle) },
            start: { MPI_Ireduce_scatter_block(input, output, Int32(count), mpi_float(), mpi_sum(), handle, $0) })
    }

    /// The sum of every rank's `x`, added in group rank order on every rank: the same bits whichever
    /// algorithm MPI picks (blocking or not, any group size).
    public func allReduceSum(_ x: Double) throws -> Double {
        if size == 1 { return x }
        var v = x
        var all = [Double](repeating: 0, count: size)
        try all.withUnsafeMutableBufferPointer { out in
            try collective(
                8, "MPI_Allgather(sum)",
                blocking: { MPI_Allgather(&v, 1, mpi_double(), out.baseAddress, 1, mpi_double(), handle) },
                start: { MPI_Iallgather(&v, 1, mpi_double(), out.baseAddress, 1, mpi_double(), handle, $0) })
        }
        return all.reduce(0, +)
    }

    public func allReduceMax(_ x: Int) throws -> Int {
        if size == 1 { return x }
        var v = Int64(x), out: Int64 = 0
        try check(MPI_Allreduce(&v, &out, 1, mpi_int64(), mpi_max(), handle), "MPI_Allreduce(max) on the \(name) group")
        return Int(out)
    }

    /// Starts an in-place sum over the group (non-blocking); `x` must stay untouched until the request completes.
    public func iallReduceSum(_ x: UnsafeMutablePointer<Float>, count: Int) throws -> Request {
        let request = Request(communicator: self)
        if size == 1 { request.markCompleted(); return request }
        try timed(count * 4, "MPI_Iallreduce(sum)") {
            MPI_Iallreduce(mpi_in_place(), x, Int32(count), mpi_float(), mpi_sum(), handle, &request.handle)
        }
        return request
    }

    /// Starts a non-blocking reduce-scatter with per-rank counts: `input` (Σ counts) is summed over
    /// the group and rank r receives elements [Σ counts[..<r], + counts[r]) of the sum in `output`.
    /// Uneven counts let any group size split any length (no padding element is ever reduced).
    public func ireduceScatter(_ input: UnsafePointer<Float>, counts: [Int32], into output: UnsafeMutablePointer<Float>)
        throws -> Request
    {
        let request = Request(communicator: self)
        if size == 1 { output.update(from: input, count: Int(counts[0])); request.markCompleted(); return request }
        let c = request.keep(counts)
        let total = counts.reduce(0) { $0 + Int($1) }
        try timed(total * 4, "MPI_Ireduce_scatter") {
            MPI_Ireduce_scatter(input, output, c, mpi_float(), mpi_sum(), handle, &request.handle)
        }
        return request
    }

    /// Starts a non-blocking in-place all-gather with per-rank counts: rank r's block of `buffer`
    /// starts at Σ counts[..<r]; on completion every block holds its owner's values.
    public func iallGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int32]) throws -> Request {
        let request = Request(communicator: self)
        if size == 1 { request.markCompleted(); return request }
        var displacements = [Int32](repeating: 0, count: counts.count)
        for r in 1..<counts.count { displacements[r] = displacements[r - 1] + counts[r - 1] }
        let c = request.keep(counts), d = request.keep(displacements)
        let total = counts.reduce(0) { $0 + Int($1) }
        try timed(total * 4, "MPI_Iallgatherv") {
            MPI_Iallgatherv(mpi_in_place(), 0, mpi_float(), buffer, c, d, mpi_float(), handle, &request.handle)
        }
        return request
    }

    // MARK: Point-to-point (pipeline)

    /// Starts a non-blocking send of `count` floats to group rank `destination`; the buffer must stay
    /// untouched until the returned request completes.
    public func isend(_ x: UnsafePointer<Float>, count: Int, to destination: Int, tag: Int) throws -> Request {
        let request = Request(communicator: self)
        try timed(count * 4, "MPI_Isend to rank \(destination)") {
            MPI_Isend(x, Int32(count), mpi_float(), Int32(destination), Int32(tag), handle, &request.handle)
        }
        return request
    }

    /// Starts a non-blocking receive of `count` floats from group rank `source` with `tag` into `x`,
    /// which must stay untouched until the returned request completes.
    public func irecv(_ x: UnsafeMutablePointer<Float>, count: Int, from source: Int, tag: Int) throws -> Request {
        let request = Request(communicator: self)
        try timed(0, "MPI_Irecv from rank \(source)") {
            MPI_Irecv(x, Int32(count), mpi_float(), Int32(source), Int32(tag), handle, &request.handle)
        }
        return request
    }

    /// Receives `count` floats from group rank `source` with `tag` (blocking); the wait is counted.
    public func recv(_ x: UnsafeMutablePointer<Float>, count: Int, from source: Int, tag: Int) throws {
        if IdleWait.sleeps { return try irecv(x, count: count, from: source, tag: tag).wait() }
        try timed(0, "MPI_Recv from rank \(source)") {
            MPI_Recv(x, Int32(count), mpi_float(), Int32(source), Int32(tag), handle, mpi_status_ignore())
        }
    }

    /// Copies `count` floats from group rank `root` to every rank (`MPI_Bcast`).
    public func broadcast(_ x: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {
        if size == 1 { return }
        try collective(
            rank == root ? count * 4 : 0, "MPI_Bcast from rank \(root)",
            blocking: { MPI_Bcast(x, Int32(count), mpi_float(), Int32(root), handle) },
            start: { MPI_Ibcast(x, Int32(count), mpi_float(), Int32(root), handle, $0) })
    }

    /// Group rank `root`'s bytes on every rank (the length travels first); `bytes` is read on the root
    /// only. `idle`: the other ranks may wait long for it (a server's next request), so every rank of
    /// the group — which must all pass the same `idle` — waits sleeping between polls.
    public func broadcast(bytes: [UInt8], root: Int, idle: Bool = false) throws -> [UInt8] {
        if size == 1 { return bytes }
        let sleeping = idle || IdleWait.sleeps
        var length = Int64(rank == root ? bytes.count : 0)
        try collective(
            0, "MPI_Bcast(length) from rank \(root)", sleeping: sleeping,
            blocking: { MPI_Bcast(&length, 1, mpi_int64(), Int32(root), handle) },
            start: { MPI_Ibcast(&length, 1, mpi_int64(), Int32(root), handle, $0) })
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length))
        try out.withUnsafeMutableBytes { raw in
            try collective(
                rank == root ? raw.count : 0, "MPI_Bcast from rank \(root)", sleeping: sleeping,
                blocking: { MPI_Bcast(raw.baseAddress, Int32(raw.count), mpi_byte(), Int32(root), handle) },
                start: { MPI_Ibcast(raw.baseAddress, Int32(raw.count), mpi_byte(), Int32(root), handle, $0) })
        }
        return out
    }

    /// Every rank's `record` (all of one length), in group rank order.
    public func allGather(record: [UInt8]) throws -> [[UInt8]] {
        if size == 1 { return [record] }
        var out = [UInt8](repeating: 0, count: record.count * size)
        try record.withUnsafeBytes { input in
            try out.withUnsafeMutableBytes { output in
                try timed(record.count, "MPI_Allgather") {
                    MPI_Allgather(
                        input.baseAddress, Int32(record.count), mpi_byte(), output.baseAddress, Int32(record.count),
                        mpi_byte(), handle)
                }
            }
        }
        return (0..<size).map { Array(out[$0 * record.count..<($0 + 1) * record.count]) }
    }

    /// The smallest `x` over the group.
    public func allReduceMin(_ x: Int) throws -> Int { -(try allReduceMax(-x)) }

    public func resetCounters() { counters = CommunicationCounters() }
}

/// An outstanding non-blocking operation.
public final class Request: @unchecked Sendable {
    var handle: MPI_Request? = nil
    let communicator: Communicator
    public private(set) var completed = false
    /// Count and displacement arrays of a v-collective: MPI may read them until the request completes.
    private var kept: [UnsafeMutablePointer<Int32>] = []

    init(communicator: Communicator) { self.communicator = communicator }
    deinit { for p in kept { p.deallocate() } }

    /// A copy of `values` at a stable address that lives as long as the request.
    func keep(_ values: [Int32]) -> UnsafeMutablePointer<Int32> {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: values.count)
        p.initialize(from: values, count: values.count)
        kept.append(p)
        return p
    }

    func markCompleted() { completed = true }

    /// Whether the operation has completed; lets MPI progress it (`MPI_Test`) without waiting.
    public func test() throws -> Bool {
        if completed { return true }
        var flag: Int32 = 0
        try check(MPI_Test(&handle, &flag, mpi_status_ignore()), "MPI_Test on the \(communicator.name) group")
        if flag != 0 { completed = true }
        return completed
    }

    public func wait() throws {
        if completed { return }
        Watchdog.shared.enter("MPI_Wait", group: communicator.name, members: communicator.worldRanks)
        let t0 = MPI_Wtime()
        let rc = IdleWait.sleeps ? testUntilComplete(&handle) : MPI_Wait(&handle, mpi_status_ignore())
        let t1 = MPI_Wtime()
        Watchdog.shared.leave()
        communicator.counters.seconds += t1 - t0
        communicator.observer?("MPI_Wait", t0, t1, 0)
        completed = true
        try check(rc, "MPI_Wait on the \(communicator.name) group")
    }
}

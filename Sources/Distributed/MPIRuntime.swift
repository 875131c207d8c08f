// MPIRuntime.swift — the only importer of CMPI: start-up/shutdown, abort, and the Communicator
// type with the collectives the trainer needs. Return codes become `MPIError`s. The process grid
// (ParallelState) and its sub-communicators are built on top of this in MegatronCore.
import CMPI

public struct MPIError: Error, CustomStringConvertible {
    public let operation: String
    public let code: Int32
    public var description: String { "MPI \(operation) failed (code \(code)); check that every rank runs the same command" }
}

@inline(__always)
func check(_ rc: Int32, _ what: @autoclosure () -> String) throws {
    if rc != MPI_SUCCESS { throw MPIError(operation: what(), code: rc) }
}

/// The MPI environment of this process. Create once with `MPIRuntime.start()`; pass it on.
public final class MPIRuntime: @unchecked Sendable {
    public let world: Communicator

    private init(world: Communicator) { self.world = world }

    /// `MPI_Init` (works under `mpirun` and as a singleton without it). Errors are returned, not fatal.
    public static func start() throws -> MPIRuntime {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 { try check(MPI_Init(nil, nil), "MPI_Init") }
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

/// A communicator with its rank and size; owned sub-communicators are freed on deinit.
public final class Communicator: @unchecked Sendable {
    let handle: MPI_Comm?
    private let owned: Bool
    public let rank: Int
    public let size: Int

    init(handle: MPI_Comm?, owned: Bool) {
        self.handle = handle
        self.owned = owned
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(handle, &r)
        MPI_Comm_size(handle, &s)
        rank = Int(r); size = Int(s)
    }

    deinit {
        if owned {
            var h = handle
            var finalized: Int32 = 0
            MPI_Finalized(&finalized)
            if finalized == 0 { MPI_Comm_free(&h) }
        }
    }

    /// `MPI_Comm_split`: ranks with the same `color` form a group, ordered by `key`.
    public func split(color: Int, key: Int) throws -> Communicator {
        var sub: MPI_Comm? = nil
        try check(MPI_Comm_split(handle, Int32(color), Int32(key), &sub), "MPI_Comm_split")
        return Communicator(handle: sub, owned: true)
    }

    public func barrier() throws { try check(MPI_Barrier(handle), "MPI_Barrier") }

    /// In-place sum over the group.
    public func allReduceSum(_ x: UnsafeMutablePointer<Float>, count: Int) throws {
        if size == 1 { return }
        try check(MPI_Allreduce(mpi_in_place(), x, Int32(count), mpi_float(), mpi_sum(), handle), "MPI_Allreduce(sum)")
    }

    public func allReduceSum(_ x: Double) throws -> Double {
        if size == 1 { return x }
        var v = x, out = 0.0
        try check(MPI_Allreduce(&v, &out, 1, mpi_double(), mpi_sum(), handle), "MPI_Allreduce(sum)")
        return out
    }

    public func allReduceMax(_ x: Int) throws -> Int {
        if size == 1 { return x }
        var v = Int64(x), out: Int64 = 0
        try check(MPI_Allreduce(&v, &out, 1, mpi_int64(), mpi_max(), handle), "MPI_Allreduce(max)")
        return Int(out)
    }
}

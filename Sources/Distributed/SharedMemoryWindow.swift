// SharedMemoryWindow.swift — an MPI-3 shared-memory window (MPI_Win_allocate_shared) over a group
// whose ranks all run on one node: each rank owns a segment of `bytes`, zeroed, and reads and writes
// every rank's segment through plain pointers. Ranks order their accesses through flags in the
// segments (`storeFlag` publishes what was written before it, `loadFlag` sees it) and wait for a
// flag with `wait`, which the watchdog covers like any blocking MPI call, so a stopped peer ends the
// job instead of hanging it. Made collectively by every rank of the group; refused on every rank
// when the group spans more than one node, or when the file system that backs Open MPI's windows
// (/dev/shm, a tmpfs that containers often keep small) has no room for it — a segment beyond its
// free space would end the process with SIGBUS on first touch.
import CMPI
import Foundation

public final class SharedMemoryWindow: @unchecked Sendable {
    public let group: Communicator
    /// Bytes of each rank's segment.
    public let bytes: Int
    private var window: MPI_Win?
    private let segments: [UnsafeMutableRawPointer]

    private init(group: Communicator, bytes: Int, window: MPI_Win?, segments: [UnsafeMutableRawPointer]) {
        self.group = group
        self.bytes = bytes
        self.window = window
        self.segments = segments
    }

    /// A window, or why there is none.
    public enum Outcome {
        case window(SharedMemoryWindow)
        case unavailable(String)
    }

    /// Where Open MPI's shared-memory windows keep their backing files (osc/sm's default).
    static var backingDirectory: String {
        ProcessInfo.processInfo.environment["OMPI_MCA_osc_sm_backing_directory"] ?? "/dev/shm"
    }

    /// Collective over `group`: a window with a zeroed segment of `bytes` (rounded up to 4 KiB) per
    /// rank, or the same refusal on every rank.
    public static func make(group: Communicator, bytes: Int) throws -> Outcome {
        guard group.size > 1 else { return .unavailable("one rank has no peers") }
        var node: MPI_Comm? = nil
        try check(
            MPI_Comm_split_type(group.handle, mpi_comm_type_shared(), 0, mpi_info_null(), &node),
            "MPI_Comm_split_type(shared) on the \(group.name) group")
        var nodeSize: Int32 = 0
        MPI_Comm_size(node, &nodeSize)
        MPI_Comm_free(&node)
        // Every rank decides alike: all on one node, or none uses the window.
        guard try group.allReduceMin(Int(nodeSize) == group.size ? 1 : 0) == 1 else {
            return .unavailable("the \(group.name) group spans more than one node")
        }
        let size = max(4096, (bytes + 4095) / 4096 * 4096)
        // Room for every segment, with an eighth to spare (other jobs, Open MPI's own segments).
        let need = size * group.size + size * group.size / 8
        var fs = statvfs()
        let free = statvfs(backingDirectory, &fs) == 0 ? Int(fs.f_bavail) * Int(fs.f_frsize) : 0
        guard try group.allReduceMin(free >= need ? 1 : 0) == 1 else {
            return .unavailable(
                "\(backingDirectory) has \(free >> 20) MiB free and the window needs \(need >> 20) MiB (give the "
                    + "container a larger /dev/shm, e.g. docker run --shm-size)")
        }
        var base: UnsafeMutableRawPointer? = nil
        var window: MPI_Win? = nil
        try check(
            MPI_Win_allocate_shared(MPI_Aint(size), 1, mpi_info_null(), group.handle, &base, &window),
            "MPI_Win_allocate_shared(\(size) bytes) on the \(group.name) group")
        var segments: [UnsafeMutableRawPointer] = []
        for r in 0..<group.size {
            var segmentSize: MPI_Aint = 0, unit: Int32 = 0
            var pointer: UnsafeMutableRawPointer? = nil
            try check(
                MPI_Win_shared_query(window, Int32(r), &segmentSize, &unit, &pointer),
                "MPI_Win_shared_query(rank \(r)) on the \(group.name) group")
            guard let pointer, segmentSize >= size else {
                throw MPIError(operation: "MPI_Win_shared_query(rank \(r)): no segment", code: -1)
            }
            segments.append(pointer)
        }
        segments[group.rank].initializeMemory(as: UInt8.self, repeating: 0, count: size)
        try group.barrier()  // every segment zeroed before any rank reads a flag
        return .window(SharedMemoryWindow(group: group, bytes: size, window: window, segments: segments))
    }

    deinit {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Win_free(&window) }
    }

    /// The start of rank `r`'s segment (this rank's: `segment(group.rank)`).
    public func segment(_ r: Int) -> UnsafeMutableRawPointer { segments[r] }

    /// Publishes `value` in `flag` after everything this rank wrote before (a release store).
    @inline(__always) public static func storeFlag(_ flag: UnsafeMutablePointer<Int64>, _ value: Int64) {
        shared_flag_store(flag, value)
    }

    /// `flag`'s value; what its writer wrote before storing it is then visible (an acquire load).
    @inline(__always) public static func loadFlag(_ flag: UnsafeMutablePointer<Int64>) -> Int64 {
        shared_flag_load(flag)
    }

    /// Runs `step` until it returns true (`IdleWait.poll`: spinning, then yielding the core, or
    /// sleeping between polls when ranks outnumber cores), under the watchdog as `operation`.
    public func wait(_ operation: String, until step: () throws -> Bool) rethrows {
        if try step() { return }
        Watchdog.shared.enter(operation, group: group.name, members: group.worldRanks)
        defer { Watchdog.shared.leave() }
        try IdleWait.poll(step)
    }
}

// PlanCalibration.swift — `megatron plan --calibrate`: measures this machine and writes the profile
// later plans read. Every measurement runs in copies of this program started under mpirun at
// np = 1, 2, 4, 8 (`plan --measure`), because what a rank sees depends on how many share the node:
// with np ≤ cores, all np ranks time the model's GEMM shapes, the attention core and memory
// bandwidth at the same moment (cores / np threads each, so the rates include the contention of a
// full node); at every np the MPI links are fitted, and the resident memory of a started rank and
// the temporary memory of a non-blocking reduction are read.
import Distributed
import Foundation
import MegatronCore
import Tensor

struct PlanCalibration {
    let model: PlanModel
    let configPath: String
    /// The model overrides `megatron plan` was given, passed on to the measuring copies.
    let overrides: [String]
    let maxRanks: Int
    let path: String

    func run() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let cpu = PlanCalibration.cpuName()
        print("calibrating for the planner: \(cpu), \(cores) cores")
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        var profile = HardwareProfile(
            trainer: "this", name: "\(cpu), \(cores) cores", coresPerNode: cores, ranksPerNode: maxRanks,
            memoryPerRank: memory / Double(maxRanks), memoryBandwidth: [], links: [])
        profile.memoryPerNode = memory
        for np in [1, 2, 4, 8] where np <= maxRanks {
            let r = try measure(np: np, compute: np <= cores)
            let threads = max(1, cores / np)
            profile.gemm += r.gemm
            profile.attention += r.attention
            profile.logitRows += r.logitRows ?? []
            if let b = r.bandwidth { profile.memoryBandwidth.append(.init(threads: threads, value: b)) }
            profile.residentBaseline.append(.init(threads: threads, value: r.resident))
            if let o = r.reductionOverhead { profile.reductionBuffers.append(.init(threads: np, value: o)) }
            profile.links += r.links
            var line = String(
                format: "-- np = %d (%d thread(s) each): resident baseline %.0f MiB", np, threads,
                r.resident / 1_048_576)
            if !r.gemm.isEmpty {
                let flops = r.gemm.filter { !$0.bf16 }.map { 2.0 * Double($0.m) * Double($0.n) * Double($0.k) }
                let seconds = zip(r.gemm.filter { !$0.bf16 }, flops).map { $1 / $0.flopsPerSecond }
                line += String(
                    format: "; %d GEMM shapes at %.1f GFLOP/s overall (fp32%@); memory %.1f GB/s per rank",
                    flops.count, flops.reduce(0, +) / seconds.reduce(0, +) / 1e9,
                    (r.gemm.contains { $0.bf16 } ? " and bf16" : "") as NSString, (r.bandwidth ?? 0) / 1e9)
            }
            if let a = r.links.first(where: { $0.op == "allreduce" }) {
                line += String(format: "; all-reduce %.1f µs + bytes / %.2f GB/s", a.latency * 1e6, a.bandwidth / 1e9)
            }
            print(line)
        }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try profile.write(path)
        print("profile written to \(path)")
    }

    /// Starts `np` copies of this program under mpirun and reads what rank 0 wrote.
    func measure(np: Int, compute: Bool) throws -> Measurement {
        let out = NSTemporaryDirectory() + "megatron-calibration-\(getpid())-\(np).json"
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        // One rank runs as users run one rank: directly, not bound to a core by mpirun.
        var args = np == 1 ? [] : ["mpirun", "-np", "\(np)", "--oversubscribe"]
        if np > 1 && getuid() == 0 { args.append("--allow-run-as-root") }
        args += [
            exe, "plan", "--config", configPath, "--global-batch-size", "\(model.globalBatch)", "--max-ranks",
            "\(maxRanks)", "--measure", "--output", out,
        ]
        if !compute { args.append("--links-only") }
        args += overrides
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = nil
        p.environment = env
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: out) else {
            throw PlanError.calibration("`\(args.joined(separator: " "))` exited with \(p.terminationStatus)")
        }
        try? FileManager.default.removeItem(atPath: out)
        return try JSONDecoder().decode(Measurement.self, from: data)
    }

    struct Measurement: Codable {
        var resident: Double
        var reductionOverhead: Double?
        var gemm: [HardwareProfile.MeasuredGEMM]
        var attention: [HardwareProfile.MeasuredAttention]
        var logitRows: [HardwareProfile.MeasuredLogitRows]? = nil
        var bandwidth: Double?
        var links: [HardwareProfile.LinkFit]
    }

    /// Inside mpirun (every rank): the resident memory of a started rank (MPI up, BLAS buffers touched
    /// by a GEMM whose operands are not counted); unless `linksOnly`, the model's GEMM shapes, the
    /// attention core and memory bandwidth, all ranks at once; with np > 1 the links and the memory a
    /// non-blocking all-reduce takes beyond its buffer. Rank 0 writes the results.
    static func measure(model: PlanModel, maxRanks: Int, linksOnly: Bool, output: String) throws {
        _ = BLASKernels.select("auto")  // the kernels training uses (may re-execute this process)
        let runtime = try MPIRuntime.start()
        let world = runtime.world
        ThreadBudget.configure(threads: CLIThreads.resolve(0))
        // Ranks wait as training's do on this node (sleeping between polls where they outnumber cores).
        try IdleWait.configure(.auto, threads: ThreadBudget.threads, world: world)
        let n = 1024
        var resident = 0.0
        do {
            let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
            for i in 0..<(n * n) { a[i] = 1e-3; b[i] = 1e-3 }
            BLAS.sgemm(
                transA: false, transB: false, m: n, n: n, k: n, a: a.base, lda: n, b: b.base, ldb: n, beta: 0,
                c: c.base,
                ldc: n)
            resident = currentResidentBytes() - Double(3 * n * n * 4)
        }
        var m = Measurement(
            resident: try world.allReduceSum(resident) / Double(world.size), gemm: [], attention: [], links: [])
        if world.size > 1 { m.reductionOverhead = try reductionOverhead(world) }
        if !linksOnly {
            let tensors = [1, 2, 4, 8].filter {
                $0 <= maxRanks && model.heads % $0 == 0 && model.hidden % $0 == 0 && model.ffn % $0 == 0
            }
            let batches = (1...min(16, model.globalBatch)).filter { model.globalBatch % $0 == 0 }
            let grid = tensors.flatMap { t in batches.map { (tensor: t, microBatch: $0) } }
            try world.barrier()
            m.gemm = Calibration.gemmRates(model: model, grid: grid, bf16: BF16.native) { _ in }
            m.attention = Calibration.attention(model: model, grid: grid, bf16: BF16.native)
            m.logitRows = Calibration.logitRows(
                widths: tensors.map { model.paddedVocab(tensor: $0) / $0 },
                rows: model.seq * min(16, model.globalBatch), bf16: BF16.native)
            try world.barrier()
            m.bandwidth = Calibration.memoryBandwidth()
        }
        if world.size > 1 {
            m.links = try Calibration.links(world: world)
        }
        if world.rank == 0 { try JSONEncoder().encode(m).write(to: URL(fileURLWithPath: output)) }
        runtime.finalize()
    }

    /// Resident bytes MPI's non-blocking reductions of 64 MiB add beyond their own buffers, per byte
    /// reduced (temporary buffers; the gradient buckets use them): the all-reduce (replicated
    /// optimizer) and then the reduce-scatter (distributed optimizer), the larger of the two.
    static func reductionOverhead(_ world: Communicator) throws -> Double {
        let count = 1 << 24, n = world.size
        let x = FloatBuffer(count: count), shard = FloatBuffer(count: count / n)  // zero-filled, so resident
        var before = peakResidentBytes()
        try world.iallReduceSum(x.base, count: count).wait()
        let allReduce = max(0, peakResidentBytes() - before)
        before = peakResidentBytes()
        let counts = [Int32](repeating: Int32(count / n), count: n)
        try world.ireduceScatter(x.base, counts: counts, into: shard.base).wait()
        let reduceScatter = max(0, peakResidentBytes() - before)
        return try world.allReduceSum(max(allReduce, reduceScatter) / Double(count * 4)) / Double(n)
    }

    /// Resident bytes now (/proc/self/statm).
    static func currentResidentBytes() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Double(fields[1]) ?? 0) * Double(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    static func peakResidentBytes() -> Double { max(currentResidentBytes(), peakResidentMegabytes() * 1_048_576) }

    static func cpuName() -> String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = info.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.map {
            $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "CPU"
        }
            ?? "CPU"
    }
}

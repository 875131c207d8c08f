// Calibration.swift — measures this machine for the planner (`megatron plan --calibrate`): GEMM
// rates (caches emptied before each timing, as in training) on the model's exact shapes (every t's split and micro-batch size the plans may use) in
// fp32 and bf16 at each thread count a layout may give a rank; the attention core on its shapes;
// memory bandwidth (a streaming add over arrays far larger than the caches); and, run under mpirun
// at np = 2, 4, 8 (`--measure-links`), each collective's latency and bandwidth fitted over message
// sizes from 64 KiB to 64 MiB, a point-to-point ping-pong, and the resident memory of a started rank.
import Distributed
import Foundation
import Tensor

public enum Calibration {
    /// The GEMM shapes of one layer and the LM head for tensor size t and micro-batch b, with the
    /// transposes the trainer uses (weights [out, in]).
    static func shapes(model: PlanModel, tensor t: Int, microBatch b: Int) -> [GEMMShape] {
        let n = model.seq * b, h = model.hidden, f = model.ffn
        var out: [GEMMShape] = []
        let qkv = model.qkvWidth / t, proj = model.attentionWidth / t
        for (name, o, i) in [("qkv", qkv, h), ("proj", h, proj), ("fc1", f / t, h), ("fc2", h, f / t)] {
            out.append(GEMMShape(name: "\(name) forward", m: n, n: o, k: i, transA: false, transB: true, calls: 1))
            out.append(GEMMShape(name: "\(name) dgrad", m: n, n: i, k: o, transA: false, transB: false, calls: 1))
            out.append(GEMMShape(name: "\(name) wgrad", m: o, n: i, k: n, transA: true, transB: false, calls: 1))
        }
        let vL = model.paddedVocab(tensor: t) / t
        var rows = VocabCrossEntropy.chunkRows(rows: n, vocab: model.vocab)
        if model.isBert {
            // The masked-LM head: its dense layer and the vocabulary products on the masked rows.
            let k = model.maskedRows(microBatch: b)
            rows = min(rows, k)
            out.append(GEMMShape(name: "lm dense forward", m: k, n: h, k: h, transA: false, transB: true, calls: 1))
            out.append(GEMMShape(name: "lm dense dgrad", m: k, n: h, k: h, transA: false, transB: false, calls: 1))
            out.append(GEMMShape(name: "lm dense wgrad", m: h, n: h, k: k, transA: true, transB: false, calls: 1))
        }
        out.append(GEMMShape(name: "head forward", m: rows, n: vL, k: h, transA: false, transB: true, calls: 1))
        out.append(GEMMShape(name: "head dgrad", m: rows, n: h, k: vL, transA: false, transB: false, calls: 1))
        out.append(GEMMShape(name: "head wgrad", m: vL, n: h, k: rows, transA: true, transB: false, calls: 1))
        return out
    }

    /// GEMM rates for every (t, b) in `grid` at the current thread budget, fp32 and (if `bf16`) bf16.
    public static func gemmRates(
        model: PlanModel, grid: [(tensor: Int, microBatch: Int)], bf16: Bool, log: (String) -> Void
    )
        -> [HardwareProfile.MeasuredGEMM]
    {
        var seen = Set<[Int]>(), list: [GEMMShape] = []
        for (t, b) in grid {
            for s in shapes(model: model, tensor: t, microBatch: b)
            where seen.insert([s.m, s.n, s.k, s.transA ? 1 : 0, s.transB ? 1 : 0]).inserted {
                list.append(s)
            }
        }
        var out: [HardwareProfile.MeasuredGEMM] = []
        let threads = ThreadBudget.threads
        for precision in bf16 ? [false, true] : [false] {
            let seconds =
                precision
                ? GEMMBenchmark.measureBF16(list, repeats: 3, before: flushCaches).perShape
                : GEMMBenchmark.measure(list, repeats: 3, before: flushCaches).perShape
            for (s, t) in zip(list, seconds) {
                out.append(
                    .init(
                        m: s.m, n: s.n, k: s.k, transA: s.transA, transB: s.transB, threads: threads, bf16: precision,
                        flopsPerSecond: s.flops / t))
            }
            let total = zip(list, seconds).reduce(0.0) { $0 + $1.0.flops } / seconds.reduce(0, +)
            log(
                String(
                    format: "  %d shapes, %@, %d thread(s): %.1f GFLOP/s overall", list.count,
                    precision ? "bf16" : "fp32", threads, total / 1e9))
        }
        return out
    }

    /// The attention core's forward and backward (no dropout) for each (t, b) in `grid`: causal for
    /// GPT, bidirectional over full-length sequences for BERT.
    public static func attention(model: PlanModel, grid: [(tensor: Int, microBatch: Int)], bf16: Bool)
        -> [HardwareProfile.MeasuredAttention]
    {
        var out: [HardwareProfile.MeasuredAttention] = []
        var seen = Set<Int>()
        let dh = model.headDim
        for (t, b) in grid where seen.insert(b * model.heads / t).inserted {
            let shape = AttentionShape(seq: model.seq, batch: b, heads: model.heads / t, headDim: dh)
            let mask: AttentionMask =
                model.isBert ? .keyPadding(lengths: [Int](repeating: model.seq, count: b)) : .causal
            let n = model.seq * b, h = shape.hidden
            let qkv = FloatBuffer(count: n * 3 * h), context = FloatBuffer(count: n * h)
            let dqkv = FloatBuffer(count: n * 3 * h), lse = FloatBuffer(count: b * shape.heads * model.seq)
            let scratch = FloatBuffer(count: max(1, ThreadBudget.threads) * shape.scratchPerWorker)
            for i in 0..<qkv.count { qkv[i] = Float((i * 7919) % 997) * 1e-3 - 0.5 }
            for precision in bf16 ? [false, true] : [false] {
                let p: Precision = precision ? .bf16 : .fp32
                func forward() {
                    SelfAttention.forward(
                        qkv: qkv.base, context: context.base, lse: lse.base, shape: shape, mask: mask, dropout: 0,
                        stream: nil, scratch: scratch.base, precision: p)
                }
                func backward() {
                    SelfAttention.backward(
                        dcontext: context.base, qkv: qkv.base, lse: lse.base, dqkv: dqkv.base, shape: shape,
                        mask: mask, dropout: 0, stream: nil, scratch: scratch.base, precision: p)
                }
                out.append(
                    .init(
                        seq: model.seq, batch: b, heads: shape.heads, headDim: dh, threads: ThreadBudget.threads,
                        bf16: precision, causal: !model.isBert, forward: best(forward), backward: best(backward)))
            }
        }
        return out
    }

    /// The LM head's pass over one chunk of logits as a one-tensor-rank training step runs it (row max;
    /// exponentials stored and summed; ∂loss/∂logits in place, rounded to the run's format), for each
    /// of `widths` (the vocabulary columns a tensor rank holds), in elements per second at the current
    /// thread budget, fp32 and (if `bf16`) bf16. The chunk's rows are as many as training puts in one.
    public static func logitRows(widths: [Int], rows n: Int, bf16: Bool) -> [HardwareProfile.MeasuredLogitRows] {
        var out: [HardwareProfile.MeasuredLogitRows] = []
        for v in Set(widths).sorted() where v > 0 {
            let rows = VocabCrossEntropy.chunkRows(rows: n, vocab: v)
            let logits = FloatBuffer(count: rows * v), sums = FloatBuffer(count: rows)
            let pz = UncheckedSendable(logits.base), ps = UncheckedSendable(sums.base)
            for i in 0..<(rows * v) { pz.value[i] = Float((i * 7919) % 997) * 1e-2 - 5 }
            // Each run starts from the last one's gradients: the same work on other values.
            for precision in bf16 ? [Precision.fp32, .bf16] : [.fp32] {
                let seconds = best {
                    ThreadBudget.parallelFor(rows, grain: 4) { rr in
                        for r in rr {
                            ps.value[r] =
                                VocabCrossEntropy.finishRow(
                                    pz.value + r * v, width: v, target: r % v, scale: 1, precision: precision
                                ).sum
                        }
                    }
                }
                out.append(
                    .init(
                        width: v, threads: ThreadBudget.threads, bf16: precision == .bf16,
                        elementsPerSecond: Double(rows * v) / seconds))
            }
        }
        return out
    }

    /// Bytes/s of a streaming a[i] += b[i] over 64 Mi floats per array (read 2, write 1), split over the threads.
    public static func memoryBandwidth() -> Double {
        let n = 1 << 26
        let a = FloatBuffer(count: n), b = FloatBuffer(count: n)
        let pa = UncheckedSendable(a.base), pb = UncheckedSendable(b.base)
        let seconds = best {
            ThreadBudget.parallelFor(n, grain: 4096) { r in
                let x = pa.value, y = pb.value
                for i in r { x[i] += y[i] }
            }
        }
        return 12 * Double(n) / seconds
    }

    /// Writes 64 MiB, more than this machine's caches hold, so a timed kernel finds its operands in
    /// memory as a training step does (layer after layer streams far more than the caches hold).
    static let flushBuffer = UncheckedSendable(FloatBuffer(count: 1 << 24))
    static func flushCaches() {
        let b = flushBuffer.value
        b.base.update(repeating: 1, count: b.count)
    }

    /// Best of three runs after a warm-up, each started with cold caches, in seconds.
    static func best(_ body: () -> Void) -> Double {
        body()
        var t = Double.infinity
        for _ in 0..<3 {
            flushCaches()
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            t = min(t, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return t
    }

    /// Under mpirun: each collective over the whole world at message sizes 64 KiB … 64 MiB and a
    /// ping-pong between ranks 0 and 1, each fitted to latency + bytes / bandwidth (least squares).
    public static func links(world: Communicator) throws -> [HardwareProfile.LinkFit] {
        let sizes = [1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24]  // floats: 64 KiB … 64 MiB
        let big = FloatBuffer(count: sizes.last!), out = FloatBuffer(count: sizes.last!)
        let n = world.size
        var fits: [HardwareProfile.LinkFit] = []
        func timed(_ body: () throws -> Void) throws -> Double {
            try world.barrier()
            try body()
            var best = Double.infinity
            for _ in 0..<3 {
                try world.barrier()
                let t0 = MPIRuntime.wallTime
                try body()
                // Averaged over the ranks.
                best = min(best, try world.allReduceSum(MPIRuntime.wallTime - t0) / Double(n))
            }
            return best
        }
        for op in ["allreduce", "allgather", "reducescatter", "p2p"] {
            var points: [(Double, Double)] = []
            for count in sizes {
                let piece = count / n
                let seconds = try timed {
                    switch op {
                    case "allreduce": try world.allReduceSum(big.base, count: count)
                    case "allgather": try world.allGatherInPlace(big.base, count: piece)
                    case "reducescatter": try world.reduceScatter(big.base, count: piece, into: out.base)
                    default:
                        // Ping-pong between ranks 0 and 1: half the round trip.
                        if world.rank == 0 {
                            try world.isend(big.base, count: count, to: 1, tag: 7).wait()
                            try world.recv(out.base, count: count, from: 1, tag: 8)
                        } else if world.rank == 1 {
                            try world.recv(out.base, count: count, from: 0, tag: 7)
                            try world.isend(big.base, count: count, to: 0, tag: 8).wait()
                        }
                    }
                }
                points.append((Double(count * 4), op == "p2p" ? seconds * Double(n) / 2 / 2 : seconds))
            }
            let (latency, perByte) = leastSquares(points)
            fits.append(
                .init(
                    scope: "intra", op: op, ranks: op == "p2p" ? 2 : n, latency: max(0, latency),
                    bandwidth: 1 / max(perByte, 1e-15)))
        }
        return fits
    }

    /// Least-squares line y = a + b·x.
    static func leastSquares(_ points: [(Double, Double)]) -> (Double, Double) {
        let k = Double(points.count)
        let sx = points.reduce(0) { $0 + $1.0 }, sy = points.reduce(0) { $0 + $1.1 }
        let sxx = points.reduce(0) { $0 + $1.0 * $1.0 }, sxy = points.reduce(0) { $0 + $1.0 * $1.1 }
        let b = (k * sxy - sx * sy) / (k * sxx - sx * sx)
        return ((sy - b * sx) / k, b)
    }
}

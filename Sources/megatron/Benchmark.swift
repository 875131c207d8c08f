// Benchmark.swift — `megatron benchmark --config FILE [--steps N] [--key value …]`: measures, in
// one run, OpenBLAS's SGEMM rate on this model's GEMM shapes, then training steps of the model;
// prints tokens/s, model TFLOP/s (Megatron's formula), their ratio to the SGEMM rate, and where
// the step's time goes. Used by scripts/bench.sh.
import ArgumentParser
import Distributed
import Foundation
import MegatronCore
import Tensor

struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training speed against OpenBLAS's SGEMM rate on the same GEMM shapes.")

    @Option(help: "JSON config file.") var config: String?
    @Option(help: "Timed training steps (after one warm-up step).") var steps: Int = 3
    @Option(help: "Also write the results as one JSON object to this file.") var json: String?
    @Flag(
        help: ArgumentHelp(
            "Time only the attention core at the model's shape, forward and backward, fp32 and (on a bf16 CPU) bf16.",
            discussion: "Micro-batch, heads / t and seq of the config; causal for GPT, every key for BERT; "
                + "best of three runs with cold caches, after a warm-up. No training steps."))
    var attentionOnly = false
    @Argument(parsing: .allUnrecognized, help: "Config overrides: --micro-batch-size 4 …") var overrides: [String] = []

    func run() throws {
        var dropped: [String] = []
        let start = Startup.begin(configPath: config, flags: overrides + ["--eval-iters", "0"]) { cfg in
            dropped = Self.unusedKeys(cfg)
            cfg.save = nil; cfg.load = nil; cfg.metricsFile = nil; cfg.traceDir = nil
        }
        let (cfg, runtime, blasNote, threads) = (start.config, start.runtime, start.blasNote, start.threads)
        let world = runtime.world
        let out = RankLog(enabled: world.rank == 0)
        if attentionOnly {
            do { try AttentionBenchmark.run(config: cfg, threads: threads, json: json, out: out) } catch {
                CLIErrors.fail(error, code: 1, runtime: runtime, rank: world.rank)
            }
            runtime.finalize()
            return
        }
        if !dropped.isEmpty {
            out(
                "benchmark: not used here: \(dropped.joined(separator: ", ")) (a benchmark saves, loads and writes "
                    + "nothing; `megatron train` does)")
        }
        do {
            let parallel = try ParallelState(
                world: world, tensor: cfg.tensorModelParallelSize, pipeline: cfg.pipelineModelParallelSize)
            let quiet = RankLog(enabled: false)
            switch cfg.modelType {
            case .gpt:
                try measure(
                    Trainer.gpt(config: cfg, log: quiet, threads: threads, parallel: parallel), cfg: cfg, world: world,
                    parallel: parallel, threads: threads, blasNote: blasNote, out: out)
            case .bert:
                try measure(
                    Trainer.bert(config: cfg, log: quiet, threads: threads, parallel: parallel), cfg: cfg,
                    world: world, parallel: parallel, threads: threads, blasNote: blasNote, out: out)
            }
        } catch { CLIErrors.fail(error, code: 1, runtime: runtime, rank: world.rank) }
        runtime.finalize()
    }

    /// The keys of `cfg` a benchmark does not honour, by name, when set.
    static func unusedKeys(_ cfg: TrainingConfig) -> [String] {
        [
            ("save", cfg.save != nil), ("load", cfg.load != nil), ("metrics_file", cfg.metricsFile != nil),
            ("trace_dir", cfg.traceDir != nil),
        ].filter(\.1).map(\.0)
    }

    /// The GEMM rates, then the timed steps of `trainer` and where their time goes.
    func measure<Chunk, Data>(
        _ trainer: Trainer<Chunk, Data>, cfg: TrainingConfig, world: Communicator, parallel: ParallelState,
        threads: Int, blasNote: String, out: RankLog
    ) throws {
        let m = trainer.model.transformer
        let gbs = trainer.globalBatch
        let t = parallel.layout.tensor
        out(
            "benchmark: \(cfg.modelType.rawValue), \(m.numLayers) layers, hidden \(m.hiddenSize), seq \(m.seqLength), vocab \(m.vocabSize), "
                + "micro-batch \(cfg.microBatchSize), global batch \(gbs), world \(world.size) (tensor "
                + "\(t)\(trainer.model.tensorParallel.sequenceParallel ? " + SP" : "")), \(threads) "
                + "thread(s) per rank, OpenBLAS \(BLAS.coreName) [\(blasNote)]"
        )

        var sgemmRate: Double? = nil, bf16Rate: Double? = nil, bf16Peak = 0.0, bf16PeakTogether = 0.0
        if world.size == 1 {
            let shapes = GEMMBenchmark.shapes(config: m, microBatch: cfg.microBatchSize)
            let (perShape, rate) = GEMMBenchmark.measure(shapes)
            for (s, t) in zip(shapes, perShape) {
                out(
                    String(
                        format: "  sgemm %-32@ %6d x %6d x %6d  %7.1f GFLOP/s", s.name as NSString, s.m, s.n, s.k,
                        s.flops / t / 1e9))
            }
            out(String(format: "SGEMM rate on the model's GEMM shapes: %.1f GFLOP/s", rate / 1e9))
            sgemmRate = rate
            let (bf16PerShape, bf16) = GEMMBenchmark.measureBF16(shapes)
            for (s, t) in zip(shapes, bf16PerShape) {
                out(
                    String(
                        format: "  bf16  %-32@ %6d x %6d x %6d  %7.1f GFLOP/s", s.name as NSString, s.m, s.n, s.k,
                        s.flops / t / 1e9))
            }
            bf16Rate = bf16
            out(
                String(
                    format:
                        "bf16 GEMM rate on the same shapes (%@ kernel; fp32 operands rounded while packing, the weight "
                        + "gradients' kept inputs in 16-bit words): "
                        + "%.1f GFLOP/s = %.2f× SGEMM",
                    BF16.kernel.name as NSString, bf16 / 1e9, bf16 / rate))
            let peak = BF16.peakGFLOPS
            let kernelPeak = BF16.kernel == .amx ? peak.amx : peak.dpbf16
            bf16Peak = kernelPeak
            if kernelPeak > 0 {
                out(
                    String(
                        format: "single-thread peaks on this CPU: AMX TDPBF16PS %.1f, vdpbf16ps %.1f, fp32 FMA "
                            + "(512-bit) %.1f GFLOP/s", peak.amx, peak.dpbf16, peak.fma))
                if let together = BF16.peakTogetherGFLOPS(BF16.kernel, threads: threads) {
                    bf16PeakTogether = together
                    out(
                        String(
                            format: "%@ peak on %d threads at once: %.1f GFLOP/s (%.2f× one thread's); the bf16 "
                                + "GEMM reaches %.0f%% of it", BF16.kernel.name as NSString, threads, together,
                            together / kernelPeak, 100 * bf16 / 1e9 / together))
                }
            }
        }

        // Peak memory of training alone: the GEMM measurements above allocate their own operands.
        let peakCounted = resetPeakResident()
        _ = try trainer.step()  // warm-up: page-in of every buffer
        let timer = PhaseTimer()
        trainer.timer = timer
        for (_, group) in parallel.groups { group.resetCounters() }
        trainer.partition.buckets?.measuresExposedWait = true
        try world.barrier()
        let faults0 = minorPageFaults()
        let t0 = DispatchTime.now().uptimeNanoseconds
        var bubbles: [Double] = [], theories: [Double] = [], stageBubbles: [[Double]] = []
        for _ in 0..<steps {
            _ = try trainer.step()
            if let times = trainer.lastPipelineTimes, let schedule = trainer.partition.trainSchedule {
                let ranks = try PipelineBubble.gather(times, world: world)
                bubbles.append(PipelineBubble.measured(ranks))
                stageBubbles.append(PipelineBubble.perStage(ranks, grid: trainer.parallel.layout))
                theories.append(
                    PipelineBubble.theory(
                        schedule, ranks: ranks,
                        grid: trainer.parallel.layout))
            }
        }
        try world.barrier()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(steps)
        let faultsPerStep = Double(minorPageFaults() - faults0) / Double(steps)
        trainer.timer = nil
        let flops = trainer.model.flopsPerIteration(globalBatch: gbs)
        let tokensPerSecond = Double(gbs * m.seqLength) / seconds
        let tflops = flops / seconds / 1e12
        var line = String(
            format: "step %.1f ms | %.1f tokens/s | model %.3f TFLOP/s (Megatron's formula, all ranks)",
            seconds * 1000, tokensPerSecond, tflops)
        if let sgemmRate { line += String(format: " | %.2f of the SGEMM rate", flops / seconds / sgemmRate) }
        let peakMiB = peakCounted ? residentHighWaterMegabytes() : nil
        if let peakMiB { line += String(format: " | peak RSS %.0f MiB (rank 0, the training steps)", peakMiB) }
        line += String(format: " | page faults per step %.0f", faultsPerStep)
        out(line)
        var json: [String: Any] = [
            "step_ms": seconds * 1000, "tokens_per_s": tokensPerSecond, "tflops": tflops, "threads": threads,
            "blas_core": BLAS.coreName, "world": world.size, "tensor": t, "model_type": cfg.modelType.rawValue,
            "vocab_size": m.vocabSize, "padded_vocab_size": m.paddedVocabSize,
        ]
        if let peakMiB { json["peak_rss_mib"] = peakMiB }
        json["page_faults_per_step"] = faultsPerStep
        if let sgemmRate {
            json["sgemm_gflops"] = sgemmRate / 1e9; json["ratio_to_sgemm"] = flops / seconds / sgemmRate
        }
        if let bf16Rate, let sgemmRate {
            json["bf16_gemm_gflops"] = bf16Rate / 1e9; json["bf16_over_sgemm"] = bf16Rate / sgemmRate
            json["bf16_kernel"] = BF16.kernel.name; json["bf16_kernel_peak_gflops_per_core"] = bf16Peak
            json["bf16_kernel_peak_gflops_all_threads"] = bf16PeakTogether
        }
        if t > 1 {
            let c = parallel.tensor.counters
            let bytes = Double(c.bytes) / Double(steps), commSeconds = c.seconds / Double(steps)
            let micro = Double(gbs / cfg.microBatchSize),
                sbh = Double(m.seqLength * cfg.microBatchSize * m.hiddenSize)
            let megatron = 4 * Double(m.numLayers) * sbh * 4 * micro
            let ours =
                (4 * Double(m.numLayers) + 2) * sbh * 4 * micro + 3 * Double(m.seqLength * cfg.microBatchSize) * 4
                * micro
            out(
                String(
                    format:
                        "tensor-parallel communication per iteration (rank 0): %.2f MB in %.1f ms = %.1f%% of "
                        + "the step; analytic: %.2f MB for the layers' 4 all-reduces of s·b·h per layer per "
                        + "micro-batch (Megatron's count), %.2f MB with the embedding and LM-head "
                        + "all-reduces and the cross-entropy statistics",
                    bytes / 1e6, commSeconds * 1000, 100 * commSeconds / seconds, megatron / 1e6, ours / 1e6))
            json["comm_bytes_tp"] = bytes; json["comm_s_tp"] = commSeconds;
            json["comm_fraction"] = commSeconds / seconds
            json["analytic_bytes_layers"] = megatron; json["analytic_bytes_all"] = ours
        }
        if let s = trainer.partition.trainSchedule {
            let bytes = Double(parallel.pipeline.counters.bytes) / Double(steps)
            let bubble = bubbles.reduce(0, +) / Double(max(1, bubbles.count))
            let theory = theories.reduce(0, +) / Double(max(1, theories.count))
            let perStage = (0..<s.stages).map { stage in
                stageBubbles.map { $0[stage] }.reduce(0, +) / Double(max(1, stageBubbles.count))
            }
            out(
                String(
                    format:
                        "pipeline %@ p = %d, v = %d, m = %d: bubble measured %.3f (idle / compute, mean over ranks; "
                        + "by stage %@) vs theory %@ = %.3f; sent between stages per iteration (rank 0): %.2f MB "
                        + "(scatter/gather %@)",
                    s.kind.rawValue as NSString, s.stages, s.chunks, s.microbatches, bubble,
                    perStage.map { String(format: "%.3f", $0) }.joined(separator: ", ") as NSString,
                    PipelineBubble.theoryName(s) as NSString, theory, bytes / 1e6,
                    cfg.scatterGatherTensorsInPipeline && t > 1 && !cfg.sequenceParallel ? "on" : "off"))
            json["bubble_measured"] = bubble; json["bubble_theory"] = theory; json["comm_bytes_pp"] = bytes
            json["bubble_by_stage"] = perStage
            json["schedule"] = s.kind.rawValue
            if let line = trainer.partition.pipelineDescription { out(line) }
            json["stage_layers"] = trainer.partition.layout.stageLayerCounts
            json["virtual_stage_layers"] = trainer.partition.layout.sublayerCounts.map { Double($0) / 2 }
            if let m = trainer.partition.balanceCosts {
                json["balance_costs_s"] = [
                    "layer": m.layer, "attention": m.attention, "head": m.head, "embedding": m.embedding,
                    "probe": m.probeSeconds,
                ]
            }
            json["stages"] = s.stages; json["chunks"] = s.chunks; json["microbatches"] = s.microbatches
        }
        if let buckets = trainer.partition.buckets {
            let bytes = Double(parallel.data.counters.bytes) / Double(steps)
            let sharded = trainer.optimizer.isSharded
            // All-reduce: the gradient arena once; distributed optimizer: reduce-scatter it and
            // all-gather the parameters. Through shared memory no gradient goes through MPI.
            let viaShared = buckets.reducesThroughSharedMemory
            let arenaBytes = Double(trainer.chunks.reduce(0) { $0 + $1.table.totalCount }) * 4
            let analytic = arenaBytes * Double((sharded ? 2 : 1) - (viaShared ? 1 : 0))
            // Sparse ending: plus one all-gather record of at most s·b rows (and the row counts' maximum).
            let rows = buckets.sparseEnding?.rows
            let sparseBound = rows.map { Double(8 + 4 * (1 + $0.capacity * ($0.hidden + 1))) } ?? 0
            let hidden = Double(buckets.overlappedElements) / Double(max(1, buckets.totalElements))
            let waitMs = (timer.seconds["dp gradient reduction (wait)"] ?? 0) / Double(steps) * 1000
            let exposedWaitMs = buckets.exposedWaitSeconds / Double(steps) * 1000
            out(
                String(
                    format:
                        "data-parallel d = %d%@: %.2f MB moved per iteration (rank 0; analytic: %@ %.2f MB, plus "
                        + "the loss%@); %d buckets, %.0f%% of the gradient elements had their reduction "
                        + "started before the backward pass ended (progress: %@); %.1f ms spent waiting for the "
                        + "reduction after it, %.1f ms of it after the slowest rank's backward ended",
                    parallel.layout.data, sharded ? " (distributed optimizer)" : "", bytes / 1e6,
                    viaShared
                        ? (sharded
                            ? "gradients summed in shared memory, an all-gather of the parameters,"
                            : "gradients summed in shared memory, none through MPI,")
                        : sharded
                            ? "a reduce-scatter of the gradients and an all-gather of the parameters,"
                            : "one all-reduce of this rank's gradients,",
                    analytic / 1e6,
                    rows == nil
                        ? "" : String(format: " and the word rows kept apart, at most %.2f MB", sparseBound / 1e6),
                    buckets.bucketCount, 100 * hidden,
                    (CommunicationProgress.mode.rawValue + (viaShared ? ", reduction through shared memory" : ""))
                        as NSString, waitMs, exposedWaitMs))
            json["comm_bytes_dp"] = bytes; json["analytic_bytes_dp"] = analytic; json["dp_overlap_share"] = hidden
            json["dp_wait_ms"] = waitMs; json["dp_exposed_wait_ms"] = exposedWaitMs
            json["communication_progress"] = CommunicationProgress.mode.rawValue
            json["dp_reduction"] = viaShared ? "shared-memory" : "mpi"
        }
        if world.rank == 0 {
            out("time per step by phase (rank 0, all layers):")
            let total = timer.seconds.values.reduce(0, +)
            for name in timer.order.sorted(by: { timer.seconds[$0]! > timer.seconds[$1]! }) {
                let s = timer.seconds[name]! / Double(steps)
                out(
                    String(
                        format: "  %-36@ %9.1f ms  %5.1f%%", name as NSString, s * 1000,
                        100 * timer.seconds[name]! / total))
            }
            if let path = self.json {
                let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
                try data.write(to: URL(fileURLWithPath: path))
            }
        }
    }
}

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
    @Argument(parsing: .allUnrecognized, help: "Config overrides: --micro-batch-size 4 …") var overrides: [String] = []

    func run() throws {
        var cfg: TrainingConfig
        do {
            cfg = try ConfigLoader.load(path: config, flags: overrides + ["--eval-iters", "0"], worldSize: 1)
        } catch let e as ConfigError { CLIErrors.fail(e, code: 2) }
        cfg.save = nil; cfg.load = nil; cfg.metricsFile = nil
        let blasNote = BLASKernels.select(cfg.blasCoretype)
        let threads = CLIThreads.resolve(cfg.numThreads)
        ThreadBudget.configure(threads: threads)
        do {
            let runtime = try MPIRuntime.start()
            defer { runtime.finalize() }
            let trainer = try Trainer(config: cfg, log: RankLog(enabled: false), threads: threads, parallel: try .single(runtime.world))
            let m = trainer.model.config
            let gbs = cfg.globalBatchSize ?? cfg.microBatchSize!
            print("benchmark: \(m.numLayers) layers, hidden \(m.hiddenSize), seq \(m.seqLength), vocab \(m.vocabSize), micro-batch \(cfg.microBatchSize!), global batch \(gbs), \(threads) threads, OpenBLAS \(BLAS.coreName) [\(blasNote)]")

            let shapes = GEMMBenchmark.shapes(config: m, microBatch: cfg.microBatchSize!)
            let (perShape, sgemmRate) = GEMMBenchmark.measure(shapes)
            for (s, t) in zip(shapes, perShape) {
                print(String(format: "  sgemm %-32@ %6d x %6d x %6d  %7.1f GFLOP/s", s.name as NSString, s.m, s.n, s.k, s.flops / t / 1e9))
            }
            print(String(format: "SGEMM rate on the model's GEMM shapes: %.1f GFLOP/s", sgemmRate / 1e9))

            _ = try trainer.step()   // warm-up: page-in of every buffer
            let timer = PhaseTimer()
            trainer.model.timer = timer
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<steps { _ = try trainer.step() }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(steps)
            trainer.model.timer = nil
            let flops = m.flopsPerIteration(globalBatch: gbs)
            let tokensPerSecond = Double(gbs * m.seqLength) / seconds
            let tflops = flops / seconds / 1e12
            let ratio = flops / seconds / sgemmRate
            print(String(format: "step %.1f ms | %.1f tokens/s | model %.3f TFLOP/s (Megatron's formula) | %.2f of the SGEMM rate",
                         seconds * 1000, tokensPerSecond, tflops, ratio))
            print("time per step by phase (all layers):")
            let total = timer.seconds.values.reduce(0, +)
            for name in timer.order.sorted(by: { timer.seconds[$0]! > timer.seconds[$1]! }) {
                let s = timer.seconds[name]! / Double(steps)
                print(String(format: "  %-36@ %9.1f ms  %5.1f%%", name as NSString, s * 1000, 100 * timer.seconds[name]! / total))
            }
            if let json {
                let text = String(format: "{\"step_ms\": %.3f, \"tokens_per_s\": %.3f, \"tflops\": %.5f, \"sgemm_gflops\": %.3f, \"ratio_to_sgemm\": %.4f, \"threads\": %d, \"blas_core\": \"%@\"}\n",
                                  seconds * 1000, tokensPerSecond, tflops, sgemmRate / 1e9, ratio, threads, BLAS.coreName as NSString)
                try text.write(toFile: json, atomically: true, encoding: .utf8)
            }
        } catch { CLIErrors.fail(error, code: 1) }
    }
}

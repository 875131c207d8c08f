// Train.swift — `megatron train --config FILE [--key value …]`: validate the config (exit 2 on any
// config error, before any work), pick the BLAS kernels, start MPI, train, save, validate.
import ArgumentParser
import Distributed
import Foundation
import MegatronCore
import Tensor

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a GPT or BERT model from a JSON config (keys are Megatron-LM's argument names).",
        discussion: "Config keys (each also a --kebab-case flag that overrides the file):\n"
            + ConfigKeys.all.map {
                "  \($0.name.padding(toLength: ConfigKeys.all.map(\.name.count).max()!, withPad: " ", startingAt: 0)) "
                    + $0.help
            }
            .joined(separator: "\n") + "\n\n" + MegatronArguments.helpText)

    @Option(help: "JSON config file (keys in snake_case, e.g. configs/gpt2-tiny.json).")
    var config: String?

    @Argument(parsing: .allUnrecognized, help: "Overrides: --train-iters 50 --save ckpt …")
    var overrides: [String] = []

    func run() throws {
        let start = Startup.begin(configPath: config, flags: overrides)
        let (cfg, runtime, blasNote, threads) = (start.config, start.runtime, start.blasNote, start.threads)
        let world = runtime.world
        let log = RankLog(enabled: world.rank == 0)
        do {
            let parallel = try ParallelState(
                world: world, tensor: cfg.tensorModelParallelSize, pipeline: cfg.pipelineModelParallelSize)
            log(parallel.layout.description)
            let context = TrainContext(config: cfg, parallel: parallel, log: log, threads: threads, blasNote: blasNote)
            switch cfg.modelType {
            case .gpt: try context.run(Trainer.gpt(config: cfg, log: log, threads: threads, parallel: parallel))
            case .bert: try context.run(Trainer.bert(config: cfg, log: log, threads: threads, parallel: parallel))
            }
        } catch {
            CLIErrors.fail(error, code: 1, runtime: runtime, rank: world.rank)
        }
        runtime.finalize()
    }
}

enum CLIErrors {
    /// Every rank validated the config; one all-reduce tells all of them whether any rank failed,
    /// before any other collective. The lowest failing rank prints its error; every rank exits 2.
    static func agreeOnConfig(_ error: ConfigError?, runtime: MPIRuntime) {
        let world = runtime.world
        let first =
            (try? world.allReduceMin(error == nil ? Int.max : world.rank)) ?? (error == nil ? Int.max : world.rank)
        guard first != Int.max else { return }
        if world.rank == first, let error {
            let prefix = world.size > 1 ? "error (rank \(world.rank)): " : "error: "
            FileHandle.standardError.write(Data((prefix + "\(error)\n").utf8))
        }
        runtime.finalize()
        fflush(nil)
        _exit(2)
    }

    /// Prints `error: …` (with the rank when there are several) and ends the process — and, under
    /// MPI, the whole job, so no other rank waits forever. A ConfigError (found late, e.g. by the
    /// memory preflight) always exits 2, as every configuration error does.
    static func fail(_ error: Error, code: Int32, runtime: MPIRuntime? = nil, rank: Int? = nil) -> Never {
        let code = error is ConfigError ? 2 : code
        let prefix = (runtime?.world.size ?? 1) > 1 ? "error (rank \(rank ?? 0)): " : "error: "
        FileHandle.standardError.write(Data((prefix + "\(error)\n").utf8))
        if let runtime, runtime.world.size > 1 { runtime.abort(code: code) }
        runtime?.finalize()
        fflush(nil)
        // _exit, not exit: after a failed write HDF5's atexit teardown would retry closing the
        // broken file and crash. Output is flushed and checkpoints are already safe on disk.
        _exit(code)
    }
}

enum CLIThreads {
    /// `num_threads` 0 means the cores this process may use divided by the ranks on this node.
    static func resolve(_ setting: Int) -> Int {
        if setting > 0 { return setting }
        return max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, MPIRuntime.ranksOnThisNode))
    }
}

/// What `train` does with a trainer of any model family: the start-up lines, resume, the loop.
struct TrainContext {
    let config: TrainingConfig
    let parallel: ParallelState
    let log: RankLog
    let threads: Int
    let blasNote: String

    /// `initialWeights` replaces resuming from `load` (finetuning starts from a pretrained model);
    /// `lossName` names the loss of the closing line.
    func run<C, D>(_ trainer: Trainer<C, D>, initialWeights: (() throws -> Void)? = nil, lossName: String? = nil) throws
    {
        let cfg = config, layout = parallel.layout
        for note in cfg.startupNotes { log(" > \(note)") }
        let sp = trainer.model.tensorParallel.sequenceParallel ? ", sequence parallel" : ""
        log(
            " > megatron: world \(layout.world) (tensor \(layout.tensor)\(sp) × pipeline \(layout.pipeline) × data "
                + "\(layout.data)), \(threads) thread(s) per rank\(IdleWait.sleeps ? " (waits sleep between polls)" : ""), "
                + "OpenBLAS \(BLAS.coreName) [blas_coretype \(blasNote)]"
        )
        log(
            " > \(trainer.model.modelDescription); micro-batch \(cfg.microBatchSize), global batch \(trainer.globalBatch); "
                + "activations \(trainer.activationBytes / (1 << 20)) MiB per rank")
        if let line = trainer.partition.pipelineDescription { log(" > \(line)") }
        // Test hook: MEGATRON_TEST_INJECT_OVERFLOW=3,7 writes +∞ into a gradient at those iterations.
        if let spec = ProcessInfo.processInfo.environment["MEGATRON_TEST_INJECT_OVERFLOW"] {
            trainer.injectOverflowAt = Set(
                spec.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) })
        }
        if let initialWeights { try initialWeights() } else { try trainer.loadIfRequested() }
        let metrics =
            parallel.world.rank == 0
            ? try cfg.metricsFile.map { try MetricsWriter(path: $0, truncate: cfg.load == nil) } : nil
        let summary = try trainer.run(metrics: metrics)
        if let l = summary.lastTrainLoss {
            let name = lossName ?? (cfg.modelType == .bert && cfg.bertBinaryHead ? "loss (lm + sop)" : "lm loss")
            log(" > done: iteration \(summary.lastIteration), \(name) \(String(format: "%.4f", l))")
        }
    }
}

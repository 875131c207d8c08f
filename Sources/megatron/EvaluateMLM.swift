// EvaluateMLM.swift — `megatron evaluate --task mlm`: a BERT checkpoint's masked-LM loss and
// accuracy and sentence-order loss and accuracy on validation samples built as in training (same
// seed, same masks), on any (t, p, d) grid: the validation split of the config's data (data_path,
// or the built-in corpus), or with --valid-data the whole of a sentence-split dataset. One pass
// covers every validation sample once (the last global batch wraps to the first samples) unless
// --eval-iters sets the number of global batches. Prints Megatron's validation block and writes the
// figures as JSON.
import Checkpoint
import Distributed
import Foundation
import MegatronCore

extension Evaluate {
    func evaluateMLM(config cfg: TrainingConfig, runtime: MPIRuntime, threads: Int) {
        let world = runtime.world
        let log = RankLog(enabled: world.rank == 0)
        do {
            let parallel = try ParallelState(
                world: world, tensor: cfg.tensorModelParallelSize, pipeline: cfg.pipelineModelParallelSize)
            let trainer = try Trainer.bert(config: cfg, log: log, threads: threads, parallel: parallel)
            let iteration = try ModelCheckpoint.loadWeights(
                from: CheckpointDirectory(root: load), chunks: trainer.chunks)
            let samples = trainer.data.validationSamples
            guard samples > 0 else {
                throw ConfigError.invalidValue(
                    key: "split", value: "\"\(cfg.split)\"",
                    rule: "leaves no validation samples; give a validation share or --valid-data PREFIX")
            }
            let passes =
                overrides.contains("--eval-iters")
                ? cfg.evalIters : (samples + trainer.globalBatch - 1) / trainer.globalBatch
            log(
                " > evaluate mlm: checkpoint \(load) iteration \(iteration); \(samples) validation samples, "
                    + "\(passes) global batches of \(trainer.globalBatch); grid tensor \(parallel.layout.tensor) × "
                    + "pipeline \(parallel.layout.pipeline) × data \(parallel.layout.data)")
            let t0 = MPIRuntime.wallTime
            guard let (loss, values) = try trainer.evaluateWithMetrics(iterations: passes) else {
                throw ConfigError.invalidValue(key: "eval_iters", value: "\(passes)", rule: "must be positive")
            }
            let last = trainer.chunks[trainer.chunks.count - 1], names = last.evaluationMetricNames
            let parts = last.lossComponentNames.count
            let labelled = zip(names, values).map { (label: $0.0.log, value: $0.1) }
            for line in TrainingLogFormat.validation(
                label: "iteration \(iteration) (checkpoint)", losses: Array(labelled.prefix(parts)),
                extra: Array(labelled.dropFirst(parts)))
            {
                log(line)
            }
            var results: [String: Any] = [
                "task": "mlm", "checkpoint": load, "iteration": iteration, "loss": loss,
                "samples": passes * trainer.globalBatch, "validation_samples": samples,
                "seconds": MPIRuntime.wallTime - t0, "seq_length": cfg.seqLength,
            ]
            for (name, value) in zip(names, values) { results[name.json] = value }
            if let prefix = validData.first { results["valid_data"] = prefix }
            if world.rank == 0, let path = resultsFile {
                let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
                try data.write(to: URL(fileURLWithPath: path))
            }
        } catch {
            CLIErrors.fail(error, code: 1, runtime: runtime, rank: world.rank)
        }
    }
}

// EvaluateFinetuned.swift — `megatron evaluate --task RACE|MNLI|QQP --load FINETUNED --valid-data
// F [F …]`: a finetuned BERT's accuracy on each file (or RACE split directory) given, every
// example once, on any (t, p, d) grid; Megatron's per-split result line, and the figures as JSON.
import Checkpoint
import Distributed
import Foundation
import MegatronCore

extension Evaluate {
    func evaluateFinetuned(_ task: FinetuneTask, config cfg: TrainingConfig, runtime: MPIRuntime, threads: Int) {
        let world = runtime.world
        let log = RankLog(enabled: world.rank == 0)
        do {
            let parallel = try ParallelState(
                world: world, tensor: cfg.tensorModelParallelSize, pipeline: cfg.pipelineModelParallelSize)
            let (vocabulary, tokenize) = try BertVocabulary.forConfig(cfg)
            var results: [String: Any] = ["task": task.rawValue, "checkpoint": load]
            var splits: [[String: Any]] = []
            for path in validData {
                let examples = try FinetuneEncoding.load(
                    task, paths: [path], tokenize: { tokenize(Array($0.utf8)) }, vocabulary: vocabulary,
                    seqLength: cfg.seqLength)
                let data = FinetuneData(train: [], valid: examples, config: cfg, parallel: parallel)
                let trainer = try Trainer.finetune(
                    config: cfg, task: task, data: data, vocabSize: vocabulary.size, log: RankLog(enabled: false),
                    threads: threads, parallel: parallel)
                let iteration = try ModelCheckpoint.loadWeights(
                    from: CheckpointDirectory(root: load), chunks: trainer.chunks)
                let batches = (examples.count + trainer.globalBatch - 1) / trainer.globalBatch
                guard let (_, metrics) = try trainer.evaluateWithMetrics(iterations: batches) else {
                    throw FinetuneDataError.bad(path: path, line: nil, reason: "holds no examples")
                }
                let accuracy = metrics[0], correct = Int((accuracy * Double(examples.count)).rounded())
                log(
                    String(
                        format: " > |%@ %@| checkpoint iteration %d: correct / total = %d / %d = %.4f %%",
                        task.rawValue, (path as NSString).lastPathComponent, iteration, correct, examples.count,
                        100 * accuracy))
                splits.append([
                    "valid_data": path, "accuracy": accuracy, "correct": correct, "total": examples.count,
                    "iteration": iteration,
                ])
            }
            results["splits"] = splits
            if world.rank == 0, let path = resultsFile {
                let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
                try data.write(to: URL(fileURLWithPath: path))
            }
        } catch {
            CLIErrors.fail(error, code: 1, runtime: runtime, rank: world.rank)
        }
    }
}

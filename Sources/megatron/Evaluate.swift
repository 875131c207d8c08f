// Evaluate.swift — `megatron evaluate`: Megatron's zero-shot evaluation of a GPT checkpoint on any
// (t, p, d) grid — WikiText-103 (average loss, perplexity, adjusted perplexity, token ratio) and
// LAMBADA (strict or not) — and a BERT checkpoint's masked-LM and sentence-order figures (--task
// mlm, EvaluateMLM.swift) or a finetuned BERT's accuracy on RACE, MNLI or QQP files
// (EvaluateFinetuned.swift). The model's shape comes from the checkpoint's stored config (or
// --config); every config key can be given as a flag (--micro-batch-size 8 --seq-length 1024
// --tensor-model-parallel-size 2 …). Prints Megatron's result line and writes the figures as JSON.
import ArgumentParser
import Distributed
import Foundation
import MegatronCore
import Tensor

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Evaluate a checkpoint: WikiText-103 perplexity or LAMBADA accuracy (GPT, Megatron's zero-shot method), or "
            + "masked-LM and sentence-order loss and accuracy (BERT).")

    @Option(help: "wikitext103, lambada (GPT); mlm, RACE, MNLI or QQP (BERT).") var task: String
    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "wiki.test.tokens (WikiText-103), lambada_test.jsonl (LAMBADA), for mlm a sentence-split dataset "
                + "prefix evaluated whole (default: the validation split of the config's data), for RACE/MNLI/QQP "
                + "one or more files or RACE split directories (each reported apart)"))
    var validData: [String] = []
    @Option(help: "Checkpoint directory (its latest iteration is evaluated).") var load: String
    @Option(help: "WikiText: tokens between window starts; each window scores its last this many (default 32).")
    var overlappingEval: Int = 32
    @Flag(help: "LAMBADA: the target is the whole last word (all its BPE pieces), not the last token.")
    var strictLambada = false
    @Option(help: "Write the results as JSON here.") var resultsFile: String?
    @Option(help: "Score only the first N windows/examples (benchmarks; the metrics then cover only those).")
    var limitWindows: Int?
    @Option(help: "Config file (default: the config stored in the checkpoint).") var config: String?
    @Argument(parsing: .allUnrecognized, help: "Config overrides: --micro-batch-size 8 --vocab-file … --merge-file …")
    var overrides: [String] = []

    func run() throws {
        let task = self.task.lowercased(), finetuned = FinetuneTask(rawValue: self.task.uppercased())
        guard ["wikitext103", "lambada", "mlm"].contains(task) || finetuned != nil else {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "task", value: "\"\(self.task)\"", rule: "must be wikitext103, lambada, mlm, RACE, MNLI or QQP"
                ),
                code: 2)
        }
        if task != "mlm" && validData.isEmpty {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "valid-data", value: "nothing",
                    rule: "\(self.task) needs its data (--valid-data wiki.test.tokens, lambada_test.jsonl, or the "
                        + "task's dev files)"), code: 2)
        }
        let bertTask = task == "mlm" || finetuned != nil
        let start = Startup.begin(
            configPath: config, flags: overrides, base: Startup.storedConfig(load: load, configPath: config)
        ) { cfg in
            // Evaluation reads only the weights and the task file.
            cfg.load = load; cfg.save = nil; cfg.saveInterval = nil; cfg.mockData = false
            if task != "mlm" {
                cfg.dataPath = []
            } else if let prefix = self.validData.first {
                cfg.dataPath = [prefix]; cfg.split = "0,100,0"  // the whole dataset is the validation set
            }
            cfg.metricsFile = nil; cfg.traceDir = nil; cfg.skipTrain = true
            if cfg.trainIters <= 0 { cfg.trainIters = 1 }
            // The grid is this run's (checkpoints load on any grid), not the training run's.
            if !overrides.contains("--tensor-model-parallel-size") { cfg.tensorModelParallelSize = 1 }
            if !overrides.contains("--pipeline-model-parallel-size") { cfg.pipelineModelParallelSize = 1 }
            if !overrides.contains(where: TrainingConfig.pipelineSplitFlags.contains) { cfg.resetPipelineSplit() }
            if !overrides.contains("--sequence-parallel") { cfg.sequenceParallel = false }
            cfg.useDistributedOptimizer = false
            // Batching is the evaluation's own: micro_batch_size × data-parallel size unless given.
            if !overrides.contains("--global-batch-size") { cfg.globalBatchSize = nil }
            if cfg.lr <= 0 { cfg.lr = 1 }  // unused: evaluation takes no step
        }
        let (cfg, runtime, threads) = (start.config, start.runtime, start.threads)
        if (cfg.modelType == .bert) != bertTask {
            let error = ConfigError.invalidValue(
                key: "model_type", value: "\"\(cfg.modelType.rawValue)\"",
                rule:
                    "zero-shot WikiText-103 and LAMBADA evaluate GPT checkpoints; a BERT checkpoint evaluates with "
                    + "--task mlm (pretrained) or its finetuning task (RACE, MNLI, QQP)")
            CLIErrors.fail(error, code: 2, runtime: runtime, rank: runtime.world.rank)
        }
        if task == "mlm" || finetuned != nil {
            if let finetuned {
                evaluateFinetuned(finetuned, config: cfg, runtime: runtime, threads: threads)
            } else {
                evaluateMLM(config: cfg, runtime: runtime, threads: threads)
            }
            runtime.finalize()
            return
        }
        let validData = self.validData[0]
        let world = runtime.world
        let log = RankLog(enabled: world.rank == 0)
        do {
            let parallel = try ParallelState(
                world: world, tensor: cfg.tensorModelParallelSize, pipeline: cfg.pipelineModelParallelSize)
            let tokenizer = try Tokenizers.make(config: cfg)
            let evaluator = try Evaluator(
                config: cfg, vocabSize: tokenizer.vocabSize, threads: threads, parallel: parallel)
            let iteration = try evaluator.load(from: load)
            let s = cfg.seqLength
            log(
                " > evaluate \(task) on \(validData): checkpoint \(load) iteration \(iteration); grid tensor "
                    + "\(parallel.layout.tensor) × pipeline \(parallel.layout.pipeline) × data "
                    + "\(parallel.layout.data); seq_length \(s), micro-batch \(cfg.microBatchSize), "
                    + "\(tokenizer.name)"
            )
            let terminal = world.rank == 0 && isatty(2) != 0
            let t0 = MPIRuntime.wallTime
            let progress = { (done: Int, total: Int) in
                guard terminal else { return }
                let rate = Double(done) / max(1e-9, MPIRuntime.wallTime - t0)
                let eta = Double(total - done) / max(1e-9, rate)
                FileHandle.standardError.write(
                    Data(
                        String(
                            format: "\r > windows %d/%d (replica 0), %.1f windows/s, ETA %.0f s   ", done, total, rate,
                            eta
                        ).utf8))
            }
            var results: [String: Any] = [
                "task": task, "checkpoint": load, "iteration": iteration, "valid_data": validData, "seq_length": s,
            ]
            if task == "wikitext103" {
                guard
                    let raw = FileManager.default.contents(atPath: validData).flatMap({
                        String(data: $0, encoding: .utf8)
                    })
                else {
                    throw EvaluationDataError.unreadable(path: validData)
                }
                let original = WikiTextDetokenizer.originalTokenCount(raw)
                let tokens = tokenizer.encode(Array(WikiTextDetokenizer.detokenize(raw).utf8))
                let windows = LMWindows(tokens: tokens, seqLength: s, overlap: overlappingEval, pad: tokenizer.eod)
                log(
                    " > \(original) original tokens, \(tokens.count) \(tokenizer.name) tokens, \(windows.count) "
                        + "windows (overlapping_eval \(windows.overlap))"
                )
                let count = min(windows.count, limitWindows ?? windows.count)
                let totals = try evaluator.run(count: count, window: windows.window, progress: progress)
                if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
                // Megatron divides by T − 1, which is the scored count when every window runs.
                let avg =
                    totals.lossSum / Double(count < windows.count ? max(1, totals.scoredTokens) : tokens.count - 1)
                let ratio = Double(tokens.count - 1) / Double(original - 1)
                let ppl = Foundation.exp(min(20, avg)), adjusted = Foundation.exp(min(20, avg * ratio))
                log(
                    String(
                        format:
                            " validation results on WIKITEXT103 | avg loss: %.4E | ppl: %.4E | adjusted ppl: %.4E | "
                            + "token ratio: %@ |",
                        avg, ppl, adjusted, "\(ratio)"))
                results.merge([
                    "avg_loss": avg, "ppl": ppl, "adjusted_ppl": adjusted, "token_ratio": ratio,
                    "num_original_tokens": original,
                    "num_tokenized_tokens": tokens.count, "scored_tokens": totals.scoredTokens, "windows": count,
                    "tokens_per_s": Double(count * s) / max(1e-9, MPIRuntime.wallTime - t0),
                    "overlapping_eval": windows.overlap,
                ]) { $1 }
            } else {
                let (examples, truncated) = try LambadaExamples.load(
                    path: validData, tokenizer: tokenizer, strict: strictLambada, seqLength: s)
                log(
                    " > \(examples.count) LAMBADA examples "
                        + "(\(strictLambada ? "strict: the whole last word" : "non-strict: the last token"))"
                        + (truncated > 0
                            ? "; \(truncated) longer than seq_length + 1 = \(s + 1) tokens keep their last \(s + 1) "
                                + "(context cut from the left)" : "")
                )
                let totals = try evaluator.run(
                    count: min(examples.count, limitWindows ?? examples.count), window: { examples[$0] },
                    progress: progress)
                if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
                let accuracy = Double(totals.allCorrect) / Double(max(1, totals.windows))
                log(
                    String(
                        format:
                            " validation results on LAMBADA | number correct: %.4E | total examples: %.4E | avg "
                            + "accuracy: %.4E",
                        Double(totals.allCorrect), Double(totals.windows), accuracy))
                results.merge([
                    "correct": totals.allCorrect, "total": totals.windows, "accuracy": accuracy,
                    "strict": strictLambada, "truncated_examples": truncated,
                    "target_loss": totals.lossSum / Double(max(1, totals.scoredTokens)),
                ]) { $1 }
            }
            results["seconds"] = MPIRuntime.wallTime - t0
            if world.rank == 0, let path = resultsFile {
                let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
                try data.write(to: URL(fileURLWithPath: path))
            }
        } catch {
            CLIErrors.fail(error, code: 1, runtime: runtime, rank: world.rank)
        }
        runtime.finalize()
    }
}

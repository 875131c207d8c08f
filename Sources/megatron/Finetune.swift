// Finetune.swift — `megatron finetune`: Megatron's tasks/main.py for BERT — RACE (multiple choice),
// MNLI and QQP (sentence-pair classification) — from a pretrained BERT checkpoint of any grid,
// on any (t, p, d):
//   megatron finetune --task MNLI --train-data train.tsv --valid-data dev_matched.tsv \
//       --pretrained-checkpoint CKPT --epochs 3 --config configs/bert-tiny.json [--key value …]
// train_iters = epochs × (training examples ÷ global batch) unless --train-iters is given (to stop
// early); validation (accuracy) after every epoch and every eval_interval (default: an epoch),
// over every validation example; with `save`, the checkpoint of the best validation accuracy is kept in
// SAVE/best (its figure in SAVE/best/best.json) beside the latest in SAVE. With --load naming a
// checkpoint of this run, training resumes from it (mid-epoch, exactly); otherwise the encoder and
// pooler come from --pretrained-checkpoint and the task head starts from the seed.
import ArgumentParser
import Checkpoint
import Distributed
import Foundation
import MegatronCore

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Finetune a pretrained BERT on RACE, MNLI or QQP (Megatron's tasks/main.py).")

    @Option(help: "RACE, MNLI or QQP.") var task: String
    @Option(parsing: .upToNextOption, help: "Training files: RACE split directories, or GLUE TSV files.")
    var trainData: [String]
    @Option(parsing: .upToNextOption, help: "Validation files (same formats).") var validData: [String]
    @Option(help: "The BERT checkpoint to start from (any grid; its heads are not used).")
    var pretrainedCheckpoint: String?
    @Option(help: "Passes over the training examples.") var epochs: Int = 3
    @Option(help: "JSON config file (a BERT config, e.g. configs/bert-tiny.json).") var config: String?
    @Argument(parsing: .allUnrecognized, help: "Config overrides: --micro-batch-size 8 --lr 2e-5 …")
    var overrides: [String] = []

    func run() throws {
        guard let task = FinetuneTask(rawValue: self.task.uppercased()) else {
            CLIErrors.fail(
                ConfigError.invalidValue(key: "task", value: "\"\(self.task)\"", rule: "must be RACE, MNLI or QQP"),
                code: 2)
        }
        guard epochs >= 1 else {
            CLIErrors.fail(ConfigError.invalidValue(key: "epochs", value: "\(epochs)", rule: "must be ≥ 1"), code: 2)
        }
        let start = Startup.begin(configPath: config, flags: overrides) { cfg in
            if cfg.trainIters <= 0 { cfg.trainIters = 1 }  // set from the epochs below
        }
        let (base, runtime, blasNote, threads) = (start.config, start.runtime, start.blasNote, start.threads)
        let world = runtime.world
        let log = RankLog(enabled: world.rank == 0)
        if base.modelType != .bert {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "model_type", value: "\"\(base.modelType.rawValue)\"", rule: "finetuning tasks are for BERT"),
                code: 2, runtime: runtime, rank: world.rank)
        }
        do {
            let parallel = try ParallelState(
                world: world, tensor: base.tensorModelParallelSize, pipeline: base.pipelineModelParallelSize)
            log(parallel.layout.description)
            let (vocabulary, tokenize) = try BertVocabulary.forConfig(base)
            let encode = { (text: String) in tokenize(Array(text.utf8)) }
            let train = try FinetuneEncoding.load(
                task, paths: trainData, tokenize: encode, vocabulary: vocabulary, seqLength: base.seqLength)
            let valid = try FinetuneEncoding.load(
                task, paths: validData, tokenize: encode, vocabulary: vocabulary, seqLength: base.seqLength)
            let cfg = try schedule(
                base, trainExamples: train.count, validExamples: valid.count, data: parallel.layout.data)
            log(
                " > finetune \(task.rawValue): \(train.count) training and \(valid.count) validation examples; "
                    + "\(epochs) epoch(s) of \(cfg.trainIters / epochs) iterations, validation every "
                    + "\(cfg.evalInterval) iterations over \(cfg.evalIters) global batch(es)")
            let data = FinetuneData(train: train, valid: valid, config: cfg, parallel: parallel)
            let trainer = try Trainer.finetune(
                config: cfg, task: task, data: data, vocabSize: vocabulary.size, log: log, threads: threads,
                parallel: parallel)
            trainer.epochIterations = train.count / trainer.globalBatch
            if let save = cfg.save {
                trainer.keepBest = (
                    "accuracy", CheckpointDirectory(root: (save as NSString).appendingPathComponent("best"))
                )
            }
            let context = TrainContext(config: cfg, parallel: parallel, log: log, threads: threads, blasNote: blasNote)
            let resume = cfg.load.map { (try? CheckpointDirectory(root: $0).latestIteration()) != nil } ?? false
            guard resume || pretrainedCheckpoint != nil else {
                throw ConfigError.invalidValue(
                    key: "pretrained-checkpoint", value: "nothing",
                    rule:
                        "finetuning starts from a pretrained BERT (or resumes with --load from a finetuning checkpoint)"
                )
            }
            try context.run(
                trainer,
                initialWeights: resume
                    ? nil
                    : {
                        let path = pretrainedCheckpoint!
                        let iteration = try ModelCheckpoint.loadWeights(
                            from: CheckpointDirectory(root: path), chunks: trainer.chunks,
                            keeping: { $0.hasPrefix("classification_head.") || $0.hasPrefix("multichoice_head.") })
                        log(
                            " > loaded the pretrained BERT from \(path) (iteration \(iteration)); the \(task.rawValue) head is new"
                        )
                    }, lossName: "\(task.rawValue) loss")
        } catch {
            CLIErrors.fail(error, code: 1, runtime: runtime, rank: world.rank)
        }
        runtime.finalize()
    }

    /// The config with the run's length from the epochs: unless given, train_iters, and validation
    /// after every epoch over every validation example.
    func schedule(_ c: TrainingConfig, trainExamples: Int, validExamples: Int, data d: Int) throws -> TrainingConfig {
        var cfg = c
        let gbs = c.globalBatchSize ?? c.microBatchSize * d
        guard trainExamples >= gbs else {
            throw ConfigError.invalidValue(
                key: "train-data", value: "\(trainExamples) examples",
                rule: "needs at least one global batch (\(gbs) examples)")
        }
        let perEpoch = trainExamples / gbs
        if !overrides.contains("--train-iters") { cfg.trainIters = epochs * perEpoch }
        if !overrides.contains("--eval-interval") { cfg.evalInterval = perEpoch }
        if !overrides.contains("--eval-iters") {
            cfg.evalIters = validExamples == 0 ? 0 : (validExamples + gbs - 1) / gbs
        }
        return cfg
    }
}

// TrainingForwardScoring.swift — the training model's full forward over one sequence, from a
// checkpoint and its stored config: each position's loss for the next token and whether that token
// is the arg-max. Tests of generation and of imported models hold their figures against it; and
// the stored config itself.
import Checkpoint
import Foundation
import MegatronCore
import XCTest

extension XCTestCase {
    /// The training config a checkpoint directory stores (its config JSON applied to the defaults).
    func storedTrainingConfig(_ checkpoint: URL) throws -> TrainingConfig {
        var cfg = TrainingConfig()
        try ConfigLoader.applyJSON(
            Data(try XCTUnwrap(CheckpointReader.storedConfigJSON(root: checkpoint.path)).utf8),
            source: checkpoint.path, to: &cfg)
        return cfg
    }

    /// Losses and arg-max flags of positions 0 ..< ids.count − 1 (predicting ids[1...]) of the GPT in
    /// `checkpoint` (its stored config, seq_length set to the sequence's, then `adjust`ed) over a
    /// vocabulary of `vocab`.
    func trainingForwardScores(
        checkpoint: URL, ids: [Int32], vocab: Int, adjust: (inout TrainingConfig) -> Void = { _ in }
    ) throws -> (losses: [Double], isArgmax: [Bool]) {
        var cfg = try storedTrainingConfig(checkpoint)
        cfg.seqLength = ids.count
        adjust(&cfg)
        let model = GPTModel(config: GPTConfig(training: cfg, vocabSize: vocab), microBatch: 1, threads: 1)
        _ = try ModelCheckpoint.loadWeights(from: CheckpointDirectory(root: checkpoint.path), chunks: [model])
        let acts = model.makeActivations()
        for i in ids.indices {
            acts.tokens.base[i] = ids[i]
            acts.targets.base[i] = i + 1 < ids.count ? ids[i + 1] : 0
        }
        let scoring = TokenScoring(rows: Array(0..<(ids.count - 1)))
        acts.scoring = scoring
        _ = try model.lossSum(acts)
        return (scoring.losses, scoring.targetIsArgmax)
    }
}

// Evaluator.swift — forward-only scoring of evaluation windows on any (t, p, d) grid: the model is
// built on this rank's place in the grid (chunks, tensor slices) and loaded from a checkpoint
// (weights only); data-parallel replica r scores windows r, r + d, …, in batches of
// micro_batch_size × m micro-batches (the forward-only pipeline schedule when p > 1). Only the
// scored label positions reach the LM head. Sums are reduced over the pipeline and data groups,
// so every rank ends with the same totals.
import Checkpoint
import Foundation
import Tensor

public struct EvalTotals: Sendable {
    /// Σ token loss over scored positions, scored positions, windows whose every scored target is
    /// the arg-max prediction, windows.
    public var lossSum = 0.0
    public var scoredTokens = 0
    public var allCorrect = 0
    public var windows = 0
}

public final class Evaluator {
    public let config: TrainingConfig
    public let parallel: ParallelState
    /// This rank's chunks (forward only) and their activation memory or pipeline executor.
    public let partition: ModelPartition<GPTModel>
    let microBatch: Int, microbatches: Int

    public init(config c: TrainingConfig, vocabSize: Int, threads: Int, parallel: ParallelState) throws {
        config = c
        self.parallel = parallel
        let b = c.microBatchSize, d = parallel.layout.data, p = parallel.layout.pipeline
        microBatch = b
        // With a pipeline, 2p micro-batches in flight keep the stages busy unless a batch size is given.
        microbatches = max(1, c.globalBatchSize.map { $0 / (b * d) } ?? (p > 1 ? 2 * p : 1))
        var options = ModelPartition<GPTModel>.Options(microbatches: microbatches, training: false)
        options.scatterGather = c.scatterGatherTensorsInPipeline
        partition = try .gpt(config: c, vocabSize: vocabSize, threads: threads, parallel: parallel, options: options)
    }

    public var chunks: [GPTModel] { partition.chunks }

    /// Loads the model weights of the latest checkpoint in `directory` (written on any grid).
    public func load(from directory: String) throws -> Int {
        try ModelCheckpoint.loadWeights(from: CheckpointDirectory(root: directory), chunks: chunks)
    }

    /// Scores `count` windows (`window(i)`); `progress(windows done by this replica, of its total)`
    /// is called after every batch.
    public func run(count: Int, window: (Int) -> EvalWindow, progress: (Int, Int) -> Void = { _, _ in }) throws
        -> EvalTotals
    {
        let d = parallel.layout.data, dpRank = parallel.dataRank, b = microBatch, m = microbatches
        let mine = stride(from: dpRank, to: count, by: d).map { $0 }
        let s = config.seqLength
        var totals = EvalTotals()
        var batchStart = 0
        while batchStart < mine.count {
            var batchWindows: [[EvalWindow?]] = []  // [micro-batch][sample]
            for k in 0..<m {
                batchWindows.append(
                    (0..<b).map { j in
                        let i = batchStart + k * b + j
                        return i < mine.count ? window(mine[i]) : nil
                    })
            }
            let fill = { (k: Int, acts: TransformerActivations) in
                var rows: [Int] = []
                for j in 0..<b {
                    let w = batchWindows[k][j]
                    for pos in 0..<s {
                        acts.tokens.base[pos * b + j] = w?.tokens[pos] ?? 0
                        acts.targets.base[pos * b + j] = w?.tokens[pos + 1] ?? 0
                    }
                    for pos in w?.scored ?? [] { rows.append(pos * b + j) }
                }
                rows.sort()
                acts.scoring = TokenScoring(rows: rows)
            }
            let collect = { (k: Int, acts: TransformerActivations) in
                guard let scoring = acts.scoring else { return }
                var allRight = [Bool](repeating: true, count: b)
                for (idx, row) in scoring.rows.enumerated() {
                    totals.lossSum += scoring.losses[idx]
                    if !scoring.targetIsArgmax[idx] { allRight[row % b] = false }
                }
                totals.scoredTokens += scoring.rows.count
                for j in 0..<b where batchWindows[k][j] != nil {
                    totals.windows += 1
                    if allRight[j] { totals.allCorrect += 1 }
                }
            }
            if let executor = partition.executor, let schedule = partition.evalSchedule {
                _ = try executor.run(schedule, iteration: 0, gradScale: nil, fill: fill, collect: collect)
            } else {
                let model = chunks[0], acts = partition.activations[0]
                for k in 0..<m where batchWindows[k].contains(where: { $0 != nil }) {
                    fill(k, acts)
                    _ = try model.lossSum(acts)
                    collect(k, acts)
                }
            }
            batchStart += b * m
            progress(min(batchStart, mine.count), mine.count)
        }
        for c in chunks.indices { for acts in partition.activationSets(chunk: c) { acts.scoring = nil } }
        // Results live on the last stage of each replica: sum over the pipeline, then over replicas.
        var sums = [totals.lossSum, Double(totals.scoredTokens), Double(totals.allCorrect), Double(totals.windows)]
        for group in [parallel.pipeline, parallel.data] where group.size > 1 {
            for i in sums.indices { sums[i] = try group.allReduceSum(sums[i]) }
        }
        return EvalTotals(
            lossSum: sums[0], scoredTokens: Int(sums[1].rounded()), allCorrect: Int(sums[2].rounded()),
            windows: Int(sums[3].rounded()))
    }
}

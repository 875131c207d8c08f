// TrainingReport.swift — what the Trainer reports per iteration: the metrics of each step (one JSON
// line), the memory report after the first step, and Megatron's log line averaged over the
// iterations since the last one (with the tensor-parallel traffic and the measured pipeline bubble
// beside the theory when they apply).
import Foundation

struct TrainingReport<Chunk: ModelChunk, Data: TrainingBatches> where Data.Activations == Chunk.Activations {
    let trainer: Trainer<Chunk, Data>
    private var window = (
        iters: 0, loss: 0.0, ms: 0.0, commBytes: 0, commS: 0.0, skipped: 0, bubble: 0.0, theory: 0.0, tokens: 0.0,
        flops: 0.0
    )
    /// Σ of each loss part over the window's applied steps.
    private var parts: [Double]
    private var reportedMemory = false

    init(trainer: Trainer<Chunk, Data>) {
        self.trainer = trainer
        parts = trainer.chunks[trainer.chunks.count - 1].lossComponentNames.map { _ in 0 }
    }

    /// The metrics of the step that just ended (`ms` long, at loss scale `lossScale`), added to the window.
    mutating func record(_ result: TrainingStepResult, ms: Double, lossScale: Double) throws -> IterationMetrics {
        let t = trainer, parallel = t.parallel, batch = t.lastGlobalBatch
        let tokens = Double(batch * t.config.seqLength), comm = parallel.tensor.counters
        // FLOPs of the iteration (Megatron's formula) at its global batch (which a ramp changes).
        let flops = t.model.flopsPerIteration(globalBatch: batch)
        var m = IterationMetrics(
            iteration: t.progress.iteration, consumedSamples: t.progress.consumedSamples, lmLoss: result.loss,
            lr: result.lr, gradNorm: result.gradNorm, stepMs: ms, tokensPerSecond: tokens / (ms / 1000),
            tflops: flops / (ms / 1000) / 1e12 / Double(parallel.world.size), globalBatchSize: batch,
            skippedIterations: result.skipped ? 1 : 0, nanIterations: 0,
            communication: parallel.groups.map { ($0.0, $0.1.counters.bytes, $0.1.counters.seconds) })
        m.lossScale = lossScale
        let names = t.chunks[t.chunks.count - 1].lossComponentNames
        m.lossComponents = zip(names, result.components).map { ($0.0.json, $0.1) }
        if !result.skipped { for (i, v) in result.components.enumerated() where i < parts.count { parts[i] += v } }
        m.activationBytes = t.activationBytes
        let layerMemory = t.layerActivationBytes
        m.layerActivationBytes = layerMemory.held
        m.layerActivationFormulaBytes = layerMemory.formula
        m.peakResidentMB = peakResidentMegabytes()
        if !reportedMemory {
            reportedMemory = true
            t.log(
                String(
                    format:
                        " [Rank %d] (after %d iterations) memory (MB) | activations: %.1f | peak resident: %.1f | "
                        + "transformer layers per micro-batch: %.2f held vs %.2f by Korthikanti et al. (Table 2 "
                        + "at %d-byte elements)",
                    parallel.world.rank, m.iteration, Double(m.activationBytes) / 1048576, m.peakResidentMB,
                    Double(layerMemory.held) / 1048576, layerMemory.formula / 1048576,
                    (t.config.bf16 || t.config.fp16) ? 2 : 4))
        }
        let microbatches = batch / (t.microBatch * parallel.layout.data)
        if let times = t.lastPipelineTimes, let schedule = t.partition.trainSchedule(microbatches: microbatches) {
            let ranks = try PipelineBubble.gather(times, world: parallel.world)
            m.pipelineIdle = ranks.map(\.idle)
            m.pipelineBubble = PipelineBubble.measured(ranks)
            m.pipelineBubbleTheory = PipelineBubble.theory(
                schedule, ranks: ranks, grid: parallel.layout)
            window.bubble += m.pipelineBubble ?? 0
            window.theory += m.pipelineBubbleTheory ?? 0
        }
        window.iters += 1; window.loss += result.skipped ? 0 : result.loss; window.ms += ms
        window.tokens += tokens; window.flops += flops
        window.commBytes += comm.bytes; window.commS += comm.seconds
        if result.skipped { window.skipped += 1 }
        return m
    }

    /// Megatron's log line for the window since the last one (then a new window starts), with the
    /// rates and gradient norm of its last step's `result`.
    mutating func windowLine(_ result: TrainingStepResult) -> String {
        let (lr, decoupledLR, gradNorm) = (result.lr, result.decoupledLR, result.gradNorm)
        let t = trainer, world = Double(t.parallel.world.size), avgMs = window.ms / Double(window.iters)
        var line = TrainingLogFormat.line(
            iteration: t.progress.iteration, trainIters: t.config.trainIters,
            consumedSamples: t.progress.consumedSamples, msPerIteration: avgMs,
            tflopsPerRank: window.flops / (window.ms / 1000) / 1e12 / world,
            tokensPerSecond: window.tokens / (window.ms / 1000), lr: lr, decoupledLR: decoupledLR,
            globalBatch: t.lastGlobalBatch,
            // Megatron: skipped steps are not averaged.
            lmLoss: window.loss / Double(max(1, window.iters - window.skipped)),
            lossScale: Double(t.lossScaler?.scale ?? 1), gradNorm: gradNorm, skipped: window.skipped, nan: 0,
            components: zip(t.chunks[t.chunks.count - 1].lossComponentNames, parts).map {
                ($0.0.log, $0.1 / Double(max(1, window.iters - window.skipped)))
            })
        if t.parallel.layout.tensor > 1 {
            let n = Double(window.iters)
            line += String(
                format: " tp comm per iteration: %.2f MB, %.1f ms |", Double(window.commBytes) / n / 1e6,
                window.commS / n * 1000)
        }
        if let s = t.partition.trainSchedule {
            line += String(
                format: " pipeline bubble: measured %.3f vs theory %@ = %.3f |", window.bubble / Double(window.iters),
                PipelineBubble.theoryName(s), window.theory / Double(window.iters))
        }
        // Time to finish at this interval's pace (not Megatron's; after its fields, so parsers of them are unaffected).
        let remaining = Double(max(0, t.config.trainIters - t.progress.iteration)) * avgMs / 1000
        line += " time to finish: \(TrainingLogFormat.duration(remaining)) |"
        window = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        parts = parts.map { _ in 0 }
        return line
    }
}

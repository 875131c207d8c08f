// TrainingStep.swift — one iteration k of the Trainer:
//     zero grads → micro-batches: forward+backward (loss scaled by scale/(tokens·microbatches·d),
//       and by the micro-batch's own lossGradientWeight under a loss mask),
//       in a loop with gradient accumulation, or the pipeline schedule (then the tied embedding's
//       gradients are summed over the embedding group)
//     → data-parallel reduction (all-reduce or reduce-scatter, started during the last backward)
//     → optimizer: finalize → [unscale, overflow anywhere → skip] → grad norm → clip → the update (AdamW or SGD) at lr(k)
//     → 16-bit weights from the main parameters → schedule += global batch
import Distributed
import Tensor

/// What one iteration did.
public struct TrainingStepResult: Sendable {
    public var loss: Double
    /// ‖g‖ before clipping; nil when the step was skipped.
    public var gradNorm: Double?
    /// Gradient elements exactly 0 before clipping (with log_num_zeros_in_grad).
    public var zeroGradients: Int? = nil
    public var lr: Double
    /// The word embedding's learning rate under decoupled_lr.
    public var decoupledLR: Double? = nil
    /// The loss scaler found an overflow: no update, the scale backs off.
    public var skipped: Bool
    /// The model's loss parts (ModelChunk.lossComponentNames), averaged like the loss.
    public var components: [Double] = []
}

extension Trainer {
    public typealias StepResult = TrainingStepResult

    /// One iteration.
    public func step() throws -> StepResult {
        let iteration = progress.iteration + 1
        let batch = currentGlobalBatch, m = batch / (microBatch * parallel.layout.data)
        lastGlobalBatch = batch
        timer.measure("zero grads") { for chunk in chunks { chunk.grads.zero() } }
        let tokens = model.lossUnitsPerMicrobatch * m * parallel.layout.data
        // Every data-parallel rank scales by the global token count; the reduction then sums. (A
        // micro-batch whose loss mask counts fewer rows carries its own factor: lossGradientWeight.)
        let lossScale = lossScaler?.scale ?? 1
        let gradScale = Float(Double(lossScale) / Double(tokens))
        defer { CommunicationProgress.end() }  // on every way out, errors included (end() is idempotent)
        var (lossSum, parts, units) = try runMicrobatches(
            iteration: iteration, microbatches: m, gradScale: gradScale)
        if let buckets = partition.buckets {
            if partition.executor != nil { buckets.beginLastMicrobatch() }
            let backwardEnded = MPIRuntime.wallTime
            try timer.measure("dp gradient reduction (wait)") { try buckets.finish(backwardEnded: backwardEnded) }
            CommunicationProgress.end()  // nothing is outstanding any more: stop probing before the reductions below
            if parallel.layout.data > 1 { lossSum = try parallel.data.allReduceSum(lossSum) }
        }
        if parallel.layout.data > 1 {
            parts = try parts.map { try parallel.data.allReduceSum($0) }
            if data.lossUnitsVary { units = try parallel.data.allReduceSum(units) }
        }
        let components = parts.map { $0 / Double(m * parallel.layout.data) }
        try optimizer.finalizeGradients()
        if injectOverflowAt.contains(iteration) && parallel.tensorRank == 0 && parallel.pipelineRank == 0 {
            optimizer.injectOverflow()
        }
        // The mean over the loss's units (all tokens, or those the loss masks count: Megatron's
        // reported lm loss); 0 / 0 when a mask left none.
        if !data.lossUnitsVary { units = Double(tokens) }
        let loss = units > 0 ? lossSum / units : 0
        let lr = schedule.learningRate, decoupledLR = decoupledLearningRate
        let lastCheckpoint = lastSavedIteration.flatMap { saveDirectory?.iterationPath($0) } ?? config.load
        guard loss.isFinite else {
            throw TrainingError.nonFiniteLoss(iteration: iteration, lr: lr, lastCheckpoint: lastCheckpoint)
        }
        if lossScaler != nil {
            let overflow = try timer.measure("unscale + overflow check") {
                try optimizer.unscaleAndFindNonFinite(scale: lossScale)
            }
            lossScaler?.update(foundOverflow: overflow)
            if overflow {
                advance(to: iteration, samples: batch, updated: false)
                return StepResult(
                    loss: loss, gradNorm: nil, lr: lr, decoupledLR: decoupledLR, skipped: true, components: components)
            }
        }
        let norm = try timer.measure("grad norm") { try optimizer.gradientNorm() }
        let zeros = config.logNumZerosInGrad ? try optimizer.zeroGradientCount() : nil
        guard norm.isFinite else {
            throw TrainingError.nonFiniteGradient(iteration: iteration, lr: lr, lastCheckpoint: lastCheckpoint)
        }
        let coefficient = GradClipping.coefficient(norm: norm, maxNorm: config.clipGrad)
        try currentTracer.span("optimizer", category: "optimizer") {
            try timer.measure(optimizer.updatePhase) {
                try optimizer.update(
                    lr: Float(lr), decoupledLR: decoupledLR.map(Float.init), clipCoefficient: coefficient)
            }
            timer.measure("16-bit weights from main parameters") { for chunk in chunks { chunk.syncWeights() } }
        }
        advance(to: iteration, samples: batch, updated: true)
        return StepResult(
            loss: loss, gradNorm: norm, zeroGradients: zeros, lr: lr, decoupledLR: decoupledLR, skipped: false,
            components: components)
    }

    /// Megatron's decoupled_lr: the word embedding's learning rate now — the same schedule from
    /// decoupled_lr to decoupled_min_lr (min_lr when not given); nil without it.
    var decoupledLearningRate: Double? {
        guard let peak = config.decoupledLR else { return nil }
        var decoupled = schedule
        decoupled.maxLR = peak
        decoupled.minLR = config.decoupledMinLR ?? config.minLR
        return decoupled.learningRate
    }

    /// Counts the iteration's samples; the LR schedule advances only when the step updated.
    private func advance(to iteration: Int, samples: Int, updated: Bool) {
        if updated { schedule.advance(samples: samples) }
        progress.iteration = iteration
        progress.consumedSamples += samples
    }

    /// Forward and backward of the iteration's `microbatches` micro-batches; returns the summed loss,
    /// the summed loss parts and the summed loss units (ModelChunk.lossUnits; summed over the
    /// pipeline only when they vary), on every rank of the pipeline.
    func runMicrobatches(iteration: Int, microbatches: Int, gradScale: Float) throws -> (Double, [Double], Double) {
        let consumed = progress.consumedSamples, last = chunks[chunks.count - 1]
        var parts = [Double](repeating: 0, count: last.lossComponentNames.count), units = 0.0
        func add(_ acts: Chunk.Activations) {
            for (i, v) in last.lossComponents(acts).enumerated() { parts[i] += v }
            units += Double(last.lossUnits(acts))
        }
        if let executor = partition.executor, let schedule = partition.trainSchedule(microbatches: microbatches) {
            let start = MPIRuntime.wallTime
            let loss = try executor.run(
                schedule, iteration: iteration, gradScale: gradScale,
                fill: { micro, acts in
                    data.fillTraining(consumedSamples: consumed, micro: micro, microbatches: microbatches, acts)
                },
                collect: { _, acts in add(acts) })
            try partition.allReduceTiedGradients()
            let total = try parallel.pipeline.allReduceSum(loss)
            parts = try parts.map { try parallel.pipeline.allReduceSum($0) }
            if data.lossUnitsVary { units = try parallel.pipeline.allReduceSum(units) }
            lastPipelineTimes = PipelinePassTimes(
                idle: max(0, 1 - executor.computeSeconds / max(1e-9, MPIRuntime.wallTime - start)),
                forward: executor.forwardSeconds, backward: executor.backwardSeconds, weight: executor.weightSeconds)
            return (total, parts, units)
        }
        let acts = partition.activations[0], d = parallel.layout.data
        var lossSum = 0.0
        for micro in 0..<microbatches {
            timer.measure("data") {
                data.fillTraining(consumedSamples: consumed, micro: micro, microbatches: microbatches, acts)
            }
            if micro == microbatches - 1, let buckets = partition.buckets {
                // The last micro-batch's backward finishes gradients: their buckets start reducing at once.
                buckets.beginLastMicrobatch()
                model.onGradientsFinal = { buckets.markFinal(chunk: 0, slots: $0) }
                model.sparseWordGradient = buckets.sparseEnding?.rows
                CommunicationProgress.begin(tester: { buckets.progress() })  // ended after the wait (step)
            }
            defer { model.onGradientsFinal = nil; model.sparseWordGradient = nil }
            let ctx = PassContext(iteration: iteration, microbatch: micro * d + parallel.dataRank, training: true)
            lossSum += try currentTracer.span("forward+backward mb \(micro)", category: "forward-backward") {
                let loss = try model.forward(acts, ctx, gradScale: gradScale) ?? 0
                try model.backward(acts, ctx)
                return loss
            }
            add(acts)
        }
        return (lossSum, parts, units)
    }
}

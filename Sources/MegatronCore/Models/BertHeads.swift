// BertHeads.swift — BERT's heads on the final-norm output y [n, h] (all rows), forward and, when
// training, backward fused in (as GPT's LM head), leaving ∂loss/∂y in `core.headGradient`:
//   masked-LM (Megatron's BertLMHead), on the k masked rows only:
//     X = y[masked]; D = X·Wdᵀ + bd; G = GELU(D); Y = LN(G); logits = Y·Eᵀ + bias (vocab-parallel)
//     loss_lm = Σ CE / k
//   sentence order (pooler + binary head), on token 0 of each of the b sequences (rows 0 ..< b):
//     P = tanh(y[0..<b]·Wpᵀ + bp); z = P·Wbᵀ + bb; loss_sop = Σ CE(z, swapped) / b
//   finetuning replaces both with one head on the pooled output (BertTask): classification
//     (z [b, classes], Σ CE / b) or multiple choice (one score per sequence, CE over each
//     question's options, Σ / questions)
// The vocab-parallel cross entropy leaves each tensor rank a part of ∂loss/∂Y; it is summed over
// the tensor group before the replicated dense, GELU and LayerNorm backward, so every rank then
// holds the whole gradient of every head parameter and of y.
import Foundation
import Tensor

extension BertModel {
    /// Both heads for the micro-batch in `m` (after the final norm); their backward when `gradScale`
    /// is given, scaled by it. Returns loss_lm + loss_sop and records the parts in `m`.
    func heads(_ m: BertActivations, _ ctx: PassContext, gradScale: Float?) throws -> Double {
        guard let mem = m.head else { return 0 }
        let core = m.core, h = config.transformer.hiddenSize, n = core.rows
        if gradScale != nil { core.headGradient.update(repeating: 0, count: n * h) }
        guard config.task == .pretraining else {
            return timer.measure(PhaseLabel.taskHead) { pooledHead(m, mem, ctx, gradScale: gradScale) }
        }
        var loss = try timer.measure(PhaseLabel.maskedLMHead) {
            try maskedLMHead(m, mem, gradScale: gradScale, deferring: ctx.deferWeightGradients)
        }
        if config.binaryHead {
            loss += timer.measure(PhaseLabel.sentenceOrderHead) { pooledHead(m, mem, ctx, gradScale: gradScale) }
        }
        return loss
    }

    /// The masked-LM head on the rows whose label is ≥ 0. Returns Σ CE / k (0 when nothing is masked).
    /// `deferring` (a zero-bubble F pass): the output layer's weight gradient waits in the set's queue
    /// for the W pass, reading Y, which therefore stays in `mem.norm` until then.
    func maskedLMHead(_ m: BertActivations, _ mem: BertHeadMemory, gradScale: Float?, deferring: Bool = false) throws
        -> Double
    {
        let core = m.core, c = config.transformer, h = c.hiddenSize, n = core.rows, pr = precision
        guard let wd = slots.lmDenseWeight, let bd = slots.lmDenseBias, let lw = slots.lmNormWeight,
            let lb = slots.lmNormBias, let ob = slots.outputBias, let out = slots.outputLayer
        else { return 0 }
        var rows: [Int] = []
        for r in 0..<n where m.labels.base[r] >= 0 { rows.append(r) }
        let k = rows.count
        m.maskedRows = k
        m.lmLossSum = 0
        guard k > 0 else { return 0 }
        for (i, r) in rows.enumerated() {
            (mem.x + i * h).update(from: core.finalNorm + r * h, count: h)
            mem.targets.base[i] = m.labels.base[r]
        }
        Linear.forward(
            x: mem.x, weight: weights.pointer(wd), bias: weights.pointer(bd), y: mem.dense, rows: k, inFeatures: h,
            outFeatures: h, precision: pr)
        GELU.forward(x: mem.dense, y: mem.gelu, count: k * h)
        LayerNorm.forward(
            x: mem.gelu, weight: weights.pointer(lw), bias: weights.pointer(lb), y: mem.norm, mean: mem.mean,
            rstd: mem.rstd, rows: k, width: h, eps: c.normEpsilon)
        pr.round(mem.norm, count: k * h)
        let scale = gradScale.map { $0 / Float(k) }
        let sum = try VocabCrossEntropy.forward(
            x: mem.norm, embedding: weights.pointer(out), vocab: vocab, targets: mem.targets.base, rows: k, hidden: h,
            chunkRows: VocabCrossEntropy.chunkRows(rows: n, vocab: c.vocabSize), logits: core.logits,
            rowStats: core.rowStats, rowLoss: mem.rowLoss, tensorParallel: tensorParallel,
            dx: scale == nil ? nil : mem.dNorm, dembedding: scale == nil ? nil : grads.pointer(out),
            gradScale: scale ?? 1, targetIsArgmax: scale == nil ? mem.argmax : nil, precision: pr,
            bias: weights.pointer(ob), dbias: scale == nil ? nil : grads.pointer(ob),
            deferring: deferring && scale != nil ? core.deferredWeightGradients : nil)
        m.lmLossSum = sum
        guard scale != nil else {
            m.lmCorrect = (0..<k).reduce(0) { $0 + (mem.argmax[$1] ? 1 : 0) }
            return sum / Double(k)
        }
        // ∂loss/∂Y is partial per tensor rank (vocabulary slices): sum it, then the replicated layers.
        try tensorParallel.copyToTensorModelParallelRegionBackward(mem.dNorm, count: k * h)
        // dG = LN backward (accumulates: start from 0); D is still needed by GELU backward, so dG
        // goes into the core's scratch tmpH2 (free between the layers' backward passes; Y in the norm
        // buffer may still be read by a deferred product) and dD into the GELU buffer.
        let dG = core.tmpH2
        dG.update(repeating: 0, count: k * h)
        LayerNorm.backward(
            dy: mem.dNorm, x: mem.gelu, weight: weights.pointer(lw), mean: mem.mean, rstd: mem.rstd, dx: dG,
            dweight: grads.pointer(lw), dbias: grads.pointer(lb), rows: k, width: h)
        GELU.backward(dy: dG, x: mem.dense, dx: mem.gelu, count: k * h)
        pr.round(mem.gelu, count: k * h)
        // dX into the dNorm buffer (free now), then scattered into ∂loss/∂y.
        Linear.backward(
            dy: mem.gelu, x: mem.x, weight: weights.pointer(wd), dx: mem.dNorm, dweight: grads.pointer(wd),
            dbias: grads.pointer(bd), rows: k, inFeatures: h, outFeatures: h, precision: pr)
        for (i, r) in rows.enumerated() {
            let d = core.headGradient + r * h, s = mem.dNorm + i * h
            for j in 0..<h { d[j] += s[j] }
        }
        return sum / Double(k)
    }

    /// The pooler and the head on it, on token 0 of each of the b sequences:
    ///     P = tanh(y0·Wpᵀ + bp);  z = P·Wᵀ + bw   [b, w]
    /// then cross entropy per example against `sequenceLabels`: over the w logits of each sequence
    /// (sentence order w = 2, classification w = classes), or over the single scores of each
    /// question's `group` sequences (multiple choice). An example labelled −1 is filler (the wrap of
    /// a last validation batch) and counts nowhere. Finetuning heads read the pooled output through
    /// dropout (hidden_dropout, when training), as Megatron's classification and multiple-choice heads
    /// do; the binary head reads it directly. Returns Σ CE / counted examples; backward when training.
    func pooledHead(_ m: BertActivations, _ mem: BertHeadMemory, _ ctx: PassContext, gradScale: Float?) -> Double {
        let core = m.core, h = config.transformer.hiddenSize, b = core.batch, pr = precision
        guard let pw = slots.poolerWeight, let pb = slots.poolerBias, let hw = slots.pooledHeadWeight,
            let hb = slots.pooledHeadBias
        else { return 0 }
        let w = config.task.pooledOutputs, group = config.task.group
        // Rows 0 ..< b are position 0 ([CLS]) of each sequence.
        mem.poolIn.update(from: core.finalNorm, count: b * h)
        Linear.forward(
            x: mem.poolIn, weight: weights.pointer(pw), bias: weights.pointer(pb), y: mem.poolPre, rows: b,
            inFeatures: h, outFeatures: h, precision: pr)
        for i in 0..<(b * h) { mem.pooled[i] = tanh(mem.poolPre[i]) }
        pr.round(mem.pooled, count: b * h)
        // The head's input: the pooled output, or (finetuning, training) its dropped copy in dPoolIn,
        // free until the pooler's backward. Mask elements are (global micro-batch, sequence·h + j).
        let p = config.transformer.hiddenDropout
        let dropout =
            ctx.training && p > 0 && config.task != .pretraining
            ? DropoutStream(
                seed: config.transformer.seed, site: "pooled", step: ctx.iteration, microbatch: ctx.microbatch)
            : nil
        var headInput = mem.pooled
        if let dropout {
            mem.dPoolIn.update(from: mem.pooled, count: b * h)
            Dropout.apply(mem.dPoolIn, count: b * h, p: p, stream: dropout)
            headInput = mem.dPoolIn
        }
        Linear.forward(
            x: headInput, weight: weights.pointer(hw), bias: weights.pointer(hb), y: mem.pooledLogits, rows: b,
            inFeatures: h, outFeatures: w, precision: pr)
        // Each example's logits are `width` consecutive values: a sequence's w logits, or a question's scores.
        let examples = w == 1 ? b / group : b, width = w == 1 ? group : w
        let scale = gradScale.map { $0 / Float(examples) }
        var sum = 0.0, correct = 0, counted = 0
        for e in 0..<examples {
            let z = mem.pooledLogits + e * width, label = Int(m.sequenceLabels[e])
            guard label >= 0 else {  // a filler example (label −1): no loss, no gradient, not counted
                if scale != nil { for j in 0..<width { z[j] = 0 } }
                continue
            }
            counted += 1
            var mx = z[0], best = 0
            for j in 1..<width where z[j] > mx { mx = z[j]; best = j }
            var total = 0.0
            for j in 0..<width { total += Foundation.exp(Double(z[j] - mx)) }
            sum += Double(mx) + Foundation.log(total) - Double(z[label])
            if best == label { correct += 1 }
            if let scale {
                for j in 0..<width {
                    let p = Float(Foundation.exp(Double(z[j] - mx)) / total)
                    z[j] = (p - (j == label ? 1 : 0)) * scale
                }
            }
        }
        m.pooledLossSum = sum
        m.pooledCorrect = correct
        m.pooledExamples = counted
        guard scale != nil else { return sum / Double(max(1, counted)) }
        pr.round(mem.pooledLogits, count: w * b)
        Linear.backward(
            dy: mem.pooledLogits, x: headInput, weight: weights.pointer(hw), dx: mem.dPooled,
            dweight: grads.pointer(hw), dbias: grads.pointer(hb), rows: b, inFeatures: h, outFeatures: w, precision: pr)
        if let dropout { Dropout.apply(mem.dPooled, count: b * h, p: p, stream: dropout) }
        for i in 0..<(b * h) {
            let t = tanh(mem.poolPre[i])
            mem.dPooled[i] *= 1 - t * t
        }
        pr.round(mem.dPooled, count: b * h)
        Linear.backward(
            dy: mem.dPooled, x: mem.poolIn, weight: weights.pointer(pw), dx: mem.dPoolIn, dweight: grads.pointer(pw),
            dbias: grads.pointer(pb), rows: b, inFeatures: h, outFeatures: h, precision: pr)
        for i in 0..<(b * h) { core.headGradient[i] += mem.dPoolIn[i] }
        return sum / Double(max(1, counted))
    }
}

extension BertModel {
    /// The heads' outputs after an evaluation forward on one tensor rank, for tests and tools: the
    /// vocabulary logits [k, V] of the k rows with a label (in row order, row = position·b + sample)
    /// and the sentence-order logits [b, 2] (empty without the binary head).
    public func headLogits(_ m: BertActivations) -> (maskedLM: [Float], sentenceOrder: [Float]) {
        guard let mem = m.head, let out = slots.outputLayer, let ob = slots.outputBias, tensorParallel.size == 1
        else { preconditionFailure("head logits are read on the last stage of one tensor rank") }
        let c = config.transformer, h = c.hiddenSize, V = c.vocabSize, k = m.maskedRows
        var logits = [Float](repeating: 0, count: k * V)
        let bias = weights.pointer(ob)
        for r in 0..<k { for v in 0..<V { logits[r * V + v] = bias[v] } }
        logits.withUnsafeMutableBufferPointer { o in
            precision.gemm(
                transB: true, m: k, n: V, k: h, a: mem.norm, lda: h, b: weights.pointer(out), ldb: h, beta: 1,
                c: o.baseAddress!, ldc: V)
        }
        let sop = config.binaryHead ? Array(UnsafeBufferPointer(start: mem.pooledLogits, count: 2 * m.core.batch)) : []
        return (logits, sop)
    }
}

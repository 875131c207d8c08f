// CrossEntropy.swift — the LM head (logits = x·Eᵀ with the tied word embedding E) fused with the
// softmax cross entropy and, when training, its backward — in chunks of rows, so the full [n, V]
// logits are never held, and vocab-parallel: each tensor rank holds Vp/t rows of E. Only the V
// real vocabulary rows of E enter: padded rows never affect a loss, a gradient or a prediction,
// whatever the padding.
import Foundation
import Tensor

public enum VocabCrossEntropy {
    /// Rows per chunk: at most 64M floats (256 MB) of logits, split into equal chunks (multiples of
    /// 16 rows) so no small tail GEMM runs at a fraction of the BLAS rate. Computed from the global
    /// vocabulary, so every tensor rank runs the same chunks (and the same collectives).
    public static func chunkRows(rows n: Int, vocab v: Int) -> Int {
        let cap = max(1, min(n, (1 << 26) / max(v, 1)))
        let chunks = (n + cap - 1) / cap
        let even = (n + chunks - 1) / chunks
        return min(cap, max(1, (even + 15) / 16 * 16))
    }

    /// Vocab-parallel LM head + cross entropy (Megatron's `_VocabParallelCrossEntropy`): each rank
    /// computes logits for its real vocabulary rows only; per row the max is all-reduced (MAX), then
    /// Σexp and the target's logit in one all-reduce (SUM). Returns the per-row losses summed
    /// (Double, in row order), the same on every rank.
    /// - x: [n, h] (all rows)   - embedding: this rank's [Vp/t, h] rows   - targets: [n]
    /// - logits: `chunkRows × max(1, vocab.realRows)` floats   - rowStats: `3 × chunkRows` floats
    /// - dx: [n, h] ∂loss/∂x from this rank's vocabulary slice (partial: the caller reduces it),
    ///   dembedding: [Vp/t, h] accumulated, both scaled by `gradScale`; nil for evaluation
    /// - targetIsArgmax: [n], whether each row's target logit is the maximum over the vocabulary
    /// - precision: of the two GEMMs (x and the embedding arrive in it already; the logits' gradient is rounded here)
    /// - bias: this rank's [Vp/t] slice of an output bias added to the logits (BERT's LM head), its
    ///   gradient accumulated into `dbias` when training; nil: no bias (GPT)
    /// - lossMask: [n] Megatron's loss mask (0 or 1): a row's loss and gradient are multiplied by
    ///   it (a masked row adds 0 to the sum and has no gradient); nil: every row counts
    /// - deferring: a zero-bubble schedule's weight-gradient queue: dx is computed now, while each
    ///   chunk's ∂loss/∂logits is kept there and its product into `dembedding` waits for the W pass
    ///   (`x` must stay as it is until the queue runs); the bias gradient is never deferred
    public static func forward(
        x: UnsafePointer<Float>, embedding: UnsafePointer<Float>, vocab: VocabShard,
        targets: UnsafePointer<Int32>, rows n: Int, hidden h: Int, chunkRows C: Int,
        logits: UnsafeMutablePointer<Float>, rowStats: UnsafeMutablePointer<Float>,
        rowLoss: UnsafeMutablePointer<Double>, tensorParallel tp: TensorParallel,
        dx: UnsafeMutablePointer<Float>? = nil, dembedding: UnsafeMutablePointer<Float>? = nil,
        gradScale: Float = 1, targetIsArgmax: UnsafeMutablePointer<Bool>? = nil,
        precision: Precision = .fp32, bias: UnsafePointer<Float>? = nil, dbias: UnsafeMutablePointer<Float>? = nil,
        lossMask: UnsafePointer<Float>? = nil, deferring: DeferredWeightGradients? = nil
    ) throws -> Double {
        let v = vocab.realRows, v0 = vocab.start
        let training = dx != nil
        // Every target must be a vocabulary id: none is ever mapped silently.
        for r in 0..<n where targets[r] < 0 || Int(targets[r]) >= vocab.vocabSize {
            throw TrainingError.targetOutOfVocabulary(id: Int(targets[r]), vocabSize: vocab.vocabSize)
        }
        var c0 = 0
        while c0 < n {
            let rows = min(C, n - c0)
            let xc = x + c0 * h
            if v > 0 {
                precision.gemm(
                    transB: true, m: rows, n: v, k: h, a: xc, lda: h, b: embedding, ldb: h, c: logits, ldc: v)
            }
            if let bias { addBias(bias, to: logits, rows: rows, width: v) }
            try rowPasses(
                logits: logits, rows: rows, width: v, firstColumn: v0, targets: targets + c0,
                lossMask: lossMask.map { $0 + c0 }, gradScale: gradScale, rowStats: rowStats, chunkRows: C,
                tensorParallel: tp, training: training, precision: precision)
            recordLosses(
                rowStats: rowStats, chunkRows: C, rows: rows, first: c0, rowLoss: rowLoss, lossMask: lossMask,
                targetIsArgmax: targetIsArgmax)
            if let dx, let dembedding {
                if let dbias { ColumnSums.accumulate(logits, rows: rows, cols: v, into: dbias) }
                productsBackward(
                    dlogits: logits, rows: rows, vocab: v, hidden: h, x: xc, embedding: embedding, dx: dx + c0 * h,
                    dembedding: dembedding, precision: precision, deferring: deferring)
            }
            c0 += rows
        }
        var total = 0.0
        for r in 0..<n { total += rowLoss[r] }
        return total
    }

    /// One chunk's rows after their logits: row r's target logit (read before the row is overwritten),
    /// maximum and Σexp into `rowStats` (max, then Σexp | target logit, `chunkRows` apart) and, when
    /// `training`, ∂loss/∂logits in place, rounded to the run's format — on the vocab-parallel path
    /// with the all-reduces between the passes.
    static func rowPasses(
        logits: UnsafeMutablePointer<Float>, rows: Int, width v: Int, firstColumn v0: Int,
        targets: UnsafePointer<Int32>, lossMask: UnsafePointer<Float>?, gradScale: Float,
        rowStats: UnsafeMutablePointer<Float>, chunkRows C: Int, tensorParallel tp: TensorParallel, training: Bool,
        precision: Precision
    ) throws {
        let rowMax = rowStats, sumAndTarget = rowStats + C
        func target(_ r: Int) -> Int { Int(targets[r]) - v0 }
        func scale(_ r: Int) -> Float { gradScale * (lossMask?[r] ?? 1) }
        func targetLogit(_ r: Int) {
            let t = target(r)
            sumAndTarget[rows + r] = t >= 0 && t < v ? logits[r * v + t] : 0
        }
        // On one tensor rank a training row is finished in one visit while it is in cache (a row
        // of logits is at most a few hundred KB); the vocab-parallel path needs its all-reduces
        // between those passes. The same operations on every element either way.
        if training && tp.group == nil {
            ThreadBudget.parallelFor(rows, grain: 4) { rr in
                for r in rr {
                    targetLogit(r)
                    (rowMax[r], sumAndTarget[r]) = finishRow(
                        logits + r * v, width: v, target: target(r), scale: scale(r), precision: precision)
                }
            }
        } else {
            ThreadBudget.parallelFor(rows, grain: 4) { rr in
                for r in rr { rowMax[r] = v > 0 ? Kernels.rowMax(logits + r * v, from: 0, valid: v) : -.infinity }
            }
            try tp.group?.allReduceMax(rowMax, count: rows)
            ThreadBudget.parallelFor(rows, grain: 4) { rr in
                for r in rr {
                    targetLogit(r)
                    sumAndTarget[r] =
                        v > 0 ? expSum(logits + r * v, width: v, shift: rowMax[r], store: training) : 0
                }
            }
            try tp.group?.allReduceSum(sumAndTarget, count: 2 * rows)
            if training {
                ThreadBudget.parallelFor(rows, grain: 4) { rr in
                    for r in rr {
                        let z = logits + r * v
                        logitsGradient(z, width: v, target: target(r), sum: sumAndTarget[r], scale: scale(r))
                        precision.roundOnThisThread(z, count: v)
                    }
                }
            }
        }
    }

    /// The LM head's two products for one chunk of `rows` rows, from its ∂loss/∂logits (already in
    /// the run's format): dx = dlogits·E now, and dE += dlogitsᵀ·x now or, with `deferring`, from a
    /// kept copy when the queue runs.
    static func productsBackward(
        dlogits: UnsafeMutablePointer<Float>, rows: Int, vocab v: Int, hidden h: Int, x: UnsafePointer<Float>,
        embedding: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, dembedding: UnsafeMutablePointer<Float>,
        precision: Precision, deferring: DeferredWeightGradients?
    ) {
        guard v > 0 else {
            dx.update(repeating: 0, count: rows * h)
            return
        }
        precision.gemm(m: rows, n: h, k: v, a: dlogits, lda: v, b: embedding, ldb: h, c: dx, ldc: h)
        func embeddingGradient(_ dlogits: UnsafePointer<Float>) {
            precision.gemm(
                transA: true, m: v, n: h, k: rows, a: dlogits, lda: v, b: x, ldb: h, beta: 1, c: dembedding, ldc: h)
        }
        if let queue = deferring {
            let kept = queue.keep(dlogits, count: rows * v)
            queue.add { embeddingGradient(kept) }
        } else {
            embeddingGradient(dlogits)
        }
    }

    /// Each row's loss from its chunk's statistics (`rowStats`: max, then Σexp over the whole
    /// vocabulary and the target's logit, `chunkRows` apart), and whether its target is the argmax.
    static func recordLosses(
        rowStats: UnsafePointer<Float>, chunkRows C: Int, rows: Int, first c0: Int,
        rowLoss: UnsafeMutablePointer<Double>,
        lossMask: UnsafePointer<Float>?, targetIsArgmax: UnsafeMutablePointer<Bool>?
    ) {
        let rowMax = rowStats, sumAndTarget = rowStats + C
        for r in 0..<rows {
            let loss = Double(rowMax[r]) + Foundation.log(Double(sumAndTarget[r])) - Double(sumAndTarget[rows + r])
            rowLoss[c0 + r] = lossMask.map { $0[c0 + r] == 0 ? 0 : Double($0[c0 + r]) * loss } ?? loss
            // The target's logit is the row maximum: it is the (greedy) prediction.
            targetIsArgmax?[c0 + r] = sumAndTarget[rows + r] >= rowMax[r]
        }
    }

    /// A training row of `v` logits on one tensor rank, in one visit while it is in cache: its
    /// maximum, Σexp(z − max) with the exponentials kept, then ∂loss/∂logits (`scale`·(p − onehot))
    /// in place, rounded to `precision`. Returns the maximum and the sum. (`plan --calibrate` times
    /// this pass as the LM head's row rate.)
    @inline(__always)
    public static func finishRow(
        _ z: UnsafeMutablePointer<Float>, width v: Int, target t: Int, scale g: Float, precision: Precision
    ) -> (max: Float, sum: Float) {
        guard v > 0 else { return (-.infinity, 0) }
        let m = Kernels.rowMax(z, from: 0, valid: v)
        let sum = expSum(z, width: v, shift: m, store: true)
        logitsGradient(z, width: v, target: t, sum: sum, scale: g)
        precision.roundOnThisThread(z, count: v)
        return (m, sum)
    }

    /// ∂loss/∂logits of one row from its exponentials exp(z − max) in `z`: `scale`·(p − onehot), in place.
    @inline(__always)
    static func logitsGradient(
        _ z: UnsafeMutablePointer<Float>, width v: Int, target t: Int, sum: Float, scale g: Float
    ) {
        let k = g / sum
        var j = 0
        while j + 16 <= v { store16(load16(z, j) * k, z, j); j += 16 }
        while j < v { z[j] *= k; j += 1 }
        if t >= 0 && t < v { z[t] -= g }
    }

    /// Single-rank form: all V rows of `embedding` are this rank's (scratch allocated here; for tests
    /// and tools, not for the training step).
    public static func forward(
        x: UnsafePointer<Float>, embedding: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
        rows n: Int, hidden h: Int, vocab v: Int,
        logits: UnsafeMutablePointer<Float>, rowLoss: UnsafeMutablePointer<Double>,
        dx: UnsafeMutablePointer<Float>? = nil, dembedding: UnsafeMutablePointer<Float>? = nil,
        gradScale: Float = 1
    ) -> Double {
        let C = chunkRows(rows: n, vocab: v)
        let stats = FloatBuffer(count: 3 * C)
        // With no tensor group there is no communication; a target outside the vocabulary gives NaN.
        return
            (try? forward(
                x: x, embedding: embedding, vocab: VocabShard(start: 0, rows: v, realRows: v), targets: targets,
                rows: n, hidden: h, chunkRows: C, logits: logits, rowStats: stats.base, rowLoss: rowLoss,
                tensorParallel: .single, dx: dx, dembedding: dembedding, gradScale: gradScale)) ?? .nan
    }

    /// z[r, j] += bias[j] for every row.
    static func addBias(_ bias: UnsafePointer<Float>, to z: UnsafeMutablePointer<Float>, rows: Int, width v: Int) {
        ThreadBudget.parallelFor(rows, grain: 4) { rr in
            for r in rr {
                let row = z + r * v
                var j = 0
                while j + 16 <= v { store16(load16(row, j) + load16(bias, j), row, j); j += 16 }
                while j < v { row[j] += bias[j]; j += 1 }
            }
        }
    }

    /// Σ exp(z − shift) (Kernels.softmaxExpRow's values and order in either case); with `store` the
    /// exponentials replace z.
    @inline(__always)
    static func expSum(_ z: UnsafeMutablePointer<Float>, width v: Int, shift m: Float, store: Bool) -> Float {
        store
            ? Kernels.softmaxExpRow(z, from: 0, valid: v, width: v, scale: 1, shift: m)
            : Kernels.expSum(z, count: v, shift: m)
    }
}

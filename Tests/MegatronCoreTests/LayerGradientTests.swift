// LayerGradientTests.swift — every layer's backward against central finite differences of its
// forward: loss = Σ out·R for a fixed random R, so ∂loss/∂out = R.
import MegatronCore
import Tensor
import XCTest

/// Deterministic test data.
struct TestRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> Float {
        state = splitMix64(state)
        return Float(state >> 40) * 0x1p-24 * 2 - 1
    }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
}

extension XCTestCase {
    /// Compares `analytic` with central differences of `loss` with respect to `x` (perturbed in place).
    func checkGradient(
        _ x: inout [Float], analytic: [Float], eps: Float = 1e-2, tol: Float = 5e-3,
        _ what: String, loss: ([Float]) -> Double
    ) {
        var maxRef: Float = 0, maxDiff: Float = 0
        for i in 0..<x.count {
            let keep = x[i]
            x[i] = keep + eps; let lp = loss(x)
            x[i] = keep - eps; let lm = loss(x)
            x[i] = keep
            let numeric = Float((lp - lm) / Double(2 * eps))
            maxRef = max(maxRef, abs(numeric))
            maxDiff = max(maxDiff, abs(numeric - analytic[i]))
        }
        XCTAssertGreaterThan(maxRef, 0, "\(what): gradient is identically zero, the check would be vacuous")
        XCTAssertLessThanOrEqual(
            maxDiff, tol * maxRef, "\(what): max |numeric − analytic| \(maxDiff), max |grad| \(maxRef)")
    }

    func dot(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count && !a.isEmpty, "dot of \(a.count) and \(b.count) values")
        return zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
}

final class LayerGradientTests: XCTestCase {
    override func setUp() { ThreadBudget.configure(threads: 2) }

    func testLinear() {
        let n = 5, k = 7, m = 6
        var rnd = TestRandom(1)
        var x = rnd.array(n * k), w = rnd.array(m * k), b = rnd.array(m)
        let R = rnd.array(n * m)
        func fwd(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: n * m)
            Linear.forward(x: x, weight: w, bias: b, y: &y, rows: n, inFeatures: k, outFeatures: m)
            return y
        }
        var dx = [Float](repeating: 0, count: n * k), dw = [Float](repeating: 0, count: m * k),
            db = [Float](repeating: 0, count: m)
        Linear.backward(
            dy: R, x: x, weight: w, dx: &dx, dweight: &dw, dbias: &db, rows: n, inFeatures: k, outFeatures: m)
        checkGradient(&x, analytic: dx, "Linear dx") { dot(fwd($0, w, b), R) }
        checkGradient(&w, analytic: dw, "Linear dweight") { dot(fwd(x, $0, b), R) }
        checkGradient(&b, analytic: db, "Linear dbias") { dot(fwd(x, w, $0), R) }
    }

    func testLayerNorm() {
        let n = 6, h = 40
        var rnd = TestRandom(2)
        var x = rnd.array(n * h, scale: 2), w = rnd.array(h).map { 1 + 0.3 * $0 }, b = rnd.array(h, scale: 0.3)
        let R = rnd.array(n * h)
        func fwd(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: n * h), mean = [Float](repeating: 0, count: n), rstd = mean
            LayerNorm.forward(x: x, weight: w, bias: b, y: &y, mean: &mean, rstd: &rstd, rows: n, width: h, eps: 1e-5)
            return y
        }
        var y = [Float](repeating: 0, count: n * h), mean = [Float](repeating: 0, count: n), rstd = mean
        LayerNorm.forward(x: x, weight: w, bias: b, y: &y, mean: &mean, rstd: &rstd, rows: n, width: h, eps: 1e-5)
        var dx = [Float](repeating: 0, count: n * h), dw = [Float](repeating: 0, count: h), db = dw
        LayerNorm.backward(
            dy: R, x: x, weight: w, mean: mean, rstd: rstd, dx: &dx, dweight: &dw, dbias: &db, rows: n, width: h)
        checkGradient(&x, analytic: dx, eps: 3e-3, "LayerNorm dx") { dot(fwd($0, w, b), R) }
        checkGradient(&w, analytic: dw, "LayerNorm dweight") { dot(fwd(x, $0, b), R) }
        checkGradient(&b, analytic: db, "LayerNorm dbias") { dot(fwd(x, w, $0), R) }
    }

    func testGELU() {
        var rnd = TestRandom(3)
        var x = rnd.array(80, scale: 4)
        let R = rnd.array(80)
        var dx = [Float](repeating: 0, count: 80)
        GELU.backward(dy: R, x: x, dx: &dx, count: 80)
        checkGradient(&x, analytic: dx, eps: 1e-3, "GELU") { x in
            var y = [Float](repeating: 0, count: 80)
            GELU.forward(x: x, y: &y, count: 80)
            return dot(y, R)
        }
        // Against the tanh formula directly.
        for v in x {
            let ref = 0.5 * Double(v) * (1 + tanh(0.7978845608028654 * (Double(v) + 0.044715 * pow(Double(v), 3))))
            XCTAssertEqual(Double(v.geluValue), ref, accuracy: 1e-6 * max(1, abs(ref)))
        }
    }

    func attentionCase(seq: Int, dropout: Float, mask: AttentionMask = .causal) {
        let b = 2, a = 2, d = 4, h = a * d
        func visible(_ i: Int, _ bi: Int) -> Int {
            if case .keyPadding(let lengths) = mask { return lengths[bi] }
            return i + 1
        }
        func first(_ i: Int, _ bi: Int) -> Int {
            if case .causalWithinDocuments(let firstKeys) = mask { return Int(firstKeys[bi][i]) }
            return 0
        }
        let shape = AttentionShape(seq: seq, batch: b, heads: a, headDim: d)
        var rnd = TestRandom(4)
        var qkv = rnd.array(seq * b * 3 * h, scale: 1.5)
        let R = rnd.array(seq * b * h)
        let stream = dropout > 0 ? DropoutStream(seed: 7, site: "test", step: 1, microbatch: 0) : nil
        var scratch = [Float](repeating: 0, count: 2 * shape.scratchPerWorker)
        var lse = [Float](repeating: 0, count: b * a * seq)
        func fwd(_ qkv: [Float]) -> [Float] {
            var ctx = [Float](repeating: 0, count: seq * b * h)
            SelfAttention.forward(
                qkv: qkv, context: &ctx, lse: &lse, shape: shape, mask: mask, dropout: dropout, stream: stream,
                scratch: &scratch)
            return ctx
        }
        let ctx = fwd(qkv)
        // Reference forward: naive softmax attention per (batch, head, query).
        for bi in 0..<b {
            for head in 0..<a {
                for i in 0..<seq {
                    // Keys before the query's document get −∞: no weight.
                    let keys = visible(i, bi)
                    var scores = [Double](repeating: -.infinity, count: keys)
                    for j in first(i, bi)..<keys {
                        var s = 0.0
                        for e in 0..<d {
                            s +=
                                Double(qkv[(i * b + bi) * 3 * h + head * 3 * d + e])
                                * Double(qkv[(j * b + bi) * 3 * h + head * 3 * d + d + e])
                        }
                        scores[j] = s / Double(d).squareRoot()
                    }
                    let mx = scores.max()!
                    let z = scores.reduce(0) { $0 + exp($1 - mx) }
                    for e in 0..<d {
                        var o = 0.0
                        for j in 0..<keys {
                            let keep =
                                stream.map {
                                    Double($0.scale(index: ((bi * a + head) * seq + i) * seq + j, p: dropout))
                                } ?? 1  // global head = local here
                            o +=
                                exp(scores[j] - mx) / z * keep
                                * Double(qkv[(j * b + bi) * 3 * h + head * 3 * d + 2 * d + e])
                        }
                        XCTAssertEqual(Double(ctx[(i * b + bi) * h + head * d + e]), o, accuracy: 1e-5 * max(1, abs(o)))
                    }
                }
            }
        }
        var dqkv = [Float](repeating: 0, count: qkv.count)
        SelfAttention.backward(
            dcontext: R, qkv: qkv, lse: lse, dqkv: &dqkv, shape: shape, mask: mask, dropout: dropout, stream: stream,
            scratch: &scratch)
        checkGradient(&qkv, analytic: dqkv, eps: 3e-3, "attention (s=\(seq), dropout \(dropout), \(mask))") {
            dot(fwd($0), R)
        }
        if case .causalWithinDocuments(let firstKeys) = mask {
            // Keys of an earlier document receive no weight from later queries: new keys and values
            // before the last document of a sequence change none of that document's outputs.
            var changed = qkv
            let start = firstKeys.map { Int($0.last!) }
            for bi in 0..<b {
                XCTAssertGreaterThan(start[bi], 0, "the case needs a sequence of several documents")
                for j in 0..<start[bi] {
                    for c in 0..<(3 * h) where c % (3 * d) >= d { changed[(j * b + bi) * 3 * h + c] += 7 }
                }
            }
            let moved = fwd(changed)
            for bi in 0..<b {
                for i in start[bi]..<seq {
                    for c in 0..<h { XCTAssertEqual(moved[(i * b + bi) * h + c], ctx[(i * b + bi) * h + c]) }
                }
            }
            XCTAssertNotEqual(moved, ctx, "earlier documents' own outputs must change")
        }
        if case .keyPadding(let lengths) = mask {
            // Padded keys receive no weight: new values there change no output, and get no gradient.
            var changed = qkv
            for bi in 0..<b {
                for j in lengths[bi]..<seq {
                    for c in 0..<(3 * h) where c % (3 * d) >= d { changed[(j * b + bi) * 3 * h + c] += 7 }
                }
            }
            XCTAssertEqual(fwd(changed), ctx, "outputs depend on padded keys")
            for bi in 0..<b {
                for j in lengths[bi]..<seq {
                    for c in 0..<(3 * h) where c % (3 * d) >= d {
                        XCTAssertEqual(dqkv[(j * b + bi) * 3 * h + c], 0, "gradient reaches a padded key")
                    }
                }
            }
        }
    }

    func testAttentionSingleTile() { attentionCase(seq: 9, dropout: 0) }
    func testAttentionSeveralTiles() { attentionCase(seq: 70, dropout: 0) }
    func testAttentionWithDropout() { attentionCase(seq: 12, dropout: 0.3) }
    func testAttentionWithDropoutOnTheScalarMaskPath() {
        Philox4x32.forcePortableDropout(true)
        defer { Philox4x32.forcePortableDropout(false) }
        attentionCase(seq: 70, dropout: 0.3)
    }
    /// Megatron's reset_attention_mask: documents ended by EOD (id 0 here) attend within themselves.
    func documentMask(seq: Int, eods: [[Int]]) -> AttentionMask {
        let masks = DocumentMasks(eod: 0, resetAttentionMask: true)
        return .causalWithinDocuments(
            firstKeys: eods.map { e in
                masks.positionsAndFirstKeys((0..<seq).map { e.contains($0) ? 0 : 1 }).firstKeys
            })
    }
    func testCausalAttentionWithinDocuments() {
        attentionCase(seq: 9, dropout: 0, mask: documentMask(seq: 9, eods: [[2, 6], [0, 3, 4]]))
    }
    func testCausalAttentionWithinDocumentsSeveralTilesWithDropout() {
        attentionCase(seq: 70, dropout: 0.2, mask: documentMask(seq: 70, eods: [[5, 33, 34, 60], [17]]))
    }
    /// Two tiles of 128 and 22 rows: the second starts in documents that begin at keys 21 and 101, so it
    /// skips the first 16 and 96 keys (whole panels of 16).
    func testCausalAttentionWithinDocumentsSkipsTheKeysBeforeATilesDocuments() {
        for dropout: Float in [0, 0.2] {
            attentionCase(seq: 150, dropout: dropout, mask: documentMask(seq: 150, eods: [[20, 140], [100]]))
        }
    }
    func testBidirectionalAttentionWithPadding() {
        attentionCase(seq: 9, dropout: 0, mask: .keyPadding(lengths: [9, 5]))
    }
    func testBidirectionalAttentionSeveralTilesWithDropout() {
        attentionCase(seq: 70, dropout: 0.2, mask: .keyPadding(lengths: [61, 70]))
    }

    func testVocabCrossEntropyIgnoresPaddedRows() {
        let n = 6, h = 8, v = 13, vp = 16
        var rnd = TestRandom(5)
        var x = rnd.array(n * h), e = rnd.array(vp * h)
        let targets: [Int32] = (0..<n).map { Int32($0 * 5 % v) }
        var logits = [Float](repeating: 0, count: n * v), rowLoss = [Double](repeating: 0, count: n)
        func loss(_ x: [Float], _ e: [Float]) -> Double {
            VocabCrossEntropy.forward(
                x: x, embedding: e, targets: targets, rows: n, hidden: h, vocab: v, logits: &logits, rowLoss: &rowLoss)
        }
        // Reference loss in Double.
        var ref = 0.0
        for r in 0..<n {
            let z = (0..<v).map { c in (0..<h).reduce(0.0) { $0 + Double(x[r * h + $1]) * Double(e[c * h + $1]) } }
            let m = z.max()!
            ref += m + log(z.reduce(0) { $0 + exp($1 - m) }) - z[Int(targets[r])]
        }
        XCTAssertEqual(loss(x, e), ref, accuracy: 1e-5 * ref)
        var dx = [Float](repeating: 0, count: n * h), de = [Float](repeating: 0, count: vp * h)
        _ = VocabCrossEntropy.forward(
            x: x, embedding: e, targets: targets, rows: n, hidden: h, vocab: v, logits: &logits,
            rowLoss: &rowLoss, dx: &dx, dembedding: &de, gradScale: 1)
        checkGradient(&x, analytic: dx, eps: 3e-3, "cross entropy dx") { loss($0, e) }
        checkGradient(&e, analytic: de, eps: 3e-3, "cross entropy dembedding") { loss(x, $0) }
        XCTAssertTrue(de[(v * h)...].allSatisfy { $0 == 0 }, "padded rows must get no gradient")
        // Changing padded rows changes nothing.
        var e2 = e
        for i in (v * h)..<(vp * h) { e2[i] = 1000 }
        XCTAssertEqual(loss(x, e2), loss(x, e))
    }

    /// The LM head's one-visit row pass (which `plan --calibrate` also times): the row's maximum,
    /// Σexp(z − max), and `scale`·(softmax − onehot) in place against Float64, over a width with a
    /// vector tail; in bf16 every value is then a bf16 number near the fp32 one; an empty row or a
    /// target outside the shard subtracts nothing.
    func testFinishRowIsTheScaledSoftmaxGradient() {
        let v = 37, target = 29, scale: Float = 0.75
        var rnd = TestRandom(21)
        let z = rnd.array(v).map { $0 * 4 }
        let m = Double(z.max()!)
        let sum = z.reduce(0.0) { $0 + exp(Double($1) - m) }
        func reference(_ t: Int) -> [Double] {
            (0..<v).map { Double(scale) * (exp(Double(z[$0]) - m) / sum - ($0 == t ? 1 : 0)) }
        }
        for precision in [Precision.fp32, .bf16] {
            for t in [target, -1, v] {
                var row = z
                let out = VocabCrossEntropy.finishRow(&row, width: v, target: t, scale: scale, precision: precision)
                XCTAssertEqual(Double(out.max), m)
                XCTAssertEqual(Double(out.sum), sum, accuracy: 1e-6 * sum)
                let tolerance = precision == .fp32 ? 1e-6 : 4e-3  // bf16: 8 significant bits
                XCTAssertEqual(row.count, v)
                XCTAssertEqual(reference(t).count, v)
                for (j, (got, want)) in zip(row, reference(t)).enumerated() {
                    XCTAssertEqual(Double(got), want, accuracy: tolerance * max(1, abs(want)), "\(precision) [\(j)]")
                    if precision == .bf16 { XCTAssertEqual(got.bitPattern & 0xFFFF, 0, "[\(j)] is not a bf16 value") }
                }
            }
        }
        var empty: [Float] = [1]
        let none = VocabCrossEntropy.finishRow(&empty, width: 0, target: 0, scale: 1, precision: .fp32)
        XCTAssertEqual(none.max, -.infinity)
        XCTAssertEqual(none.sum, 0)
        XCTAssertEqual(empty, [1], "an empty row is left alone")
    }

    /// A zero-bubble F pass computes ∂x at once and leaves the embedding's gradient to the W pass;
    /// after it runs, both equal the fused backward's bit for bit, over several row chunks.
    func testVocabCrossEntropyDefersTheEmbeddingGradientExactly() throws {
        let n = 40, h = 8, v = 13, chunk = 16
        var rnd = TestRandom(11)
        let x = rnd.array(n * h), e = rnd.array(v * h)
        let targets: [Int32] = (0..<n).map { Int32($0 * 7 % v) }
        // The queue reads x and writes the embedding gradient after the call: buffers that outlive it.
        func run(deferring: DeferredWeightGradients?) throws -> (loss: Double, dx: [Float], de: [Float]) {
            let xs = UnsafeMutableBufferPointer<Float>.allocate(capacity: n * h)
            let de = UnsafeMutableBufferPointer<Float>.allocate(capacity: v * h)
            defer { xs.deallocate(); de.deallocate() }
            _ = xs.initialize(from: x)
            de.initialize(repeating: 0.25)
            var logits = [Float](repeating: 0, count: chunk * v), stats = [Float](repeating: 0, count: 3 * chunk)
            var rowLoss = [Double](repeating: 0, count: n), dx = [Float](repeating: 0, count: n * h)
            let loss = try VocabCrossEntropy.forward(
                x: xs.baseAddress!, embedding: e, vocab: VocabShard(start: 0, rows: v, realRows: v), targets: targets,
                rows: n, hidden: h, chunkRows: chunk, logits: &logits, rowStats: &stats, rowLoss: &rowLoss,
                tensorParallel: .single, dx: &dx, dembedding: de.baseAddress!, gradScale: 0.5, deferring: deferring)
            if let deferring {
                XCTAssertTrue(de.allSatisfy { $0 == 0.25 }, "the embedding gradient must wait for the W pass")
                logits = logits.map { _ in .nan }  // the queue must hold its own copy of ∂loss/∂logits
                deferring.run()
            }
            return (loss, dx, Array(de))
        }
        let fused = try run(deferring: nil)
        let queue = DeferredWeightGradients()
        let deferred = try run(deferring: queue)
        XCTAssertEqual(deferred.loss, fused.loss)
        XCTAssertEqual(deferred.dx, fused.dx)
        XCTAssertEqual(deferred.de, fused.de)
        XCTAssertEqual(queue.bytes, n * v * 4, "three chunks of ∂loss/∂logits kept")
    }

    /// Bias gradients: each column's rows summed in order from 0, then added to the running sum —
    /// bit for bit, whatever the thread split, on shapes off the 16-column vectors.
    func testColumnSumsAddEachColumnsRowsInOrder() {
        ThreadBudget.configure(threads: 2)
        var rnd = TestRandom(17)
        for (rows, cols) in [(1, 1), (5, 17), (33, 100), (130, 1_031)] {
            let x = rnd.array(rows * cols), start = rnd.array(cols)
            var out = start
            ColumnSums.accumulate(x, rows: rows, cols: cols, into: &out)
            let expected = (0..<cols).map { c -> Float in
                var acc: Float = 0
                for r in 0..<rows { acc += x[r * cols + c] }
                return start[c] + acc
            }
            XCTAssertEqual(out, expected, "\(rows) × \(cols)")
        }
    }

    func testEmbedding() {
        let s = 4, b = 3, h = 20, vp = 10
        var rnd = TestRandom(6)
        var word = rnd.array(vp * h), pos = rnd.array(s * h)
        let tokens: [Int32] = (0..<(s * b)).map { Int32($0 * 7 % vp) }
        let R = rnd.array(s * b * h)
        func fwd(_ w: [Float], _ p: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: s * b * h)
            Embedding.forward(tokens: tokens, word: w, position: p, out: &out, seq: s, batch: b, hidden: h)
            return out
        }
        var dw = [Float](repeating: 0, count: vp * h), dp = [Float](repeating: 0, count: s * h)
        Embedding.backward(dout: R, tokens: tokens, dword: &dw, dposition: &dp, seq: s, batch: b, hidden: h)
        checkGradient(&word, analytic: dw, "embedding dword") { dot(fwd($0, pos), R) }
        checkGradient(&pos, analytic: dp, "embedding dposition") { dot(fwd(word, $0), R) }
    }

    func testDropoutKeepsExpectedFractionAndIsDeterministic() {
        let n = 100_000
        var x = [Float](repeating: 1, count: n)
        let s = DropoutStream(seed: 3, site: "x", step: 9, microbatch: 1)
        Dropout.apply(&x, count: n, p: 0.25, stream: s)
        let kept = x.filter { $0 != 0 }.count
        XCTAssertEqual(Double(kept) / Double(n), 0.75, accuracy: 0.01)
        XCTAssertTrue(x.allSatisfy { $0 == 0 || abs($0 - 1 / 0.75) < 1e-6 })
        var y = [Float](repeating: 1, count: n)
        Dropout.apply(&y, count: n, p: 0.25, stream: s)
        XCTAssertEqual(x, y)
    }

    /// The attention backward's fused row under dropout (one mask for dS and for the dropped
    /// probabilities) against its definition from the scalar rule, on both paths: the dropped
    /// probabilities bit for bit, dS to fp32 rounding, zeros past `valid`, for rows starting on and
    /// off a multiple of 4 and across the counter's wrap.
    func testDropoutSoftmaxBackwardRowMatchesItsDefinition() {
        let s = DropoutStream(seed: 5, site: "attention", step: 2, microbatch: 1)
        let p: Float = 0.2, keep: Float = 1 / (1 - p), scale: Float = 0.125
        var rnd = TestRandom(9)
        defer { Philox4x32.forcePortableDropout(false) }
        for portable in [false, true] {
            Philox4x32.forcePortableDropout(portable)
            for (start, valid, width) in [(0, 1, 8), (3, 70, 80), (130, 200, 200), ((1 << 34) - 9, 150, 160)] {
                let P0 = rnd.array(width, scale: 1).map { abs($0) }, dP0 = rnd.array(width, scale: 2)
                var P = P0, dP = dP0
                P.withUnsafeMutableBufferPointer { pp in
                    dP.withUnsafeMutableBufferPointer { dd in
                        s.softmaxBackwardRow(
                            pp.baseAddress!, dP: dd.baseAddress!, valid: valid, width: width, start: start, p: p,
                            scale: scale)
                    }
                }
                let kept = (0..<valid).map { s.scale(index: start + $0, p: p) != 0 }
                let dPt = (0..<valid).map { kept[$0] ? dP0[$0] * keep : 0 }
                let dot = (0..<valid).reduce(0.0) { $0 + Double(P0[$1]) * Double(dPt[$1]) }
                let at = "portable \(portable), start \(start), valid \(valid)"
                for j in 0..<valid {
                    let dS = Double(P0[j]) * (Double(dPt[j]) - dot) * Double(scale)
                    XCTAssertEqual(Double(P[j]), dS, accuracy: 1e-5, "dS, " + at + ", element \(j)")
                    let dropped: Float = kept[j] ? P0[j] * keep : 0
                    XCTAssertEqual(dP[j].bitPattern, dropped.bitPattern, "dropped P, " + at + ", element \(j)")
                }
                XCTAssertTrue(P[valid...].allSatisfy { $0 == 0 } && dP[valid...].allSatisfy { $0 == 0 }, at)
                if valid >= 64 { XCTAssertGreaterThan(kept.filter { !$0 }.count, 0, "no element dropped: " + at) }
            }
        }
    }

    /// applyMask's runs (two groups of sixteen Philox blocks at a time in AVX-512, and the scalar loop) give every
    /// element exactly the scalar rule's value (scale(index:)), for starts on and off a multiple of
    /// 4, runs shorter and longer than 64, element indices past 2³² (the counter's high word), the
    /// last run before the low word wraps, several p, and in place.
    func testDropoutMaskRunsMatchTheScalarRuleBitForBit() {
        let s = DropoutStream(seed: 11, site: "attention", step: 3, microbatch: 2)
        var rnd = TestRandom(5)
        let src = rnd.array(300, scale: 2)
        let wrap = (1 << 34) - 4 * 20  // 20 blocks before the low counter word wraps to 0
        defer { Philox4x32.forcePortableDropout(false) }
        for portable in [false, true] {
            Philox4x32.forcePortableDropout(portable)
            for p: Float in [0.3, 0.1, 0.5, 1e-7] {
                for start in [0, 1, 2, 3, 4, 61, 1027, 1 << 33 | 5, wrap, wrap + 2, wrap + 3] {
                    for n in [0, 1, 5, 63, 64, 65, 127, 128, 131, 300] {
                        var x = [Float](repeating: .nan, count: n)
                        src.withUnsafeBufferPointer { s0 in
                            s.applyMask(s0.baseAddress!, into: &x, count: n, start: start, p: p)
                        }
                        var inPlace = Array(src[0..<n])
                        inPlace.withUnsafeMutableBufferPointer { y in
                            s.applyMask(y.baseAddress!, into: y.baseAddress!, count: n, start: start, p: p)
                        }
                        for i in 0..<n {
                            let want: Float = s.scale(index: start + i, p: p) == 0 ? 0 : src[i] * (1 / (1 - p))
                            let at = "portable \(portable), p \(p), start \(start), n \(n), element \(i)"
                            XCTAssertEqual(x[i].bitPattern, want.bitPattern, at)
                            XCTAssertEqual(inPlace[i].bitPattern, want.bitPattern, "in place, " + at)
                        }
                    }
                }
            }
        }
    }
}

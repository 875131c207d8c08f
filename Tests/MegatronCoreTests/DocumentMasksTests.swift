// DocumentMasksTests.swift — Megatron's packed-document options (DocumentMasks): the loss mask,
// position ids and attention mask equal those of Megatron's get_ltor_masks_and_position_ids (written
// out here as it is: a full lower-triangular matrix cut at each EOD) on sequences with EOD first,
// last and twice in a row; the loss-gradient weights of both normalisations; and on a small GPT, a
// document packed after another gives the same per-token losses as that document alone at the start
// of a sample — with reset_position_ids and reset_attention_mask, and not without them — while
// eod_mask_loss leaves the EOD rows out of the loss and its gradient.
import MegatronCore
import Tensor
import XCTest

final class DocumentMasksTests: XCTestCase {
    /// Megatron's rule for one sequence, literally: loss mask, position ids, and the [s, s] mask.
    func megatronMasks(_ data: [Int32], eod: Int32, resetPositions: Bool, resetAttention: Bool, eodMaskLoss: Bool)
        -> (loss: [Float], positions: [Int32], attention: [[Bool]])
    {
        let s = data.count
        var attention = (0..<s).map { i in (0..<s).map { j in j <= i } }
        var loss = [Float](repeating: 1, count: s)
        if eodMaskLoss { for i in 0..<s where data[i] == eod { loss[i] = 0 } }
        var positions = (0..<s).map { Int32($0) }
        var prev = 0
        for i in 0..<s where data[i] == eod {
            if resetAttention { for r in (i + 1)..<max(i + 1, s) { for c in 0...i { attention[r][c] = false } } }
            if resetPositions {
                for r in (i + 1)..<max(i + 1, s) { positions[r] -= Int32(i + 1 - prev) }
                prev = i + 1
            }
        }
        return (loss, positions, attention)
    }

    func testMasksFollowMegatronsRule() {
        let eod: Int32 = 9
        let sequences: [[Int32]] = [
            [9, 1, 2, 9, 9, 3, 4, 5, 9, 6, 7, 9],  // EOD first, twice in a row, last
            [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4],  // one document
        ]
        let s = 12, b = 2
        let c = GPTConfig(
            numLayers: 1, hiddenSize: 16, numAttentionHeads: 2, seqLength: s, maxPositionEmbeddings: s, vocabSize: 10)
        for (eodMaskLoss, resetPositions, resetAttention) in [
            (true, true, true), (true, false, false), (false, true, false), (false, false, true),
        ] {
            let masks = DocumentMasks(
                eod: eod, eodMaskLoss: eodMaskLoss, resetPositionIds: resetPositions, resetAttentionMask: resetAttention
            )
            let acts = TransformerActivations(config: c, microBatch: b, threads: 1)
            for j in 0..<b { for i in 0..<s { acts.tokens[i * b + j] = sequences[j][i] } }
            masks.apply(to: acts)
            let what = "eod_mask_loss \(eodMaskLoss), reset positions \(resetPositions), attention \(resetAttention)"
            var counted = 0
            for j in 0..<b {
                let ref = megatronMasks(
                    sequences[j], eod: eod, resetPositions: resetPositions, resetAttention: resetAttention,
                    eodMaskLoss: eodMaskLoss)
                counted += Int(ref.loss.reduce(0, +))
                for i in 0..<s {
                    XCTAssertEqual(acts.lossMask?[i * b + j] ?? 1, ref.loss[i], "\(what): loss mask (\(i), \(j))")
                    XCTAssertEqual(
                        acts.positionIds?[i * b + j] ?? Int32(i), ref.positions[i], "\(what): position (\(i), \(j))")
                    for k in 0..<s {
                        let first: Int
                        if case .causalWithinDocuments(let keys) = acts.attentionMask {
                            first = Int(keys[j][i])
                        } else {
                            first = 0
                        }
                        XCTAssertEqual(
                            first <= k && k <= i, ref.attention[i][k], "\(what): attention (\(i), \(k)) of \(j)")
                    }
                }
            }
            XCTAssertEqual(acts.countedRows, counted, what)
            XCTAssertEqual(acts.lossGradientWeight, Float(s * b) / Float(counted), what)
        }
        // calculate_per_token_loss: the global batch's counted tokens set the weight.
        let acts = TransformerActivations(config: c, microBatch: b, threads: 1)
        for j in 0..<b { for i in 0..<s { acts.tokens[i * b + j] = sequences[j][i] } }
        DocumentMasks(eod: eod, eodMaskLoss: true, perTokenLoss: true).apply(
            to: acts, globalCounted: 80, microbatchesTimesData: 4)
        XCTAssertEqual(acts.countedRows, 19)
        XCTAssertEqual(acts.lossGradientWeight, Float(s * b * 4) / 80)
    }

    /// A small GPT (EOD = 0) and one micro-batch of two sequences.
    func model() -> (GPTModel, TransformerActivations) {
        ThreadBudget.configure(threads: 2)
        let c = GPTConfig(
            numLayers: 2, hiddenSize: 32, numAttentionHeads: 4, seqLength: 24, maxPositionEmbeddings: 24, vocabSize: 50)
        let model = GPTModel(config: c, microBatch: 2, threads: 2)
        return (model, model.makeActivations())
    }

    func fill(_ acts: TransformerActivations, _ samples: [[Int32]]) {
        let b = acts.batch, s = acts.seq
        for j in 0..<b {
            for i in 0..<s {
                acts.tokens[i * b + j] = samples[j][i]
                acts.targets[i * b + j] = samples[j][i + 1]
            }
        }
    }

    func testAPackedDocumentScoresAsIfItWereAlone() throws {
        let (model, acts) = model()
        let s = 24
        let a: [Int32] = [11, 12, 13, 14, 15, 16, 17], docB: [Int32] = [21, 22, 23, 24, 25, 26, 27, 28, 29, 30]
        let filler = (0..<s).map { Int32(31 + $0 % 17) }
        // Sequence 0: A EOD B EOD filler; sequence 1: B EOD filler (B at the start).
        let packed = Array((a + [0] + docB + [0] + filler).prefix(s + 1))
        let alone = Array((docB + [0] + filler).prefix(s + 1))
        func rowLosses(reset: Bool) throws -> [Double] {
            fill(acts, [packed, alone])
            acts.positionIds = nil
            acts.attentionMask = .causal
            if reset { DocumentMasks(eod: 0, resetPositionIds: true, resetAttentionMask: true).apply(to: acts) }
            _ = try model.forward(acts, PassContext(iteration: 0, microbatch: 0, training: false))
            return (0..<(s * 2)).map { acts.rowLoss[$0] }
        }
        let b = 2, offset = a.count + 1
        // B's rows and the EOD after it: positions offset + i in sequence 0, i in sequence 1.
        let reset = try rowLosses(reset: true)
        for i in 0...docB.count {
            XCTAssertEqual(
                reset[(offset + i) * b], reset[i * b + 1], accuracy: 1e-5 * reset[i * b + 1],
                "row \(i) of the packed document")
        }
        let plain = try rowLosses(reset: false)
        var worst = 0.0
        for i in 0...docB.count { worst = max(worst, abs(plain[(offset + i) * b] - plain[i * b + 1])) }
        XCTAssertGreaterThan(worst, 1e-3, "without the resets the packed document sees the one before it")
    }

    func testEODMaskLossLeavesTheEODRowsOutOfTheLossAndGradient() throws {
        let (model, acts) = model()
        let s = 24, n = 2 * s
        func token(_ i: Int, _ j: Int) -> Int32 { (i + j) % 6 == 5 ? 0 : Int32(1 + (i * 7 + j) % 40) }
        let samples: [[Int32]] = (0..<2).map { j in (0...s).map { token($0, j) } }
        func run(mask: [Float]?, weight: Float = 1) throws -> (Double, [Float], [Double]) {
            fill(acts, samples)
            acts.lossMask = mask.map { m in
                let buffer = FloatBuffer(count: n)
                for r in 0..<n { buffer.base[r] = m[r] }
                return buffer
            }
            acts.lossGradientWeight = weight
            model.grads.zero()
            let loss = try model.forwardBackward(
                acts, gradScale: 1 / Float(n), PassContext(iteration: 1, microbatch: 0, training: true))
            let grads = model.table.specs.indices.flatMap { slot in
                Array(UnsafeBufferPointer(start: model.grads.pointer(slot), count: model.table.specs[slot].count))
            }
            return (loss, grads, (0..<n).map { acts.rowLoss[$0] })
        }
        fill(acts, samples)
        DocumentMasks(eod: 0, eodMaskLoss: true).apply(to: acts)
        let mask = try (0..<n).map { try XCTUnwrap(acts.lossMask)[$0] }
        XCTAssertEqual(acts.countedRows, n - mask.filter { $0 == 0 }.count)
        XCTAssertGreaterThan(n - acts.countedRows, 4, "the samples need EOD inputs")
        let all = try run(mask: nil), kept = try run(mask: mask), dropped = try run(mask: mask.map { 1 - $0 })
        // The loss sums the counted rows only; the gradients of the two complementary masks add up to
        // the unmasked gradient, and the EOD rows' part is not zero (so the mask does remove something).
        let expected = (0..<n).reduce(0.0) { $0 + (mask[$1] == 1 ? all.2[$1] : 0) }
        XCTAssertEqual(kept.0, expected, accuracy: 1e-9 * expected)
        for r in 0..<n where mask[r] == 0 { XCTAssertEqual(kept.2[r], 0) }
        let scale = all.1.map(abs).max() ?? 0
        XCTAssertGreaterThan(dropped.1.map(abs).max() ?? 0, 1e-3 * scale)
        for k in all.1.indices {
            XCTAssertEqual(kept.1[k] + dropped.1[k], all.1[k], accuracy: 1e-5 * scale, "gradient element \(k)")
        }
        // The micro-batch's loss-gradient weight (Megatron's 1 / its counted tokens, relative to the
        // trainer's s·b) multiplies the gradient, not the loss.
        let weighted = try run(mask: mask, weight: 2.5)
        XCTAssertEqual(weighted.0, kept.0)
        for k in all.1.indices {
            XCTAssertEqual(weighted.1[k], 2.5 * kept.1[k], accuracy: 1e-5 * scale, "weighted gradient element \(k)")
        }
    }
}

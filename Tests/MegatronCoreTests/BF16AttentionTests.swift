// BF16AttentionTests.swift — the attention core in bf16 runs (tile products on the bf16 kernel, the
// probabilities and their gradients rounded to bf16 as operands) against the fp32 core on the same
// bf16-valued Q, K, V: every output and input gradient within bf16 rounding of the fp32 values,
// over several query tiles, every mask and dropout; and on a CPU with a bf16 kernel, not bitwise
// the fp32 result (so the bf16 path is the one measured).
import MegatronCore
import Tensor
import XCTest

final class BF16AttentionTests: XCTestCase {
    override func setUp() { ThreadBudget.configure(threads: 2) }

    func run(
        _ precision: Precision, qkv: [Float], dcontext: [Float], shape: AttentionShape, mask: AttentionMask,
        dropout: Float
    ) -> (context: [Float], dqkv: [Float]) {
        let stream = dropout > 0 ? DropoutStream(seed: 3, site: "bf16", step: 1, microbatch: 0) : nil
        var scratch = [Float](repeating: 0, count: 2 * shape.scratchPerWorker)
        var lse = [Float](repeating: 0, count: shape.batch * shape.heads * shape.seq)
        var context = [Float](repeating: 0, count: shape.seq * shape.batch * shape.hidden)
        var dqkv = [Float](repeating: 0, count: qkv.count)
        SelfAttention.forward(
            qkv: qkv, context: &context, lse: &lse, shape: shape, mask: mask, dropout: dropout, stream: stream,
            scratch: &scratch, precision: precision)
        SelfAttention.backward(
            dcontext: dcontext, qkv: qkv, lse: lse, dqkv: &dqkv, shape: shape, mask: mask, dropout: dropout,
            stream: stream, scratch: &scratch, precision: precision)
        return (context, dqkv)
    }

    func check(mask: AttentionMask, dropout: Float) {
        let shape = AttentionShape(seq: 150, batch: 2, heads: 2, headDim: 16)
        var rnd = TestRandom(11)
        var qkv = rnd.array(shape.seq * shape.batch * 3 * shape.hidden, scale: 1.5)
        var dcontext = rnd.array(shape.seq * shape.batch * shape.hidden)
        Precision.bf16.round(&qkv, count: qkv.count)
        Precision.bf16.round(&dcontext, count: dcontext.count)
        let ref = run(.fp32, qkv: qkv, dcontext: dcontext, shape: shape, mask: mask, dropout: dropout)
        let got = run(.bf16, qkv: qkv, dcontext: dcontext, shape: shape, mask: mask, dropout: dropout)
        for (name, r, g) in [("context", ref.context, got.context), ("dqkv", ref.dqkv, got.dqkv)] {
            XCTAssertEqual(r.count, g.count)
            let scale = r.map(abs).max() ?? 0
            XCTAssertGreaterThan(scale, 0, "\(name) is all zero: the comparison would be vacuous")
            let worst = zip(r, g).map { abs($0 - $1) }.max() ?? 0
            // bf16 keeps 8 significant bits: rounding P (and dS) moves each product by ≤ 2^-9 relative.
            XCTAssertLessThanOrEqual(worst, 0x1p-7 * scale, "\(mask), dropout \(dropout): \(name) off by \(worst)")
            if BF16.native {
                XCTAssertNotEqual(r, g, "\(name): the bf16 run gave the fp32 bits, so its kernel did not run")
            }
        }
    }

    /// Sequences of unequal length are handed to the workers longest first, one task at a time:
    /// each (sequence, head) writes only its own outputs, so one and two threads give the same bits.
    func testUnequalSequencesGiveTheSameBitsOnOneAndTwoThreads() {
        let shape = AttentionShape(seq: 150, batch: 3, heads: 2, headDim: 16)
        let mask = AttentionMask.keyPadding(lengths: [40, 150, 97])
        var rnd = TestRandom(12)
        var qkv = rnd.array(shape.seq * shape.batch * 3 * shape.hidden, scale: 1.5)
        let dcontext = rnd.array(shape.seq * shape.batch * shape.hidden)
        Precision.bf16.round(&qkv, count: qkv.count)
        for precision in [Precision.fp32, .bf16] {
            ThreadBudget.configure(threads: 1)
            let one = run(precision, qkv: qkv, dcontext: dcontext, shape: shape, mask: mask, dropout: 0.1)
            ThreadBudget.configure(threads: 2)
            let two = run(precision, qkv: qkv, dcontext: dcontext, shape: shape, mask: mask, dropout: 0.1)
            XCTAssertEqual(one.context, two.context, "\(precision)")
            XCTAssertEqual(one.dqkv, two.dqkv, "\(precision)")
            XCTAssertNotEqual(one.context.map(abs).max() ?? 0, 0)
        }
    }

    func testCausalSeveralTiles() { check(mask: .causal, dropout: 0) }
    func testCausalWithDropout() { check(mask: .causal, dropout: 0.2) }
    func testKeyPaddingSeveralTiles() { check(mask: .keyPadding(lengths: [150, 97]), dropout: 0) }
    func testCausalWithinDocumentsSeveralTiles() {
        let masks = DocumentMasks(eod: 0, resetAttentionMask: true)
        let firstKeys = [[3, 40, 41, 129], [90]].map { eods in
            masks.positionsAndFirstKeys((0..<150).map { eods.contains($0) ? 0 : 1 }).firstKeys
        }
        check(mask: .causalWithinDocuments(firstKeys: firstKeys), dropout: 0.1)
    }
}

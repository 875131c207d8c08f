// BertReferenceTests.swift — Megatron's pre-LN BERT against PyTorch in float64: the loss (masked-LM
// + sentence-order), the masked-LM and sentence-order logits and every parameter gradient on a
// padded batch with token types, from Fixtures/bert_reference.h5 (scripts/make_bert_reference.py).
// Tolerance 1e-5 relative to each tensor's largest entry.
import Checkpoint
import Foundation
import MegatronCore
import Tensor
import TestSupport
import XCTest

final class BertReferenceTests: XCTestCase {
    func testLossLogitsAndEveryGradientMatchPyTorch() throws {
        ThreadBudget.configure(threads: 2)
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: "bert_reference", withExtension: "h5", subdirectory: "Fixtures"))
        let f = try HDF5File.openReadOnly(url.path)
        let gpt = GPTConfig(
            numLayers: try f.intAttribute("num_layers"), hiddenSize: try f.intAttribute("hidden_size"),
            numAttentionHeads: try f.intAttribute("num_attention_heads"),
            ffnHiddenSize: try f.intAttribute("ffn_hidden_size"), seqLength: try f.intAttribute("seq_length"),
            maxPositionEmbeddings: try f.intAttribute("max_position_embeddings"),
            vocabSize: try f.intAttribute("vocab_size"), paddedVocabSize: try f.intAttribute("padded_vocab_size"),
            normEpsilon: Float(try f.doubleAttribute("norm_epsilon")))
        let b = try f.intAttribute("micro_batch_size"), s = gpt.seqLength
        let model = BertModel(config: BertConfig(transformer: gpt), microBatch: b, threads: 2)
        for (slot, spec) in model.table.specs.enumerated() {
            try f.readFloats("params/" + spec.name, shape: spec.shape, into: model.params.pointer(slot))
        }
        model.syncWeights()
        let acts = model.makeActivations()
        try f.readInt32s("tokens", shape: [s, b], into: acts.core.tokens.base)
        try f.readInt32s("tokentypes", shape: [s, b], into: acts.tokentypes.base)
        try f.readInt32s("labels", shape: [s, b], into: acts.labels.base)
        acts.sequenceLabels = try f.readFloats("sop_labels").values.map { Int32($0) }
        acts.setLengths(try f.readFloats("lengths").values.map { Int($0) })

        model.grads.zero()
        let ctx = PassContext(iteration: 1, microbatch: 0, training: true)
        let loss = try XCTUnwrap(try model.forward(acts, ctx, gradScale: 1))
        try model.backward(acts, ctx)
        let reference = try f.doubleAttribute("loss")
        XCTAssertEqual(loss, reference, accuracy: 1e-5 * reference)

        // The logits, from an evaluation forward (training overwrites them with their gradient).
        _ = try model.forward(acts, PassContext(iteration: 1, microbatch: 0, training: false), gradScale: nil)
        let (mlm, sop) = model.headLogits(acts)
        for (ours, name) in [(mlm, "mlm_logits"), (sop, "sop_logits")] {
            let ref = try f.readFloats(name)
            XCTAssertEqual(ours.count, ref.values.count, name)
            ours.withUnsafeBufferPointer { assertTensorsClose($0.baseAddress!, ref.values, tolerance: 1e-5, name) }
        }
        for (slot, spec) in model.table.specs.enumerated() {
            let ref = try f.readFloats("grads/" + spec.name)
            XCTAssertEqual(ref.shape, spec.shape, spec.name)
            assertTensorsClose(
                model.grads.pointer(slot), ref.values, tolerance: 1e-5, "grad of \(spec.name)", allowZero: true)
        }
    }
}

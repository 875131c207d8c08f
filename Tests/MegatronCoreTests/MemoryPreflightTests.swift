// MemoryPreflightTests.swift — the preflight's lower bound: GPT-2 124M's parameter bytes by the
// well-known count, optimizer state sharded by the distributed optimizer, layers split by t and p,
// and the refusal naming the ranks of a node.
import MegatronCore
import XCTest

final class MemoryPreflightTests: XCTestCase {
    func gpt2Small() -> TrainingConfig {
        var c = TrainingConfig()
        c.numLayers = 12; c.hiddenSize = 768; c.numAttentionHeads = 12; c.seqLength = 1024
        c.maxPositionEmbeddings = 1024; c.microBatchSize = 4
        return c
    }

    func testParameterCountAndSharding() throws {
        var c = gpt2Small()
        let one = MemoryPreflight(config: c, vocab: 50257, world: 1)
        // 124,475,904 parameters with the vocabulary padded to 50,304 (GPT-2 small's known count).
        XCTAssertEqual(one.parameters / 4, 124_475_904, accuracy: 0.5)
        XCTAssertEqual(one.gradients, one.parameters)
        XCTAssertEqual(one.optimizer, 2 * one.parameters, "Adam: two fp32 moments")
        XCTAssertEqual(one.logits, 4 * 1024 * 4 * 50304)
        c.useDistributedOptimizer = true
        c.tensorModelParallelSize = 1
        let sharded = MemoryPreflight(config: c, vocab: 50257, world: 4)
        XCTAssertEqual(sharded.optimizer, 3 * one.parameters / 4, accuracy: 16, "moments + main gradient over d = 4")
        c.useDistributedOptimizer = false
        c.pipelineModelParallelSize = 2
        let piped = MemoryPreflight(config: c, vocab: 50257, world: 2)
        XCTAssertLessThan(piped.parameters, 0.7 * one.parameters, "each stage holds half the layers")
        XCTAssertEqual(piped.activations, one.activations / 2, accuracy: 1)
        c.pipelineModelParallelSize = 1
        c.tensorModelParallelSize = 2
        let split = MemoryPreflight(config: c, vocab: 50257, world: 2)
        XCTAssertEqual(split.logits, 4 * 1024 * 4 * 50432 / 2, "padded to a multiple of 128 · t, then split")
        XCTAssertLessThan(split.parameters, 0.55 * one.parameters)
    }

    func testRefusalNamesTheNodeTotal() throws {
        let estimate = MemoryPreflight(config: gpt2Small(), vocab: 50257, world: 1)
        XCTAssertNoThrow(try estimate.check(ranksOnNode: 1, memory: 2 * estimate.total))
        XCTAssertThrowsError(try estimate.check(ranksOnNode: 4, memory: 2 * estimate.total)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("for the 4 ranks on this node"), text)
            XCTAssertTrue(text.contains("this run needs at least"), text)
        }
    }
}

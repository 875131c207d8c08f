// DataAndConfigTests.swift — the built-in corpus and sample order, the LR schedule's shape, and
// config loading (flags override the file; defaults are Megatron's).
import Foundation
import MegatronCore
import XCTest

final class DataAndConfigTests: XCTestCase {
    func testEmptyCorpusIsAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("megatron-empty-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        XCTAssertThrowsError(try TokenCorpus.licenseTexts(directory: dir.path)) {
            XCTAssertTrue("\($0)".contains("is empty") && "\($0)".contains(dir.path), "\($0)")
        }
        XCTAssertThrowsError(try TokenCorpus.licenseTexts(directory: dir.path + "/absent")) {
            XCTAssertTrue("\($0)".contains("cannot read"), "\($0)")
        }
    }

    func testShuffledOrderIsAPermutationPerEpochAndResumable() {
        let source = TokenWindows(tokens: (0..<1000).map { Int32($0 % 257) }, range: 0..<1000, seqLength: 10)
        XCTAssertEqual(source.count, 99)
        let a = ShuffledOrder(source: source, seed: 5), b = ShuffledOrder(source: source, seed: 5)
        let epoch0 = (0..<99).map { a.sampleIndex($0) }
        XCTAssertEqual(Set(epoch0), Set(0..<99))
        XCTAssertNotEqual(epoch0, Array(0..<99))
        let epoch1 = (99..<198).map { a.sampleIndex($0) }
        XCTAssertNotEqual(epoch0, epoch1)
        // Starting anywhere (a resume) gives the same samples.
        XCTAssertEqual((150..<160).map { b.sampleIndex($0) }, Array(epoch1[51..<61]))
    }

    func testLRScheduleWarmupAndDecay() {
        var s = LRSchedule(maxLR: 1e-3, minLR: 1e-4, warmupSteps: 10, decaySteps: 110, style: .cosine)
        XCTAssertEqual(s.learningRate, 0)  // Megatron: the first warm-up LR is 0
        s.numSteps = 5; XCTAssertEqual(s.learningRate, 5e-4, accuracy: 1e-12)
        s.numSteps = 10; XCTAssertEqual(s.learningRate, 1e-3, accuracy: 1e-12)
        s.numSteps = 60; XCTAssertEqual(s.learningRate, 5.5e-4, accuracy: 1e-12)  // cosine midpoint
        s.numSteps = 110; XCTAssertEqual(s.learningRate, 1e-4, accuracy: 1e-12)
        s.numSteps = 500; XCTAssertEqual(s.learningRate, 1e-4)
        var lin = LRSchedule(maxLR: 1, minLR: 0, warmupSteps: 0, decaySteps: 100, style: .linear)
        lin.numSteps = 25; XCTAssertEqual(lin.learningRate, 0.75, accuracy: 1e-12)
    }

    func testInverseSquareRootAndWSDSchedules() {
        // Megatron: after warm-up lr·√warmup/√n, never below min_lr; min_lr past the decay steps.
        var inv = LRSchedule(maxLR: 1e-3, minLR: 1e-5, warmupSteps: 16, decaySteps: 10_000, style: .inverseSquareRoot)
        inv.numSteps = 8; XCTAssertEqual(inv.learningRate, 5e-4, accuracy: 1e-15)  // warm-up as usual
        inv.numSteps = 64; XCTAssertEqual(inv.learningRate, 5e-4, accuracy: 1e-15)  // 1e-3 · 4 / 8
        inv.numSteps = 9_000; XCTAssertEqual(inv.learningRate, 1e-3 * 4 / 9_000.0.squareRoot(), accuracy: 1e-15)
        var floor = LRSchedule(maxLR: 1e-3, minLR: 2e-4, warmupSteps: 4, decaySteps: 1_000, style: .inverseSquareRoot)
        floor.numSteps = 900; XCTAssertEqual(floor.learningRate, 2e-4)  // 1e-3·2/30 < min_lr
        // WSD: warm-up, stable at lr, then its own decay over the last 100 steps before 1,000.
        var wsd = LRSchedule(maxLR: 1, minLR: 0.1, warmupSteps: 10, decaySteps: 1_000, style: .wsd)
        wsd.wsdDecaySteps = 100
        let expected: [(WSDDecayStyle, Double)] = [
            (.linear, 0.5), (.cosine, 0.5), (.exponential, 2 * 0.5.squareRoot() - 1),
            (.minusSqrt, 1 - 0.5.squareRoot()),
        ]
        for (style, coeffAtHalf) in expected {
            wsd.wsdStyle = style
            wsd.numSteps = 500; XCTAssertEqual(wsd.learningRate, 1, accuracy: 1e-15, "\(style): stable phase")
            wsd.numSteps = 900; XCTAssertEqual(wsd.learningRate, 1, accuracy: 1e-15, "\(style): decay not begun")
            wsd.numSteps = 950
            XCTAssertEqual(wsd.learningRate, 0.1 + coeffAtHalf * 0.9, accuracy: 1e-12, "\(style): half-way")
            wsd.numSteps = 1_000; XCTAssertEqual(wsd.learningRate, 0.1, accuracy: 1e-12, "\(style): end")
        }
    }

    func testFlagsOverrideFileAndDefaultsAreMegatrons() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(getpid()).json").path
        let json =
            #"{"num_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "seq_length": 16, "#
            + #""micro_batch_size": 2, "train_iters": 5, "lr": 0.001}"#
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try ConfigLoader.load(
            path: path, flags: ["--train-iters", "9", "--lr=3e-4", "--skip-train", "--split", "8,1,1"])
        XCTAssertEqual(c.trainIters, 9)
        XCTAssertEqual(c.lr, 3e-4)
        XCTAssertTrue(c.skipTrain)
        XCTAssertEqual(c.split, "8,1,1")
        XCTAssertEqual(c.weightDecay, 0.01); XCTAssertEqual(c.clipGrad, 1.0); XCTAssertEqual(c.adamBeta2, 0.999)
        XCTAssertEqual(c.hiddenDropout, 0.1); XCTAssertEqual(c.seed, 1234); XCTAssertEqual(c.lrDecayStyle, .linear)
    }

    /// Counts that would overflow the trainer's 64-bit arithmetic — one key, or a product of keys it
    /// forms — are refused by the first rule, naming the keys; every count within the bound, and any
    /// seed, passes it (the memory preflight then judges the real size).
    func testCountsBeyondSixtyFourBitArithmeticAreRefusedByName() throws {
        func message(_ flags: [String]) -> String {
            do {
                let c = try ConfigLoader.load(
                    path: nil,
                    flags: [
                        "--num-layers", "2", "--hidden-size", "32", "--num-attention-heads", "2", "--seq-length", "16",
                        "--max-position-embeddings", "16", "--micro-batch-size", "2", "--global-batch-size", "16",
                        "--train-iters", "10", "--lr", "1e-3",
                    ] + flags)
                try ConfigValidation.validate(c)
                return "accepted"
            } catch { return "\(error)" }
        }
        let huge = "\(1 << 62)", most = "\(Int.max)"
        for (flags, words) in [
            (["--hidden-size", huge], "'hidden_size' = \(huge) is invalid: must be at most 2^50"),
            (["--num-layers", huge], "'num_layers' = \(huge)"),
            (["--train-iters", most], "'train_iters' = \(most)"),
            (["--lr-warmup-iters", most], "'lr_warmup_iters' = \(most)"),
            (["--ffn-hidden-size", "\(-(1 << 62))"], "'ffn_hidden_size'"),
            (["--train-iters", "\(1 << 40)", "--global-batch-size", "4096"], "'train_iters' and 'global_batch_size'"),
            (
                ["--seq-length", "\(1 << 25)", "--max-position-embeddings", "\(1 << 25)"],
                "'micro_batch_size' and 'num_attention_heads' and 'seq_length'"
            ),
            (["--num-layers", "\(1 << 20)", "--hidden-size", "\(1 << 20)"], "weights in the layer stack"),
        ] {
            let m = message(flags)
            XCTAssertTrue(m.contains(words), "\(flags): \(m)")
        }
        XCTAssertEqual(message(["--seed", most]), "accepted")
        XCTAssertEqual(message(["--train-iters", "\(1 << 40)"]), "accepted", "2^40 iterations of 16 samples count")
    }

    func testMegatronFLOPsFormula() {
        // GPT-2 124M shapes: 72·B·s·L·h²·(1 + s/(6h) + V/(12·L·h)).
        let c = GPTConfig(
            numLayers: 12, hiddenSize: 768, numAttentionHeads: 12, seqLength: 1024, maxPositionEmbeddings: 1024,
            vocabSize: 50257)
        XCTAssertEqual(c.paddedVocabSize, 50304)
        let (B, s, L, h, V) = (4.0, 1024.0, 12.0, 768.0, 50304.0)
        XCTAssertEqual(
            c.flopsPerIteration(globalBatch: 4), 72 * B * s * L * h * h * (1 + s / (6 * h) + V / (12 * L * h)),
            accuracy: 1)
        // kv_channels 128 (twice h/a): the attention's share, (1 + g/a + s/h)·(a·d/h) of 12·B·s·L·h², doubles
        // — counted by hand: QKV 2·3·h·(a·d), scores and context 2·2·s·(a·d), projection 2·(a·d)·h per
        // token, ×3 for the backward, × B·s·L.
        var wide = c
        wide.kvChannels = 128
        XCTAssertEqual(wide.attentionWidth, 1536)
        let q = 1536.0, perToken = 2 * 3 * h * q + 2 * 2 * s * q + 2 * q * h
        XCTAssertEqual(
            wide.flopsPerIteration(globalBatch: 4) - c.flopsPerIteration(globalBatch: 4),
            3 * B * s * L * (perToken / 2), accuracy: 1e3)
    }
}

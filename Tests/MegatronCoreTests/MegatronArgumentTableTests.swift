import MegatronCore
// MegatronArgumentTableTests.swift — Megatron-LM's whole argument list (generated from megatron-core's
// own parser) is categorised: every name is a key, an alias, ignored, a fixed choice or refused with
// a reason, every argument group has its reason, the well-known names land where they should, and
// a command line with refused Megatron arguments reports each with its reason.
import XCTest

final class MegatronArgumentTableTests: XCTestCase {
    func testTheListIsMegatronsWholeParser() {
        let table = MegatronArguments.megatronLM
        XCTAssertGreaterThan(table.count, 800, "megatron-core 0.19 defines about 845 arguments")
        for name in [
            "num_layers", "tensor_model_parallel_size", "micro_batch_size", "lr", "train_iters", "moe_router_topk",
        ] {
            XCTAssertNotNil(table[name], name)
        }
        XCTAssertEqual(table["micro_batch_size"]?.takesValue, true)
        XCTAssertEqual(table["bf16"]?.takesValue, false)
    }

    func testEveryArgumentIsCategorisedWithAReason() {
        for (name, entry) in MegatronArguments.megatronLM {
            XCTAssertNotNil(
                MegatronArguments.groupReasons[entry.group], "group '\(entry.group)' of \(name) has no reason")
            guard let disposition = MegatronArguments.disposition(of: name) else {
                XCTFail("\(name) is not categorised")
                continue
            }
            if case .refused(let reason) = disposition {
                XCTAssertFalse(reason.isEmpty, name)
            }
        }
    }

    func testWellKnownNamesLandWhereTheyShould() {
        let expected: [String: MegatronDisposition] = [
            "num_layers": .key, "seq_length": .key, "rampup_batch_size": .key, "sgd_momentum": .key,
            "exit_interval": .key, "use_distributed_optimizer": .key, "recompute_activations": .alias,
            "checkpoint_activations": .alias, "use_flash_attn": .ignored, "no_masked_softmax_fusion": .ignored,
            "transformer_impl": .ignored, "ckpt_format": .fixedChoice, "normalization": .key,
            "bert_no_binary_head": .alias, "kv_channels": .key, "vocab_extra_ids": .fixedChoice,
            "position_embedding_type": .key, "rotary_base": .key, "swiglu": .key, "disable_bias_linear": .alias,
            "untie_embeddings_and_output_weights": .key, "use_rotary_position_embeddings": .alias,
            "rotary_interleaved": .fixedChoice,
        ]
        for (name, disposition) in expected {
            XCTAssertEqual(MegatronArguments.disposition(of: name), disposition, name)
        }
        guard case .refused(let moe) = MegatronArguments.disposition(of: "moe_router_topk") else {
            return XCTFail("moe_router_topk must be refused")
        }
        XCTAssertTrue(moe.contains("mixture-of-experts"), moe)
        XCTAssertNil(MegatronArguments.disposition(of: "no_such_argument_anywhere"))
    }

    func testBertNoBinaryHeadTurnsTheHeadOff() throws {
        var config = TrainingConfig()
        config.modelType = .bert
        XCTAssertTrue(config.bertBinaryHead)
        try ConfigLoader.applyFlags(["--bert-no-binary-head", "--num-layers", "2"], to: &config)
        XCTAssertFalse(config.bertBinaryHead)
        XCTAssertEqual(config.numLayers, 2, "the switch takes no value")
    }

    /// --kv-channels takes any positive head width (a·d need not be the hidden size); --vocab-extra-ids
    /// only 0 (T5's sentinels are not built).
    func testKvChannelsTakesAnyWidthAndVocabExtraIdsOnlyZero() throws {
        let flags = [
            "--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "4", "--seq-length", "32",
            "--train-iters", "1", "--lr", "0.001", "--micro-batch-size", "1",
        ]
        var config = try ConfigLoader.parse(
            path: nil, flags: flags + ["--kv-channels", "16", "--vocab-extra-ids", "0"])
        XCTAssertEqual(config.kvChannels, 16)
        XCTAssertNoThrow(try ConfigValidation.validate(config))
        config.kvChannels = 32
        XCTAssertNoThrow(try ConfigValidation.validate(config))
        config.kvChannels = 0
        XCTAssertThrowsError(try ConfigValidation.validate(config)) { error in
            XCTAssertTrue("\(error)".contains("kv_channels") && "\(error)".contains("must be positive"), "\(error)")
        }
        config.kvChannels = 32
        XCTAssertThrowsError(try ConfigLoader.applyFlags(["--vocab-extra-ids", "100"], to: &config)) { error in
            XCTAssertTrue("\(error)".contains("--vocab-extra-ids 100") && "\(error)".contains("T5"), "\(error)")
        }
    }

    func testRefusedMegatronArgumentsAreReportedTogetherWithTheirReasons() {
        var config = TrainingConfig()
        XCTAssertThrowsError(
            try ConfigLoader.applyFlags(
                ["--moe-router-topk", "2", "--num-layers", "2", "--perform-rl-step", "--sequence-parallel-typo", "1"],
                to: &config)
        ) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("3 problems"), text)
            XCTAssertTrue(text.contains("--moe-router-topk") && text.contains("mixture-of-experts"), text)
            XCTAssertTrue(text.contains("--perform-rl-step") && text.contains("GRPO"), text)
            XCTAssertTrue(text.contains("--sequence-parallel-typo"), text)
        }
        XCTAssertEqual(config.numLayers, 2, "the valid flag on the same line is applied")
    }

    func testHelpSummarisesTheWholeList() {
        let help = MegatronArguments.helpText
        XCTAssertTrue(help.contains("Megatron-LM's \(MegatronArguments.megatronLM.count) arguments"), help)
        XCTAssertTrue(help.contains("transformer configuration"), help)
    }
}

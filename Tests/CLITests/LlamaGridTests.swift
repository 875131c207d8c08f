// LlamaGridTests.swift — `configs/llama-tiny.json` (Megatron's Llama-style options: rope, RMSNorm,
// SwiGLU, no linear biases, an untied LM head, grouped-query attention with 2 groups of 2 heads)
// through the built binary: t = 2 with sequence parallelism, p = 2 with two virtual stages, and
// t = 2 × p = 2 × d = 2 with the distributed optimizer give one rank's training and validation losses
// within 1e-5 and gradient norms within 1e-4; a checkpoint resharded by convert-checkpoint resumes
// with the same losses; `generate` with the KV cache scores every token as the training model's full
// forward does, and the checkpoint exports as LlamaForCausalLM; Megatron's own flags for a
// Llama-style model build the same model as the config; bad values are refused naming their keys.
import Checkpoint
import Foundation
import MegatronCore
import Tensor
import TestSupport
import XCTest

final class LlamaGridTests: XCTestCase {
    static let iterations = 12

    func train(_ name: String, ranks: Int = 1, _ flags: [String], in dir: URL) throws -> (
        train: [Double], norms: [Double], valid: [Double]
    ) {
        let args =
            [
                "train", "--config", CLI.config("llama-tiny.json"), "--train-iters", "\(Self.iterations)",
                "--micro-batch-size", "2", "--global-batch-size", "8", "--eval-interval", "6", "--eval-iters", "2",
                "--log-interval", "1", "--num-threads", "1", "--metrics-file", "\(name).jsonl",
            ] + flags
        let r = ranks == 1 ? try CLI.run(args, in: dir) : try CLI.mpirun(ranks: ranks, args, in: dir)
        XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
        let lines = try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
        return (
            try CLI.losses(dir, name), try CLI.losses(dir, name, key: "grad_norm"),
            lines.compactMap { $0["valid_lm_loss"] as? Double }
        )
    }

    func testEveryGridEqualsOneRank() throws {
        let dir = CLI.scratch("llama-grids")
        let reference = try train("one", [], in: dir)
        XCTAssertEqual(reference.train.count, Self.iterations)
        XCTAssertEqual(reference.valid.count, 2, "validation at iterations 6 and 12")
        XCTAssertLessThan(reference.train.last!, reference.train.first! - 0.3, "llama-tiny learns: \(reference.train)")
        for (name, ranks, grid) in [
            ("t2sp", 2, ["--tensor-model-parallel-size", "2", "--sequence-parallel"]),
            ("p2v2", 2, ["--pipeline-model-parallel-size", "2", "--num-layers-per-virtual-pipeline-stage", "1"]),
            (
                "t2p2d2", 8,
                [
                    "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2",
                    "--use-distributed-optimizer",
                ]
            ),
        ] {
            let got = try train(name, ranks: ranks, grid, in: dir)
            assertLossesMatch(got.train, reference.train, count: Self.iterations, relativeTolerance: 1e-5, name)
            assertLossesMatch(
                got.norms, reference.norms, count: Self.iterations, relativeTolerance: 1e-4, "\(name) norms")
            assertLossesMatch(got.valid, reference.valid, count: 2, relativeTolerance: 1e-5, "\(name) validation")
        }
    }

    /// Megatron's window_size (sliding-window attention) changes the losses and keeps them equal to one
    /// rank's at t = 2 with SP × p = 2 with two virtual stages, in fp32 (within 1e-5) and, with
    /// add_qkv_bias (Qwen 2's QKV-only bias) as well, in bf16 (within 1e-3).
    func testSlidingWindowAndQKVBiasOnAGridEqualOneRank() throws {
        let dir = CLI.scratch("llama-window")
        let full = try train("full", [], in: dir)
        for precision in [[], ["--bf16", "--add-qkv-bias"]] {
            let name = precision.isEmpty ? "fp32" : "bf16"
            let window = ["--window-size", "7,0"] + precision
            let one = try train("\(name)-one", window, in: dir)
            if precision.isEmpty {
                XCTAssertGreaterThan(
                    zip(one.train, full.train).map { abs($0 - $1) }.max() ?? 0, 1e-3,
                    "a window of 8 keys must change the losses of 64-token samples")
            }
            let grid = try train(
                "\(name)-t2p2", ranks: 4,
                window + [
                    "--tensor-model-parallel-size", "2", "--sequence-parallel", "--pipeline-model-parallel-size", "2",
                    "--num-layers-per-virtual-pipeline-stage", "1",
                ], in: dir)
            // bf16: t = 2 sums a row-parallel product's halves in another order, and its activations'
            // 16-bit rounding carries that on (MixedPrecisionTests allows 1% there).
            let tolerance = precision.isEmpty ? 1e-5 : 1e-3
            assertLossesMatch(grid.train, one.train, count: Self.iterations, relativeTolerance: tolerance, name)
            assertLossesMatch(grid.valid, one.valid, count: 2, relativeTolerance: tolerance, "\(name) validation")
        }
    }

    func testResumeOnAnotherGridGenerateAndExport() throws {
        let dir = CLI.scratch("llama-resume")
        let whole = try train("whole", [], in: dir)
        // Half the run on one rank, saved; resharded to t = 2 × p = 2 and resumed there.
        _ = try train("first", ["--exit-interval", "6", "--save", "ckpt", "--save-interval", "6"], in: dir)
        let convert = try CLI.run(
            [
                "convert-checkpoint", "--load", "ckpt", "--save", "ckpt-t2p2", "--target-tensor-parallel-size", "2",
                "--target-pipeline-parallel-size", "2",
            ], in: dir)
        XCTAssertEqual(convert.code, 0, convert.stderr)
        let resumed = try train(
            "resumed", ranks: 4,
            ["--load", "ckpt-t2p2", "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"],
            in: dir)
        assertLossesMatch(
            resumed.train, Array(whole.train.suffix(6)), count: 6, relativeTolerance: 1e-5, "resumed at t = 2 × p = 2")

        // Generation with the KV cache (rope at each new position, SwiGLU, RMSNorm, the untied head)
        // scores each token as the training model's full forward does.
        try assertGenerationScoresAsTraining(checkpoint: "ckpt", in: dir)

        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf-out"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        XCTAssertTrue(export.stdout.contains("LlamaForCausalLM"), "llama-tiny exports as Llama: \(export.stdout)")
    }

    /// `generate` with the KV cache from `checkpoint`, greedy with log-probabilities, on two prompts: each
    /// token's log-probability is minus the loss the training model's full forward gives it, and each
    /// generated token is that forward's arg-max.
    func assertGenerationScoresAsTraining(checkpoint: String, in dir: URL) throws {
        try "The quick brown fox\nGNU General Public\n".write(
            to: dir.appendingPathComponent("prompts.txt"), atomically: true, encoding: .utf8)
        let gen = try CLI.run(
            [
                "generate", "--load", checkpoint, "--prompts-file", "prompts.txt", "--output", "out.jsonl",
                "--temperature", "0", "--tokens-to-generate", "20", "--logprobs", "--num-threads", "1",
            ], in: dir)
        XCTAssertEqual(gen.code, 0, gen.stderr)
        let lines = try CLI.jsonLines(dir.appendingPathComponent("out.jsonl"))
        XCTAssertEqual(lines.count, 2)
        for line in lines {
            let prompt = try XCTUnwrap(line["prompt_tokens"] as? [Int]), new = try XCTUnwrap(line["tokens"] as? [Int])
            let logprobs = try XCTUnwrap(line["logprobs"] as? [Double])
            let ids = (prompt + new).map(Int32.init)
            XCTAssertEqual(logprobs.count, ids.count - 1)
            let (losses, isArgmax) = try trainingForwardScores(
                checkpoint: dir.appendingPathComponent(checkpoint), ids: ids, vocab: 257)
            for i in 0..<(ids.count - 1) {
                XCTAssertEqual(logprobs[i], -losses[i], accuracy: 1e-4, "token \(i + 1)")
                if i + 1 >= prompt.count { XCTAssertTrue(isArgmax[i], "token \(i + 1) is the arg-max") }
            }
        }
    }

    /// Megatron's qk_layernorm (RMSNorm over each query and key head) changes the losses and keeps them
    /// equal to one rank's at t = 2 with SP × p = 2 with two virtual stages and at t = 2 × d = 2 with the
    /// distributed optimizer — its weights' gradients are partial over the tensor group, summed there —
    /// (losses and validation within 1e-5, gradient norms within 1e-4); `generate` with the KV cache
    /// scores as the training forward does; it exports as Qwen3ForCausalLM.
    func testQKLayerNormOnGridsEqualsOneRankAndGenerates() throws {
        let dir = CLI.scratch("llama-qknorm")
        let plain = try train("plain", [], in: dir)
        // SGD: an update proportional to the gradient, so a gradient summed over half the heads would
        // show (Adam's first steps move by the gradient's sign alone).
        let qk = ["--qk-layernorm", "--optimizer", "sgd", "--lr", "0.05"]
        let one = try train("one", qk + ["--save", "ckpt", "--save-interval", "\(Self.iterations)"], in: dir)
        XCTAssertGreaterThan(
            zip(one.train, plain.train).map { abs($0 - $1) }.max() ?? 0, 1e-3, "qk_layernorm must change the losses")
        for (name, grid) in [
            (
                "t2sp-p2v2",
                [
                    "--tensor-model-parallel-size", "2", "--sequence-parallel", "--pipeline-model-parallel-size", "2",
                    "--num-layers-per-virtual-pipeline-stage", "1",
                ]
            ),
            (
                "t2d2-distopt",
                [
                    "--tensor-model-parallel-size", "2", "--use-distributed-optimizer", "--save", "ckpt-t2",
                    "--save-interval", "\(Self.iterations)",
                ]
            ),
        ] {
            let got = try train(name, ranks: 4, qk + grid, in: dir)
            assertLossesMatch(got.train, one.train, count: Self.iterations, relativeTolerance: 1e-5, name)
            assertLossesMatch(got.norms, one.norms, count: Self.iterations, relativeTolerance: 1e-4, "\(name) norms")
            assertLossesMatch(got.valid, one.valid, count: 2, relativeTolerance: 1e-5, "\(name) validation")
        }
        // The norms' weights barely move the losses; their trained values show a gradient summed over
        // only one tensor rank's heads: each tensor rank's copy equals one rank's.
        for layer in 0..<4 {
            for norm in ["q_layernorm", "k_layernorm"] {
                let name = "model/decoder.layers.\(layer).self_attention.\(norm).weight"
                let one = try HDF5File.openReadOnly(
                    dir.appendingPathComponent("ckpt/iter_0000012/mp_rank_00_000.h5").path
                )
                .readFloats(name).values
                let moved = one.map { abs($0 - 1) }.max() ?? 0
                XCTAssertGreaterThan(moved, 1e-4, "\(name) trains")
                for rank in 0..<2 {
                    let t2 = try HDF5File.openReadOnly(
                        dir.appendingPathComponent("ckpt-t2/iter_0000012/mp_rank_0\(rank)_000.h5").path
                    ).readFloats(name).values
                    let off = zip(one, t2).map { abs($0 - $1) }.max() ?? .infinity
                    XCTAssertLessThan(off, 1e-3 * moved, "\(name) on tensor rank \(rank)")
                }
            }
        }
        try assertGenerationScoresAsTraining(checkpoint: "ckpt", in: dir)
        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf-out"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        XCTAssertTrue(export.stdout.contains("Qwen3ForCausalLM"), "llama-tiny with query/key norms: \(export.stdout)")
    }

    /// Megatron's kv_channels: heads 24 wide where hidden_size / num_attention_heads is 16 (Qwen 3's
    /// head_dim 128 at hidden 1024) — QKV gives (4 + 2·2)·24 = 192 columns and the projection maps
    /// 4·24 = 96 back to 64, as the checkpoint's shapes show. t = 2 with SP × p = 2 with two virtual
    /// stages and t = 2 × d = 2 with the distributed optimizer equal one rank (losses and validation
    /// within 1e-5, gradient norms within 1e-4); `generate` with the KV cache scores as the training
    /// forward; the export to Hugging Face writes head_dim 24.
    func testWiderHeadsOnGridsEqualOneRankAndGenerate() throws {
        let dir = CLI.scratch("llama-kv-channels")
        let plain = try train("plain", [], in: dir)
        let wide = ["--kv-channels", "24"]
        let one = try train("one", wide + ["--save", "ckpt", "--save-interval", "\(Self.iterations)"], in: dir)
        XCTAssertGreaterThan(
            zip(one.train, plain.train).map { abs($0 - $1) }.max() ?? 0, 1e-3, "kv_channels must change the losses")
        let file = try HDF5File.openReadOnly(dir.appendingPathComponent("ckpt/iter_0000012/mp_rank_00_000.h5").path)
        let layer = "model/decoder.layers.0.self_attention."
        XCTAssertEqual(try file.readFloats(layer + "linear_qkv.weight").shape, [192, 64])
        XCTAssertEqual(try file.readFloats(layer + "linear_proj.weight").shape, [64, 96])
        for (name, grid) in [
            (
                "t2sp-p2v2",
                [
                    "--tensor-model-parallel-size", "2", "--sequence-parallel", "--pipeline-model-parallel-size", "2",
                    "--num-layers-per-virtual-pipeline-stage", "1",
                ]
            ),
            ("t2d2-distopt", ["--tensor-model-parallel-size", "2", "--use-distributed-optimizer"]),
        ] {
            let got = try train(name, ranks: 4, wide + grid, in: dir)
            assertLossesMatch(got.train, one.train, count: Self.iterations, relativeTolerance: 1e-5, name)
            assertLossesMatch(got.norms, one.norms, count: Self.iterations, relativeTolerance: 1e-4, "\(name) norms")
            assertLossesMatch(got.valid, one.valid, count: 2, relativeTolerance: 1e-5, "\(name) validation")
        }
        try assertGenerationScoresAsTraining(checkpoint: "ckpt", in: dir)
        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf-out"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        let config = try CLI.jsonObject(dir.appendingPathComponent("hf-out/config.json"))
        XCTAssertEqual(config["head_dim"] as? Int, 24)
    }

    func testBadOptionsAreRefusedNamingTheKeys() throws {
        let dir = CLI.scratch("llama-bad")
        let llama = ["train", "--config", CLI.config("llama-tiny.json"), "--train-iters", "2"]
        for (flags, expected) in [
            (["--num-query-groups", "3"], "num_query_groups 3 must be positive and divide num_attention_heads 4"),
            (["--rotary-percent", "0"], "rotary_percent"),
            (["--rotary-percent", "0.1"], "rope must rotate at least two"),
            (["--normalization", "ScaleNorm"], "normalization"),
            (["--position-embedding-type", "learned_absolute", "--no-position-embedding"], "add_position_embedding"),
            (["--window-size", "7,3"], "right must be 0"), (["--window-size", "seven"], "window_size"),
            (["--window-size", "-2,0"], "left must be"), (["--kv-channels", "0"], "kv_channels"),
            (["--kv-channels", "3", "--rotary-percent", "0.5"], "rope must rotate at least two of each head's 3"),
        ] {
            let r = try CLI.run(llama + flags, in: dir)
            XCTAssertEqual(r.code, 2, "\(flags): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(expected), "\(flags): stderr lacks '\(expected)': \(r.stderr)")
        }
        let t4 = try CLI.mpirun(ranks: 4, llama + ["--tensor-model-parallel-size", "4"], in: dir)
        XCTAssertNotEqual(t4.code, 0)
        XCTAssertTrue(
            t4.stderr.contains("num_query_groups 2 must be divisible by tensor_model_parallel_size 4"), t4.stderr)
        for flag in [
            ["--swiglu"], ["--disable-bias-linear"], ["--group-query-attention"], ["--window-size", "7,0"],
            ["--qk-layernorm"],
        ] {
            let r = try CLI.run(
                ["train", "--config", CLI.config("bert-tiny.json"), "--train-iters", "2"] + flag, in: dir)
            XCTAssertEqual(r.code, 2, "\(flag): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("is built for GPT"), "\(flag): \(r.stderr)")
        }
    }

    /// Megatron-LM's own spelling of a Llama-2-style model (the flags its Llama scripts pass, its
    /// Llama2Tokenizer over a SentencePiece model included) on gpt2-tiny's sizes trains exactly as
    /// configs/llama-tiny.json does with that tokenizer.
    func testMegatronLlamaFlagsBuildTheSameModelAsTheConfig() throws {
        let dir = CLI.scratch("llama-flags")
        let tokenizer = [
            "--tokenizer-type", "Llama2Tokenizer", "--tokenizer-model",
            CLI.repoRoot.appendingPathComponent("Tests/MegatronCoreTests/Fixtures/sentencepiece/llama_bpe.model").path,
        ]
        let megatronFlags = [
            "--use-rotary-position-embeddings", "--no-position-embedding", "--rotary-base", "10000",
            "--normalization", "RMSNorm", "--swiglu", "--disable-bias-linear", "--untie-embeddings-and-output-weights",
            "--group-query-attention", "--num-query-groups", "2", "--no-masked-softmax-fusion",
            "--attention-softmax-in-fp32", "--no-rope-fusion", "--micro-batch-size", "4",
        ]
        var losses: [[Double]] = []
        for (name, args) in [
            ("flags", ["train", "--config", CLI.config("gpt2-tiny.json")] + megatronFlags + tokenizer),
            ("config", ["train", "--config", CLI.config("llama-tiny.json")] + tokenizer),
        ] {
            let r = try CLI.run(
                args + [
                    "--train-iters", "6", "--log-interval", "1", "--eval-iters", "0", "--metrics-file", "\(name).jsonl",
                ],
                in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("Llama2Tokenizer tokens"), "\(name): \(r.stdout)")
            losses.append(try CLI.losses(dir, name))
        }
        XCTAssertEqual(losses[0].count, 6)
        XCTAssertEqual(losses[0], losses[1], "the same model and data, bit for bit")
    }
}

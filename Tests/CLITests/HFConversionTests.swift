// HFConversionTests.swift — `convert-checkpoint` and `evaluate` against a small random GPT-2 made
// by transformers (scripts/make_hf_fixtures.py; the fixture and transformers' outputs are
// committed, so no torch is needed): the imported model's logits and token losses equal
// transformers' within 1e-4; export gives back the very tensors imported; WikiText-103 and
// LAMBADA (strict and not) on the real test files equal an independent Python implementation of
// Megatron's method, on one rank and on t = 2 × p = 2; resharding round trips are bitwise; a
// mismatched or missing tensor is an error naming it and both shapes. With torch and transformers
// installed, transformers also loads an export of a model trained here and reproduces our logits.
import Checkpoint
import Foundation
import MegatronCore
import Tensor
import TestSupport
import XCTest

final class HFConversionTests: XCTestCase {
    let fixture = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_gpt2_tiny")
    var shared: URL? {
        let s = CLI.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
        return FileManager.default.fileExists(atPath: s.path) ? s : nil
    }

    /// Our logits [rows, V] (row = position·b + sample) for `ids` ([b][s]) from the checkpoint at `ckpt`.
    /// With `lastTargets`, the last position is scored against them too, and `lastIsArgmax` says
    /// whether each is the model's arg-max prediction there.
    func ourLogits(checkpoint ckpt: URL, ids: [[Int32]], vocab: Int, lastTargets: [Int32]? = nil)
        throws -> (logits: [Float], losses: [Double], lastIsArgmax: [Bool])
    {
        var cfg = try storedTrainingConfig(ckpt)
        let b = ids.count, s = ids[0].count
        cfg.seqLength = s
        let gpt = GPTConfig(training: cfg, vocabSize: vocab)
        let model = GPTModel(config: gpt, microBatch: b, threads: ThreadBudget.threads)
        _ = try ModelCheckpoint.loadWeights(from: CheckpointDirectory(root: ckpt.path), chunks: [model])
        let acts = model.makeActivations()
        for i in 0..<s {
            for j in 0..<b {
                acts.tokens.base[i * b + j] = ids[j][i];
                acts.targets.base[i * b + j] = i + 1 < s ? ids[j][i + 1] : lastTargets?[j] ?? 0
            }
        }
        acts.scoring = TokenScoring(rows: Array(0..<((lastTargets == nil ? s - 1 : s) * b)))
        _ = try model.lossSum(acts)
        let losses = acts.scoring!.losses
        let lastIsArgmax = lastTargets == nil ? [] : Array(acts.scoring!.targetIsArgmax.suffix(b))
        acts.scoring = nil
        let h = gpt.hiddenSize, n = s * b
        var logits = [Float](repeating: 0, count: n * vocab)
        let wte = model.params.pointer(try XCTUnwrap(model.table.slot(named: GPTSlots.wordEmbeddingsName)))
        logits.withUnsafeMutableBufferPointer { out in
            BLAS.sgemm(
                transB: true, m: n, n: vocab, k: h, a: acts.finalNorm, lda: h, b: wte, ldb: h, c: out.baseAddress!,
                ldc: vocab)
        }
        return (logits, losses, lastIsArgmax)
    }

    func testImportEqualsTransformersAndExportGivesTheTensorsBack() throws {
        let dir = CLI.scratch("hf-import")
        let r = try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let expected = try HDF5File.openReadOnly(fixture.appendingPathComponent("expected.h5").path)
        var flatIds = [Int32](repeating: 0, count: 32)
        try flatIds.withUnsafeMutableBufferPointer {
            try expected.readInt32s("input_ids", shape: [2, 16], into: $0.baseAddress!)
        }
        let ids = [Array(flatIds[0..<16]), Array(flatIds[16..<32])]
        let V = 50257
        let last = try expected.readFloats("last_logits").values, slice = try expected.readFloats("logit_slice").values
        // transformers' prediction after each sequence, and a token it does not predict.
        let predicted = (0..<2).map { j in
            Int32(last[(j * V)..<((j + 1) * V)].indices.max { last[$0] < last[$1] }! - j * V)
        }
        let ours = try ourLogits(
            checkpoint: dir.appendingPathComponent("ckpt"), ids: ids, vocab: V, lastTargets: predicted)
        XCTAssertEqual(ours.lastIsArgmax, [true, true], "our arg-max equals transformers' \(predicted)")
        let other = try ourLogits(
            checkpoint: dir.appendingPathComponent("ckpt"), ids: ids, vocab: V,
            lastTargets: predicted.map { ($0 + 1) % Int32(V) })
        XCTAssertEqual(other.lastIsArgmax, [false, false])
        let tokenLoss = try expected.readFloats("token_loss").values
        var worst: Float = 0
        for j in 0..<2 {
            for v in 0..<V { worst = max(worst, abs(ours.logits[(15 * 2 + j) * V + v] - last[j * V + v])) }
            for i in 0..<16 {
                for v in 0..<64 {
                    worst = max(worst, abs(ours.logits[(i * 2 + j) * V + v] - slice[(j * 16 + i) * 64 + v]))
                }
            }
            for i in 0..<15 {
                XCTAssertEqual(
                    ours.losses[i * 2 + j], Double(tokenLoss[j * 15 + i]), accuracy: 1e-4, "token loss \(j), \(i)")
            }
        }
        XCTAssertLessThan(worst, 1e-4, "logits equal transformers'")

        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "exported"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        let original = try Safetensors.read(fixture.appendingPathComponent("model.safetensors").path)
        let roundTrip = try Safetensors.read(dir.appendingPathComponent("exported/model.safetensors").path)
        XCTAssertEqual(Set(roundTrip.keys), Set(original.keys))
        for (name, t) in original {
            XCTAssertEqual(roundTrip[name]?.shape, t.shape, name)
            XCTAssertEqual(roundTrip[name]?.values, t.values, "\(name) comes back bit for bit")
        }
        let again = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "exported"], in: dir)
        XCTAssertEqual(again.code, 1)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
    }

    func testMismatchedAndMissingTensorsAreNamed() throws {
        let dir = CLI.scratch("hf-bad")
        let tensors = try Safetensors.read(fixture.appendingPathComponent("model.safetensors").path)
        let fm = FileManager.default
        for (name, mutate) in [
            (
                "wrong",
                { (t: inout [String: SafetensorsTensor]) in
                    t["transformer.h.1.attn.c_attn.weight"] = SafetensorsTensor(
                        shape: [96, 96], values: [Float](repeating: 0, count: 96 * 96))
                }
            ),
            ("missing", { (t: inout [String: SafetensorsTensor]) in t["transformer.h.2.mlp.c_fc.bias"] = nil }),
        ] {
            var copy = tensors
            mutate(&copy)
            let hf = dir.appendingPathComponent(name)
            try fm.createDirectory(at: hf, withIntermediateDirectories: true)
            try fm.copyItem(
                at: fixture.appendingPathComponent("config.json"), to: hf.appendingPathComponent("config.json"))
            try Safetensors.write(
                hf.appendingPathComponent("model.safetensors").path, tensors: copy, metadata: ["format": "pt"])
            let r = try CLI.run(["convert-checkpoint", "--from", "hf", hf.path, "--save", "out-\(name)"], in: dir)
            XCTAssertEqual(r.code, 1, name)
            if name == "wrong" {
                XCTAssertTrue(
                    r.stderr.contains("transformer.h.1.attn.c_attn.weight") && r.stderr.contains("[96, 96]")
                        && r.stderr.contains("[96, 288]"), r.stderr)
            } else {
                XCTAssertTrue(
                    r.stderr.contains("transformer.h.2.mlp.c_fc.bias") && r.stderr.contains("missing"), r.stderr)
            }
            XCTAssertFalse(
                fm.fileExists(atPath: dir.appendingPathComponent("out-\(name)/latest_checkpointed_iteration.txt").path),
                "nothing committed")
        }
    }

    func testReshardRoundTripsAreBitwise() throws {
        let dir = CLI.scratch("reshard-convert")
        let train = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "6", "--eval-iters", "0",
            "--num-threads", "1",
            "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2", "--save", "ck22",
        ]
        XCTAssertEqual(try CLI.mpirun(ranks: 4, train, in: dir).code, 0)
        XCTAssertEqual(try CLI.run(["convert-checkpoint", "--load", "ck22", "--save", "ck11"], in: dir).code, 0)
        XCTAssertEqual(
            try CLI.run(
                ["convert-checkpoint", "--load", "ck11", "--save", "ck41", "--target-tensor-parallel-size", "4"],
                in: dir
            ).code, 0)
        XCTAssertEqual(
            try CLI.run(
                [
                    "convert-checkpoint", "--load", "ck41", "--save", "ck22v", "--target-tensor-parallel-size", "2",
                    "--target-pipeline-parallel-size", "2", "--target-num-layers-per-virtual-pipeline-stage", "1",
                ], in: dir
            ).code, 0)
        // A checkpoint trained at t = 2 × p = 2 evaluates on one rank without naming a grid.
        try String(repeating: " = Title = \n The cat sat on the mat , and it was happy . \n", count: 40)
            .write(to: dir.appendingPathComponent("wiki.test.tokens"), atomically: true, encoding: .utf8)
        let eval = try CLI.run(
            ["evaluate", "--task", "wikitext103", "--valid-data", "wiki.test.tokens", "--load", "ck22"], in: dir)
        XCTAssertEqual(eval.code, 0, eval.stderr)
        XCTAssertTrue(eval.stdout.contains("validation results on WIKITEXT103"), eval.stdout)
        let files = try FileManager.default.contentsOfDirectory(
            atPath: dir.appendingPathComponent("ck41/iter_0000006").path
        ).sorted()
        XCTAssertEqual(files, (0..<4).map { String(format: "mp_rank_%02d_000.h5", $0) })
        let models = try ["ck22", "ck11", "ck41", "ck22v"].map {
            try WholeModel.load(checkpoint: dir.appendingPathComponent($0).path)
        }
        func contents(_ a: ParameterArena) -> [Float] {
            Array(UnsafeBufferPointer(start: a.storage.base, count: a.storage.count))
        }
        for m in models.dropFirst() {
            XCTAssertEqual(contents(m.params), contents(models[0].params), "parameters bitwise")
            XCTAssertEqual(
                contents(try XCTUnwrap(m.optimizerState)[0]), contents(try XCTUnwrap(models[0].optimizerState)[0]),
                "exp_avg bitwise")
            XCTAssertEqual(
                contents(try XCTUnwrap(m.optimizerState)[1]), contents(try XCTUnwrap(models[0].optimizerState)[1]),
                "exp_avg_sq bitwise"
            )
            XCTAssertEqual(m.state.iteration, 6)
            XCTAssertEqual(m.state.consumedSamples, models[0].state.consumedSamples)
        }
    }

    func testEvaluationEqualsTheReferenceOnAnyGrid() throws {
        guard let shared else {
            throw XCTSkip("../shared/data is absent; WikiText-103 and LAMBADA evaluation not checked")
        }
        let dir = CLI.scratch("hf-eval")
        XCTAssertEqual(
            try CLI.run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", "ckpt"], in: dir).code, 0)
        let expected = try HDF5File.openReadOnly(fixture.appendingPathComponent("expected.h5").path)
        let tok = [
            "--vocab-file", shared.appendingPathComponent("tokenizers/gpt2/vocab.json").path,
            "--merge-file", shared.appendingPathComponent("tokenizers/gpt2/merges.txt").path,
        ]
        let wiki =
            [
                "evaluate", "--task", "wikitext103", "--valid-data",
                shared.appendingPathComponent("wikitext/wikitext-103/wiki.test.tokens").path,
                "--load", "ckpt", "--seq-length", "128", "--overlapping-eval", "32", "--micro-batch-size", "16",
            ] + tok
        let lambada =
            [
                "evaluate", "--task", "lambada", "--valid-data",
                shared.appendingPathComponent("lambada/lambada_test.jsonl").path,
                "--load", "ckpt", "--seq-length", "256", "--micro-batch-size", "8",
            ] + tok
        let grid = ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2", "--num-threads", "1"]
        let runs: [(String, [String], Int)] = [
            ("wiki1", wiki, 1), ("wiki4", wiki + grid, 4), ("lambada1", lambada, 1),
            ("strict1", lambada + ["--strict-lambada"], 1), ("strict4", lambada + ["--strict-lambada"] + grid, 4),
        ]
        var results: [String: [String: Any]] = [:]
        for (name, args, ranks) in runs {
            let r =
                ranks == 1
                ? try CLI.run(args + ["--results-file", "\(name).json"], in: dir)
                : try CLI.mpirun(ranks: ranks, args + ["--results-file", "\(name).json"], in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            results[name] = try CLI.jsonObject(dir.appendingPathComponent("\(name).json"))
            if name == "wiki1" {
                XCTAssertTrue(r.stdout.contains(" validation results on WIKITEXT103 | avg loss: "), r.stdout)
            }
            if name == "strict1" {
                XCTAssertTrue(r.stdout.contains(" validation results on LAMBADA | number correct: "), r.stdout)
            }
        }
        func num(_ run: String, _ key: String) throws -> Double {
            try XCTUnwrap(
                results[run]?[key] as? Double ?? (results[run]?[key] as? Int).map(Double.init), "\(run).\(key)")
        }
        for run in ["wiki1", "wiki4"] {
            XCTAssertEqual(
                try num(run, "num_original_tokens"), Double(try expected.intAttribute("wikitext_num_original_tokens")))
            XCTAssertEqual(
                try num(run, "num_tokenized_tokens"), Double(try expected.intAttribute("wikitext_num_tokenized_tokens"))
            )
            XCTAssertEqual(try num(run, "scored_tokens"), Double(try expected.intAttribute("wikitext_scored_tokens")))
            for key in ["avg_loss", "ppl", "adjusted_ppl", "token_ratio"] {
                let ref = try expected.doubleAttribute("wikitext_" + key)
                XCTAssertEqual(try num(run, key), ref, accuracy: 1e-5 * ref, "\(run) \(key)")
            }
        }
        XCTAssertEqual(
            try num("wiki4", "avg_loss"), try num("wiki1", "avg_loss"), accuracy: 1e-9 * (try num("wiki1", "avg_loss")),
            "t=2 × p=2 equals one rank")
        for (run, key) in [("lambada1", "lambada"), ("strict1", "lambada_strict"), ("strict4", "lambada_strict")] {
            XCTAssertEqual(try num(run, "correct"), Double(try expected.intAttribute(key + "_correct")), run)
            XCTAssertEqual(try num(run, "total"), Double(try expected.intAttribute(key + "_total")), run)
            let ref = try expected.doubleAttribute(key + "_target_loss")
            XCTAssertEqual(try num(run, "target_loss"), ref, accuracy: 1e-5 * ref, run)
        }
    }

    func testTransformersLoadsAnExportOfAModelTrainedHere() throws {
        let dir = CLI.scratch("hf-export-trained")
        XCTAssertEqual(
            try CLI.run(
                [
                    "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "10", "--eval-iters", "0",
                    "--save", "ckpt",
                ], in: dir
            ).code, 0)
        let export = try CLI.run(["convert-checkpoint", "--load", "ckpt", "--to", "hf", "hf"], in: dir)
        XCTAssertEqual(export.code, 0, export.stderr)
        let ids: [Int32] = Array("To be, or not to be, that is the question.".utf8).map(Int32.init)
        let ours = try ourLogits(checkpoint: dir.appendingPathComponent("ckpt"), ids: [ids], vocab: 257)
        let rows = (0..<ids.count).map { i in Array(ours.logits[(i * 257)..<((i + 1) * 257)]).map(Double.init) }
        let json = try JSONSerialization.data(withJSONObject: ["input_ids": ids.map(Int.init), "logits": rows])
        try json.write(to: dir.appendingPathComponent("hf/expected_logits.json"))
        try CLI.pythonCheck(
            "make_hf_fixtures.py", ["--check-export", "hf"], in: dir, expect: "max |difference|",
            skipped: "torch/transformers are not installed; transformers' side of the export not checked (ours is, "
                + "by the import test)")
    }
}

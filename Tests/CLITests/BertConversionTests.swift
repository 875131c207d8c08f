// BertConversionTests.swift — Hugging Face BERT against transformers, from the committed fixtures of
// scripts/make_hf_bert_fixtures.py (BertForPreTraining = our post-LN BERT, MegatronBertForPreTraining
// = our pre-LN BERT; no torch needed): the imported model's masked-LM logits at every real position
// of a padded batch and its sentence-order logits equal transformers' within 1e-4; the CLI's import,
// a reshard to t = 2 × p = 2 and back, and export give back every tensor bit for bit; with torch and
// transformers installed, transformers loads the export and reproduces its own logits.
import Checkpoint
import Foundation
import MegatronCore
import Tensor
import TestSupport
import XCTest

final class BertConversionTests: XCTestCase {
    let fixtures = ["hf_bert_tiny", "hf_megatron_bert_tiny"].map {
        CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures").appendingPathComponent($0)
    }

    /// Our masked-LM logits at every real position ([b][s][V], zero at padding) and SOP logits [b][2]
    /// for the fixture's inputs, from `model` as imported.
    func ourLogits(_ model: WholeModel, ids: [Int32], types: [Int32], lengths: [Int]) throws -> ([Float], [Float]) {
        guard case .bert(var config) = model.architecture else { throw XCTSkip("not a BERT") }
        let b = lengths.count, s = ids.count / b
        config.transformer.seqLength = s
        let bert = BertModel(config: config, microBatch: b, threads: ThreadBudget.threads)
        for (slot, spec) in bert.table.specs.enumerated() {
            let source = try XCTUnwrap(model.params.table.slot(named: spec.name), spec.name)
            bert.params.pointer(slot).update(from: model.params.pointer(source), count: spec.count)
        }
        bert.syncWeights()
        let acts = bert.makeActivations()
        for j in 0..<b {
            for p in 0..<s {
                acts.core.tokens.base[p * b + j] = ids[j * s + p]
                acts.tokentypes.base[p * b + j] = types[j * s + p]
                acts.labels.base[p * b + j] = p < lengths[j] ? 0 : -1  // every real position is read
            }
            acts.sequenceLabels[j] = 0
        }
        acts.setLengths(lengths)
        _ = try bert.forward(acts, PassContext(iteration: 0, microbatch: 0, training: false))
        let (rowLogits, sop) = bert.headLogits(acts)
        let V = config.transformer.vocabSize
        var logits = [Float](repeating: 0, count: b * s * V), k = 0
        for p in 0..<s {
            for j in 0..<b where p < lengths[j] {  // labelled rows in row order p·b + j
                for v in 0..<V { logits[(j * s + p) * V + v] = rowLogits[k * V + v] }
                k += 1
            }
        }
        return (logits, sop)
    }

    func testImportEqualsTransformersOnAPaddedBatch() throws {
        ThreadBudget.configure(threads: 2)
        for fixture in fixtures {
            let f = try HDF5File.openReadOnly(fixture.appendingPathComponent("expected.h5").path)
            let ids = try f.readFloats("input_ids").values.map { Int32($0) }
            let types = try f.readFloats("token_type_ids").values.map { Int32($0) }
            let lengths = try f.readFloats("lengths").values.map { Int($0) }
            let expected = try f.readFloats("prediction_logits"),
                expectedSOP = try f.readFloats("seq_relationship_logits")
            let model = try HuggingFace.importModel(directory: fixture.path)
            let (logits, sop) = try ourLogits(model, ids: ids, types: types, lengths: lengths)
            let s = expected.shape[1], V = expected.shape[2]
            var worst: Float = 0
            for j in 0..<lengths.count {
                for p in 0..<lengths[j] {
                    for v in 0..<V {
                        worst = max(worst, abs(logits[(j * s + p) * V + v] - expected.values[(j * s + p) * V + v]))
                    }
                }
            }
            XCTAssertLessThan(worst, 1e-4, "\(fixture.lastPathComponent): masked-LM logits")
            XCTAssertEqual(sop.count, 4, "two sequences' two logits")
            guard sop.count == expectedSOP.values.count else { return XCTFail("\(sop.count) SOP logits") }
            for (a, e) in zip(sop, expectedSOP.values) {
                XCTAssertEqual(a, e, accuracy: 1e-4, "\(fixture.lastPathComponent): sentence-order logits")
            }
            // The padded second sequence really is padded, and the logits are not trivially equal.
            XCTAssertLessThan(lengths[1], s)
            XCTAssertGreaterThan(expected.values.map(abs).max() ?? 0, 1)
        }
    }

    func testImportReshardAndExportGiveEveryTensorBack() throws {
        let dir = CLI.scratch("bert-hf-round-trip")
        func run(_ args: [String]) throws -> RunResult {
            let r = try CLI.run(args, in: dir)
            XCTAssertEqual(r.code, 0, r.stderr)
            return r
        }
        for fixture in fixtures {
            let name = fixture.lastPathComponent
            let ck = dir.appendingPathComponent(name + "-ck"), grid = dir.appendingPathComponent(name + "-t2p2")
            let back = dir.appendingPathComponent(name + "-t1"), hf = dir.appendingPathComponent(name + "-hf")
            _ = try run(["convert-checkpoint", "--from", "hf", fixture.path, "--save", ck.path])
            _ = try run([
                "convert-checkpoint", "--load", ck.path, "--save", grid.path, "--target-tensor-parallel-size", "2",
                "--target-pipeline-parallel-size", "2",
            ])
            XCTAssertTrue(
                FileManager.default.fileExists(
                    atPath: grid.appendingPathComponent("iter_0000000/mp_rank_01_001.h5").path))
            _ = try run(["convert-checkpoint", "--load", grid.path, "--save", back.path])
            let out = try run(["convert-checkpoint", "--load", back.path, "--to", "hf", hf.path])
            XCTAssertTrue(
                out.stdout.contains(name == "hf_bert_tiny" ? "BertForPreTraining" : "MegatronBertForPreTraining"))
            let original = try Safetensors.read(fixture.appendingPathComponent("model.safetensors").path)
            let exported = try Safetensors.read(hf.appendingPathComponent("model.safetensors").path)
            // transformers stores the tied decoder nowhere; everything it stores comes back bit for bit.
            XCTAssertEqual(Set(original.keys), Set(exported.keys), name)
            for (key, t) in original {
                XCTAssertEqual(exported[key]?.shape, t.shape, key)
                XCTAssertEqual(exported[key]?.values.map(\.bitPattern), t.values.map(\.bitPattern), "\(name): \(key)")
            }
            let script = CLI.repoRoot.appendingPathComponent("scripts/make_hf_bert_fixtures.py").path
            let check = try CLI.run(
                ["python3", script, "--check-export", hf.path, fixture.appendingPathComponent("expected.h5").path],
                in: dir, program: "/usr/bin/env")
            if check.code != 0 && check.stderr.contains("ModuleNotFoundError") {
                print("note: torch/transformers/h5py not installed; transformers' half of the round trip not checked")
            } else {
                XCTAssertEqual(check.code, 0, check.stdout + check.stderr)
                XCTAssertTrue(check.stdout.contains("max |difference|"), check.stdout)
            }
        }
    }

    func testACasedTokenizerConfigImportsAsBertWordPieceCase() throws {
        // transformers writes `"do_lower_case": false` in a cased model's tokenizer_config.json.
        let dir = CLI.scratch("bert-hf-cased")
        let copy = dir.appendingPathComponent("cased")
        try? FileManager.default.removeItem(at: copy)
        try FileManager.default.copyItem(at: fixtures[0], to: copy)
        XCTAssertEqual(
            try HFBert.importModel(directory: copy.path).trainingConfig.tokenizerType, .bertWordPieceLowerCase)
        try Data(#"{"do_lower_case": false, "tokenizer_class": "BertTokenizer"}"#.utf8).write(
            to: copy.appendingPathComponent("tokenizer_config.json"))
        XCTAssertEqual(try HFBert.importModel(directory: copy.path).trainingConfig.tokenizerType, .bertWordPieceCase)
    }

    func testExportRefusesWhatHuggingFaceCannotHold() throws {
        let dir = CLI.scratch("bert-hf-refusals")
        let ck = dir.appendingPathComponent("ck"), hf = dir.appendingPathComponent("hf")
        XCTAssertEqual(
            try CLI.run(["convert-checkpoint", "--from", "hf", fixtures[0].path, "--save", ck.path], in: dir).code, 0)
        try FileManager.default.createDirectory(at: hf, withIntermediateDirectories: true)
        let exists = try CLI.run(["convert-checkpoint", "--load", ck.path, "--to", "hf", hf.path], in: dir)
        XCTAssertNotEqual(exists.code, 0)
        XCTAssertTrue(exists.stderr.contains("already exists"), exists.stderr)
        // An erf-GELU config (real bert-base-uncased) is refused with the reason.
        let erf = dir.appendingPathComponent("erf")
        try FileManager.default.copyItem(at: fixtures[0], to: erf)
        let configURL = erf.appendingPathComponent("config.json")
        let text = try String(contentsOf: configURL, encoding: .utf8).replacingOccurrences(
            of: "\"gelu_new\"", with: "\"gelu\"")
        try text.write(to: configURL, atomically: true, encoding: .utf8)
        let refused = try CLI.run(
            ["convert-checkpoint", "--from", "hf", erf.path, "--save", dir.appendingPathComponent("x").path], in: dir)
        XCTAssertNotEqual(refused.code, 0)
        XCTAssertTrue(refused.stderr.contains("hidden_act 'gelu'"), refused.stderr)
    }
}

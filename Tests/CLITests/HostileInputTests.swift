// HostileInputTests.swift — inputs that used to crash or load silently wrong are clear errors now:
// an MMIDIDX index with an unknown dtype code, a document count of 2^63 or one longer than the file
// (its message gives the stored counts); `preprocess-data --workers -3`; safetensors shapes whose
// size overflows or is negative, overlapping or non-contiguous data_offsets and trailing bytes; a
// GPT-2 config.json with n_head 0, n_layer −1, a string epsilon, fewer layers than the weights, or a
// vocabulary too large for this machine.
import Checkpoint
import Foundation
import MegatronCore
import TestSupport
import XCTest

final class HostileInputTests: XCTestCase {
    func assertFails(_ body: () throws -> Void, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            for part in parts {
                XCTAssertTrue("\(error)".contains(part), "'\(error)' lacks '\(part)'", file: file, line: line)
            }
        }
    }

    func testIndexHeadersWithBadDtypeOrCountsAreErrors() throws {
        let dir = CLI.scratch("hostile-idx")
        let prefix = dir.appendingPathComponent("d").path
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: .uint16)
        try writer.addDocument([[1, 2, 3]])
        try writer.finish()
        let idx = URL(fileURLWithPath: prefix + ".idx")
        let good = try Data(contentsOf: idx)
        var bad = good
        bad[17] = 17
        try bad.write(to: idx)
        assertFails({ _ = try IndexedDataset(prefix: prefix) }, ["d.idx", "dtype code 17"])
        bad = good
        withUnsafeBytes(of: (UInt64(1) << 63).littleEndian) { bad.replaceSubrange(26..<34, with: $0) }
        try bad.write(to: idx)
        assertFails({ _ = try IndexedDataset(prefix: prefix) }, ["implausible counts", "9223372036854775808"])
        // A document index longer than the file holds: the message gives the counts as stored (no "-1 documents").
        bad = good
        withUnsafeBytes(of: UInt64(1000).littleEndian) { bad.replaceSubrange(26..<34, with: $0) }
        try bad.write(to: idx)
        assertFails(
            { _ = try IndexedDataset(prefix: prefix) },
            ["document index of 1000 entries", "truncated", "run preprocess-data again"])
    }

    func testPreprocessWorkersOutOfRangeIsNamed() throws {
        let dir = CLI.scratch("hostile-workers")
        try Data("{\"text\": \"a\"}\n".utf8).write(to: dir.appendingPathComponent("in.jsonl"))
        for value in ["-3", "0", "100000"] {
            let r = try CLI.run(
                [
                    "preprocess-data", "--input", "in.jsonl", "--tokenizer-type", "ByteLevelTokenizer",
                    "--output-prefix", "out", "--workers", value,
                ], in: dir)
            XCTAssertEqual(r.code, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains("workers") && r.stderr.contains(value), r.stderr)
            XCTAssertTrue(r.stderr.contains("leave it out to use one per core"), r.stderr)
            XCTAssertFalse(r.stderr.contains("Missing value"), r.stderr)
        }
    }

    /// A safetensors file of one header and data section.
    func safetensors(_ header: String, data: [UInt8], in dir: URL, _ name: String) throws -> String {
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes += $0 }
        bytes += Array(header.utf8) + data
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    func testSafetensorsSizesAndLayoutAreChecked() throws {
        let dir = CLI.scratch("hostile-safetensors")
        let eight = [UInt8](repeating: 0, count: 8)
        let ok = try safetensors(
            #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            data: eight, in: dir, "ok.safetensors")
        XCTAssertEqual(try Safetensors.read(ok).count, 2)
        let cases: [(String, [UInt8], [String])] = [
            (#"{"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}}"#, eight, ["has no size"]),
            (#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}"#, eight, ["has no size"]),
            (
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                eight, ["overlaps"]
            ),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, eight, ["unused bytes"]),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, eight, ["after the last tensor"]),
        ]
        for (k, (header, data, parts)) in cases.enumerated() {
            let path = try safetensors(header, data: data, in: dir, "bad\(k).safetensors")
            assertFails({ _ = try Safetensors.read(path) }, ["bad\(k).safetensors"] + parts)
        }
    }

    func testGPT2ConfigValuesAreChecked() throws {
        let fixture = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_gpt2_tiny")
        let dir = CLI.scratch("hostile-hf")
        func variant(_ name: String, _ change: (inout [String: Any]) -> Void) throws -> String {
            let target = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                at: fixture.appendingPathComponent("model.safetensors"),
                to: target.appendingPathComponent("model.safetensors"))
            var config = try CLI.jsonObject(fixture.appendingPathComponent("config.json"))
            change(&config)
            try JSONSerialization.data(withJSONObject: config).write(to: target.appendingPathComponent("config.json"))
            return target.path
        }
        XCTAssertNoThrow(try HuggingFace.importModel(directory: try variant("same", { _ in })))
        let cases: [(String, (inout [String: Any]) -> Void, [String])] = [
            ("heads0", { $0["n_head"] = 0 }, ["'n_head' is 0", "positive integer"]),
            ("layers-1", { $0["n_layer"] = -1 }, ["'n_layer' is -1"]),
            ("epsilon", { $0["layer_norm_epsilon"] = "abc" }, ["'layer_norm_epsilon' is abc", "must be a number"]),
            ("fewer", { $0["n_layer"] = 2 }, ["holds layer 2", "n_layer 2", "disagree"]),
            // A vocabulary the weights do not hold is refused before any allocation (scripts/fuzz.sh found
            // vocab_size 5,025,757 allocating 1.9 GB before the mismatch was noticed).
            ("huge", { $0["vocab_size"] = 1_000_000_000_000 }, ["wte.weight", "[1000000000000, 96]"]),
            ("bigger-vocab", { $0["vocab_size"] = 5_025_757 }, ["wte.weight", "5025757"]),
            ("more-layers", { $0["n_layer"] = 9 }, ["h.8.mlp.c_fc.weight"]),
            ("layers-2e12", { $0["n_layer"] = 2_222_222_222_219 }, ["h.2222222222218.mlp.c_fc.weight"]),
        ]
        for (name, change, parts) in cases {
            let path = try variant(name, change)
            assertFails(
                { _ = try HuggingFace.importModel(directory: path) },
                (["huge", "bigger-vocab", "more-layers", "layers-2e12"].contains(name) ? [] : ["config.json"]) + parts)
        }
    }
}

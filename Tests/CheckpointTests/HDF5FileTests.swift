// HDF5FileTests.swift — datasets and attributes round-trip; a flipped byte inside a chunk is caught
// by the Fletcher32 checksum instead of being read silently.
import Checkpoint
import Foundation
import XCTest

final class HDF5FileTests: XCTestCase {
    func tempPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("megatron-h5-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    func testRoundTripDatasetsAndAttributes() throws {
        let path = tempPath("round.h5")
        let values = (0..<(37 * 11)).map { Float($0) * 0.25 - 7 }
        do {
            let f = try HDF5File.create(path)
            try values.withUnsafeBufferPointer {
                try f.writeFloats(
                    "model/decoder.layers.0.mlp.linear_fc1.weight", shape: [37, 11], data: $0.baseAddress!,
                    attributes: ["global_shape": [37, 11], "global_offset": [0, 0]])
            }
            try f.setAttribute("iteration", int: 1234)
            try f.setAttribute("lr", double: 6e-4)
            try f.setAttribute("note", string: "héllo")
        }
        let r = try HDF5File.openReadOnly(path)
        let back = try r.readFloats("model/decoder.layers.0.mlp.linear_fc1.weight")
        XCTAssertEqual(back.shape, [37, 11])
        XCTAssertEqual(back.values, values)
        XCTAssertEqual(try r.intAttribute("iteration"), 1234)
        XCTAssertEqual(try r.doubleAttribute("lr"), 6e-4)
        XCTAssertEqual(try r.stringAttribute("note"), "héllo")
        XCTAssertThrowsError(try r.readFloats("model/missing"))
        var wrong = [Float](repeating: 0, count: 37 * 11)
        XCTAssertThrowsError(
            try r.readFloats("model/decoder.layers.0.mlp.linear_fc1.weight", shape: [11, 37], into: &wrong)
        ) {
            XCTAssertTrue("\($0)".contains("expected [11, 37]"), "\($0)")
        }
    }

    func testChecksumCatchesCorruption() throws {
        let path = tempPath("corrupt.h5")
        let values = [Float](repeating: 1.5, count: 4096)
        do {
            let f = try HDF5File.create(path)
            try values.withUnsafeBufferPointer { try f.writeFloats("w", shape: [4096], data: $0.baseAddress!) }
        }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // 1.5f is 0x3FC00000: find the data and flip one byte in the middle of it.
        let pattern = Data([0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0xC0, 0x3F])
        let at = try XCTUnwrap(bytes.range(of: pattern)).lowerBound + 4 * 1000
        bytes[at] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: path))
        let r = try HDF5File.openReadOnly(path)
        XCTAssertThrowsError(try r.readFloats("w")) {
            for part in ["read of 'w'", "does not match its checksum", "restore it from a copy"] {
                XCTAssertTrue("\($0)".contains(part), "'\($0)' lacks '\(part)'")
            }
            XCTAssertFalse("\($0)".contains("disk is full"), "a read failure is not blamed on the disk: \($0)")
        }
    }
}

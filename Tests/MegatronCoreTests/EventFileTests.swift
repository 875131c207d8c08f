// EventFileTests.swift — the TensorBoard event file's building blocks against published values:
// CRC-32C's check value ("123456789" → 0xE3069283, RFC 3720 B.4), the TFRecord framing read back
// by hand, and the protocol-buffer varint encoding.
import Foundation
import MegatronCore
import XCTest

final class EventFileTests: XCTestCase {
    func testCRC32CCheckValues() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA, "RFC 3720 B.4: 32 zero bytes")
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43, "RFC 3720 B.4: 32 0xFF bytes")
    }

    func testVarint() {
        XCTAssertEqual(EventProto.varint(1), [1])
        XCTAssertEqual(EventProto.varint(300), [0xAC, 0x02])
        XCTAssertEqual(EventProto.varint(UInt64(bitPattern: -1)).count, 10)
    }

    func testRecordsAreFramedWithMaskedChecksums() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eventfile-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        let writer = try EventFileWriter(directory: dir.path)
        try writer.add(step: 7, scalars: [("lm loss", 2.5)])
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        var at = 0, records: [[UInt8]] = []
        while at < bytes.count {
            let lengthBytes = Array(bytes[at..<(at + 8)])
            let length = Int(lengthBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.1) << (8 * UInt64($1.0)) })
            let lengthCRC = bytes[(at + 8)..<(at + 12)].enumerated().reduce(UInt32(0)) {
                $0 | UInt32($1.1) << (8 * UInt32($1.0))
            }
            XCTAssertEqual(lengthCRC, CRC32C.masked(lengthBytes))
            let data = Array(bytes[(at + 12)..<(at + 12 + length)])
            let dataCRC = bytes[(at + 12 + length)..<(at + 16 + length)].enumerated().reduce(UInt32(0)) {
                $0 | UInt32($1.1) << (8 * UInt32($1.0))
            }
            XCTAssertEqual(dataCRC, CRC32C.masked(data))
            records.append(data)
            at += 16 + length
        }
        XCTAssertEqual(records.count, 2, "the version record, then the scalar")
        XCTAssertNotNil(String(decoding: records[0], as: UTF8.self).range(of: "brain.Event:2"))
        XCTAssertNotNil(String(decoding: records[1], as: UTF8.self).range(of: "lm loss"))
        // step 7 is field 2 as a varint: 0x10 0x07 after the 9-byte wall time.
        XCTAssertEqual(Array(records[1][9..<11]), [0x10, 0x07])
    }
}

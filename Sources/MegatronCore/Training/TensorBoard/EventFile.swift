// EventFile.swift — TensorBoard event files written directly: the TFRecord framing (little-endian
// length, masked CRC-32C of the length, the record, masked CRC-32C of the record) around
// `tensorflow.Event` protocol-buffer messages, encoded by hand — the four fields a scalar needs
// (Event.wall_time = 1 double, step = 2 int64, file_version = 3 string, summary = 5; Summary.value
// = 1; Value.tag = 1 string, simple_value = 2 float) do not warrant a protobuf dependency and its
// generated code. The file starts with the `brain.Event:2` version record, as TensorBoard expects.
import Foundation

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses, and its masked form.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// TFRecord's masking: rotate right by 15 and add a constant.
    public static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let c = checksum(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}

/// The protocol-buffer wire encoding of the Event fields written here.
public enum EventProto {
    public static func varint(_ value: UInt64) -> [UInt8] {
        var v = value, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }

    /// A length-delimited field (wire type 2).
    static func bytesField(_ number: UInt64, _ payload: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(UInt64(payload.count)) + payload
    }

    static func littleEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: v.littleEndian, Array.init)
    }

    /// Event { wall_time, step, file_version | summary { value { tag, simple_value } … } }.
    static func event(wallTime: Double, step: Int, fileVersion: String? = nil, scalars: [(String, Float)] = [])
        -> [UInt8]
    {
        var out = varint(1 << 3 | 1) + littleEndian(wallTime.bitPattern)
        out += varint(2 << 3 | 0) + varint(UInt64(bitPattern: Int64(step)))
        if let fileVersion { out += bytesField(3, Array(fileVersion.utf8)) }
        if !scalars.isEmpty {
            let values = scalars.flatMap { tag, value in
                bytesField(1, bytesField(1, Array(tag.utf8)) + varint(2 << 3 | 5) + littleEndian(value.bitPattern))
            }
            out += bytesField(5, values)
        }
        return out
    }
}

/// One event file, `events.out.tfevents.<seconds>.<host>.<pid>.0` in `directory` (created if
/// needed); a later run writes a new file beside it and TensorBoard joins them by step.
public final class EventFileWriter {
    public let path: String
    private let handle: FileHandle

    public init(directory: String) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw TrainingError.tensorboardDirectory(path: directory)
        }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        let name = "events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host).\(getpid()).0"
        path = (directory as NSString).appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw TrainingError.tensorboardDirectory(path: directory) }
        self.handle = handle
        try record(EventProto.event(wallTime: Date().timeIntervalSince1970, step: 0, fileVersion: "brain.Event:2"))
    }

    deinit { try? handle.close() }

    /// Writes `scalars` (tag, value) at `step`, as one event.
    public func add(step: Int, scalars: [(String, Float)]) throws {
        guard !scalars.isEmpty else { return }
        try record(EventProto.event(wallTime: Date().timeIntervalSince1970, step: step, scalars: scalars))
    }

    private func record(_ data: [UInt8]) throws {
        let length = EventProto.littleEndian(UInt64(data.count))
        let framed =
            length + EventProto.littleEndian(CRC32C.masked(length)) + data
            + EventProto.littleEndian(CRC32C.masked(data))
        try handle.write(contentsOf: Data(framed))  // unbuffered: each event is in the file once written
    }
}

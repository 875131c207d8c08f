// Safetensors.swift — the safetensors format, read and written here (no pickle anywhere):
//   u64 little-endian N | N bytes of JSON header | data
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// into the data section) plus an optional "__metadata__" object of strings. Reading accepts F32,
// F16, BF16 and F64 and returns floats; writing stores F32, names sorted, header padded with
// spaces to a multiple of 8 bytes.
import Foundation

public struct SafetensorsTensor: Sendable {
    public let shape: [Int]
    public let values: [Float]
    public init(shape: [Int], values: [Float]) { self.shape = shape; self.values = values }
}

public enum SafetensorsError: Error, CustomStringConvertible {
    case malformed(path: String, reason: String)

    public var description: String {
        switch self {
        case .malformed(let p, let r): return "'\(p)' is not a valid safetensors file: \(r)"
        }
    }
}

public enum Safetensors {
    /// Every tensor of the file, as floats.
    public static func read(_ path: String) throws -> [String: SafetensorsTensor] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SafetensorsError.malformed(path: path, reason: "cannot read the file")
        }
        guard data.count >= 8 else {
            throw SafetensorsError.malformed(path: path, reason: "shorter than the 8-byte header length")
        }
        let n = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(data.count - 8) else {
            throw SafetensorsError.malformed(
                path: path, reason: "the header claims \(n) bytes but the file has \(data.count - 8) after the length")
        }
        let headerEnd = 8 + Int(n)
        guard let header = try? JSONSerialization.jsonObject(with: data[8..<headerEnd]) as? [String: Any] else {
            throw SafetensorsError.malformed(path: path, reason: "the header is not a JSON object")
        }
        let dataSize = data.count - headerEnd
        var out: [String: SafetensorsTensor] = [:]
        var ranges: [(begin: Int, end: Int, name: String)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                let shape = info["shape"] as? [Int],
                let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else {
                throw SafetensorsError.malformed(
                    path: path, reason: "tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            let width: Int
            switch dtype {
            case "F32": width = 4
            case "F16", "BF16": width = 2
            case "F64": width = 8
            default:
                throw SafetensorsError.malformed(
                    path: path, reason: "tensor '\(name)' has dtype \(dtype); this reader takes F32, F16, BF16 and F64")
            }
            // Sizes with overflow-checked arithmetic: a shape like [2^62, 8] or [-1] is malformed, not a trap.
            var count = 1
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard d >= 0, !overflow else {
                    throw SafetensorsError.malformed(
                        path: path, reason: "tensor '\(name)' has shape \(shape), which has no size")
                }
                count = product
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: width)
            guard !overflow, offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataSize,
                offsets[1] - offsets[0] == bytes
            else {
                throw SafetensorsError.malformed(
                    path: path,
                    reason:
                        "tensor '\(name)' (\(dtype) \(shape)) has data_offsets \(offsets), which do not hold "
                        + "\(overflow ? "its" : "\(bytes)") bytes inside the \(dataSize)-byte data section"
                )
            }
            ranges.append((offsets[0], offsets[1], name))
            let start = headerEnd + offsets[0]
            // One conversion loop per dtype (the switch stays out of the per-element loop).
            let values: [Float] = data.withUnsafeBytes { raw in
                let base = raw.baseAddress! + start
                switch dtype {
                case "F32":
                    return (0..<count).map {
                        Float(
                            bitPattern: UInt32(
                                littleEndian: base.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
                    }
                case "F16":
                    return (0..<count).map {
                        Float(
                            Float16(
                                bitPattern: UInt16(
                                    littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))))
                    }
                case "BF16":
                    return (0..<count).map {
                        Float(
                            bitPattern: UInt32(
                                UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16
                        )
                    }
                default:
                    return (0..<count).map {
                        Float(
                            Double(
                                bitPattern: UInt64(
                                    littleEndian: base.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))))
                    }
                }
            }
            out[name] = SafetensorsTensor(shape: shape, values: values)
        }
        try checkLayout(ranges, dataSize: dataSize, path: path)
        return out
    }

    /// The tensors' byte ranges tile the data section exactly: in order, no gap, no overlap, nothing
    /// after the last (a header length one byte off, overlapping offsets or trailing bytes are errors).
    static func checkLayout(_ ranges: [(begin: Int, end: Int, name: String)], dataSize: Int, path: String) throws {
        var next = 0
        for r in ranges.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard r.begin == next else {
                throw SafetensorsError.malformed(
                    path: path,
                    reason: r.begin < next
                        ? "tensor '\(r.name)' overlaps the tensor before it (bytes \(r.begin)…, previous ends at \(next))"
                        : "\(r.begin - next) unused bytes before tensor '\(r.name)' (data_offsets must be contiguous)")
            }
            next = r.end
        }
        guard next == dataSize else {
            throw SafetensorsError.malformed(
                path: path, reason: "the data section has \(dataSize - next) bytes after the last tensor")
        }
    }

    /// Writes `tensors` as F32 with `metadata` (e.g. ["format": "pt"], which transformers expects).
    public static func write(_ path: String, tensors: [String: SafetensorsTensor], metadata: [String: String]) throws {
        var entries: [String] = []
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            precondition(
                t.values.count == t.shape.reduce(1, *),
                "\(name): shape \(t.shape) does not hold \(t.values.count) values")
            let nameJSON = String(
                data: try JSONSerialization.data(withJSONObject: name, options: [.fragmentsAllowed]), encoding: .utf8)!
            let shape = t.shape.map(String.init).joined(separator: ",")
            let offsets = "\(offset),\(offset + 4 * t.values.count)"
            entries.append("\(nameJSON):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offsets)]}")
            offset += 4 * t.values.count
        }
        let meta = String(
            data: try JSONSerialization.data(withJSONObject: metadata, options: [.sortedKeys]), encoding: .utf8)!
        var header = "{\"__metadata__\":\(meta)" + entries.map { "," + $0 }.joined() + "}"
        while header.utf8.count % 8 != 0 { header += " " }
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header.utf8)
        data.reserveCapacity(data.count + offset)
        for name in names {
            // Floats are stored in host order, which is little-endian on every platform this builds for.
            tensors[name]!.values.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        do { try data.write(to: URL(fileURLWithPath: path)) } catch {
            throw CheckpointError.writeFailed(path: path, reason: "\(error.localizedDescription)")
        }
    }
}

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
            let count = shape.reduce(1, *)
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataSize,
                offsets[1] - offsets[0] == count * width
            else {
                throw SafetensorsError.malformed(
                    path: path,
                    reason:
                        "tensor '\(name)' (\(dtype) \(shape)) has data_offsets \(offsets), which do not hold "
                        + "\(count * width) bytes inside the \(dataSize)-byte data section"
                )
            }
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
        return out
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

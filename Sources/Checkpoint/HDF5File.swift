// HDF5File.swift — the only importer of CHDF5: an owned file handle with typed reads and writes of
// float/int datasets (chunked, Fletcher32-checksummed) and scalar/string attributes. Every HDF5
// return code becomes an `HDF5Error` naming the file and the object.
import CHDF5

public enum HDF5Error: Error, CustomStringConvertible {
    case cannotCreate(path: String)
    case cannotOpen(path: String)
    case missing(path: String, object: String)
    case operationFailed(path: String, object: String, operation: String)
    case shapeMismatch(path: String, object: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case .cannotCreate(let p):
            return "cannot create HDF5 file '\(p)': check that the directory exists, is writable and has free space"
        case .cannotOpen(let p):
            return
                "cannot open HDF5 file '\(p)': it is missing, unreadable or not an HDF5 file (a checksum failure "
                + "also shows here)"
        case .missing(let p, let o):
            return "HDF5 file '\(p)' has no '\(o)'; was it written by a different version or model?"
        case .operationFailed(let p, let o, let op):
            if op.hasPrefix("read") {
                return
                    "HDF5 \(op) of '\(o)' in '\(p)' failed: the stored data does not match its checksum or is cut "
                    + "short, so the file is damaged; restore it from a copy or load an earlier checkpoint"
            }
            return
                "HDF5 \(op) of '\(o)' in '\(p)' failed: the disk is full or the file is not writable; free space or "
                + "choose another directory and save again"
        case .shapeMismatch(let p, let o, let e, let f):
            return
                "'\(o)' in '\(p)' has shape \(f), expected \(e): the checkpoint was written for a different model "
                + "configuration"
        }
    }
}

/// An open HDF5 file. Serial HDF5 is not thread-safe: use one file from one thread.
public final class HDF5File {
    public let path: String
    private let id: hid_t

    private init(path: String, id: hid_t) { self.path = path; self.id = id }

    /// Creates (truncating) a file for writing, in the file format of HDF5 1.10 (superblock v3,
    /// version-2 object headers): every piece of metadata carries a checksum, so a flipped byte in
    /// a shape, a type or an attribute is a read error rather than a silently different tensor.
    /// Files written before (format 1.8, unchecksummed metadata) still read.
    public static func create(_ path: String) throws -> HDF5File {
        silenceHDF5Errors()
        let fapl = H5Pcreate(h5p_file_access())
        defer { H5Pclose(fapl) }
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110)
        let f = H5Fcreate(path, h5f_acc_trunc(), h5p_default(), fapl)
        if f < 0 { throw HDF5Error.cannotCreate(path: path) }
        return HDF5File(path: path, id: f)
    }

    public static func openReadOnly(_ path: String) throws -> HDF5File {
        silenceHDF5Errors()
        let f = H5Fopen(path, h5f_acc_rdonly(), h5p_default())
        if f < 0 { throw HDF5Error.cannotOpen(path: path) }
        return HDF5File(path: path, id: f)
    }

    deinit { H5Fclose(id) }

    /// Flushes and closes early, reporting failure (deinit cannot throw).
    public func flush() throws {
        if H5Fflush(id, H5F_SCOPE_GLOBAL) < 0 {
            throw HDF5Error.operationFailed(path: path, object: "/", operation: "flush")
        }
    }

    // MARK: Datasets

    /// Writes `data` (row-major, `shape`) as a chunked, Fletcher32-checksummed dataset. Intermediate
    /// groups in `name` ("model/decoder.layers.0…" → group "model") are created as needed.
    public func writeFloats(
        _ name: String, shape: [Int], data: UnsafePointer<Float>,
        attributes: [String: [Int]] = [:]
    ) throws {
        try writeDataset(
            name, shape: shape, fileType: h5t_ieee_f32le(), memType: h5t_native_float(),
            data: UnsafeRawPointer(data), attributes: attributes)
    }

    /// Writes 16-bit floats (`bits`, row-major) as a dataset of a real HDF5 16-bit float type, so
    /// readers get floats: h5py returns float32 for bfloat16 (a non-standard float) and float16
    /// for fp16; `readFloats` converts either to fp32 exactly. Chunked and checksummed as above.
    public func writeHalfFloats(
        _ name: String, shape: [Int], bits: UnsafePointer<UInt16>, format: HalfFloatFormat,
        attributes: [String: [Int]] = [:]
    ) throws {
        let type = try format.makeType(path: path)
        defer { H5Tclose(type) }
        try writeDataset(
            name, shape: shape, fileType: type, memType: type, data: UnsafeRawPointer(bits), attributes: attributes)
    }

    private func writeDataset(
        _ name: String, shape: [Int], fileType: hid_t, memType: hid_t,
        data: UnsafeRawPointer, attributes: [String: [Int]]
    ) throws {
        let fail = { (op: String) in HDF5Error.operationFailed(path: self.path, object: name, operation: op) }
        var dims = shape.map { hsize_t($0) }
        let rank = Int32(max(dims.count, 1))
        if dims.isEmpty { dims = [1] }
        let space = H5Screate_simple(rank, &dims, nil)
        if space < 0 { throw fail("dataspace") }
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(h5p_dataset_create())
        defer { H5Pclose(dcpl) }
        let total = dims.reduce(1, *)
        if total > 0 {
            // Chunks of about 1M elements along the first axis; Fletcher32 needs chunking.
            var chunk = dims
            let rowElems = max(1, total / max(dims[0], 1))
            chunk[0] = max(1, min(dims[0], hsize_t(1 << 20) / rowElems))
            if H5Pset_chunk(dcpl, rank, &chunk) < 0 || H5Pset_fletcher32(dcpl) < 0 {
                throw fail("set chunk/fletcher32")
            }
        }
        let lcpl = H5Pcreate(h5p_link_create())
        defer { H5Pclose(lcpl) }
        H5Pset_create_intermediate_group(lcpl, 1)
        let ds = H5Dcreate2(id, name, fileType, space, lcpl, dcpl, h5p_default())
        if ds < 0 { throw fail("create dataset") }
        defer { H5Dclose(ds) }
        if total > 0, H5Dwrite(ds, memType, h5s_all(), h5s_all(), h5p_default(), data) < 0 { throw fail("write") }
        for (key, values) in attributes.sorted(by: { $0.key < $1.key }) {
            try writeIntArrayAttribute(on: ds, objectName: name, key: key, values: values)
        }
    }

    /// The shape of dataset `name`, or nil when it does not exist.
    public func shape(of name: String) -> [Int]? {
        guard exists(name) else { return nil }
        let ds = H5Dopen2(id, name, h5p_default())
        if ds < 0 { return nil }
        defer { H5Dclose(ds) }
        let space = H5Dget_space(ds)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.prefix(rank).map { Int($0) }
    }

    /// Reads dataset `name`, checking its shape, into `out`.
    public func readFloats(_ name: String, shape expected: [Int], into out: UnsafeMutablePointer<Float>) throws {
        try readDataset(name, expected: expected, memType: h5t_native_float(), into: UnsafeMutableRawPointer(out))
    }

    public func readInt32s(_ name: String, shape expected: [Int], into out: UnsafeMutablePointer<Int32>) throws {
        try readDataset(name, expected: expected, memType: h5t_native_int32(), into: UnsafeMutableRawPointer(out))
    }

    /// Reads a whole float dataset of any shape.
    public func readFloats(_ name: String) throws -> (shape: [Int], values: [Float]) {
        guard let s = shape(of: name) else { throw HDF5Error.missing(path: path, object: name) }
        var values = [Float](repeating: 0, count: s.elementCount)
        try values.withUnsafeMutableBufferPointer { try readFloats(name, shape: s, into: $0.baseAddress!) }
        return (s, values)
    }

    private func readDataset(_ name: String, expected: [Int], memType: hid_t, into out: UnsafeMutableRawPointer) throws
    {
        guard let found = shape(of: name) else { throw HDF5Error.missing(path: path, object: name) }
        let normalizedFound = found == [1] && expected.isEmpty ? [] : found
        guard normalizedFound == expected else {
            throw HDF5Error.shapeMismatch(path: path, object: name, expected: expected, found: found)
        }
        let ds = H5Dopen2(id, name, h5p_default())
        if ds < 0 { throw HDF5Error.missing(path: path, object: name) }
        defer { H5Dclose(ds) }
        if expected.elementCount > 0, H5Dread(ds, memType, h5s_all(), h5s_all(), h5p_default(), out) < 0 {
            throw HDF5Error.operationFailed(path: path, object: name, operation: "read")
        }
    }

    /// An integer-array attribute of dataset `name` (e.g. "global_offset").
    public func intArrayAttribute(of name: String, _ key: String) throws -> [Int] {
        let ds = H5Dopen2(id, name, h5p_default())
        if ds < 0 { throw HDF5Error.missing(path: path, object: name) }
        defer { H5Dclose(ds) }
        guard H5Aexists(ds, key) > 0 else { throw HDF5Error.missing(path: path, object: "\(name)@\(key)") }
        let a = H5Aopen(ds, key, h5p_default())
        defer { H5Aclose(a) }
        let space = H5Aget_space(a)
        defer { H5Sclose(space) }
        let n = max(1, Int(H5Sget_simple_extent_npoints(space)))
        var values = [Int64](repeating: 0, count: n)
        if H5Aread(a, h5t_native_int64(), &values) < 0 {
            throw HDF5Error.operationFailed(path: path, object: "\(name)@\(key)", operation: "read attribute")
        }
        return values.map { Int($0) }
    }

    public func exists(_ name: String) -> Bool {
        // Check each path component, as H5Lexists requires the parents to exist.
        var prefix = ""
        for part in name.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if H5Lexists(id, prefix, h5p_default()) <= 0 { return false }
        }
        return true
    }

    // MARK: Attributes on the root group

    public func setAttribute(_ key: String, int value: Int) throws {
        try writeIntArrayAttribute(on: id, objectName: "/", key: key, values: [value], scalar: true)
    }

    public func setAttribute(_ key: String, double value: Double) throws {
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let a = H5Acreate2(id, key, h5t_ieee_f64le(), space, h5p_default(), h5p_default())
        if a < 0 { throw HDF5Error.operationFailed(path: path, object: key, operation: "create attribute") }
        defer { H5Aclose(a) }
        var v = value
        if H5Awrite(a, h5t_native_double(), &v) < 0 {
            throw HDF5Error.operationFailed(path: path, object: key, operation: "write attribute")
        }
    }

    public func setAttribute(_ key: String, string value: String) throws {
        let bytes = Array(value.utf8)
        let type = H5Tcopy(h5t_c_s1())
        defer { H5Tclose(type) }
        H5Tset_size(type, max(bytes.count, 1))
        H5Tset_strpad(type, H5T_STR_NULLPAD)
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let a = H5Acreate2(id, key, type, space, h5p_default(), h5p_default())
        if a < 0 { throw HDF5Error.operationFailed(path: path, object: key, operation: "create attribute") }
        defer { H5Aclose(a) }
        let padded = bytes.isEmpty ? [UInt8(0)] : bytes
        if H5Awrite(a, type, padded) < 0 {
            throw HDF5Error.operationFailed(path: path, object: key, operation: "write attribute")
        }
    }

    public func intAttribute(_ key: String) throws -> Int {
        let a = try openAttribute(key)
        defer { H5Aclose(a) }
        var v: Int64 = 0
        if H5Aread(a, h5t_native_int64(), &v) < 0 {
            throw HDF5Error.operationFailed(path: path, object: key, operation: "read attribute")
        }
        return Int(v)
    }

    public func doubleAttribute(_ key: String) throws -> Double {
        let a = try openAttribute(key)
        defer { H5Aclose(a) }
        var v = 0.0
        if H5Aread(a, h5t_native_double(), &v) < 0 {
            throw HDF5Error.operationFailed(path: path, object: key, operation: "read attribute")
        }
        return v
    }

    public func stringAttribute(_ key: String) throws -> String {
        let a = try openAttribute(key)
        defer { H5Aclose(a) }
        let type = H5Aget_type(a)
        defer { H5Tclose(type) }
        let n = H5Tget_size(type)
        var buf = [UInt8](repeating: 0, count: n + 1)
        if H5Aread(a, type, &buf) < 0 {
            throw HDF5Error.operationFailed(path: path, object: key, operation: "read attribute")
        }
        let end = buf.firstIndex(of: 0) ?? n
        return String(decoding: buf[..<end], as: UTF8.self)
    }

    public func hasAttribute(_ key: String) -> Bool { H5Aexists(id, key) > 0 }

    private func openAttribute(_ key: String) throws -> hid_t {
        guard hasAttribute(key) else { throw HDF5Error.missing(path: path, object: "attribute \(key)") }
        let a = H5Aopen(id, key, h5p_default())
        if a < 0 { throw HDF5Error.missing(path: path, object: "attribute \(key)") }
        return a
    }

    private func writeIntArrayAttribute(
        on object: hid_t, objectName: String, key: String, values: [Int],
        scalar: Bool = false
    ) throws {
        var dims = [hsize_t(max(values.count, 1))]
        let space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, nil)
        defer { H5Sclose(space) }
        let a = H5Acreate2(object, key, h5t_std_i64le(), space, h5p_default(), h5p_default())
        if a < 0 {
            throw HDF5Error.operationFailed(path: path, object: "\(objectName)@\(key)", operation: "create attribute")
        }
        defer { H5Aclose(a) }
        var v = values.map { Int64($0) }
        if v.isEmpty { v = [0] }
        if H5Awrite(a, h5t_native_int64(), &v) < 0 {
            throw HDF5Error.operationFailed(path: path, object: "\(objectName)@\(key)", operation: "write attribute")
        }
    }
}

/// HDF5 prints a stack of diagnostics on every failed call by default; we report typed errors instead.
private func silenceHDF5Errors() { H5Eset_auto2(0, nil, nil) }

extension Array where Element == Int {
    var elementCount: Int { reduce(1, *) }
}

/// The two 16-bit float layouts, as HDF5 float types (toolchain notes §5): IEEE binary16 (sign,
/// 5 exponent bits, bias 15, 10 mantissa bits) and bfloat16 (fp32's top half: 8 exponent bits,
/// bias 127, 7 mantissa bits). Values are converted to bits by the caller, round-to-nearest-even
/// (HDF5's own fp32 → bf16 conversion rounds ties away from zero).
public enum HalfFloatFormat: String, Sendable {
    case bfloat16, float16

    func makeType(path: String) throws -> hid_t {
        let t = H5Tcopy(h5t_ieee_f32le())
        let (spos, epos, esize, msize, bias): (Int, Int, Int, Int, Int) =
            self == .bfloat16 ? (15, 7, 8, 7, 127) : (15, 10, 5, 10, 15)
        guard t >= 0, H5Tset_fields(t, spos, epos, esize, 0, msize) >= 0, H5Tset_size(t, 2) >= 0,
            H5Tset_precision(t, 16) >= 0, H5Tset_ebias(t, bias) >= 0
        else {
            if t >= 0 { H5Tclose(t) }
            throw HDF5Error.operationFailed(path: path, object: rawValue, operation: "make the 16-bit float type")
        }
        return t
    }
}

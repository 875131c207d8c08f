// IndexedDataset.swift — Megatron's MMIDIDX token files, written and memory-mapped.
//   P.bin   every sequence's tokens back to back (uint16 when the vocabulary has < 65500 ids, else int32)
//   P.idx   little-endian: magic "MMIDIDX\0\0", u64 version 1, u8 dtype code (8 uint16, 4 int32),
//           u64 sequence count N, u64 document count D+1, i32 lengths[N], i64 byte pointers[N],
//           i64 document_indices[D+1] (first sequence of each document, then N)
// A sequence is a document, or one of its sentences when documents come pre-split. The writer
// writes both files under temporary names and renames them only when complete. The reader checks
// every count, pointer and size against the files before use, and names the file and the field
// when something is off.
import Foundation

public enum DatasetError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case corrupt(path: String, reason: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read dataset file '\(p)': \(r)"
        case .corrupt(let p, let r): return "'\(p)' is not a valid Megatron MMIDIDX file: \(r); re-run preprocess-data"
        case .writeFailed(let p, let r): return "cannot write '\(p)': \(r); nothing was left behind"
        }
    }
}

public enum TokenDType: UInt8, Sendable {
    case uint16 = 8
    case int32 = 4
    public var size: Int { self == .uint16 ? 2 : 4 }
    /// Megatron's DType.optimal_dtype.
    public static func optimal(vocabSize: Int) -> TokenDType { vocabSize < 65500 ? .uint16 : .int32 }
}

public enum IndexedDatasetFormat {
    public static let magic: [UInt8] = Array("MMIDIDX".utf8) + [0, 0]
    public static let version: UInt64 = 1
    public static func binPath(_ prefix: String) -> String { prefix + ".bin" }
    public static func idxPath(_ prefix: String) -> String { prefix + ".idx" }
}

/// Appends documents to P.bin and writes P.idx at the end; nothing appears under the final names
/// unless `finish` succeeds.
public final class IndexedDatasetWriter {
    public let prefix: String
    public let dtype: TokenDType
    private let binTemp: String
    private let bin: UnsafeMutablePointer<FILE>
    private var lengths: [Int32] = []
    private var documentIndices: [Int64] = [0]
    private var scratch: [UInt8] = []
    public private(set) var tokenCount = 0
    private var done = false

    public init(prefix: String, dtype: TokenDType) throws {
        self.prefix = prefix
        self.dtype = dtype
        binTemp = IndexedDatasetFormat.binPath(prefix) + ".tmp"
        guard let f = fopen(binTemp, "wb") else {
            throw DatasetError.writeFailed(path: binTemp, reason: String(cString: strerror(errno)))
        }
        bin = f
    }

    deinit { if !done { abandon() } }

    /// One document made of `sequences` (usually one; several with pre-split sentences).
    public func addDocument(_ sequences: [[Int32]]) throws {
        for s in sequences {
            scratch.removeAll(keepingCapacity: true)
            switch dtype {
            case .uint16:
                for t in s {
                    let v = UInt16(truncatingIfNeeded: t).littleEndian; scratch.append(UInt8(v & 0xFF));
                    scratch.append(UInt8(v >> 8))
                }
            case .int32: for t in s { withUnsafeBytes(of: t.littleEndian) { scratch.append(contentsOf: $0) } }
            }
            if !scratch.isEmpty && fwrite(scratch, 1, scratch.count, bin) != scratch.count {
                throw DatasetError.writeFailed(path: binTemp, reason: String(cString: strerror(errno)))
            }
            lengths.append(Int32(s.count))
            tokenCount += s.count
        }
        documentIndices.append(Int64(lengths.count))
    }

    public var documentCount: Int { documentIndices.count - 1 }

    /// Writes P.idx and moves both files to their final names.
    public func finish() throws {
        let idxTemp = IndexedDatasetFormat.idxPath(prefix) + ".tmp"
        do {
            guard fflush(bin) == 0, fsync(fileno(bin)) == 0 else {
                throw DatasetError.writeFailed(path: binTemp, reason: String(cString: strerror(errno)))
            }
            var idx = Data()
            idx.append(contentsOf: IndexedDatasetFormat.magic)
            func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { idx.append(contentsOf: $0) } }
            u64(IndexedDatasetFormat.version)
            idx.append(dtype.rawValue)
            u64(UInt64(lengths.count))
            u64(UInt64(documentIndices.count))
            for l in lengths { withUnsafeBytes(of: l.littleEndian) { idx.append(contentsOf: $0) } }
            var pointer: Int64 = 0
            for l in lengths {
                withUnsafeBytes(of: pointer.littleEndian) { idx.append(contentsOf: $0) };
                pointer += Int64(l) * Int64(dtype.size)
            }
            for d in documentIndices { withUnsafeBytes(of: d.littleEndian) { idx.append(contentsOf: $0) } }
            do { try idx.write(to: URL(fileURLWithPath: idxTemp)) } catch {
                throw DatasetError.writeFailed(path: idxTemp, reason: "\(error.localizedDescription)")
            }
            fclose(bin)
            done = true
            guard rename(binTemp, IndexedDatasetFormat.binPath(prefix)) == 0,
                rename(idxTemp, IndexedDatasetFormat.idxPath(prefix)) == 0
            else {
                let reason = String(cString: strerror(errno))
                unlink(binTemp); unlink(idxTemp)
                throw DatasetError.writeFailed(path: IndexedDatasetFormat.idxPath(prefix), reason: reason)
            }
        } catch {
            abandon()
            unlink(idxTemp)
            throw error
        }
    }

    /// Removes the partial output.
    public func abandon() {
        if !done { fclose(bin); done = true }
        unlink(binTemp)
    }
}

/// A memory-mapped, validated MMIDIDX dataset.
public final class IndexedDataset: @unchecked Sendable {
    public let prefix: String
    public let dtype: TokenDType
    public let sequenceCount: Int
    /// Document k holds sequences documentIndices[k] ..< documentIndices[k+1].
    public let documentIndices: [Int64]
    private let lengthsBase: UnsafePointer<Int32>, pointersBase: UnsafePointer<Int64>
    private let idxMap: (UnsafeMutableRawPointer, Int), binMap: (UnsafeMutableRawPointer?, Int)

    public init(prefix: String) throws {
        self.prefix = prefix
        let idxPath = IndexedDatasetFormat.idxPath(prefix), binPath = IndexedDatasetFormat.binPath(prefix)
        let mapped = try Self.map(idxPath)
        func fail(_ reason: String) -> DatasetError { .corrupt(path: idxPath, reason: reason) }
        guard let base = mapped.0, mapped.1 >= 34 else {
            if let b = mapped.0 { munmap(b, mapped.1) }
            throw fail("\(mapped.1) bytes is shorter than the 34-byte header (truncated?)")
        }
        let idx = (base, mapped.1)
        idxMap = idx
        let raw = UnsafeRawPointer(idx.0), size = idx.1
        guard memcmp(raw, IndexedDatasetFormat.magic, 9) == 0 else {
            munmap(idx.0, idx.1); throw fail("the magic bytes are not MMIDIDX")
        }
        let version = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 9, as: UInt64.self))
        guard version == IndexedDatasetFormat.version else {
            munmap(idx.0, idx.1); throw fail("version \(version), expected 1")
        }
        let code = raw.load(fromByteOffset: 17, as: UInt8.self)  // read before any unmapping
        guard let dt = TokenDType(rawValue: code) else {
            munmap(idx.0, idx.1)
            throw fail("dtype code \(code); this reader takes 8 (uint16) and 4 (int32)")
        }
        let rawN = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 18, as: UInt64.self))
        let rawDocs = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 26, as: UInt64.self))
        guard rawN < 1 << 40, rawDocs >= 1, rawDocs < 1 << 40 else {
            munmap(idx.0, idx.1)
            throw fail(
                "implausible counts in the header: \(rawN) sequences and a document index of \(rawDocs) entries (it "
                    + "holds the document count + 1, at least 1)")
        }
        let n = Int(rawN), docs = Int(rawDocs)
        let expected = 34 + 12 * n + 8 * docs
        guard size >= expected else {
            munmap(idx.0, idx.1);
            throw fail(
                "\(size) bytes, but its header promises \(n) sequences and a document index of \(docs) entries, "
                    + "which need \(expected) bytes: the file is truncated; run preprocess-data again")
        }
        dtype = dt
        sequenceCount = n
        lengthsBase = (raw + 34).assumingMemoryBound(to: Int32.self)
        pointersBase = (raw + 34 + 4 * n).assumingMemoryBound(to: Int64.self)
        let docBase = raw + 34 + 12 * n
        documentIndices = (0..<docs).map {
            Int64(littleEndian: docBase.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))
        }
        // The .bin must hold exactly what the index points at.
        do {
            binMap = try Self.map(binPath)
        } catch { munmap(idx.0, idx.1); throw error }
        var expectedPointer: Int64 = 0
        for i in 0..<n {
            let l = Int32(littleEndian: (raw + 34 + 4 * i).loadUnaligned(as: Int32.self))
            let p = Int64(littleEndian: (raw + 34 + 4 * n + 8 * i).loadUnaligned(as: Int64.self))
            guard l >= 0, p == expectedPointer else {
                throw fail("sequence \(i): length \(l), pointer \(p) (expected \(expectedPointer))")
            }
            expectedPointer += Int64(l) * Int64(dt.size)
        }
        guard Int64(binMap.1) == expectedPointer else {
            throw DatasetError.corrupt(
                path: binPath,
                reason: "\(binMap.1) bytes, but the index describes \(expectedPointer) (truncated or from another run?)"
            )
        }
        guard documentIndices.first == 0, documentIndices.last == Int64(n),
            zip(documentIndices, documentIndices.dropFirst()).allSatisfy({ $0 <= $1 })
        else {
            throw fail("document_indices must rise from 0 to the sequence count \(n)")
        }
    }

    deinit {
        munmap(idxMap.0, idxMap.1)
        if let b = binMap.0 { munmap(b, binMap.1) }
    }

    /// The file mapped read-only (nil pointer for an empty file).
    private static func map(_ path: String) throws -> (UnsafeMutableRawPointer?, Int) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw DatasetError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw DatasetError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        let size = Int(st.st_size)
        if size == 0 { return (nil, 0) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw DatasetError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        return (p, size)
    }

    public var documentCount: Int { documentIndices.count - 1 }

    public func length(_ sequence: Int) -> Int {
        Int(Int32(littleEndian: UnsafeRawPointer(lengthsBase + sequence).loadUnaligned(as: Int32.self)))
    }

    /// Tokens in all sequences of document `d`.
    public func documentLength(_ d: Int) -> Int {
        (Int(documentIndices[d])..<Int(documentIndices[d + 1])).reduce(0) { $0 + length($1) }
    }

    /// Copies `count` tokens of sequence `sequence` starting at `offset` into `out`.
    public func read(sequence: Int, offset: Int, count: Int, into out: UnsafeMutablePointer<Int32>) {
        let start =
            Int(Int64(littleEndian: UnsafeRawPointer(pointersBase + sequence).loadUnaligned(as: Int64.self))) + offset
            * dtype.size
        let base = UnsafeRawPointer(binMap.0!) + start
        switch dtype {
        case .uint16:
            for i in 0..<count {
                out[i] = Int32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .int32:
            for i in 0..<count {
                out[i] = Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
            }
        }
    }
}

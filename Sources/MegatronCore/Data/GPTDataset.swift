// GPTDataset.swift — Megatron's GPT samples over an MMIDIDX dataset (gpt_dataset.py, helpers.cpp):
//   split       sequences [round(c_i·N), round(c_{i+1}·N)) of the dataset for split i (`split` weights)
//   epochs      the fewest e with e·(tokens of the split) ≥ num_samples·s + 1
//   doc_idx     the split's sequences repeated e times, shuffled (the last epoch shuffled on its
//               own when it supplies < 80% of an epoch's samples: separate_final_epoch)
//   sample_idx  (position in doc_idx, token offset) where each sample starts; a sample is s + 1
//               tokens and the next starts on its last token (the shifted label)
//   shuffle_idx a permutation of the samples (first epochs and a separate final epoch apart)
// Shuffles are Philox Fisher–Yates keyed by (seed, split, what) — deterministic, but not numpy's
// RandomState, so orders differ from Megatron's own. The three indices are cached as .npy files
// next to the data (`{prefix dir}/cache/GPTDataset_indices/{hash}-GPTDataset-{split}-*.npy`, with
// the description they were built from), so a restart loads them instead of rebuilding.
import Foundation
import Tensor

public final class GPTDataset: SampleSource, @unchecked Sendable {
    public let dataset: IndexedDataset
    public let split: String
    public let seqLength: Int
    let docIdx: [Int32]
    let sampleIdx: [Int64]  // [count + 1, 2] flattened
    let shuffleIdx: [Int64]
    /// True when the indices came from the cache.
    public let loadedFromCache: Bool
    public let cachePrefix: String

    public var count: Int { shuffleIdx.count }

    /// Megatron's split of `n` sequences by normalised `weights`.
    public static func splitBounds(_ weights: [Double], count n: Int) -> [Range<Int>] {
        let total = weights.reduce(0, +)
        var bounds = [0]
        for w in weights { bounds.append(bounds.last! + Int((w / total * Double(n)).rounded())) }
        let diff = bounds.last! - n
        for i in 1..<bounds.count { bounds[i] -= diff }
        return (0..<weights.count).map { max(0, bounds[$0])..<max(max(0, bounds[$0]), bounds[$0 + 1]) }
    }

    /// Builds (or loads from the cache) the sample index of `documents` for at least `numSamples` samples.
    public init(
        dataset: IndexedDataset, split: String, documents: Range<Int>, numSamples: Int, seqLength: Int, seed: Int,
        cacheDirectory: String?, writeCache: Bool = true
    ) throws {
        self.dataset = dataset
        self.split = split
        self.seqLength = seqLength
        let tokensPerEpoch = documents.reduce(0) { $0 + dataset.length($1) }
        guard tokensPerEpoch > seqLength else {
            throw DataError.splitTooSmall(split: split, tokens: tokensPerEpoch, needed: seqLength + 1)
        }
        let attrs = try? FileManager.default.attributesOfItem(atPath: IndexedDatasetFormat.idxPath(dataset.prefix))
        let idxBytes = (attrs?[.size] as? Int) ?? 0
        let idxTime = Int((attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
        let description = """
            {"class": "GPTDataset", "format": 1, "dataset_path": "\(dataset.prefix)", "idx_bytes": \(idxBytes), \
            "idx_mtime": \(idxTime), "split": "\(split)", \
            "documents": [\(documents.lowerBound), \(documents.upperBound)], "num_samples": \(numSamples), \
            "sequence_length": \(seqLength), "random_seed": \(seed)}
            """
        let dir =
            cacheDirectory
            ?? ((dataset.prefix as NSString).deletingLastPathComponent as NSString).appendingPathComponent(
                "cache/GPTDataset_indices")
        let hash = String(format: "%016llx", stableHash(description))
        cachePrefix = (dir as NSString).appendingPathComponent("\(hash)-GPTDataset-\(split)")
        if let cached = Self.loadCache(cachePrefix, description: description) {
            (docIdx, sampleIdx, shuffleIdx) = cached
            loadedFromCache = true
            return
        }
        (docIdx, sampleIdx, shuffleIdx) = Self.build(
            dataset: dataset, documents: documents, tokensPerEpoch: tokensPerEpoch,
            numSamples: numSamples, seqLength: seqLength, seed: seed, split: split)
        loadedFromCache = false
        if writeCache { try? Self.saveCache(cachePrefix, description: description, docIdx, sampleIdx, shuffleIdx) }
    }

    static func build(
        dataset: IndexedDataset, documents: Range<Int>, tokensPerEpoch: Int, numSamples: Int, seqLength s: Int,
        seed: Int, split: String
    ) -> ([Int32], [Int64], [Int64]) {
        var epochs = 1
        while epochs * tokensPerEpoch < numSamples * s + 1 { epochs += 1 }
        var separateFinal = false
        var samplesBeforeFinal = 0
        if epochs > 1 {
            samplesBeforeFinal = ((epochs - 1) * tokensPerEpoch - 1) / s
            let fromFinal = numSamples - samplesBeforeFinal
            let perEpoch = (tokensPerEpoch - 1) / s
            separateFinal = fromFinal < Int(0.80 * Double(perEpoch))
        }
        // doc_idx
        func shuffled(_ a: [Int32], _ what: String) -> [Int32] {
            let p = ShuffledOrder.permutation(count: a.count, seed: seed, label: "gpt.\(split).\(what)")
            return p.map { a[$0] }
        }
        let docs = documents.map { Int32($0) }
        var docIdx: [Int32]
        if separateFinal {
            docIdx = shuffled(Array([[Int32]](repeating: docs, count: epochs - 1).joined()), "doc_idx.first")
            docIdx += shuffled(docs, "doc_idx.last")
        } else {
            docIdx = shuffled(Array([[Int32]](repeating: docs, count: epochs).joined()), "doc_idx")
        }
        // sample_idx
        let count = (epochs * tokensPerEpoch - 1) / s
        var sampleIdx = [Int64](repeating: 0, count: 2 * (count + 1))
        var position = 0, offset = 0
        for k in 1...count {
            var remaining = s + 1
            while remaining != 0 {
                let length = dataset.length(Int(docIdx[position])) - offset
                remaining -= length
                if remaining <= 0 {
                    offset += remaining + length - 1
                    remaining = 0
                } else {
                    position += 1
                    offset = 0
                }
            }
            sampleIdx[2 * k] = Int64(position); sampleIdx[2 * k + 1] = Int64(offset)
        }
        // shuffle_idx
        let first = separateFinal ? samplesBeforeFinal : count
        var shuffle = ShuffledOrder.permutation(count: first, seed: seed, label: "gpt.\(split).shuffle_idx.first").map(
            Int64.init)
        if first < count {
            shuffle += ShuffledOrder.permutation(
                count: count - first, seed: seed, label: "gpt.\(split).shuffle_idx.last"
            ).map { Int64(first + $0) }
        }
        return (docIdx, sampleIdx, shuffle)
    }

    /// Writes the `seqLength + 1` tokens of sample `index`, which may span several documents.
    public func sample(_ index: Int, into out: UnsafeMutablePointer<Int32>) {
        let j = Int(shuffleIdx[index])
        let (d0, o0) = (Int(sampleIdx[2 * j]), Int(sampleIdx[2 * j + 1]))
        let (d1, o1) = (Int(sampleIdx[2 * j + 2]), Int(sampleIdx[2 * j + 3]))
        var written = 0
        for d in d0...d1 {
            let doc = Int(docIdx[d])
            let start = d == d0 ? o0 : 0
            let end = d == d1 ? o1 + 1 : dataset.length(doc)
            dataset.read(sequence: doc, offset: start, count: end - start, into: out + written)
            written += end - start
        }
    }

    // MARK: Cache (.npy files, numpy's format version 1.0)

    static func loadCache(_ prefix: String, description: String) -> ([Int32], [Int64], [Int64])? {
        guard let stored = try? String(contentsOfFile: prefix + "-description.txt", encoding: .utf8),
            stored == description,
            let doc: [Int32] = NPY.read(prefix + "-document_index.npy"),
            let sample: [Int64] = NPY.read(prefix + "-sample_index.npy"),
            let shuffle: [Int64] = NPY.read(prefix + "-shuffle_index.npy"),
            sample.count >= 4, sample.count % 2 == 0, shuffle.allSatisfy({ $0 >= 0 && Int($0) < sample.count / 2 - 1 })
        else { return nil }
        return (doc, sample, shuffle)
    }

    static func saveCache(_ prefix: String, description: String, _ doc: [Int32], _ sample: [Int64], _ shuffle: [Int64])
        throws
    {
        try FileManager.default.createDirectory(
            atPath: (prefix as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try NPY.write(prefix + "-document_index.npy", doc, shape: [doc.count])
        try NPY.write(prefix + "-sample_index.npy", sample, shape: [sample.count / 2, 2])
        try NPY.write(prefix + "-shuffle_index.npy", shuffle, shape: [shuffle.count])
        // The description last: its presence (and equality) marks a complete cache.
        let tmp = prefix + "-description.txt.tmp.\(getpid())"
        try description.write(toFile: tmp, atomically: false, encoding: .utf8)
        guard rename(tmp, prefix + "-description.txt") == 0 else { unlink(tmp); return }
    }
}

/// Minimal .npy reading and writing for little-endian int32/int64 arrays.
enum NPY {
    static func descr<T>(_ type: T.Type) -> String { T.self == Int32.self ? "<i4" : "<i8" }

    static func write<T: FixedWidthInteger>(_ path: String, _ values: [T], shape: [Int]) throws {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr(T.self))', 'fortran_order': False, 'shape': \(shapeText), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header.utf8)
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        let tmp = path + ".tmp.\(getpid())"
        try data.write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else {
            unlink(tmp); throw DatasetError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
    }

    static func read<T: FixedWidthInteger>(_ path: String) -> [T]? {
        guard let data = FileManager.default.contents(atPath: path), data.count > 10,
            data.starts(with: [0x93] + Array("NUMPY".utf8))
        else { return nil }
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        guard data.count >= 10 + headerLength,
            let header = String(data: data[10..<10 + headerLength], encoding: .ascii),
            header.contains("'\(descr(T.self))'")
        else { return nil }
        let body = data[(10 + headerLength)...]
        guard body.count % MemoryLayout<T>.size == 0 else { return nil }
        return body.withUnsafeBytes { raw in
            (0..<body.count / MemoryLayout<T>.size).map {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))
            }
        }
    }
}

/// Several datasets drawn by weight (Megatron's BlendedDataset): sample i comes from the dataset
/// whose share is furthest behind its weight after i samples, ties to the first.
public final class BlendedSamples: SampleSource, @unchecked Sendable {
    public let sources: [SampleSource]
    let datasetIndex: [UInt16]
    let datasetSampleIndex: [Int]

    public var count: Int { datasetIndex.count }

    public init(sources: [SampleSource], weights: [Double], count: Int) {
        self.sources = sources
        let total = weights.reduce(0, +)
        let w = weights.map { $0 / total }
        var current = [Int](repeating: 0, count: sources.count)
        var index = [UInt16](repeating: 0, count: count), sampleIndex = [Int](repeating: 0, count: count)
        for i in 0..<count {
            let x = max(Double(i), 1)
            var best = 0, bestError = -Double.infinity
            for d in 0..<sources.count {
                let e = w[d] * x - Double(current[d])
                if e > bestError { bestError = e; best = d }
            }
            index[i] = UInt16(best)
            sampleIndex[i] = current[best] % max(1, sources[best].count)
            current[best] += 1
        }
        datasetIndex = index
        datasetSampleIndex = sampleIndex
    }

    /// Samples each source must supply for `count` blended samples (Megatron adds 0.5%).
    public static func perSourceSamples(weights: [Double], count: Int) -> [Int] {
        let total = weights.reduce(0, +)
        return weights.map { Int((Double(count) * $0 / total * 1.005).rounded(.up)) }
    }

    public func sample(_ index: Int, into out: UnsafeMutablePointer<Int32>) {
        sources[Int(datasetIndex[index])].sample(datasetSampleIndex[index], into: out)
    }
}

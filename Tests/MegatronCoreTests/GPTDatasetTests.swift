// GPTDatasetTests.swift — Megatron's GPT sample index on a dataset whose every token is distinct
// (its position), so uses can be counted: within one epoch each token of the split starts at
// most one sample position (none used twice), samples are seq_length + 1 tokens and each one's
// last token is the next one's first; several epochs use every token once per epoch; the same
// seed gives the same order and another seed another; a rebuilt index loads from the cache.
import Foundation
import MegatronCore
import XCTest

final class GPTDatasetTests: XCTestCase {
    /// 50 documents of 1…37 tokens; token value = its position in the whole dataset.
    func makeDataset(_ dir: URL) throws -> IndexedDataset {
        let prefix = dir.appendingPathComponent("pos").path
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: .int32)
        var next: Int32 = 0
        for d in 0..<50 {
            let n = 1 + (d * 7) % 37
            try writer.addDocument([
                (0..<n).map { _ in
                    defer { next += 1 }; return next
                }
            ])
        }
        try writer.finish()
        return try IndexedDataset(prefix: prefix)
    }

    func samples(_ ds: GPTDataset) -> [[Int32]] {
        (0..<ds.count).map { i in
            var out = [Int32](repeating: -1, count: ds.seqLength + 1)
            out.withUnsafeMutableBufferPointer { ds.sample(i, into: $0.baseAddress!) }
            return out
        }
    }

    func testSampleIndexUsesEveryTokenOncePerEpoch() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gptds-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let data = try makeDataset(dir)
        let bounds = GPTDataset.splitBounds([969, 30, 1], count: data.sequenceCount)
        XCTAssertEqual(bounds.map(\.count), [48, 2, 0])
        let train = bounds[0]
        let splitTokens = Set(
            train.flatMap { d -> [Int32] in
                var t = [Int32](repeating: 0, count: data.length(d))
                t.withUnsafeMutableBufferPointer {
                    data.read(sequence: d, offset: 0, count: $0.count, into: $0.baseAddress!)
                }
                return t
            })
        let s = 16
        for (numSamples, epochs) in [(10, 1), (150, 3)] {
            let ds = try GPTDataset(
                dataset: data, split: "train", documents: train, numSamples: numSamples, seqLength: s, seed: 1234,
                cacheDirectory: dir.appendingPathComponent("cache").path)
            XCTAssertEqual(ds.count, (epochs * splitTokens.count - 1) / s, "samples of \(epochs) epoch(s)")
            XCTAssertGreaterThanOrEqual(ds.count, numSamples)
            let all = samples(ds)
            XCTAssertTrue(
                all.allSatisfy { $0.count == s + 1 && $0.allSatisfy(splitTokens.contains) },
                "samples are s + 1 tokens of the split")
            // Inputs (all but the last token): each token at most `epochs` times, and all but < s + 1
            // of each epoch used.
            var uses: [Int32: Int] = [:]
            for sample in all { for t in sample.dropLast() { uses[t, default: 0] += 1 } }
            XCTAssertLessThanOrEqual(uses.values.max() ?? 0, epochs)
            XCTAssertEqual(uses.values.reduce(0, +), ds.count * s)
            if epochs == 1 { XCTAssertGreaterThan(uses.count, splitTokens.count - (s + 1)) }
            // The one-token overlap: every sample's last token starts exactly one other sample, but one.
            var firsts: [Int32: Int] = [:]
            for sample in all { firsts[sample[0], default: 0] += 1 }
            let chained = all.filter { firsts[$0[s]] != nil }.count
            XCTAssertGreaterThanOrEqual(chained, all.count - epochs, "samples overlap by one token")
        }

        let a = try GPTDataset(
            dataset: data, split: "train", documents: train, numSamples: 10, seqLength: s, seed: 1, cacheDirectory: nil,
            writeCache: false)
        let b = try GPTDataset(
            dataset: data, split: "train", documents: train, numSamples: 10, seqLength: s, seed: 1, cacheDirectory: nil,
            writeCache: false)
        let c = try GPTDataset(
            dataset: data, split: "train", documents: train, numSamples: 10, seqLength: s, seed: 2, cacheDirectory: nil,
            writeCache: false)
        XCTAssertEqual(samples(a), samples(b), "same seed, same order")
        XCTAssertNotEqual(samples(a), samples(c), "another seed, another order")

        let cacheDir = dir.appendingPathComponent("cache2").path
        let built = try GPTDataset(
            dataset: data, split: "train", documents: train, numSamples: 40, seqLength: s, seed: 3,
            cacheDirectory: cacheDir)
        let loaded = try GPTDataset(
            dataset: data, split: "train", documents: train, numSamples: 40, seqLength: s, seed: 3,
            cacheDirectory: cacheDir)
        XCTAssertFalse(built.loadedFromCache)
        XCTAssertTrue(loaded.loadedFromCache, "a restart loads the index instead of rebuilding it")
        XCTAssertEqual(samples(built), samples(loaded))
        let other = try GPTDataset(
            dataset: data, split: "train", documents: train, numSamples: 40, seqLength: s, seed: 4,
            cacheDirectory: cacheDir)
        XCTAssertFalse(other.loadedFromCache, "another seed is another index")
    }

    func testBlendFollowsTheWeights() throws {
        struct Constant: SampleSource {
            let value: Int32
            var count: Int { 1000 }
            func sample(_ index: Int, into out: UnsafeMutablePointer<Int32>) { out[0] = value; out[1] = Int32(index) }
        }
        let blend = BlendedSamples(sources: [Constant(value: 0), Constant(value: 1)], weights: [0.3, 0.7], count: 100)
        var from = [0, 0]
        var nextIndex = [0, 0]
        for i in 0..<100 {
            var out: [Int32] = [0, 0]
            out.withUnsafeMutableBufferPointer { blend.sample(i, into: $0.baseAddress!) }
            XCTAssertEqual(Int(out[1]), nextIndex[Int(out[0])], "each source is read in order")
            nextIndex[Int(out[0])] += 1
            from[Int(out[0])] += 1
            XCTAssertLessThanOrEqual(
                abs(Double(from[1]) - 0.7 * Double(i + 1)), 1.0, "the share stays within one sample of the weight")
        }
        XCTAssertEqual(from, [30, 70])
    }
}

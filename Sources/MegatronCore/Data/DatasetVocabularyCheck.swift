// DatasetVocabularyCheck.swift — a dataset's token ids against the run's vocabulary, checked when
// the dataset is opened: one pass over the .bin finds the largest id (cached beside the data in
// `<dir>/cache/token_range/{hash}.txt`, keyed by the .idx's path, size and time, so a restart reads
// one line); an id ≥ the vocabulary is an error naming the dataset, the document and the id — a
// dataset made with another tokenizer never trains silently.
import Foundation
import Tensor

public struct TokenOutOfVocabulary: Error, CustomStringConvertible {
    public let dataset: String, document: Int, id: Int, vocabSize: Int
    public var description: String {
        "dataset '\(dataset)': document \(document) holds token id \(id), but the run's tokenizer has \(vocabSize) ids "
            + "(0 … \(vocabSize - 1)); the data was made with another tokenizer — give the run the tokenizer_type and "
            + "vocab_file that preprocess-data used, or re-run preprocess-data with the run's tokenizer"
    }
}

extension IndexedDataset {
    /// The largest token id of the dataset, from the cache when it holds it.
    public func largestTokenId() -> Int {
        let idx = IndexedDatasetFormat.idxPath(prefix)
        let attrs = try? FileManager.default.attributesOfItem(atPath: idx)
        let key =
            "\(idx) \((attrs?[.size] as? Int) ?? 0) \((attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        let dir = ((prefix as NSString).deletingLastPathComponent as NSString).appendingPathComponent(
            "cache/token_range")
        let file = (dir as NSString).appendingPathComponent(String(format: "%016llx.txt", stableHash(key)))
        if let text = try? String(contentsOfFile: file, encoding: .utf8), let line = text.split(separator: "\n").first,
            line.hasPrefix(key + " "), let cached = Int(line.dropFirst(key.count + 1))
        {
            return cached
        }
        var largest = -1
        for s in 0..<sequenceCount { largest = max(largest, largestToken(inSequence: s)) }
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try? "\(key) \(largest)\n".write(toFile: file, atomically: true, encoding: .utf8)
        return largest
    }

    /// The largest id of sequence `s` (−1 when empty).
    func largestToken(inSequence s: Int) -> Int {
        let n = length(s)
        guard n > 0 else { return -1 }
        var tokens = [Int32](repeating: 0, count: n)
        tokens.withUnsafeMutableBufferPointer { read(sequence: s, offset: 0, count: n, into: $0.baseAddress!) }
        return Int(tokens.max()!)
    }

    /// Throws when any token id is ≥ `vocabSize`, naming the first document that holds one.
    public func checkTokens(vocabSize: Int) throws {
        guard largestTokenId() >= vocabSize else { return }
        for d in 0..<documentCount {
            for s in Int(documentIndices[d])..<Int(documentIndices[d + 1]) {
                let id = largestToken(inSequence: s)
                if id >= vocabSize {
                    throw TokenOutOfVocabulary(dataset: prefix, document: d, id: id, vocabSize: vocabSize)
                }
            }
        }
    }
}

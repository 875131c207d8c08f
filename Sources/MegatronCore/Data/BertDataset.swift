// BertDataset.swift — BERT's spans over a sentence-split MMIDIDX dataset (`preprocess-data
// --split-sentences`: one sequence per sentence, documents in document_indices), split by
// documents like Megatron's masked datasets. The spans of a split (Megatron's sample mapping) are
// cached as .npy next to the data — `{prefix dir}/cache/BertDataset_indices/{hash}-BertDataset-
// {split}-spans.npy`, [N, 4] int64 rows (document, first sentence, end sentence, target length),
// with the description they were built from — so a restart loads them instead of rescanning.
import Foundation
import Tensor

public enum BertDatasetIndex {
    /// The spans of `documents` of `dataset` by `builder`'s rules, from the cache when it holds
    /// them (`cached` true); built and, with `writeCache`, cached otherwise.
    public static func spans(
        builder: BertSampleBuilder, dataset: IndexedDataset, documents: Range<Int>, split: String, writeCache: Bool
    ) -> (spans: [BertSpan], cached: Bool) {
        let attrs = try? FileManager.default.attributesOfItem(atPath: IndexedDatasetFormat.idxPath(dataset.prefix))
        let idxBytes = (attrs?[.size] as? Int) ?? 0
        let idxTime = Int((attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
        let description = """
            {"class": "BertDataset", "format": 1, "dataset_path": "\(dataset.prefix)", "idx_bytes": \(idxBytes), \
            "idx_mtime": \(idxTime), "split": "\(split)", \
            "documents": [\(documents.lowerBound), \(documents.upperBound)], \
            "sequence_length": \(builder.seqLength), "short_seq_prob": \(builder.shortSeqProb), \
            "binary_head": \(builder.binaryHead), "random_seed": \(builder.seed)}
            """
        let dir = ((dataset.prefix as NSString).deletingLastPathComponent as NSString).appendingPathComponent(
            "cache/BertDataset_indices")
        let prefix = (dir as NSString).appendingPathComponent(
            String(format: "%016llx", stableHash(description)) + "-BertDataset-\(split)")
        if let stored = try? String(contentsOfFile: prefix + "-description.txt", encoding: .utf8),
            stored == description, let rows: [Int64] = NPY.read(prefix + "-spans.npy"), rows.count % 4 == 0
        {
            let spans = stride(from: 0, to: rows.count, by: 4).map { i in
                BertSpan(
                    document: Int(rows[i]), sentences: Int(rows[i + 1])..<Int(rows[i + 2]),
                    targetLength: Int(rows[i + 3]))
            }
            if spans.allSatisfy({ documents.contains($0.document) && $0.sentences.lowerBound >= 0 }) {
                return (spans, true)
            }
        }
        let spans = builder.spans(dataset, documents: documents)
        if writeCache {
            var rows: [Int64] = []
            rows.reserveCapacity(4 * spans.count)
            for span in spans {
                rows += [span.document, span.sentences.lowerBound, span.sentences.upperBound, span.targetLength].map {
                    Int64($0)
                }
            }
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            if (try? NPY.write(prefix + "-spans.npy", rows, shape: [spans.count, 4])) != nil {
                // The description last: its presence (and equality) marks a complete cache.
                let tmp = prefix + "-description.txt.tmp.\(getpid())"
                if (try? description.write(toFile: tmp, atomically: false, encoding: .utf8)) != nil,
                    rename(tmp, prefix + "-description.txt") != 0
                {
                    unlink(tmp)
                }
            }
        }
        return (spans, false)
    }
}

// Preprocess.swift — Megatron's tools/preprocess_data.py: documents in, MMIDIDX datasets out.
// Input: JSON lines (`.jsonl`/`.json`: one object per line; each of `jsonKeys` is a string, or a
// list of strings = pre-split sentences) or plain text (any other name: one document per
// paragraph, paragraphs separated by blank lines). Each key goes to `{prefix}_{key}_document`, or
// with sentence splitting (BERT's data: SentenceSplitter cuts every text) `{prefix}_{key}_sentence`.
// Per document: every non-empty sentence becomes a sequence; with `appendEOD` the end-of-document
// id is appended to the last one (only if the document has any tokens). Documents are tokenized
// in batches by `workers` threads (one tokenizer each) and written in input order.
import Foundation

public enum PreprocessError: Error, CustomStringConvertible {
    case badLine(path: String, line: Int, reason: String)
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .badLine(let p, let l, let r): return "\(p) line \(l): \(r); fix the input (nothing was written)"
        case .unreadable(let p, let r): return "cannot read input '\(p)': \(r)"
        }
    }
}

public struct PreprocessSummary: Sendable {
    public var documents = 0
    public var tokens = 0
    public var bytes = 0
    public var outputs: [String] = []
    /// Seconds from the first document to the last file written (tokenizer loading excluded).
    public var seconds = 0.0
}

public enum Preprocess {
    /// One document of the input: its 1-based line number and its text per key (sentences).
    struct RawDocument {
        let line: Int
        let fields: [[Data]]
    }

    /// Tokenizes `input` into `{prefix}_{key}_document.bin/.idx`, or with `splitSentences` (each text
    /// cut by SentenceSplitter, one sequence per sentence) `{prefix}_{key}_sentence.bin/.idx`.
    /// `progress(documents, bytes, seconds)` is called after every batch.
    public static func run(
        input: String, jsonKeys: [String], prefix: String, appendEOD: Bool, splitSentences: Bool = false,
        workers: Int,
        makeTokenizer: () throws -> Tokenizer,
        progress: (_ documents: Int, _ bytes: Int, _ seconds: Double) -> Void = { _, _, _ in }
    ) throws -> PreprocessSummary {
        guard let data = FileManager.default.contents(atPath: input) else {
            throw PreprocessError.unreadable(
                path: input,
                reason: FileManager.default.fileExists(atPath: input) ? "permission denied" : "no such file")
        }
        let isJSON = input.hasSuffix(".jsonl") || input.hasSuffix(".json")
        let keys = isJSON ? jsonKeys : ["text"]
        let tokenizers = try (0..<max(1, workers)).map { _ in try makeTokenizer() }
        let dtype = TokenDType.optimal(vocabSize: tokenizers[0].vocabSize)
        var writers: [IndexedDatasetWriter] = []
        let level = splitSentences ? "sentence" : "document"
        for key in keys { writers.append(try IndexedDatasetWriter(prefix: "\(prefix)_\(key)_\(level)", dtype: dtype)) }
        var summary = PreprocessSummary()
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            var batch: [RawDocument] = []
            var batchBytes = 0
            func flush() throws {
                let tokenized = tokenize(
                    batch, keys: keys.count, tokenizers: tokenizers, appendEOD: appendEOD,
                    splitSentences: splitSentences)
                for doc in tokenized {
                    for (k, sequences) in doc.enumerated() { try writers[k].addDocument(sequences) }
                }
                summary.documents += batch.count
                summary.bytes += batchBytes
                progress(summary.documents, summary.bytes, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                batch.removeAll(keepingCapacity: true); batchBytes = 0
            }
            try forEachDocument(data, path: input, json: isJSON, keys: keys) { doc, bytes in
                batch.append(doc); batchBytes += bytes
                if batch.count >= 512 * tokenizers.count || batchBytes >= 8 << 20 { try flush() }
            }
            try flush()
            for w in writers { try w.finish() }
        } catch {
            for w in writers { w.abandon() }
            throw error
        }
        summary.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        summary.tokens = writers.reduce(0) { $0 + $1.tokenCount }
        summary.outputs = keys.map { "\(prefix)_\($0)_\(level)" }
        return summary
    }

    /// Splits the input into documents, checking UTF-8 and JSON as it goes.
    static func forEachDocument(
        _ data: Data, path: String, json: Bool, keys: [String], _ body: (RawDocument, Int) throws -> Void
    ) throws {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var lineStart = 0, lineNumber = 0
            var paragraph: (start: Int, line: Int)? = nil
            func checkUTF8(_ range: Range<Int>, line: Int) throws {
                try Self.checkUTF8(UnsafeBufferPointer(rebasing: bytes[range]), path: path, line: line)
            }
            while lineStart < bytes.count {
                lineNumber += 1
                var end = lineStart
                while end < bytes.count && bytes[end] != 0x0A { end += 1 }
                let next = min(bytes.count, end + 1)
                if json {
                    let line = lineStart..<end
                    if !bytes[line].allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                        try checkUTF8(line, line: lineNumber)
                        let fields = try Self.jsonFields(Data(bytes[line]), keys: keys, path: path, line: lineNumber)
                        try body(RawDocument(line: lineNumber, fields: fields), line.count)
                    }
                } else {
                    try checkUTF8(lineStart..<end, line: lineNumber)
                    let blank = bytes[lineStart..<end].allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
                    if blank {
                        if let p = paragraph {
                            try body(
                                RawDocument(line: p.line, fields: [[Data(bytes[p.start..<lineStart])]]),
                                lineStart - p.start)
                        }
                        paragraph = nil
                    } else if paragraph == nil {
                        paragraph = (lineStart, lineNumber)
                    }
                }
                lineStart = next
            }
            if let p = paragraph {
                try body(
                    RawDocument(line: p.line, fields: [[Data(bytes[p.start..<bytes.count])]]), bytes.count - p.start)
            }
        }
    }

    /// Throws unless `bytes` (line `line` of `path`) is valid UTF-8, naming the byte where it breaks.
    static func checkUTF8(_ bytes: UnsafeBufferPointer<UInt8>, path: String, line: Int) throws {
        var it = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        loop: while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s): offset += UTF8.width(s)
            case .emptyInput: break loop
            case .error:
                throw PreprocessError.badLine(
                    path: path, line: line, reason: "invalid UTF-8 near byte \(offset) of the line")
            }
        }
    }

    /// The fields `keys` of a JSON-lines document (each a string or a list of strings).
    static func jsonFields(_ text: Data, keys: [String], path: String, line: Int) throws -> [[Data]] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: text, options: [.fragmentsAllowed])
        } catch {
            throw PreprocessError.badLine(path: path, line: line, reason: "not valid JSON")
        }
        guard let dict = object as? [String: Any] else {
            throw PreprocessError.badLine(path: path, line: line, reason: "not a JSON object")
        }
        var fields: [[Data]] = []
        for key in keys {
            guard let value = dict[key] else {
                let present = dict.keys.sorted().map { "'\($0)'" }.joined(separator: ", ")
                throw PreprocessError.badLine(
                    path: path, line: line, reason: "no key '\(key)' (the object has \(present)); choose --json-keys")
            }
            if let s = value as? String {
                fields.append([Data(s.utf8)])
            } else if let list = value as? [String] {
                fields.append(list.map { Data($0.utf8) })
            } else {
                throw PreprocessError.badLine(
                    path: path, line: line, reason: "'\(key)' is neither a string nor a list of strings")
            }
        }
        return fields
    }

    /// [document][key][sequence] token ids, tokenized by `tokenizers.count` threads; with
    /// `splitSentences` every text is first cut into sentences.
    static func tokenize(
        _ docs: [RawDocument], keys: Int, tokenizers: [Tokenizer], appendEOD: Bool, splitSentences: Bool = false
    ) -> [[[[Int32]]]] {
        var out = [[[[Int32]]]](repeating: [], count: docs.count)
        let workers = tokenizers.count
        out.withUnsafeMutableBufferPointer { results in
            let results = UncheckedSendableBuffer(results)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let tok = tokenizers[w]
                for i in stride(from: w, to: docs.count, by: workers) {
                    results.base[i] = docs[i].fields.map { texts in
                        let sentences =
                            splitSentences
                            ? texts.flatMap { SentenceSplitter.split(Array($0)).map { Data($0) } } : texts
                        var sequences = sentences.map { s in
                            s.withUnsafeBytes { tok.encode($0.bindMemory(to: UInt8.self)) }
                        }.filter { !$0.isEmpty }
                        if appendEOD, !sequences.isEmpty { sequences[sequences.count - 1].append(tok.eod) }
                        return sequences
                    }
                }
            }
        }
        return out
    }
}

/// A buffer pointer shared by worker threads that write disjoint elements.
struct UncheckedSendableBuffer<T>: @unchecked Sendable {
    let base: UnsafeMutableBufferPointer<T>
    init(_ base: UnsafeMutableBufferPointer<T>) { self.base = base }
}

// TextCorpus.swift — the built-in corpus every Debian machine has: the license texts under
// /usr/share/common-licenses (one document per distinct file, sorted by name), tokenised (one token
// per byte by default) with `<|endoftext|>` after each document, and split into train/valid/test by
// the `split` weights over the token stream (contiguous ranges). Preprocessed Megatron datasets
// (`data_path`) are read by GPTDataset instead.
import Foundation

public enum DataError: Error, CustomStringConvertible {
    case unreadable(path: String)
    case emptyCorpus(path: String)
    case splitTooSmall(split: String, tokens: Int, needed: Int)

    public var description: String {
        switch self {
        case .unreadable(let p):
            return "cannot read the corpus at '\(p)': check that it exists and is readable"
        case .emptyCorpus(let p):
            return "the corpus at '\(p)' is empty: it needs at least one non-empty text file"
        case .splitTooSmall(let s, let t, let n):
            return
                "the \(s) split has \(t) tokens but one sample needs \(n) (seq_length + 1): lower seq_length or give "
                + "that split more weight in `split`"
        }
    }
}

public struct TokenCorpus: Sendable {
    public let tokens: [Int32]
    public let documents: Int
    public let source: String

    public static let defaultDirectory = "/usr/share/common-licenses"

    /// Reads every regular file of `directory` (symlinks resolved, duplicates skipped).
    public static func licenseTexts(directory: String = defaultDirectory, tokenizer: Tokenizer = ByteLevelTokenizer())
        throws -> TokenCorpus
    {
        var tokens: [Int32] = []
        let documents = try licenseDocuments(directory: directory)
        for data in documents {
            tokens += tokenizer.encode(data)
            tokens.append(tokenizer.eod)
        }
        return TokenCorpus(tokens: tokens, documents: documents.count, source: directory)
    }

    /// The bytes of every distinct non-empty regular file of `directory`, sorted by name.
    public static func licenseDocuments(directory: String = defaultDirectory) throws -> [[UInt8]] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else {
            throw DataError.unreadable(path: directory)
        }
        var seen = Set<String>()
        var documents: [[UInt8]] = []
        for name in names.sorted() {
            let path = (directory as NSString).appendingPathComponent(name)
            let resolved = (path as NSString).resolvingSymlinksInPath
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: resolved, isDirectory: &isDir), !isDir.boolValue,
                seen.insert(resolved).inserted,
                let data = fm.contents(atPath: resolved), !data.isEmpty
            else { continue }
            documents.append([UInt8](data))
        }
        if documents.isEmpty { throw DataError.emptyCorpus(path: directory) }
        return documents
    }

    /// Contiguous token ranges for train, valid and test from normalised weights.
    public func splitRanges(_ weights: [Double]) -> [Range<Int>] {
        let n = tokens.count
        var bounds = [0]
        var acc = 0.0
        for w in weights { acc += w; bounds.append(min(n, Int((acc * Double(n)).rounded()))) }
        bounds[bounds.count - 1] = n
        return (0..<weights.count).map { bounds[$0]..<max(bounds[$0], bounds[$0 + 1]) }
    }
}

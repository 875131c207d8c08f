// PreprocessData.swift — `megatron preprocess-data`: Megatron's tools/preprocess_data.py.
// JSON lines or plain text in, `{output-prefix}_{key}_document.bin/.idx` (MMIDIDX) out (`_sentence`
// with --split-sentences, one sequence per sentence: BERT's data), tokenized
// by --workers threads. On a terminal a progress line (documents/s, MB/s) updates in place;
// otherwise one summary line is printed at the end. Bad input exits 1 naming the file and line,
// and leaves no output behind.
import ArgumentParser
import Foundation
import MegatronCore

struct PreprocessData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess-data",
        abstract: "Tokenize JSON lines or plain text into Megatron .bin/.idx datasets.")

    @Option(
        help: ArgumentHelp(
            "A .jsonl file (one JSON object per line) or a plain text file (one document per blank-line-separated "
                + "paragraph).")
    )
    var input: String
    @Option(parsing: .upToNextOption, help: "JSON keys to tokenize (each its own dataset).") var jsonKeys: [String] = [
        "text"
    ]
    @Option(
        help: ArgumentHelp(
            "GPT2BPETokenizer, BertWordPieceLowerCase, BertWordPieceCase, ByteLevelTokenizer, or with "
                + "--tokenizer-model Llama2Tokenizer, GPTSentencePieceTokenizer, SentencePieceTokenizer, "
                + "HuggingFaceTokenizer or TikTokenizer (with --tiktoken-pattern)."))
    var tokenizerType: String =
        "GPT2BPETokenizer"
    @Option(help: "vocab.json (GPT-2) or vocab.txt (BERT).") var vocabFile: String?
    @Option(help: "merges.txt (GPT-2).") var mergeFile: String?
    @Option(
        help: ArgumentHelp(
            "The SentencePiece model (tokenizer.model) of the SentencePiece tokenizers, HuggingFaceTokenizer's "
                + "tokenizer.json (or its directory), or TikTokenizer's rank file (Megatron's JSON list)."))
    var tokenizerModel: String?
    @Option(help: "TikTokenizer's pattern: v1, or v2 (Mistral's Tekken).") var tiktokenPattern: String?
    @Option(help: "TikTokenizer's ids, special tokens included (default 131072).") var vocabSize: Int?
    @Option(help: "TikTokenizer: ids below this are special tokens (default 1000).")
    var tiktokenNumSpecialTokens = TikTokenSettings.defaultNumSpecialTokens
    @Option(
        name: [.customLong("tokenizer-special-tokens"), .customLong("tiktoken-special-tokens")],
        parsing: .upToNextOption,
        help: "TikTokenizer's named special tokens, first (must include <unk> <s> </s>, the default).")
    var tokenizerSpecialTokens: [String] = []
    @Flag(help: "Append the end-of-document id to every document.") var appendEod = false
    @Flag(
        help: ArgumentHelp(
            "Split every text into sentences (one sequence each; BERT's data): writes P_{key}_sentence.bin/.idx. "
                + "A sentence ends after . ! or ? followed by whitespace, or at a blank line."))
    var splitSentences = false
    @Option(help: "Output prefix P: writes P_{key}_document.bin/.idx.") var outputPrefix: String
    // `.unconditional` so that `--workers -3` reaches the range check below instead of being read as a flag.
    @Option(parsing: .unconditional, help: "Tokenizer threads (default: the cores of this machine).") var workers: Int?

    func run() throws {
        let types: [TokenizerType] = [
            .gpt2BPE, .bertWordPieceLowerCase, .bertWordPieceCase, .byteLevel, .llama2, .gptSentencePiece,
            .sentencePiece, .huggingFace, .tikToken,
        ]
        guard let type = TokenizerType(rawValue: tokenizerType), types.contains(type) else {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "tokenizer_type", value: "\"\(tokenizerType)\"",
                    rule: "must be one of \(types.map(\.rawValue).joined(separator: ", "))"), code: 2)
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if let w = self.workers, !(1...4 * cores).contains(w) {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "workers", value: "\(w)",
                    rule: "must be 1 to \(4 * cores) (4 × the \(cores) cores here); leave it out to use one per core"),
                code: 2)
        }
        let workers = self.workers ?? cores
        let tiktoken = tiktokenSettings(type)
        if type.isBertWordPiece && !splitSentences {
            FileHandle.standardError.write(
                Data(
                    ("warning: a BERT tokenizer without --split-sentences writes one sequence per document; BERT "
                        + "training needs sentence-split data (add --split-sentences)\n").utf8))
        }
        let terminal = isatty(2) != 0
        func rate(_ docs: Int, _ bytes: Int, seconds: Double) -> String {
            let s = max(1e-9, seconds)
            return String(
                format: "%d documents, %.1f MB (%.0f documents/s, %.2f MB/s)", docs, Double(bytes) / 1e6,
                Double(docs) / s, Double(bytes) / 1e6 / s)
        }
        do {
            let (vocab, merges, model) = (vocabFile, mergeFile, tokenizerModel)
            let summary = try Preprocess.run(
                input: input, jsonKeys: jsonKeys, prefix: outputPrefix, appendEOD: appendEod,
                splitSentences: splitSentences, workers: workers,
                makeTokenizer: {
                    try Tokenizers.make(
                        type: type, vocabFile: vocab, mergeFile: merges, tokenizerModel: model, tiktoken: tiktoken)
                },
                progress: { docs, bytes, seconds in
                    if terminal {
                        FileHandle.standardError.write(Data("\r > \(rate(docs, bytes, seconds: seconds))   ".utf8))
                    }
                })
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            print(
                " > preprocess-data: \(rate(summary.documents, summary.bytes, seconds: summary.seconds)) with "
                    + "\(workers) worker(s) → \(summary.tokens) tokens in "
                    + "\(summary.outputs.map { $0 + ".bin/.idx" }.joined(separator: ", "))"
            )
        } catch {
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            CLIErrors.fail(error, code: 1)
        }
    }

    /// TikTokenizer's settings from the flags (nil for other tokenizers); a missing or unknown
    /// --tiktoken-pattern exits 2 naming it.
    func tiktokenSettings(_ type: TokenizerType) -> TikTokenSettings? {
        guard type == .tikToken else { return nil }
        guard let name = tiktokenPattern, let pattern = TikTokenPattern(rawValue: name) else {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "tiktoken_pattern", value: tiktokenPattern.map { "\"\($0)\"" } ?? "null",
                    rule: "TikTokenizer needs --tiktoken-pattern v1 or v2, as its rank file was made with"),
                code: 2)
        }
        return TikTokenSettings(
            pattern: pattern, vocabSize: vocabSize, numSpecialTokens: tiktokenNumSpecialTokens,
            specialTokens: tokenizerSpecialTokens.isEmpty ? nil : tokenizerSpecialTokens)
    }
}

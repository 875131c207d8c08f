// HFTokenizerJSON.swift — reads a Hugging Face `tokenizer.json` (with the `tokenizer_config.json`
// beside it) of the byte-level BPE kind — Llama 3, Qwen 2, GPT-2 and their descendants — into what
// HuggingFaceTokenizer runs. Read: the BPE model (vocab, merges as "a b" strings or [a, b] pairs,
// ignore_merges), the normalizer (none or NFC), the pre-tokenizer (ByteLevel with GPT-2's regex, or
// Split with Llama 3's or Qwen 2's pattern then ByteLevel without regex), added tokens (content, id,
// lstrip, rstrip), the post-processor's special tokens around the text (TemplateProcessing,
// RobertaProcessing, ByteLevel, a Sequence of them) and the eos_token of tokenizer_config.json.
// Anything else — another model type, normalizer, pattern or option — is refused naming the field,
// never approximated.
import Foundation

struct HFTokenizerSpec {
    enum PreTokenizer {
        case gpt2(addPrefixSpace: Bool)
        case split(SplitPreTokenizer)
    }
    struct AddedToken { let content: [UInt8]; let id: Int32; let lstrip, rstrip: Bool }

    var vocab: [String: Int] = [:]
    var merges: [(String, String)] = []
    var ignoreMerges = false
    var nfc = false
    var preTokenizer = PreTokenizer.gpt2(addPrefixSpace: false)
    var added: [AddedToken] = []
    /// Ids the post-processor puts before and after a text's own.
    var prefix: [Int32] = [], suffix: [Int32] = []
    var eos: Int32 = -1
    var eosName = ""

    /// The tokenizer.json and tokenizer_config.json that `tokenizer_model` names: a directory
    /// holding both, or a tokenizer.json file with the config beside it.
    static func files(of path: String) -> (json: String, config: String) {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        let directory = isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        return (
            isDirectory.boolValue ? (path as NSString).appendingPathComponent("tokenizer.json") : path,
            (directory as NSString).appendingPathComponent("tokenizer_config.json")
        )
    }

    /// Reads the files `path` names (`files(of:)`).
    static func read(path: String) throws -> HFTokenizerSpec {
        let (file, configPath) = files(of: path)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TokenizerError.unreadable(path: file, key: "tokenizer_model")
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TokenizerError.malformed(path: file, reason: "not a JSON object (Hugging Face's tokenizer.json)")
        }
        var spec = HFTokenizerSpec()
        let reader = Reader(path: file)
        try reader.model(root["model"], into: &spec)
        spec.nfc = try reader.normalizer(root["normalizer"])
        spec.preTokenizer = try reader.preTokenizer(root["pre_tokenizer"])
        try reader.addedTokens(root["added_tokens"], into: &spec)
        try reader.postProcessor(root["post_processor"], into: &spec)
        try reader.decoder(root["decoder"])
        try reader.eos(configPath: configPath, into: &spec)
        return spec
    }

    struct Reader {
        let path: String
        func refuse(_ why: String) -> TokenizerError { .malformed(path: path, reason: why) }

        func model(_ value: Any?, into spec: inout HFTokenizerSpec) throws {
            guard let model = value as? [String: Any], model["type"] as? String == "BPE" else {
                throw refuse(
                    "model.type is \((value as? [String: Any])?["type"] ?? "missing"); only byte-level BPE is read")
            }
            if let fallback = model["byte_fallback"] as? Bool, fallback {
                throw refuse("model.byte_fallback true is not read (byte-level BPE needs none)")
            }
            for key in ["continuing_subword_prefix", "end_of_word_suffix", "dropout"] {
                if let v = model[key], !(v is NSNull), !((v as? String)?.isEmpty ?? false) {
                    throw refuse("model.\(key) \(v) is not read")
                }
            }
            guard let vocab = model["vocab"] as? [String: Int], !vocab.isEmpty else {
                throw refuse("model.vocab must be a non-empty object of token → id")
            }
            // Ids index a table as long as the tokens are many: a gap-free vocabulary fits, and an id
            // of two billion cannot make that table two billion long.
            if let (token, id) = vocab.first(where: { $0.value < 0 || $0.value > vocab.count + 100_000 }) {
                throw refuse("model.vocab gives '\(token)' the id \(id), outside 0..<\(vocab.count) and the added ids")
            }
            spec.vocab = vocab
            spec.ignoreMerges = model["ignore_merges"] as? Bool ?? false
            guard let merges = model["merges"] as? [Any] else { throw refuse("model.merges is missing") }
            spec.merges = try merges.enumerated().map { k, m in
                if let s = m as? String {
                    let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                    if parts.count == 2 { return (String(parts[0]), String(parts[1])) }
                } else if let pair = m as? [String], pair.count == 2 {
                    return (pair[0], pair[1])
                }
                throw refuse("model.merges[\(k)] is not two tokens: \(m)")
            }
        }

        func normalizer(_ value: Any?) throws -> Bool {
            guard let n = value as? [String: Any] else { return false }  // null
            switch n["type"] as? String {
            case "NFC": return true
            case "Sequence" where (n["normalizers"] as? [Any])?.isEmpty ?? false: return false
            default: throw refuse("normalizer \(n["type"] ?? "?") is not read (none or NFC)")
            }
        }

        func preTokenizer(_ value: Any?) throws -> HFTokenizerSpec.PreTokenizer {
            guard let p = value as? [String: Any] else { throw refuse("pre_tokenizer is missing") }
            if p["type"] as? String == "ByteLevel", p["use_regex"] as? Bool ?? true {
                return .gpt2(addPrefixSpace: p["add_prefix_space"] as? Bool ?? false)
            }
            if p["type"] as? String == "Sequence", let list = p["pretokenizers"] as? [[String: Any]], list.count == 2,
                list[0]["type"] as? String == "Split", list[1]["type"] as? String == "ByteLevel",
                !(list[1]["use_regex"] as? Bool ?? true), !(list[1]["add_prefix_space"] as? Bool ?? false)
            {
                let split = list[0]
                guard let pattern = (split["pattern"] as? [String: Any])?["Regex"] as? String,
                    split["behavior"] as? String == "Isolated", !(split["invert"] as? Bool ?? false)
                else {
                    throw refuse("pre_tokenizer Split must be a Regex pattern with behavior Isolated, not inverted")
                }
                guard let scanner = SplitPreTokenizer(pattern: pattern) else {
                    throw refuse("pre_tokenizer pattern \(pattern) is not one read here (Llama 3's or Qwen 2's)")
                }
                return .split(scanner)
            }
            throw refuse(
                "pre_tokenizer \(p["type"] ?? "?") is not read (ByteLevel with its regex, or Sequence[Split, ByteLevel])"
            )
        }

        func addedTokens(_ value: Any?, into spec: inout HFTokenizerSpec) throws {
            for (k, entry) in (value as? [[String: Any]] ?? []).enumerated() {
                guard let content = entry["content"] as? String, !content.isEmpty, let id = entry["id"] as? Int,
                    id >= 0, id < spec.vocab.count + 100_000
                else {
                    throw refuse(
                        "added_tokens[\(k)] needs a non-empty content and an id in 0..<\(spec.vocab.count + 100_000) "
                            + "(the vocabulary's size and up to 100,000 added ids)")
                }
                if entry["single_word"] as? Bool ?? false {
                    throw refuse("added_tokens[\(k)] '\(content)': single_word true is not read")
                }
                spec.added.append(
                    .init(
                        content: Array(content.utf8), id: Int32(id), lstrip: entry["lstrip"] as? Bool ?? false,
                        rstrip: entry["rstrip"] as? Bool ?? false))
            }
        }

        func postProcessor(_ value: Any?, into spec: inout HFTokenizerSpec, nested: Bool = false) throws {
            guard let p = value as? [String: Any] else { return }
            switch p["type"] as? String {
            case "ByteLevel": return
            case "Sequence" where !nested:
                for inner in p["processors"] as? [Any] ?? [] { try postProcessor(inner, into: &spec, nested: true) }
            case "TemplateProcessing":
                let specials = p["special_tokens"] as? [String: [String: Any]] ?? [:]
                var seenText = false
                for (k, item) in (p["single"] as? [[String: Any]] ?? []).enumerated() {
                    if item["Sequence"] != nil { seenText = true; continue }
                    guard let name = (item["SpecialToken"] as? [String: Any])?["id"] as? String,
                        let ids = (specials[name]?["ids"] as? [Int])?.compactMap(Int32.init(exactly:)),
                        ids.count == (specials[name]?["ids"] as? [Int])?.count
                    else { throw refuse("post_processor.single[\(k)] names no special token with ids") }
                    if seenText { spec.suffix += ids } else { spec.prefix += ids }
                }
            case "RobertaProcessing", "BertProcessing":
                guard let cls = p["cls"] as? [Any], let sep = p["sep"] as? [Any],
                    let c = (cls.last as? Int).flatMap(Int32.init(exactly:)),
                    let s = (sep.last as? Int).flatMap(Int32.init(exactly:))
                else { throw refuse("post_processor \(p["type"]!) needs cls and sep") }
                spec.prefix.append(c); spec.suffix.append(s)
            default: throw refuse("post_processor \(p["type"] ?? "?") is not read")
            }
        }

        func decoder(_ value: Any?) throws {
            guard let d = value as? [String: Any] else { return }
            guard d["type"] as? String == "ByteLevel" else {
                throw refuse("decoder \(d["type"] ?? "?") is not read (ByteLevel)")
            }
        }

        /// tokenizer_config.json's eos_token (a string or {"content": …}), Megatron's eod.
        func eos(configPath: String, into spec: inout HFTokenizerSpec) throws {
            let config = FileManager.default.contents(atPath: configPath).flatMap {
                try? JSONSerialization.jsonObject(with: $0) as? [String: Any]
            }
            let value = config?["eos_token"]
            guard let name = value as? String ?? (value as? [String: Any])?["content"] as? String else {
                throw TokenizerError.malformed(
                    path: configPath,
                    reason: "no eos_token (Megatron's end-of-document id): write tokenizer_config.json beside "
                        + "tokenizer.json with \"eos_token\"")
            }
            let id = spec.added.first { $0.content == Array(name.utf8) }.map { Int($0.id) } ?? spec.vocab[name]
            guard let id else {
                throw TokenizerError.malformed(path: configPath, reason: "eos_token '\(name)' is not a token")
            }
            spec.eos = Int32(id)
            spec.eosName = name
        }
    }
}

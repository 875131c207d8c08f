// ConfigLoader.swift — reads a JSON config file and `--key value` flag overrides into a
// TrainingConfig, using the key table. Unknown keys suggest the nearest known one; type errors
// name the key and the expected type.
import Foundation

/// A parsed JSON value (numbers keep whether they were written as integers).
indirect enum JSONValue: Decodable {
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
    case null

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    var describe: String {
        switch self {
        case .bool(let b): return "\(b) (a boolean)"
        case .int(let i): return "\(i) (an integer)"
        case .double(let d): return "\(d) (a number)"
        case .string(let s): return "\"\(s)\" (a string)"
        case .array: return "a list"
        case .object: return "an object"
        case .null: return "null"
        }
    }
}

public enum ConfigLoader {
    /// Loads `path` (if given), then applies `flags` (`--train-iters 50`, `--skip-train`), then validates.
    public static func load(path: String?, flags: [String], worldSize: Int = 1) throws -> TrainingConfig {
        let config = try parse(path: path, flags: flags)
        try ConfigValidation.validate(config, worldSize: worldSize)
        return config
    }

    /// The file and the flags, checked for unknown keys and types but not yet validated (the rules
    /// need the world size, known only once MPI has started).
    public static func parse(path: String?, flags: [String]) throws -> TrainingConfig {
        var config = TrainingConfig()
        if let path { try applyFile(path, to: &config) }
        try applyFlags(flags, to: &config)
        inferDefaults(&config)
        if let note = MegatronArguments.ignoredNote(config.ignoredArguments) { config.startupNotes.append(note) }
        return config
    }

    /// Keys implied by others: `vocab_file` / `merge_file` without `tokenizer_type` mean GPT-2's BPE
    /// (BERT's WordPiece for a BERT config with only a vocab_file) — never the byte-level default,
    /// which would ignore the files. The decision is recorded in `startupNotes`.
    public static func inferDefaults(_ c: inout TrainingConfig) {
        // Megatron's sample-based training: train_iters = train_samples ÷ global_batch_size (floor),
        // or the ramp's iterations and then that (BatchRampup.trainIterations).
        if let samples = c.trainSamples, let gbs = c.globalBatchSize, gbs > 0, !c.providedKeys.contains("train_iters") {
            c.trainIters = c.rampup?.trainIterations(trainSamples: samples) ?? samples / gbs
            c.providedKeys.insert("train_iters")
            c.derivedTrainIters = true
        }
        guard !c.providedKeys.contains("tokenizer_type"), c.vocabFile != nil || c.mergeFile != nil else { return }
        c.tokenizerType = c.modelType == .bert && c.mergeFile == nil ? .bertWordPieceLowerCase : .gpt2BPE
        let files = [c.vocabFile.map { _ in "vocab_file" }, c.mergeFile.map { _ in "merge_file" }].compactMap { $0 }
        c.startupNotes.append(
            "tokenizer_type not given: \(c.tokenizerType.rawValue), because \(files.joined(separator: " and ")) "
                + "\(files.count > 1 ? "are" : "is") set")
    }

    public static func applyFile(_ path: String, to config: inout TrainingConfig) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            let exists = FileManager.default.fileExists(atPath: path)
            throw ConfigError.unreadableFile(
                path: path, reason: exists ? "permission denied or not a file" : "no such file")
        }
        try applyJSON(data, source: path, to: &config)
    }

    /// Applies a JSON object of config keys (`source` names it in errors).
    public static func applyJSON(_ data: Data, source path: String, to config: inout TrainingConfig) throws {
        try JSONScan.check(data, path: path)
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw ConfigError.invalidJSON(path: path, reason: jsonReason(error))
        }
        guard case .object(let dict) = value else {
            throw ConfigError.invalidJSON(path: path, reason: "the top level must be an object of key: value pairs")
        }
        var problems: [ConfigError] = []
        for (name, v) in dict.sorted(by: { $0.key < $1.key }) {
            do {
                guard let key = ConfigKeys.named(name) else {
                    throw ConfigError.unknownKey(
                        key: name, source: "'\(path)'", suggestion: ConfigKeys.nearest(to: name))
                }
                try set(key, v, in: &config)
            } catch let error as ConfigError {
                problems.append(error)
            }
        }
        if problems.count == 1 { throw problems[0] }
        if problems.count > 1 { throw ConfigError.several(problems) }
    }

    /// Applies `--key value` flags. Megatron-LM arguments that are not keys are aliases, ignored
    /// (recorded for the start-up note) or refused with a reason; every problem of the line is
    /// reported together.
    public static func applyFlags(_ flags: [String], to config: inout TrainingConfig) throws {
        var problems: [ConfigError] = []
        var i = 0
        /// The value after flag i: inline (`--k=v`), else the next token unless it is a flag.
        func value(_ inline: String?, required: Bool) -> String? {
            if let inline { return inline }
            guard i + 1 < flags.count else { return nil }
            let next = flags[i + 1]
            if !required && next.hasPrefix("--") && next.count > 2 { return nil }
            i += 1
            return next
        }
        // After a refused or unknown flag, its further values (`--rampup-batch-size 16 16 5859375`)
        // are not reported again as stray tokens.
        var afterProblem = false
        while i < flags.count {
            let flag = flags[i]
            guard flag.hasPrefix("--"), flag.count > 2 else {
                if afterProblem { i += 1; continue }
                problems.append(
                    .invalidValue(
                        key: flag, value: "'\(flag)'", rule: "expected a --key-name flag followed by its value"))
                i += 1
                continue
            }
            var body = String(flag.dropFirst(2))
            var inline: String? = nil
            if let eq = body.firstIndex(of: "=") {
                inline = String(body[body.index(after: eq)...]); body = String(body[..<eq])
            }
            let name = body.replacingOccurrences(of: "-", with: "_")
            afterProblem = false
            do {
                if let key = ConfigKeys.named(name) {
                    let isSwitch: Bool
                    if case .bool = key.field { isSwitch = true } else { isSwitch = false }
                    guard let raw = value(inline, required: !isSwitch) ?? (isSwitch ? "true" : nil) else {
                        throw ConfigError.wrongType(
                            key: name, expected: key.field.typeName, found: "nothing (flag \(flag) needs a value)")
                    }
                    var parsed = parseFlagValue(raw, for: key.field)
                    // A list key takes every value up to the next flag (Megatron's nargs='*'):
                    // `--data-path 0.7 a 0.3 b`, `--rampup-batch-size 16 16 5859375`.
                    if case .stringList = key.field, inline == nil, case .array(var items) = parsed {
                        while i + 1 < flags.count && !(flags[i + 1].hasPrefix("--") && flags[i + 1].count > 2) {
                            i += 1
                            items.append(.string(flags[i]))
                        }
                        parsed = .array(items)
                    }
                    try set(key, parsed, in: &config)
                } else {
                    try applyMegatronArgument(name, flag: flag, value: { value(inline, required: $0) }, to: &config)
                }
            } catch let error as ConfigError {
                problems.append(error)
                afterProblem = true
            }
            i += 1
        }
        if problems.count == 1 { throw problems[0] }
        if problems.count > 1 { throw ConfigError.several(problems) }
    }

    /// A flag that is not a config key: an alias, an ignored or a refused Megatron-LM argument (by
    /// name, or by its argument group for the rest of Megatron's list), or unknown.
    static func applyMegatronArgument(
        _ name: String, flag: String, value: (_ required: Bool) -> String?, to config: inout TrainingConfig
    ) throws {
        if let targets = MegatronArguments.aliases[name] {
            guard (value(false) ?? "true") == "true" else { return }
            for (keyName, v, isDefault) in targets where !(isDefault && config.providedKeys.contains(keyName)) {
                guard let key = ConfigKeys.named(keyName) else { continue }
                try set(key, parseFlagValue(v, for: key.field), in: &config)
            }
        } else if let arg = MegatronArguments.ignoredArgument(named: name) {
            _ = value(arg.takesValue)
            config.ignoredArguments.append(name)
        } else if let fixed = MegatronArguments.fixedChoices[name] {
            let v = value(true) ?? ""
            guard fixed.accepted.contains(v) else {
                throw ConfigError.unsupportedArgument(flag: "\(flag) \(v)", reason: fixed.reason)
            }
        } else if let reason = MegatronArguments.unsupported[name] {
            _ = value(false)
            throw ConfigError.unsupportedArgument(flag: flag, reason: reason)
        } else if let entry = MegatronArguments.megatronLM[name],
            case .refused(let reason) = MegatronArguments.disposition(of: name)
        {
            _ = value(false)  // a following flag is never taken as its value, so its problems are reported too
            throw ConfigError.unsupportedArgument(flag: flag, reason: "\(reason) (argument group '\(entry.group)')")
        } else {
            _ = value(false)
            throw ConfigError.unknownKey(
                key: flag, source: "the command line",
                suggestion: ConfigKeys.nearest(to: name).map { "--" + $0.replacingOccurrences(of: "_", with: "-") })
        }
    }

    /// Flag values are strings; read them as the key's type so `--lr 3e-4` and `--save none` work.
    static func parseFlagValue(_ s: String, for field: ConfigField) -> JSONValue {
        switch field {
        case .int, .optionalInt, .double, .optionalDouble:
            if s == "null" || s == "none" { return .null }
            if let i = Int(s) { return .int(i) }
            if let d = Double(s) { return .double(d) }
            return .string(s)
        case .bool:
            if s == "true" { return .bool(true) }
            if s == "false" { return .bool(false) }
            return .string(s)
        case .string, .optionalString, .choice:
            return s == "null" || s == "none" ? .null : .string(s)
        case .stringList:
            return .array(s.split(separator: ",").map { .string(String($0)) })
        }
    }

    static func set(_ key: ConfigKey, _ v: JSONValue, in c: inout TrainingConfig) throws {
        try assign(key, v, in: &c)
        c.providedKeys.insert(key.name)
    }

    private static func assign(_ key: ConfigKey, _ v: JSONValue, in c: inout TrainingConfig) throws {
        let wrong = ConfigError.wrongType(key: key.name, expected: key.field.typeName, found: v.describe)
        switch (key.field, v) {
        case (.int(let kp), .int(let i)): c[keyPath: kp] = i
        case (.optionalInt(let kp), .int(let i)): c[keyPath: kp] = i
        case (.optionalInt(let kp), .null): c[keyPath: kp] = nil
        case (.double(let kp), .int(let i)): c[keyPath: kp] = Double(i)
        case (.double(let kp), .double(let d)): c[keyPath: kp] = d
        case (.optionalDouble(let kp), .int(let i)): c[keyPath: kp] = Double(i)
        case (.optionalDouble(let kp), .double(let d)): c[keyPath: kp] = d
        case (.optionalDouble(let kp), .null): c[keyPath: kp] = nil
        case (.string(let kp), .string(let s)): c[keyPath: kp] = s
        case (.optionalString(let kp), .string(let s)): c[keyPath: kp] = s
        case (.optionalString(let kp), .null): c[keyPath: kp] = nil
        case (.bool(let kp), .bool(let b)): c[keyPath: kp] = b
        case (.choice(let f), .string(let s)):
            guard f.set(&c, s) else {
                throw ConfigError.invalidValue(
                    key: key.name, value: "\"\(s)\"", rule: "must be one of \(f.allowed.joined(separator: ", "))")
            }
        case (.choice(let f), .null) where f.optional: _ = f.set(&c, nil)
        case (.stringList(let kp), .string(let s)): c[keyPath: kp] = [s]
        case (.stringList(let kp), .array(let items)):
            c[keyPath: kp] = try items.map { item -> String in
                switch item {
                case .string(let s): return s
                case .int(let i): return String(i)
                case .double(let d): return String(d)
                default: throw wrong
                }
            }
        default: throw wrong
        }
    }

    /// Why JSON did not parse, in the parser's words (its underlying message where it has one).
    static func jsonReason(_ error: Error) -> String {
        if case DecodingError.dataCorrupted(let ctx) = error {
            let underlying = (ctx.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return underlying ?? ctx.debugDescription
        }
        return "\(error)"
    }
}

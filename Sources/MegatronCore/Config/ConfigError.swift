// ConfigError.swift — what can be wrong with a config, each message naming the key(s), the value
// and what to do. The CLI maps every ConfigError to exit code 2, before any work starts.

public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case unreadableFile(path: String, reason: String)
    case invalidJSON(path: String, reason: String)
    case unknownKey(key: String, source: String, suggestion: String?)
    case unsupportedArgument(flag: String, reason: String)
    /// Every problem of one command line or file, reported together.
    case several([ConfigError])
    case wrongType(key: String, expected: String, found: String)
    case missingKey(key: String)
    case invalidValue(key: String, value: String, rule: String)
    case inconsistent(keys: [String], rule: String)
    /// The memory preflight: `ranks` ranks on this node would need `need` bytes, the machine has `memory`.
    case insufficientMemory(estimate: String, ranks: Int, need: Double, memory: Double)

    public var description: String {
        switch self {
        case .unreadableFile(let p, let r):
            return "cannot read config file '\(p)': \(r). Check the path (configs/ holds ready-made ones)."
        case .invalidJSON(let p, let r):
            return "config file '\(p)' is not valid JSON: \(r)"
        case .unknownKey(let k, let src, let s):
            return "unknown config key '\(k)' in \(src)\(s.map { "; did you mean '\($0)'?" } ?? "")"
                + " (`megatron train --help` lists every key)"
        case .unsupportedArgument(let f, let reason):
            return "Megatron-LM's \(f) is not available here: \(reason)"
        case .several(let problems):
            return "\(problems.count) problems:\n" + problems.map { "  - \($0.description)" }.joined(separator: "\n")
        case .wrongType(let k, let e, let f):
            return "config key '\(k)' must be \(e), but got \(f)"
        case .missingKey(let k):
            return
                "config key '\(k)' is required: set it in the config file or pass "
                + "--\(k.replacingOccurrences(of: "_", with: "-")) VALUE"
        case .invalidValue(let k, let v, let rule):
            return "config key '\(k)' = \(v) is invalid: \(rule)"
        case .inconsistent(let keys, let rule):
            return "config keys \(keys.map { "'\($0)'" }.joined(separator: " and ")) are inconsistent: \(rule)"
        case .insufficientMemory(let estimate, let ranks, let need, let memory):
            let gib = MemoryPreflight.gib
            return "this run needs at least \(estimate)"
                + (ranks > 1 ? ", \(gib(need)) for the \(ranks) ranks on this node" : "")
                + ", but the machine has \(gib(memory)): lower hidden_size, num_layers, seq_length, "
                + "micro_batch_size or the vocabulary padding (make_vocab_size_divisible_by), or spread the model "
                + "over more ranks (tensor_model_parallel_size, pipeline_model_parallel_size)"
        }
    }
}

// PlanLayout.swift — one parallel layout the planner considers: the PTD-P grid (t, p, d, v), the
// micro-batch size, sequence parallelism, recomputation, the distributed optimizer, the precision
// and the pipeline schedule. It writes itself into a TrainingConfig (so the real validation rules
// decide what is valid), into the flags of a `megatron train` command line, and reads itself back
// from the compact form `megatron plan --explain` takes ("t=2,p=2,v=1,mbs=2,recompute=full,…").
import Tensor

public struct PlanLayout: Hashable, Sendable, CustomStringConvertible {
    public var tensor = 1, pipeline = 1, data = 1, virtualStages = 1, microBatch = 1
    public var sequenceParallel = false
    /// Full recomputation of every layer (uniform, one layer per group); otherwise none. (Selective
    /// recomputation changes nothing here: attention probabilities are never stored.)
    public var recompute = false
    public var distributedOptimizer = false
    /// The number format of the matrix work (`--bf16`, `--fp16`, or neither).
    public var precision = Precision.fp32
    public var zeroBubble = false

    public init() {}

    public var worldSize: Int { tensor * pipeline * data }

    /// The compact form, e.g. `t=2,p=2,d=1,v=1,mbs=2,sp=0,recompute=none,dist-opt=0,precision=fp32,schedule=1f1b`.
    public var description: String {
        "t=\(tensor),p=\(pipeline),d=\(data),v=\(virtualStages),mbs=\(microBatch),sp=\(sequenceParallel ? 1 : 0),"
            + "recompute=\(recompute ? "full" : "none"),dist-opt=\(distributedOptimizer ? 1 : 0),"
            + "precision=\(precision.rawValue),schedule=\(zeroBubble ? "zb-h1" : "1f1b")"
    }

    /// Reads the compact form; keys left out keep their defaults, and d, if left out, is
    /// `worldSize / (t·p)`.
    public static func parse(_ text: String, worldSize: Int) throws -> PlanLayout {
        var l = PlanLayout()
        var sawData = false
        for item in text.split(separator: ",") {
            let kv = item.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2 else { throw PlanError.badLayout(text, "“\(item)” is not key=value") }
            let (key, value) = (kv[0], kv[1])
            func int() throws -> Int {
                guard let n = Int(value), n > 0 else {
                    throw PlanError.badLayout(text, "\(key) must be a positive integer, not “\(value)”")
                }
                return n
            }
            func flag() throws -> Bool {
                switch value {
                case "1", "true", "on": return true
                case "0", "false", "off": return false
                default: throw PlanError.badLayout(text, "\(key) must be 0 or 1, not “\(value)”")
                }
            }
            switch key {
            case "t": l.tensor = try int()
            case "p": l.pipeline = try int()
            case "d": l.data = try int(); sawData = true
            case "v": l.virtualStages = try int()
            case "mbs": l.microBatch = try int()
            case "sp": l.sequenceParallel = try flag()
            case "dist-opt": l.distributedOptimizer = try flag()
            case "recompute":
                guard ["none", "full"].contains(value) else {
                    throw PlanError.badLayout(text, "recompute must be none or full, not “\(value)”")
                }
                l.recompute = value == "full"
            case "precision":
                guard let format = Precision(rawValue: value) else {
                    throw PlanError.badLayout(text, "precision must be fp32, bf16 or fp16, not “\(value)”")
                }
                l.precision = format
            case "schedule":
                guard ["1f1b", "zb-h1"].contains(value) else {
                    throw PlanError.badLayout(text, "schedule must be 1f1b or zb-h1, not “\(value)”")
                }
                l.zeroBubble = value == "zb-h1"
            default:
                throw PlanError.badLayout(
                    text, "unknown key “\(key)” (keys: t, p, d, v, mbs, sp, recompute, dist-opt, precision, schedule)")
            }
        }
        if !sawData { l.data = max(1, worldSize / (l.tensor * l.pipeline)) }
        if l.worldSize != worldSize {
            throw PlanError.badLayout(text, "t·p·d = \(l.worldSize) is not the world size \(worldSize)")
        }
        return l
    }

    /// `base` with this layout's keys set (the model, data and schedule keys kept).
    public func applied(to base: TrainingConfig, globalBatch: Int) -> TrainingConfig {
        var c = base
        c.resetPipelineSplit()  // the planner's splits are even
        c.tensorModelParallelSize = tensor
        c.pipelineModelParallelSize = pipeline
        c.sequenceParallel = sequenceParallel
        c.numLayersPerVirtualPipelineStage = virtualStages > 1 ? c.numLayers / (pipeline * virtualStages) : nil
        c.microBatchSize = microBatch
        c.globalBatchSize = globalBatch
        c.useDistributedOptimizer = distributedOptimizer
        (c.bf16, c.fp16) = (precision == .bf16, precision == .fp16)
        c.pipelineSchedule = zeroBubble ? .zeroBubbleH1 : .oneFOneB
        (c.recomputeGranularity, c.recomputeMethod, c.recomputeNumLayers) =
            recompute ? (.full, .uniform, 1) : (nil, nil, nil)
        return c
    }

    /// The `megatron train` flags that select this layout.
    public func trainFlags(globalBatch: Int, layers: Int) -> [String] {
        var f = [
            "--tensor-model-parallel-size", "\(tensor)", "--pipeline-model-parallel-size", "\(pipeline)",
            "--micro-batch-size", "\(microBatch)", "--global-batch-size", "\(globalBatch)",
        ]
        if virtualStages > 1 {
            f += ["--num-layers-per-virtual-pipeline-stage", "\(layers / (pipeline * virtualStages))"]
        }
        if sequenceParallel { f.append("--sequence-parallel") }
        if recompute {
            f += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
        }
        if distributedOptimizer { f.append("--use-distributed-optimizer") }
        if precision.isReduced { f.append("--\(precision.rawValue)") }
        if zeroBubble { f += ["--pipeline-schedule", "zb-h1"] }
        return f
    }
}

public enum PlanError: Error, CustomStringConvertible {
    case badLayout(String, String)
    case badProfile(String, String)
    case unsupported(String)
    case calibration(String)

    public var description: String {
        switch self {
        case .badLayout(let text, let why): return "layout “\(text)”: \(why)"
        case .badProfile(let path, let why): return "profile \(path): \(why)"
        case .unsupported(let why): return why
        case .calibration(let why): return "calibration failed: \(why)"
        }
    }
}

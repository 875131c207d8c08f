// TrainingLog.swift — Megatron's training log line (core_v0.9.0 format, fields separated by " |"),
// the validation block, and the per-iteration JSON-lines metrics file.
import Foundation

/// Prints on one rank only (the last rank logs training in Megatron; with one rank it is rank 0).
public struct RankLog: Sendable {
    public let enabled: Bool
    public init(enabled: Bool) { self.enabled = enabled }
    public func callAsFunction(_ line: String) {
        guard enabled else { return }
        print(line)
        fflush(nil)
    }
}

public struct IterationMetrics {
    public var iteration: Int
    public var consumedSamples: Int
    public var lmLoss: Double
    public var lr: Double
    /// nil when the step was skipped (loss-scale overflow).
    public var gradNorm: Double?
    public var stepMs: Double
    public var tokensPerSecond: Double
    public var tflops: Double
    public var globalBatchSize: Int
    public var skippedIterations: Int
    /// The loss scale this step ran with (1 without loss scaling).
    public var lossScale: Double = 1
    /// This rank's activation memory (planned, bytes) and peak resident memory so far (MB).
    public var activationBytes = 0
    /// The transformer layers' activations of one micro-batch, held and by the formula.
    public var layerActivationBytes = 0
    public var layerActivationFormulaBytes = 0.0
    public var peakResidentMB = 0.0
    public var nanIterations: Int
    /// Per communication group ("tp", "dp", "pp", "mp"): bytes and seconds of this iteration.
    public var communication: [(group: String, bytes: Int, seconds: Double)] = []
    public var validLoss: Double? = nil
    /// With pipeline parallelism: every rank's idle share of the iteration (world rank order).
    public var pipelineIdle: [Double]? = nil
    /// With pipeline parallelism: the measured bubble (PipelineBubble) and the schedule's theory.
    public var pipelineBubble: Double? = nil, pipelineBubbleTheory: Double? = nil
    /// The model's loss parts by metrics key (BERT: mlm_loss, sop_loss); `lmLoss` is their sum.
    public var lossComponents: [(key: String, value: Double)] = []
    /// The model's validation metrics by metrics key (BERT: valid_mlm_loss, …, valid_sop_accuracy).
    public var validMetrics: [(key: String, value: Double)] = []
    /// ‖parameters‖₂ after the step, with log_params_norm.
    public var paramsNorm: Double? = nil
    /// Gradient elements exactly 0 before clipping, with log_num_zeros_in_grad.
    public var zeroGradients: Int? = nil

    /// One JSON object; floats in shortest round-trip form, so equal values print equal.
    public var jsonLine: String {
        var fields: [(String, String)] =
            [
                ("iteration", "\(iteration)"), ("consumed_samples", "\(consumedSamples)"), ("lm_loss", num(lmLoss)),
                ("lr", num(lr)), ("loss_scale", num(lossScale)), ("grad_norm", gradNorm.map(num) ?? "null"),
                ("step_ms", num(stepMs)),
                ("tokens_per_s", num(tokensPerSecond)), ("tflops", num(tflops)),
                ("global_batch_size", "\(globalBatchSize)"),
                ("skipped_iterations", "\(skippedIterations)"), ("nan_iterations", "\(nanIterations)"),
                ("activation_bytes", "\(activationBytes)"), ("layer_activation_bytes", "\(layerActivationBytes)"),
                ("layer_activation_formula_bytes", num(layerActivationFormulaBytes)),
                ("peak_rss_mb", num(peakResidentMB)),
            ]
            + communication.flatMap {
                [("comm_bytes_\($0.group)", "\($0.bytes)"), ("comm_s_\($0.group)", num($0.seconds))]
            }
        fields += lossComponents.map { ($0.key, num($0.value)) }
        if let z = zeroGradients { fields.append(("num_zeros", "\(z)")) }
        if let p = paramsNorm { fields.append(("params_norm", num(p))) }
        if let idle = pipelineIdle {
            fields.append(("pipeline_idle_fraction", "[" + idle.map(num).joined(separator: ", ") + "]"))
        }
        if let b = pipelineBubble, let theory = pipelineBubbleTheory {
            fields.append(("pipeline_bubble", num(b))); fields.append(("pipeline_bubble_theory", num(theory)))
        }
        if let v = validLoss {
            fields.append(("valid_lm_loss", num(v))); fields.append(("valid_ppl", num(exp(min(20, v)))))
        }
        fields += validMetrics.map { ($0.key, num($0.value)) }
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    private func num(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
}

/// This process's resource usage so far, every thread (getrusage).
private func processUsage() -> rusage {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage
}

/// Peak resident memory of this process so far, in MB (getrusage).
public func peakResidentMegabytes() -> Double {
    Double(processUsage().ru_maxrss) / 1024  // Linux reports KiB
}

/// Minor page faults of this process so far, every thread: pages the kernel mapped in on first
/// touch. A step that allocates nothing new adds none.
public func minorPageFaults() -> Int { processUsage().ru_minflt }

/// Starts a new peak-resident count (Linux: "5" to /proc/self/clear_refs resets VmHWM to the present
/// resident size); false when the kernel does not offer it.
@discardableResult
public func resetPeakResident() -> Bool {
    guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
    defer { try? handle.close() }
    return (try? handle.write(contentsOf: Data("5".utf8))) != nil
}

/// Peak resident memory since the last `resetPeakResident` (or the start), in MiB: VmHWM of
/// /proc/self/status; nil where that file is missing.
public func residentHighWaterMegabytes() -> Double? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
        let kib = Double(line.split(separator: " ").dropFirst().first ?? "")
    else { return nil }
    return kib / 1024
}

public enum TrainingLogFormat {
    /// ` [time] iteration k/N | consumed samples: … | … |` averaged over the logging interval.
    public static func line(
        iteration: Int, trainIters: Int, consumedSamples: Int, msPerIteration: Double,
        tflopsPerRank: Double, tokensPerSecond: Double, lr: Double, decoupledLR: Double? = nil, globalBatch: Int,
        lmLoss: Double, lossScale: Double, gradNorm: Double?, skipped: Int, nan: Int,
        components: [(label: String, value: Double)] = []
    ) -> String {
        let stamp = DateFormatter()
        stamp.dateFormat = "yyyy-MM-dd HH:mm:ss"
        stamp.locale = Locale(identifier: "en_US_POSIX")
        var s = " [\(stamp.string(from: Date()))] iteration \(pad(iteration, 8))/\(pad(trainIters, 8)) |"
        s += " consumed samples: \(pad(consumedSamples, 12)) |"
        s += " elapsed time per iteration (ms): \(String(format: "%.1f", msPerIteration)) |"
        s += " throughput per GPU (TFLOP/s/GPU): \(String(format: "%.3f", tflopsPerRank)) |"
        s += " tokens per second: \(String(format: "%.1f", tokensPerSecond)) |"
        s += " learning rate: \(sci(lr)) |"
        if let decoupledLR { s += " decoupled learning rate: \(sci(decoupledLR)) |" }
        s += " global batch size: \(pad(globalBatch, 5)) |"
        if components.isEmpty {
            s += " lm loss: \(sci(lmLoss)) |"
        } else {
            for (label, value) in components { s += " \(label): \(sci(value)) |" }
        }
        s += " loss scale: \(sci(lossScale)) |"
        if let gradNorm { s += " grad norm: \(String(format: "%.3f", gradNorm)) |" }
        s += " number of skipped iterations: \(pad(skipped, 3)) |"
        s += " number of nan iterations: \(pad(nan, 3)) |"
        return s
    }

    /// Megatron's validation block: each loss as "<name> value" and "<name> PPL" (GPT: the lm loss;
    /// BERT: lm loss and sop loss), then the other metrics.
    public static func validation(
        label: String, losses: [(label: String, value: Double)], extra: [(label: String, value: Double)] = []
    ) -> [String] {
        let body =
            " validation loss at \(label) | "
            + losses.map { "\($0.label) value: \(sci($0.value)) | \($0.label) PPL: \(sci(exp(min(20, $0.value)))) | " }
            .joined()
            + extra.map { "\($0.label): \(sci($0.value)) | " }.joined()
        let rule = String(repeating: "-", count: body.count + 1)
        return [rule, body, rule]
    }

    /// `H:MM:SS` (hours unbounded).
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
    }

    static func pad(_ v: Int, _ w: Int) -> String {
        let s = "\(v)"
        return String(repeating: " ", count: max(0, w - s.count)) + s
    }

    /// Python's `{:.6E}`: 6.000000E-04.
    static func sci(_ x: Double) -> String { String(format: "%.6E", x) }
}

/// Appends JSON lines to the metrics file, flushing each line.
public final class MetricsWriter {
    private let handle: FileHandle
    public let path: String

    public init(path: String, truncate: Bool) throws {
        self.path = path
        let fm = FileManager.default
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        if truncate || !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: nil) else { throw TrainingError.metricsFile(path: path) }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw TrainingError.metricsFile(path: path) }
        handle = h
        handle.seekToEndOfFile()
    }

    public func write(_ line: String) { handle.write(Data((line + "\n").utf8)) }

    deinit { try? handle.close() }
}

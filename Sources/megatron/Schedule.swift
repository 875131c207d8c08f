// Schedule.swift — `megatron schedule`: prints each rank's pipeline timeline (forward 1 unit,
// backward 2, or B 1 + W 1 when split) for p stages, v chunks per rank and m micro-batches, proves
// the schedule sound with the simulator, reports peak in-flight micro-batches and the bubble against theory, and writes a
// Chrome/Perfetto trace.
import ArgumentParser
import Foundation
import MegatronCore

struct Schedule: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Show a pipeline schedule (1F1B, interleaved, zero-bubble ZB-H1, forward-only) per rank, and write a Chrome trace."
    )

    @Option(help: "Pipeline stages p.") var pipelineModelParallelSize: Int = 4
    @Option(help: "Model chunks per rank v (the interleaved schedule when v > 1).") var numVirtualStagesPerPipelineRank:
        Int?
    @Option(help: "Layers per virtual stage (with --num-layers: v = num_layers / p / this).")
    var numLayersPerVirtualPipelineStage: Int?
    @Option(help: "Layers of the model (for --num-layers-per-virtual-pipeline-stage).") var numLayers: Int?
    @Option(help: "Micro-batches per iteration m.") var numMicrobatches: Int = 8
    @Flag(help: "Evaluation: forwards only.") var forwardOnly = false
    @Option(help: "Training schedule: 1f1b (interleaved when v > 1) or zb-h1 (zero bubble, v = 1).")
    var pipelineSchedule: String = "1f1b"
    @Option(help: "Write a Chrome/Perfetto trace JSON here.") var trace: String?

    /// The largest count each option takes, and the most passes (p·v·m) a schedule may have: each
    /// is drawn, simulated and traced.
    static let largestCount = 1 << 20, mostPasses = 10_000_000

    func run() throws {
        let p = pipelineModelParallelSize, m = numMicrobatches
        let counts: [(String, Int?)] = [
            ("pipeline_model_parallel_size", p), ("num_microbatches", m),
            ("num_virtual_stages_per_pipeline_rank", numVirtualStagesPerPipelineRank),
            ("num_layers_per_virtual_pipeline_stage", numLayersPerVirtualPipelineStage), ("num_layers", numLayers),
        ]
        for case (let key, let value?) in counts where value > Self.largestCount {
            CLIErrors.fail(
                ConfigError.invalidValue(key: key, value: "\(value)", rule: "must be at most \(Self.largestCount)"),
                code: 2)
        }
        var v = numVirtualStagesPerPipelineRank ?? 1
        if let n = numLayersPerVirtualPipelineStage {
            let layers = numLayers ?? p * n * 2
            guard layers % p == 0, (layers / p) % n == 0 else {
                CLIErrors.fail(
                    ConfigError.inconsistent(
                        keys: ["num_layers", "num_layers_per_virtual_pipeline_stage"],
                        rule:
                            "num_layers \(layers) must split into pipeline_model_parallel_size \(p) stages of whole "
                            + "virtual stages of \(n) layers"
                    ), code: 2)
            }
            v = layers / p / n
        }
        if p > 0 && v > 0 && m > 0 && p * v * m > Self.mostPasses {
            CLIErrors.fail(
                ConfigError.inconsistent(
                    keys: ["pipeline_model_parallel_size", "num_virtual_stages_per_pipeline_rank", "num_microbatches"],
                    rule:
                        "p \(p) × v \(v) × m \(m) = \(p * v * m) passes; this command shows at most \(Self.mostPasses)"),
                code: 2)
        }
        guard let choice = PipelineScheduleChoice(rawValue: pipelineSchedule) else {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "pipeline_schedule", value: pipelineSchedule,
                    rule: "must be one of " + PipelineScheduleChoice.allCases.map(\.rawValue).joined(separator: ", ")),
                code: 2)
        }
        let kind: ScheduleKind =
            forwardOnly ? .forwardOnly : choice == .zeroBubbleH1 ? .zeroBubbleH1 : (v > 1 ? .interleaved : .oneFOneB)
        let schedule: PipelineSchedule
        do { schedule = try PipelineSchedule.make(kind: kind, stages: p, chunks: v, microbatches: m) } catch {
            CLIErrors.fail(error, code: 2)
        }
        let report: ScheduleReport
        do { report = try ScheduleSimulator.run(schedule) } catch { CLIErrors.fail(error, code: 1) }
        print(
            "\(kind.rawValue) schedule: p = \(p), v = \(v), m = \(m) — sound: no deadlock, every send received, "
                + "forward before backward"
        )
        print(ScheduleTimeline.text(schedule, report))
        let peaks = report.peakInFlight.map(String.init).joined(separator: ", ") as NSString
        if kind == .zeroBubbleH1 {
            let oneFOneB = try ScheduleSimulator.run(
                PipelineSchedule.make(kind: .oneFOneB, stages: p, chunks: 1, microbatches: m))
            print(
                String(
                    format:
                        "bubble: %.4f of the ideal time (1F1B on the same costs: %.4f, ratio %.2f); peak in-flight "
                        + "micro-batches per rank: %@ (1F1B: %@)",
                    report.bubble, oneFOneB.bubble, report.bubble / max(1e-12, oneFOneB.bubble), peaks,
                    oneFOneB.peakInFlight.map(String.init).joined(separator: ", ") as NSString))
        } else {
            let theory = Double(p - 1) / Double(v * m)
            print(
                String(
                    format:
                        "bubble: %.4f of the ideal time (theory (p−1)/(v·m) = %.4f); peak in-flight micro-batches "
                        + "per rank: %@",
                    report.bubble, theory, peaks))
        }
        if let trace {
            let json = ScheduleTimeline.chromeTrace(
                report.timeline, unitMicroseconds: 1000, label: "\(kind.rawValue) p=\(p) v=\(v) m=\(m)")
            do { try json.write(toFile: trace, atomically: true, encoding: .utf8) } catch {
                CLIErrors.fail(error, code: 1)
            }
            print("trace written to \(trace) (open in ui.perfetto.dev or chrome://tracing)")
        }
    }
}

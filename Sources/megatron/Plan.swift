// Plan.swift — `megatron plan`: choose the parallel layout of a GPT or BERT from a calibrated cost model.
//   megatron plan --calibrate --config MODEL.json [--profile P.json]   measure this machine
//   megatron plan --config MODEL.json --world-size N [--profile P.json | --cluster C.json]
//   megatron plan --config MODEL.json --world-size N --explain t=2,p=2,mbs=2
//   megatron plan --config MODEL.json --world-size N --num-layers 24 --hidden-size 1024   (model overrides)
// The ranking prints the layouts that fit, fastest first, with the breakdown and the command line.
import ArgumentParser
import Distributed
import Foundation
import MegatronCore
import Tensor

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Choose the parallel layout (t, p, d, v, micro-batch, SP, recomputation, optimizer, precision, schedule) from a calibrated cost model.",
        discussion: """
            First measure this machine once:  megatron plan --calibrate --config configs/gpt2-124m.json
            then rank the layouts:            megatron plan --config configs/gpt2-124m.json --world-size 4
            A cluster file (configs/clusters/dgx-a100.json) describes other hardware with the same fields.
            """)
    /// The most ranks a plan is made for (the largest machines have about a tenth of this).
    static let largestWorld = 1 << 20

    @Option(help: "The model's JSON config (its layout keys are ignored).") var config: String
    @Option(help: "Ranks to plan for.") var worldSize: Int = 1
    @Option(help: "Ranks per node (default: the profile's).") var ranksPerNode: Int?
    @Option(help: "Memory per rank in GiB (default: the profile's).") var memoryPerRank: Double?
    @Option(help: "Share of each rank's memory a plan leaves free (0 to 0.9).") var memoryHeadroom: Double =
        Planner.defaultMemoryHeadroom
    @Option(help: "Global batch size (default: the config's).") var globalBatchSize: Int?
    @Option(help: "A cluster description (same fields as a profile) instead of this machine's profile.") var cluster:
        String?
    @Option(help: "This machine's profile, written by --calibrate.") var profile: String = "runs/plan/profile.json"
    @Flag(help: "Measure this machine (GEMM shapes, attention, memory bandwidth, MPI links) and write --profile.")
    var calibrate = false
    @Option(help: "Largest world size to calibrate links and thread counts for.") var maxRanks: Int = 8
    @Option(
        help: "Predict one layout, e.g. t=2,p=2,v=1,mbs=2,sp=0,recompute=none,dist-opt=0,precision=fp32,schedule=1f1b.")
    var explain: String?
    @Option(help: "Layouts to print.") var top: Int = 10
    @Option(help: "Also write every prediction as JSON lines here.") var json: String?
    @Argument(
        parsing: .allUnrecognized,
        help:
            "Model overrides, as `megatron train` takes them: --num-layers 24 --hidden-size 1024 … (not layout flags).")
    var overrides: [String] = []
    @Flag(help: .hidden) var measure = false
    @Flag(help: .hidden) var linksOnly = false
    @Option(help: .hidden) var output: String?

    func run() throws {
        if let flag = overrides.lazy.map({ String($0.prefix { $0 != "=" }) }).first(where: Self.layoutFlags.contains) {
            CLIErrors.fail(
                PlanError.unsupported(
                    "\(flag) is a layout flag, and the planner chooses the layout: leave it out (`--explain` "
                        + "predicts one given layout, e.g. --explain t=2,p=2,mbs=2)"), code: 2)
        }
        let base: TrainingConfig
        do { base = try ConfigLoader.parse(path: config, flags: overrides) } catch { CLIErrors.fail(error, code: 2) }
        // The words after `megatron train` that give the model: the config and the overrides.
        let modelArguments = (["--config", config] + overrides).joined(separator: " ")
        let gbs = globalBatchSize ?? base.globalBatchSize ?? base.microBatchSize
        for (name, value) in [
            ("--world-size", Double(worldSize)), ("--global-batch-size", Double(gbs)),
            ("--max-ranks", Double(maxRanks)),
            ("--ranks-per-node", Double(ranksPerNode ?? 1)), ("--memory-per-rank", memoryPerRank ?? 1),
            ("--top", Double(top) + 1),
        ] where !(value > 0 && value.isFinite) {
            CLIErrors.fail(
                ConfigError.invalidValue(key: name, value: "\(value)", rule: "must be positive"), code: 2)
        }
        if worldSize > Plan.largestWorld {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "--world-size", value: "\(worldSize)", rule: "must be at most \(Plan.largestWorld) ranks"),
                code: 2)
        }
        guard memoryHeadroom >= 0 && memoryHeadroom <= 0.9 else {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "--memory-headroom", value: "\(memoryHeadroom)",
                    rule: "must be a share of memory from 0 to 0.9 (0.1 leaves a tenth free)"), code: 2)
        }
        // The model must be one `megatron train` accepts (on one rank; the layout keys are the planner's).
        do { try ConfigValidation.validate(PlanLayout().applied(to: base, globalBatch: gbs), worldSize: 1) } catch {
            CLIErrors.fail(error, code: 2)
        }
        let vocab: Int
        if base.modelType == .bert {
            // BERT's vocabulary as its training builds it: WordPiece's file, or bytes and four special tokens.
            do { vocab = try BertVocabulary.forConfig(base).0.size } catch { CLIErrors.fail(error, code: 2) }
        } else if let v = base.vocabSize {
            vocab = v
        } else if base.tokenizerType == .gpt2BPE {
            vocab = 50257
        } else if base.tokenizerType.readsTokenizerModel {
            do { vocab = try Tokenizers.make(config: base).vocabSize } catch { CLIErrors.fail(error, code: 2) }
        } else {
            vocab = 257
        }
        let model = PlanModel(config: base, globalBatch: gbs, vocab: vocab)
        if measure {
            return try PlanCalibration.measure(
                model: model, maxRanks: maxRanks, linksOnly: linksOnly, output: output ?? "calibration.json")
        }
        if calibrate {
            do {
                try PlanCalibration(
                    model: model, configPath: config, overrides: overrides, maxRanks: maxRanks, path: profile
                ).run()
            } catch {
                CLIErrors.fail(error, code: 1)
            }
            return
        }
        let hardware: HardwareProfile
        do { hardware = try HardwareProfile.load(cluster ?? profile) } catch { CLIErrors.fail(error, code: 2) }
        let planner = Planner(
            model: model, profile: hardware, worldSize: worldSize, ranksPerNode: ranksPerNode,
            memoryPerRank: memoryPerRank.map { $0 * 1_073_741_824 }, memoryHeadroom: memoryHeadroom)
        do {
            if let explain {
                let layout = try PlanLayout.parse(explain, worldSize: worldSize)
                let x = try planner.predict(layout)
                print(PlanReport.header(planner))
                print(PlanReport.detail(x, planner: planner, modelArguments: modelArguments))
                try writeJSON([x], planner, modelArguments)
                return
            }
            let layouts = planner.enumerate()
            let ranked = try planner.rank(layouts)
            print(PlanReport.header(planner))
            let fitting = ranked.filter(\.fits)
            print("\(layouts.count) valid layouts considered, \(fitting.count) fit in memory; fastest first:")
            print(PlanReport.tableHeader)
            for x in fitting.prefix(top) {
                print(PlanReport.row(x))
                print("      " + PlanReport.command(x, planner: planner, modelArguments: modelArguments))
            }
            if let best = fitting.first {
                print("\nbest: " + PlanReport.detail(best, planner: planner, modelArguments: modelArguments))
            } else if let least = ranked.min(by: { $0.memory.total < $1.memory.total }) {
                print(
                    String(
                        format:
                            "no layout fits in %.1f GiB per rank (%.1f GiB less the headroom); the smallest needs %.1f GiB (%@)",
                        planner.usableMemory / 1_073_741_824, planner.memoryPerRank / 1_073_741_824,
                        least.memory.total / 1_073_741_824,
                        least.layout.description as NSString))
            }
            try writeJSON(ranked, planner, modelArguments)
        } catch { CLIErrors.fail(error, code: 2) }
    }

    /// Flags that set what the planner chooses (`PlanLayout.applied`), refused as overrides.
    static let layoutFlags: Set<String> = TrainingConfig.pipelineSplitFlags.union([
        "--tensor-model-parallel-size", "--pipeline-model-parallel-size", "--num-layers-per-virtual-pipeline-stage",
        "--micro-batch-size", "--sequence-parallel", "--recompute-granularity", "--recompute-method",
        "--recompute-num-layers", "--use-distributed-optimizer", "--bf16", "--fp16", "--pipeline-schedule",
    ])

    func writeJSON(_ predictions: [PlanPrediction], _ planner: Planner, _ modelArguments: String) throws {
        guard let json else { return }
        let lines = predictions.map { PlanReport.json($0, planner: planner, modelArguments: modelArguments) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: json, atomically: true, encoding: .utf8)
    }
}

// ConvertCheckpoint.swift — `megatron convert-checkpoint`: lay a checkpoint out for another grid
// (or merge it to one rank), import a Hugging Face GPT-2 or BERT directory, or export one.
//   megatron convert-checkpoint --load CKPT --save OUT --target-tensor-parallel-size 4 \
//       [--target-pipeline-parallel-size 2 …]
//   megatron convert-checkpoint --from hf HF_DIR --save OUT [--target-…]
//   megatron convert-checkpoint --load CKPT --to hf HF_DIR
// `train --load` reads any grid's checkpoint by itself; this writes files laid out for the target
// grid. Output is atomic; a missing or mismatched tensor is an error naming it and both shapes.
import ArgumentParser
import Foundation
import MegatronCore

struct ConvertCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert-checkpoint",
        abstract:
            "Reshard a checkpoint (GPT or BERT) to a target (t, p, v), or import/export Hugging Face GPT-2 or BERT "
            + "(config.json + model.safetensors)."
    )

    @Option(help: "Our checkpoint directory to read.") var load: String?
    @Option(
        name: .customLong("from"), help: "Read another format instead: hf (with the directory as the next argument).")
    var fromFormat: String?
    @Argument(help: "The Hugging Face directory for --from hf / --to hf.") var hfDirectory: String?
    @Option(name: .customLong("to"), help: "Write another format instead of a checkpoint: hf.") var toFormat: String?
    @Option(help: "Checkpoint directory to write.") var save: String?
    @Option(help: "Target tensor-parallel size.") var targetTensorParallelSize: Int = 1
    @Option(help: "Target pipeline-parallel size.") var targetPipelineParallelSize: Int = 1
    @Option(help: "Target layers per virtual pipeline stage (interleaved schedule).")
    var targetNumLayersPerVirtualPipelineStage: Int?

    func run() throws {
        do {
            let model: WholeModel
            switch (fromFormat, load) {
            case ("hf", nil):
                guard let dir = hfDirectory else {
                    throw ConversionError.invalid(
                        "--from hf needs the Hugging Face directory: convert-checkpoint --from hf DIR --save OUT")
                }
                model = try HuggingFace.importModel(directory: dir)
                print(
                    " > imported Hugging Face \(model.trainingConfig.modelType.rawValue) from \(dir): \(model.transformer.numLayers) layers, hidden "
                        + "\(model.transformer.hiddenSize), \(model.transformer.numAttentionHeads) heads, vocabulary "
                        + "\(model.transformer.vocabSize), positions \(model.trainingConfig.maxPositionEmbeddings ?? model.trainingConfig.seqLength), tokenizer "
                        + "\(model.trainingConfig.tokenizerType.rawValue)"
                )
                if model.trainingConfig.useRopeScaling {
                    print(
                        " > rope: Llama 3.1's scaled frequencies (use_rope_scaling, rope_scaling_factor "
                            + "\(model.trainingConfig.ropeScalingFactor))")
                }
                if model.trainingConfig.tokenizerType == .null,
                    case .none(let reason) = HFLlamaTokenizer.find(in: dir, vocabSize: model.transformer.vocabSize)
                {
                    print(" > note: token ids only (NullTokenizer): \(reason)")
                }
            case (nil, let path?):
                model = try WholeModel.load(checkpoint: path)
                let state =
                    model.optimizerState == nil
                    ? "no optimizer state" : "with \(model.state.optimizer.stateNames.joined(separator: " and "))"
                print(" > read \(path) (iteration \(model.state.iteration), \(state))")
            default:
                throw ConversionError.invalid("give exactly one source: --load CKPT or --from hf DIR")
            }
            switch (toFormat, save) {
            case ("hf", nil):
                guard let dir = hfDirectory else {
                    throw ConversionError.invalid(
                        "--to hf needs the output directory: convert-checkpoint --load CKPT --to hf DIR")
                }
                let (architecture, tokenizerNote) = try HuggingFace.export(model, to: dir)
                let files = (try? FileManager.default.contentsOfDirectory(atPath: dir).sorted()) ?? []
                print(" > wrote \(dir) (\(architecture)): \(files.joined(separator: ", "))")
                if let tokenizerNote { print(" > note: \(tokenizerNote)") }
            case (nil, let out?):
                let path = try model.write(
                    to: out, tensor: targetTensorParallelSize, pipeline: targetPipelineParallelSize,
                    layersPerVirtualStage: targetNumLayersPerVirtualPipelineStage)
                let virtual = targetNumLayersPerVirtualPipelineStage.map { ", \($0) layers per virtual stage" } ?? ""
                let grid = "tensor \(targetTensorParallelSize) × pipeline \(targetPipelineParallelSize)\(virtual)"
                print(" > wrote \(path): \(grid)")
            default:
                throw ConversionError.invalid("give exactly one destination: --save OUT or --to hf DIR")
            }
        } catch {
            CLIErrors.fail(error, code: 1)
        }
    }
}

// PipelineLayout.swift — how a model's transformer layers split over p pipeline stages of v model
// chunks each (Megatron's partition), and what each chunk holds. The one place for the
// virtual-stage arithmetic and its rules: config validation, ModelPartition and checkpoint
// conversion all ask it.
//   chunk c of stage r holds layers (c·p + r)·k ..< (c·p + r + 1)·k,  k = L/(p·v)
//   the embedding lives on chunk 0 of stage 0, the head on chunk v − 1 of stage p − 1

/// What one model chunk holds: some of the transformer layers (by global index), and on the first
/// stage the embeddings, on the last the final norm and the head.
public struct StagePlan: Sendable, Equatable {
    public let layers: [Int]
    public let hasEmbedding: Bool, hasHead: Bool

    public init(layers: [Int], hasEmbedding: Bool, hasHead: Bool) {
        self.layers = layers; self.hasEmbedding = hasEmbedding; self.hasHead = hasHead
    }

    /// The whole model of `layers` layers on one stage.
    public static func whole(layers: Int) -> StagePlan {
        StagePlan(layers: Array(0..<layers), hasEmbedding: true, hasHead: true)
    }
}

public struct PipelineLayout: Sendable, Equatable {
    /// L transformer layers, p stages, v chunks per stage.
    public let layers: Int, stages: Int, chunks: Int
    /// Layers per chunk, k = L/(p·v).
    public var layersPerChunk: Int { layers / (stages * chunks) }

    /// Checks that `layers` split into `stages` equal stages and, with `layersPerVirtualStage`
    /// (Megatron's num_layers_per_virtual_pipeline_stage), each stage into equal chunks.
    public init(layers: Int, stages p: Int, layersPerVirtualStage n: Int?) throws {
        if layers % p != 0 {
            throw ConfigError.inconsistent(
                keys: ["num_layers", "pipeline_model_parallel_size"],
                rule:
                    "num_layers \(layers) does not split into pipeline_model_parallel_size \(p) equal stages (no "
                    + "layer is ever dropped); try num_layers \(max(p, layers / p * p)) or "
                    + "pipeline_model_parallel_size \(ConfigValidation.largestDivisor(of: layers, atMost: p))"
            )
        }
        if let n {
            if n <= 0 {
                throw ConfigError.invalidValue(
                    key: "num_layers_per_virtual_pipeline_stage", value: "\(n)", rule: "must be positive")
            }
            if p == 1 {
                throw ConfigError.inconsistent(
                    keys: ["num_layers_per_virtual_pipeline_stage", "pipeline_model_parallel_size"],
                    rule:
                        "virtual stages interleave a pipeline; set pipeline_model_parallel_size ≥ 2 or remove "
                        + "num_layers_per_virtual_pipeline_stage"
                )
            }
            if (layers / p) % n != 0 {
                throw ConfigError.inconsistent(
                    keys: ["num_layers", "pipeline_model_parallel_size", "num_layers_per_virtual_pipeline_stage"],
                    rule:
                        "each stage's \(layers / p) layers (num_layers \(layers) / p \(p)) must split into chunks of "
                        + "num_layers_per_virtual_pipeline_stage \(n); try "
                        + "\(ConfigValidation.largestDivisor(of: layers / p, atMost: n))"
                )
            }
        }
        self.layers = layers
        stages = p
        chunks = n.map { layers / p / $0 } ?? 1
    }

    /// The layout of a validated config.
    public init(_ c: TrainingConfig) throws {
        try self.init(
            layers: c.numLayers, stages: c.pipelineModelParallelSize,
            layersPerVirtualStage: c.numLayersPerVirtualPipelineStage)
    }

    /// What chunk `c` of stage `r` holds.
    public func plan(chunk c: Int, stage r: Int) -> StagePlan {
        let k = layersPerChunk, first = (c * stages + r) * k
        return StagePlan(
            layers: Array(first..<(first + k)), hasEmbedding: r == 0 && c == 0,
            hasHead: r == stages - 1 && c == chunks - 1)
    }

    /// Every chunk of stage `r`, in chunk order.
    public func plans(stage r: Int) -> [StagePlan] { (0..<chunks).map { plan(chunk: $0, stage: r) } }
}

// MemoryPreflight.swift — before a run allocates anything, a lower bound of what one rank will hold:
// parameters (plus a 16-bit copy where the run keeps one), gradients, optimizer state (sharded by the
// distributed optimizer), one micro-batch of layer activations by Korthikanti et al.'s formula at
// 4-byte elements (2-byte in bf16/fp16 runs, which keep the layers' GEMM inputs as 16-bit words)
// without the attention probabilities (this trainer never stores them), and the
// last stage's [s·b, V/t] logits. Computed in Double, so no size can overflow; a run whose ranks on
// this node need more than the machine's memory is refused with the figures, instead of dying
// in the allocator (or, for sizes past Int, in an arithmetic trap).
import Distributed
import Foundation

public struct MemoryPreflight: Sendable, CustomStringConvertible {
    /// Bytes per rank on its costliest pipeline stage.
    public var parameters = 0.0, gradients = 0.0, optimizer = 0.0, activations = 0.0, logits = 0.0
    public var total: Double { parameters + gradients + optimizer + activations + logits }

    /// The estimate for `config` on a grid of `world` ranks, with a tokenizer of `vocab` entries.
    public init(config c: TrainingConfig, vocab: Int, world: Int, training: Bool = true) {
        let t = Double(max(1, c.tensorModelParallelSize)), p = max(1, c.pipelineModelParallelSize)
        let d = Double(max(1, world / max(1, c.tensorModelParallelSize * p)))
        let h = Double(c.hiddenSize)
        let f = Double(c.ffnHiddenSize ?? GPTConfig.defaultFFN(hidden: c.hiddenSize, swiglu: c.swiglu))
        let s = Double(c.seqLength), b = Double(c.microBatchSize)
        let positions = c.positionEmbeddingType == .rope ? 0 : Double(c.maxPositionEmbeddings ?? c.seqLength)
        let multiple = Double(max(1, c.makeVocabSizeDivisibleBy)) * t
        let padded = (Double(max(1, vocab)) / multiple).rounded(.up) * multiple
        let layer = PlanModel.layerParameters(hidden: h, ffn: f, tensor: t, options: c)
        let layersPerStage = (Double(c.numLayers) / Double(p)).rounded(.up)
        let word = padded / t * h
        // The first stage holds the embeddings, the last the tied copy (p > 1) and BERT's heads.
        let bertHeads = c.modelType == .bert ? 2 * h * h + 4 * h + padded / t : 0
        let first = layersPerStage * layer + word + positions * h
        let head = p > 1 || c.untieEmbeddingsAndOutputWeights ? word : 0
        let last = layersPerStage * layer + head + bertHeads + 2 * h
        let params = p == 1 ? first + head + bertHeads + 2 * h : max(first, last)
        // A 16-bit copy of the weights, except where the products round the main parameters (ModelWeights).
        let copy = c.precision.isReduced && !ModelWeights.productsRound(c.precision)
        parameters = params * (copy ? 6 : 4) + Self.ropeTableBytes(c)
        guard training else { return }
        gradients = 4 * params
        let state = 4 * Double(c.optimizer.stateNames.count)
        optimizer = c.useDistributedOptimizer ? (state + 4) * (params / d).rounded(.up) : state * params
        let formula = ActivationMemoryFormula(
            seq: c.seqLength, microBatch: c.microBatchSize, hidden: c.hiddenSize, heads: c.numAttentionHeads,
            tensorParallel: c.tensorModelParallelSize, sequenceParallel: c.sequenceParallel, ffn: f,
            fc1Width: c.swiglu ? 2 * f : f,
            qkvWidth: Double((c.numAttentionHeads + 2 * c.queryGroups) * c.headWidth),
            contextWidth: Double(c.numAttentionHeads * c.headWidth))
        let fullRecompute = c.recomputeGranularity == .full
        // The held tensors are 16-bit in bf16/fp16 runs (HeldTensor); the residual stream stays fp32.
        let held = (c.bf16 || c.fp16) ? 2 : 4
        activations =
            fullRecompute
            ? layersPerStage * formula.inputBytes(elementBytes: 4)
                + formula.layerBytes(elementBytes: held, selective: true)
            : layersPerStage * formula.layerBytes(elementBytes: held, selective: true)
        logits = 4 * s * b * padded / t
    }

    /// Rope's cos and sin tables (RotaryEmbedding): max_position_embeddings × rotated channels, fp32.
    static func ropeTableBytes(_ c: TrainingConfig) -> Double {
        guard c.positionEmbeddingType == .rope else { return 0 }
        let rotated = ((Double(c.headWidth) * c.rotaryPercent) / 2).rounded(.down) * 2
        return Double(c.maxPositionEmbeddings ?? c.seqLength) * rotated * 4
    }

    /// Refuses `config` on `world` ranks when this node's ranks would need more than its memory.
    public static func require(config c: TrainingConfig, vocab: Int, world: Int, training: Bool) throws {
        try MemoryPreflight(config: c, vocab: vocab, world: world, training: training)
            .check(ranksOnNode: MPIRuntime.ranksOnThisNode)
    }

    /// Throws when `ranks` such ranks need more than `memory` bytes.
    public func check(ranksOnNode ranks: Int, memory: Double = Double(ProcessInfo.processInfo.physicalMemory)) throws {
        guard total * Double(ranks) > memory else { return }
        throw ConfigError.insufficientMemory(
            estimate: description, ranks: ranks, need: total * Double(ranks), memory: memory)
    }

    public var description: String {
        let gib = MemoryPreflight.gib
        return "\(gib(total)) per rank (parameters \(gib(parameters)), gradients \(gib(gradients)), optimizer "
            + "\(gib(optimizer)), activations of one micro-batch \(gib(activations)), logits \(gib(logits)))"
    }

    static func gib(_ bytes: Double) -> String {
        let g = bytes / 1_073_741_824
        return String(format: g >= 100 ? "%.0f GiB" : "%.2f GiB", g)
    }
}

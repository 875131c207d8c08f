// ReplicatedOptimizer.swift — the plain optimizer: one ChunkOptimizer per model chunk over its whole
// gradient arena, identical on every data-parallel rank (the gradients were all-reduced before).
// Norms and found-inf are reduced over the model-parallel group, where every parameter lives once.
import Distributed
import Tensor

public final class ReplicatedOptimizer: TrainingOptimizer {
    let chunks: [any ParameterChunk]
    public let optimizers: [ChunkOptimizer]
    public let hyper: OptimizerHyperparameters
    let modelParallel: Communicator

    public init(chunks: [any ParameterChunk], hyper: OptimizerHyperparameters, modelParallel: Communicator) {
        self.chunks = chunks
        self.hyper = hyper
        self.modelParallel = modelParallel
        optimizers = chunks.map { ChunkOptimizer(table: $0.table, hyper: hyper) }
    }

    public var step: Int {
        get { optimizers[0].step }
        set { for o in optimizers { o.step = newValue } }
    }
    public var isSharded: Bool { false }
    public var updatePhase: String { "optimizer (\(hyper.name))" }

    public func finalizeGradients() throws {
        for chunk in chunks { try chunk.finalizeGradients() }
    }

    public func unscaleAndFindNonFinite(scale: Float) throws -> Bool {
        var finite = true
        for chunk in chunks {
            let g = chunk.grads.storage
            if scale != 1 { Kernels.scale(g.base, by: 1 / scale, count: g.count) }
            finite = finite && Kernels.allFinite(g.base, count: g.count)
        }
        return try modelParallel.allReduceMax(finite ? 0 : 1) != 0
    }

    public func gradientNorm() throws -> Double {
        try GradClipping.globalNorm(chunks.map(\.grads), group: modelParallel)
    }

    public func zeroGradientCount() throws -> Int {
        try GradClipping.zeroCount(chunks.map(\.grads), group: modelParallel)
    }

    public func update(lr: Float, decoupledLR: Float?, clipCoefficient: Double) throws {
        let scale = GradClipping.gradientScale(clipCoefficient)
        for (chunk, optimizer) in zip(chunks, optimizers) {
            optimizer.update(
                params: chunk.params, grads: chunk.grads, lr: lr, decoupledLR: decoupledLR, gradientScale: scale)
        }
    }

    public func injectOverflow() { chunks[0].grads.storage.base[0] = .infinity }

    public var chunkState: [[ParameterArena]]? { optimizers.map(\.state) }
    public func stateForLoading() -> [[ParameterArena]] { optimizers.map(\.state) }
    public func adoptState(_ state: [[ParameterArena]]) {}
}

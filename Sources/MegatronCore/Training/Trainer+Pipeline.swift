// Trainer+Pipeline.swift — one training step under pipeline parallelism: the schedule's action list
// run by the PipelineExecutor, then the tied word embedding's gradients summed over the embedding
// group (first and last stage hold copies that must stay equal), and the loss made known to every
// rank of the pipeline (only the last stage computes it).
import Distributed

extension Trainer {
    func pipelineStep(_ executor: PipelineExecutor, _ schedule: PipelineSchedule, iteration: Int, gradScale: Float) throws -> Double {
        let start = MPIRuntime.wallTime
        let loss = try executor.run(schedule, iteration: iteration, gradScale: gradScale) { micro, acts in fillTraining(micro, acts) }
        try allReduceTiedEmbeddingGradients()
        let total = try parallel.pipeline.allReduceSum(loss)
        lastPipelineIdleFraction = max(0, 1 - executor.computeSeconds / max(1e-9, MPIRuntime.wallTime - start))
        return total
    }

    /// Megatron's `_allreduce_embedding_grads`: the first stage's word embedding and the last stage's
    /// output layer are one parameter, so their gradients are summed over the embedding group.
    func allReduceTiedEmbeddingGradients() throws {
        guard parallel.layout.pipeline > 1, let group = parallel.embedding else { return }
        for chunk in chunks {
            let slot = chunk.stage.hasEmbedding ? chunk.slots.wordEmbeddings : (chunk.stage.hasHead ? chunk.slots.outputLayer : nil)
            guard let slot else { continue }
            try group.allReduceSum(chunk.grads.pointer(slot), count: chunk.table.specs[slot].count)
        }
    }
}

// StageCostProbe.swift — pipeline_auto_balance's costs measured on this machine
// (pipeline_balance_costs "measured", the default). Before the model is built, every rank builds a
// chunk of one transformer layer that also holds the embedding and the head, with the run's shapes,
// tensor slice, recomputation, precision and threads, and runs one micro-batch's training forward
// and backward through it four times (the first warms the buffers; each figure is the median of the
// other three: single passes put gpt2-124m's head at 4.3 to 4.8 layers). Each timed pass is split by
// phase (PhaseTimer): the embedding, the head (with its loss), the attention core, and the rest of
// the wall time as the layer's; of the layer, the attention sub-layer's share is the core, QKV and
// the projection, plus half of what is neither those nor the MLP's products. World rank 0's figures
// are broadcast, so every rank derives the same split from the same numbers. The FLOP model (pipeline_balance_costs "flops") says the head of
// gpt2-124m weighs 4.5 layers; what it really costs depends on the machine, the precision and t.
import Dispatch
import Distributed
import Tensor

public enum StageCostProbe {
    /// Seconds of one micro-batch's forward + backward, the probe's own wall time included.
    public struct Measurement: Sendable, Equatable {
        public var layer = 0.0, attention = 0.0, embedding = 0.0, head = 0.0
        /// Of `layer`, the attention sub-layer's part.
        public var attentionSublayer = 0.0
        public var probeSeconds = 0.0

        /// As StageCosts counts (one pass: a third of forward + backward), with the schedule of `c`.
        public func costs(_ c: TrainingConfig, dataParallel d: Int) -> StageCosts {
            var costs = StageCosts(layer: layer / 3, embedding: embedding / 3, head: head / 3)
            costs.attention = attention / 3
            costs.attentionSublayer = attentionSublayer / 3
            return costs.scheduled(c, dataParallel: d)
        }

        /// For the start-up log.
        public var description: String {
            // Microseconds still show: a tiny model's head can cost under 0.05 ms.
            func f(_ x: Double) -> String { x < 0.1 ? String(format: "%.3f ms", x * 1e3) : String(format: "%.2f s", x) }
            return "balanced on measured costs per micro-batch: layer \(f(layer)) (attention core \(f(attention)), "
                + "attention sub-layer \(f(attentionSublayer))), "
                + "head \(f(head)), embedding \(f(embedding)); probe \(f(probeSeconds))"
        }
    }

    /// Times a one-layer chunk made by `makeChunk` (with the embedding and the head) on every rank
    /// at once (tensor groups run their collectives as in training); `prepare` fills the probe's
    /// micro-batch where zeros would not cost what data does (BERT's masked positions).
    public static func measure<Chunk: ModelChunk>(
        parallel: ParallelState, makeChunk: (StagePlan) -> Chunk, prepare: (Chunk.Activations) -> Void = { _ in }
    ) throws -> Measurement {
        let start = seconds()
        let chunk = makeChunk(StagePlan(layers: [0], hasEmbedding: true, hasHead: true))
        let acts = chunk.makeActivations()
        prepare(acts)
        var passes: [Measurement] = []
        for pass in 0...timedPasses {
            let timer = PhaseTimer()
            chunk.timer = pass > 0 ? timer : nil
            let t0 = seconds()
            let ctx = PassContext(iteration: 0, microbatch: pass, training: true)
            _ = try chunk.forward(acts, ctx, gradScale: 1)
            try chunk.backward(acts, ctx)
            if pass > 0 { passes.append(classify(timer, wall: seconds() - t0)) }
        }
        // Each figure's median over the timed passes: one descheduled pass moves none of them.
        func median(_ field: (Measurement) -> Double) -> Double { passes.map(field).sorted()[passes.count / 2] }
        var m = Measurement()
        (m.layer, m.attention, m.embedding, m.head, m.attentionSublayer) = (
            median(\.layer), median(\.attention), median(\.embedding), median(\.head), median(\.attentionSublayer)
        )
        var figures: [Float] = [m.layer, m.attention, m.embedding, m.head, m.attentionSublayer].map { Float($0) }
        try parallel.world.broadcast(&figures, count: figures.count, root: 0)
        (m.layer, m.attention, m.embedding, m.head, m.attentionSublayer) = (
            Double(figures[0]), Double(figures[1]), Double(figures[2]), Double(figures[3]), Double(figures[4])
        )
        m.probeSeconds = seconds() - start
        return m
    }

    /// Timed passes after the warm-up one.
    static let timedPasses = 3

    /// One pass's figures from its phase times and wall time.
    private static func classify(_ timer: PhaseTimer, wall: Double) -> Measurement {
        var m = Measurement()
        var attentionProducts = 0.0, mlpProducts = 0.0
        for (name, seconds) in timer.seconds {
            if PhaseLabel.head.contains(name) {
                m.head += seconds
            } else if PhaseLabel.embedding.contains(name) {
                m.embedding += seconds
            } else if PhaseLabel.attentionCore.contains(name) {
                m.attention += seconds
            } else if PhaseLabel.attentionProducts.contains(name) {
                attentionProducts += seconds
            } else if PhaseLabel.mlpProducts.contains(name) {
                mlpProducts += seconds
            }
        }
        m.layer = max(wall - m.head - m.embedding, m.attention)
        let shared = max(0, m.layer - m.attention - attentionProducts - mlpProducts)
        m.attentionSublayer = min(m.layer, m.attention + attentionProducts + shared / 2)
        return m
    }

    private static func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

// DeferredWeightGradients.swift — the weight-gradient half of a backward pass, kept for later.
// Zero-bubble pipeline schedules (Qi et al., ICLR 2024) split a linear layer's backward into B,
// ∂loss/∂x = dy·W (on the critical path to the previous stage), and W, ∂loss/∂W += dyᵀ·x and
// ∂loss/∂b += Σ dy (needed only by the optimizer step). A B pass run with a queue computes ∂x at once
// and leaves here a copy of each dy (its scratch is reused by the next layer) and the product to run;
// `run` does them all, in the order queued, and empties the queue. Gradients accumulate in the same
// micro-batch order as a fused backward, so the results are bitwise the same.
// The inputs x are read where the forward left them (the micro-batch's saved activations; bf16 runs
// read their 16-bit words, fp16 runs first widen them into the staging buffer), so the
// activation set must stay untouched until `run` — the pipeline executor holds it until then.
import Distributed
import Tensor

public final class DeferredWeightGradients {
    private var kept: [FloatBuffer] = []
    private var used = 0
    private var work: [() -> Void] = []

    public init() {}

    /// Bytes of the kept output gradients (the buffers stay allocated and are reused).
    public var bytes: Int { kept.reduce(0) { $0 + $1.count * 4 } }

    /// A copy of `dy` that stays valid until `run` finishes.
    func keep(_ dy: UnsafePointer<Float>, count: Int) -> UnsafePointer<Float> {
        if used == kept.count {
            kept.append(FloatBuffer(count: count))
        } else if kept[used].count < count {
            kept[used] = FloatBuffer(count: count)
        }
        let buffer = kept[used]
        used += 1
        buffer.base.update(from: dy, count: count)
        return UnsafePointer(buffer.base)
    }

    /// Queues one weight-gradient job.
    func add(_ job: @escaping () -> Void) { work.append(job) }

    /// Runs every queued job in order (letting the pipeline's transfers progress between them),
    /// then forgets them.
    public func run() {
        for job in work {
            job()
            CommunicationProgress.atLayerBoundary()
        }
        work.removeAll(keepingCapacity: true)
        used = 0
    }
}

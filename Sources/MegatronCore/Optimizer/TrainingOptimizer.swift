// TrainingOptimizer.swift — the trainer's optimizer in one of its two forms: one AdamW per model
// chunk, its state replicated on every data-parallel rank, or the distributed optimizer, its state
// sharded across them. Checkpoints read and write both forms and convert between them.

public enum TrainingOptimizer {
    case perChunk([AdamW])
    case distributed(DistributedOptimizer)

    /// Completed optimizer steps (the t of Adam's bias corrections).
    public var step: Int {
        get {
            switch self {
            case .perChunk(let optimizers): return optimizers[0].step
            case .distributed(let optimizer): return optimizer.step
            }
        }
        nonmutating set {
            switch self {
            case .perChunk(let optimizers): for o in optimizers { o.step = newValue }
            case .distributed(let optimizer): optimizer.step = newValue
            }
        }
    }

    public var isDistributed: Bool { if case .distributed = self { return true } else { return false } }
}

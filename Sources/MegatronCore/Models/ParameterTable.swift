// ParameterTable.swift — every parameter is declared once, as (name, global shape, tensor-parallel
// split axis, init rule); each rank holds its slice of it. Arena offsets, views, checkpoint keys,
// weight-decay groups, optimizer shards and data-parallel buckets all derive from this table.
// Names follow Megatron core.
import Tensor

public enum Initialization: Sendable, Equatable {
    case normal(std: Float)
    case zeros
    case ones
}

public struct ParameterSpec: Sendable {
    public let name: String
    /// The global shape (what t = 1 holds).
    public let shape: [Int]
    /// Axis split across tensor-parallel ranks (0: output rows / vocabulary, 1: input columns), nil if replicated.
    public let tensorParallelAxis: Int?
    public let initialization: Initialization
    /// Replicated parameters whose gradients are partial under sequence parallelism (norms),
    /// all-reduced over the tensor group.
    public let sequenceParallel: Bool
    /// Replicated parameters used by every tensor rank on its own heads (qk_layernorm's weights): their
    /// gradients are partial whenever t > 1, all-reduced over the tensor group.
    public let perHeadShared: Bool
    /// The name whose values this parameter starts from (a tied copy starts from the original).
    public let initKey: String
    /// A copy of another parameter kept on another pipeline stage (a tied weight): it starts from
    /// `initKey`'s values, its gradient is summed with the original's, it counts once in the
    /// gradient norm (as the original), and a checkpoint without it loads it from the original.
    public var isTiedCopy: Bool { initKey != name }
    /// This rank's slice: its shape and where it starts in the global tensor.
    public let localShape: [Int]
    public let globalOffset: [Int]
    /// Elements this rank holds.
    public var count: Int { localShape.elementCount }
    /// Whether this rank's gradient is a partial sum the tensor group completes: sequence-parallel
    /// norms under sequence parallelism, per-head shared weights whenever t > 1.
    public func isPartial(under tp: TensorParallel) -> Bool {
        (sequenceParallel && tp.sequenceParallel) || (perHeadShared && tp.size > 1)
    }
    /// Megatron's rule: biases and norm parameters (1-D) get no weight decay.
    public var weightDecay: Bool { shape.count > 1 }
}

/// The declared parameters and their offsets in one flat arena (64-byte aligned each), for tensor
/// rank `tensorRank` of `tensorSize`.
public struct ParameterTable: Sendable {
    /// Whether slot `slot` counts toward whole-model sums (norms, zero counts) on this rank, so
    /// that across the tensor group every parameter counts exactly once: a split parameter on every
    /// tensor rank (each holds a different slice), a replicated one on tensor rank 0 only, a tied
    /// copy nowhere.
    public func countsOnce(_ slot: Int) -> Bool {
        let spec = specs[slot]
        return (spec.tensorParallelAxis != nil || tensorRank == 0) && !spec.isTiedCopy
    }

    public private(set) var specs: [ParameterSpec] = []
    public private(set) var offsets: [Int] = []
    public private(set) var totalCount = 0
    public let tensorRank: Int, tensorSize: Int

    public init(tensorRank: Int = 0, tensorSize: Int = 1) { self.tensorRank = tensorRank; self.tensorSize = tensorSize }

    /// Declares a parameter and returns its slot. A split axis must divide by the tensor size.
    /// `adjacent`: this rank's slice starts right where the previous parameter's ends (no alignment
    /// gap), so one product can read both as one matrix (SwiGLU's gate and up halves of FC1).
    public mutating func declare(
        _ name: String, _ shape: [Int], split: Int? = nil, _ initialization: Initialization,
        sequenceParallel: Bool = false, perHeadShared: Bool = false, tiedTo initKey: String? = nil,
        adjacent: Bool = false
    ) -> Int {
        precondition(!specs.contains { $0.name == name }, "parameter \(name) declared twice")
        var local = shape, offset = shape.map { _ in 0 }
        if let axis = split {
            precondition(
                shape[axis] % tensorSize == 0, "\(name): dimension \(shape[axis]) does not split into \(tensorSize)")
            local[axis] = shape[axis] / tensorSize
            offset[axis] = tensorRank * local[axis]
        }
        specs.append(
            ParameterSpec(
                name: name, shape: shape, tensorParallelAxis: split, initialization: initialization,
                sequenceParallel: sequenceParallel, perHeadShared: perHeadShared, initKey: initKey ?? name,
                localShape: local, globalOffset: offset))
        let start = adjacent ? offsets.last! + specs[specs.count - 2].count : totalCount
        offsets.append(start)
        totalCount = start + (local.elementCount + 15) / 16 * 16
        return specs.count - 1
    }

    public func slot(named name: String) -> Int? { specs.firstIndex { $0.name == name } }

    /// Number of parameters of the whole model (global shapes, without alignment padding).
    public var parameterCount: Int { specs.reduce(0) { $0 + $1.shape.elementCount } }
}

/// A flat arena shaped by a `ParameterTable`: used for values, gradients and each Adam moment —
/// or a view of another arena in which only some slots have storage of their own (`sharing:own:`).
public final class ParameterArena: @unchecked Sendable {
    public let table: ParameterTable
    /// The arena's own memory (every slot, or only the `own` slots of a view).
    public private(set) var storage: FloatBuffer
    private var bases: [UnsafeMutablePointer<Float>]

    public init(table: ParameterTable) {
        self.table = table
        let storage = FloatBuffer(count: table.totalCount)
        self.storage = storage
        bases = table.offsets.map { storage.base + $0 }
    }

    /// A view of `main` whose slots are main's own, except the `own` ones, which get storage here.
    public init(sharing main: ParameterArena, own: Set<Int>) {
        table = main.table
        let counts = table.specs.map { ($0.count + 15) / 16 * 16 }
        let storage = FloatBuffer(count: own.reduce(0) { $0 + counts[$1] })
        self.storage = storage
        var next = storage.base
        bases = table.specs.indices.map { slot in
            guard own.contains(slot) else { return main.pointer(slot) }
            defer { next += counts[slot] }
            return next
        }
    }

    @inline(__always) public func pointer(_ slot: Int) -> UnsafeMutablePointer<Float> { bases[slot] }
    /// The tensor of an optional slot (a bias or norm bias the model may not have).
    @inline(__always) public func pointer(_ slot: Int?) -> UnsafeMutablePointer<Float>? { slot.map { bases[$0] } }

    /// Moves a whole arena (not a view) into `buffer` (at least `table.totalCount` floats), values
    /// included: the data-parallel gradients into a shared-memory window. Pointers taken from the
    /// arena before this are stale, so only the arena's builder calls it, before handing it out.
    public func relocate(into buffer: FloatBuffer) {
        precondition(storage.count == table.totalCount && buffer.count >= table.totalCount, "relocate a whole arena")
        buffer.base.update(from: storage.base, count: table.totalCount)
        storage = buffer
        bases = table.offsets.map { buffer.base + $0 }
    }

    public func zero() { storage.zero() }

    /// Fills every parameter from its init rule. Element i of parameter `name` is a function of
    /// (seed, name, i) only, so any grid produces the same global tensor (DESIGN decision 4).
    public func initialize(seed: Int) {
        for (slot, spec) in table.specs.enumerated() {
            let p = pointer(slot)
            switch spec.initialization {
            case .zeros: p.update(repeating: 0, count: spec.count)
            case .ones: p.update(repeating: 1, count: spec.count)
            case .normal(let std):
                let rng = Philox4x32(seed: UInt64(truncatingIfNeeded: seed), stream: stableHash(spec.initKey))
                // View the tensor as [rows, cols] (1-D: one row): local row r of a slice at global
                // (r0, c0) is a contiguous run of global row r0 + r.
                let twoD = spec.shape.count > 1
                let cols = twoD ? spec.localShape.last! : spec.count
                let globalCols = twoD ? spec.shape.last! : spec.shape.elementCount
                let r0 = twoD ? spec.globalOffset[0] : 0,
                    c0 = twoD ? spec.globalOffset.last! : (spec.globalOffset.first ?? 0)
                let rows = spec.count / max(cols, 1)
                ThreadBudget.parallelFor(rows, grain: max(1, (1 << 14) / max(cols, 1))) { rr in
                    for r in rr {
                        rng.fillNormal(
                            UnsafeMutableBufferPointer(start: p + r * cols, count: cols),
                            start: (r0 + r) * globalCols + c0, mean: 0, std: std)
                    }
                }
            }
        }
    }
}

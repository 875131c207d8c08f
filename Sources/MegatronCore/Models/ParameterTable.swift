// ParameterTable.swift — every parameter is declared once, as (name, global shape, tensor-parallel
// split axis, init rule). Arena offsets, views, checkpoint keys, weight-decay groups and (later)
// shards and data-parallel buckets all derive from this table. Names follow Megatron core.
import Tensor

public enum Initialization: Sendable, Equatable {
    case normal(std: Float)
    case zeros
    case ones
}

public struct ParameterSpec: Sendable {
    public let name: String
    public let shape: [Int]
    /// Axis split across tensor-parallel ranks (0: output rows / vocabulary, 1: input columns), nil if replicated.
    public let tensorParallelAxis: Int?
    public let initialization: Initialization
    public var count: Int { shape.elementCount }
    /// Megatron's rule: biases and norm parameters (1-D) get no weight decay.
    public var weightDecay: Bool { shape.count > 1 }
}

/// The declared parameters and their offsets in one flat arena (64-byte aligned each).
public struct ParameterTable: Sendable {
    public private(set) var specs: [ParameterSpec] = []
    public private(set) var offsets: [Int] = []
    public private(set) var totalCount = 0

    public init() {}

    /// Declares a parameter and returns its slot.
    public mutating func declare(_ name: String, _ shape: [Int], split: Int? = nil, _ initialization: Initialization) -> Int {
        precondition(!specs.contains { $0.name == name }, "parameter \(name) declared twice")
        specs.append(ParameterSpec(name: name, shape: shape, tensorParallelAxis: split, initialization: initialization))
        offsets.append(totalCount)
        totalCount += (shape.elementCount + 15) / 16 * 16
        return specs.count - 1
    }

    public func slot(named name: String) -> Int? { specs.firstIndex { $0.name == name } }

    /// Number of real parameters (without alignment padding).
    public var parameterCount: Int { specs.reduce(0) { $0 + $1.count } }
}

/// A flat arena shaped by a `ParameterTable`: used for values, gradients and each Adam moment.
public final class ParameterArena: @unchecked Sendable {
    public let table: ParameterTable
    public let storage: FloatBuffer

    public init(table: ParameterTable) {
        self.table = table
        storage = FloatBuffer(count: table.totalCount)
    }

    @inline(__always) public func pointer(_ slot: Int) -> UnsafeMutablePointer<Float> { storage.base + table.offsets[slot] }

    public func pointer(named name: String) -> UnsafeMutablePointer<Float>? { table.slot(named: name).map(pointer) }

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
                let rng = Philox4x32(seed: UInt64(truncatingIfNeeded: seed), stream: stableHash(spec.name))
                ThreadBudget.parallelFor(spec.count, grain: 1 << 14) { r in
                    rng.fillNormal(UnsafeMutableBufferPointer(start: p + r.lowerBound, count: r.count),
                                   start: r.lowerBound, mean: 0, std: std)
                }
            }
        }
    }
}

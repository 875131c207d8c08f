// ParallelState.swift — the PTD-P process grid: which tensor, data and pipeline rank this process
// is, and the communicators of its groups. Megatron's rank order: tensor rank fastest, then data,
// then pipeline:   rank = tp + t·dp + t·d·pp.
//
// 8 ranks, t = 2, p = 2 (so d = 2):
//     rank        0  1  2  3  4  5  6  7
//     tp          0  1  0  1  0  1  0  1
//     dp          0  0  1  1  0  0  1  1
//     pp          0  0  0  0  1  1  1  1
//     tensor groups   [0,1] [2,3] [4,5] [6,7]
//     data groups     [0,2] [1,3] [4,6] [5,7]
//     pipeline groups [0,4] [1,5] [2,6] [3,7]        embedding groups: the same (first + last stage)
//     model-parallel  [0,1,4,5] [2,3,6,7]
// 16 ranks, t = 2, p = 4 (d = 2), Megatron's docstring example:
//     tensor    [0,1] [2,3] [4,5] [6,7] [8,9] [10,11] [12,13] [14,15]
//     data      [0,2] [1,3] [4,6] [5,7] [8,10] [9,11] [12,14] [13,15]
//     pipeline  [0,4,8,12] [1,5,9,13] [2,6,10,14] [3,7,11,15]
//     embedding [0,12] [1,13] [2,14] [3,15]
//     model-parallel [0,1,4,5,8,9,12,13] [2,3,6,7,10,11,14,15]
// Adjacent ranks share a tensor group, so tensor parallelism stays inside a node.
import Distributed

/// The rank arithmetic of a (t, p, d) grid, without MPI.
public struct GridLayout: Sendable, Equatable {
    public let tensor: Int, pipeline: Int, data: Int
    public var world: Int { tensor * pipeline * data }

    public init(world: Int, tensor t: Int, pipeline p: Int) {
        tensor = t; pipeline = p; data = world / max(1, t * p)
    }

    public func coordinates(of rank: Int) -> (tp: Int, dp: Int, pp: Int) {
        (rank % tensor, (rank / tensor) % data, rank / (tensor * data))
    }

    public func rank(tp: Int, dp: Int, pp: Int) -> Int { tp + tensor * dp + tensor * data * pp }

    public var tensorGroups: [[Int]] {
        (0..<pipeline).flatMap { pp in (0..<data).map { dp in (0..<tensor).map { rank(tp: $0, dp: dp, pp: pp) } } }
    }
    public var dataGroups: [[Int]] {
        (0..<pipeline).flatMap { pp in (0..<tensor).map { tp in (0..<data).map { rank(tp: tp, dp: $0, pp: pp) } } }
    }
    public var pipelineGroups: [[Int]] {
        (0..<data).flatMap { dp in (0..<tensor).map { tp in (0..<pipeline).map { rank(tp: tp, dp: dp, pp: $0) } } }
            .sorted { $0[0] < $1[0] }
    }
    public var embeddingGroups: [[Int]] { pipelineGroups.map { $0.count > 1 ? [$0.first!, $0.last!] : [$0[0]] } }
    public var modelParallelGroups: [[Int]] {
        (0..<data).map { dp in (0..<pipeline).flatMap { pp in (0..<tensor).map { rank(tp: $0, dp: dp, pp: pp) } } }
    }

    /// The grid as printed once at start-up.
    public var description: String {
        func show(_ g: [[Int]]) -> String {
            g.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: " ")
        }
        return """
             > grid: world \(world) = tensor \(tensor) × data \(data) × pipeline \(pipeline) (rank = tp + t·dp + t·d·pp)
                 tensor groups:   \(show(tensorGroups))
                 data groups:     \(show(dataGroups))
                 pipeline groups: \(show(pipelineGroups))
            """
    }
}

/// This process's place in the grid and the communicators of its groups. Passed explicitly to
/// whatever communicates; there is no global instance.
public final class ParallelState: @unchecked Sendable {
    public let layout: GridLayout
    public let world: Communicator
    public let tensorRank: Int, dataRank: Int, pipelineRank: Int
    public let tensor: Communicator, data: Communicator, pipeline: Communicator, modelParallel: Communicator
    /// First and last pipeline stage of this pipeline group (nil on middle stages).
    public let embedding: Communicator?

    /// Splits `world` into the groups of a t × p × (world / t·p) grid. Every rank must call this
    /// with the same sizes (the config is validated on every rank first).
    public init(world: Communicator, tensor t: Int, pipeline p: Int) throws {
        precondition(world.size % (t * p) == 0, "world size must be a multiple of t·p (validated before)")
        let layout = GridLayout(world: world.size, tensor: t, pipeline: p)
        self.layout = layout
        self.world = world
        let (tp, dp, pp) = layout.coordinates(of: world.rank)
        tensorRank = tp; dataRank = dp; pipelineRank = pp
        tensor = try world.split(color: dp + layout.data * pp, key: tp, name: "tensor")!
        data = try world.split(color: tp + t * pp, key: dp, name: "data")!
        pipeline = try world.split(color: tp + t * dp, key: pp, name: "pipeline")!
        modelParallel = try world.split(color: dp, key: tp + t * pp, name: "model-parallel")!
        let onEmbeddingStage = pp == 0 || pp == p - 1
        embedding = try world.split(color: onEmbeddingStage ? tp + t * dp : nil, key: pp, name: "embedding")
    }

    /// The groups whose traffic is reported per iteration, by their metrics names.
    public var groups: [(String, Communicator)] {
        [("tp", tensor), ("dp", data), ("pp", pipeline), ("mp", modelParallel)]
    }
}

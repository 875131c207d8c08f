// RecomputePlan.swift — which transformer layers of a model chunk keep their saved activations and
// which recompute them in the backward pass (Megatron's --recompute-granularity full with
// --recompute-method uniform|block and --recompute-num-layers). A recomputed layer keeps only its
// input (the residual stream, kept for every layer anyway); its forward runs again, into a shared
// activation set, just before its backward. Counter-based dropout makes the second forward
// bitwise identical to the first, so results do not change.
//   uniform, k: layers in groups of k; a group shares k activation sets and is recomputed as a
//               whole before the backward of its last layer
//   block, N:   the first N layers of the chunk are recomputed one at a time (sharing one set);
//               the others keep their activations
// `selective` (core attention only) needs no plan here: the attention is computed in tiles and
// never stores the s × s probabilities — they are recomputed in its backward already.

public struct RecomputePlan: Sendable, Equatable {
    /// The activation set of every layer, and how many distinct sets the chunk needs.
    public let setOf: [Int]
    public let sets: Int
    /// Groups of layers recomputed together (ascending ranges of the chunk's layer indices).
    public let groups: [Range<Int>]

    /// No recomputation: one set per layer.
    public static func none(layers: Int) -> RecomputePlan {
        RecomputePlan(setOf: Array(0..<layers), sets: layers, groups: [])
    }

    public static func make(granularity: RecomputeGranularity?, method: RecomputeMethod?, numLayers: Int?, layers: Int)
        -> RecomputePlan
    {
        guard granularity == .full, let n = numLayers, layers > 0 else { return .none(layers: layers) }
        if method == .block {
            let r = min(max(n, 0), layers)
            guard r > 0 else { return .none(layers: layers) }
            return RecomputePlan(
                setOf: (0..<layers).map { $0 < r ? 0 : 1 + $0 - r }, sets: 1 + layers - r,
                groups: (0..<r).map { $0..<($0 + 1) })
        }
        let k = min(max(n, 1), layers)
        return RecomputePlan(
            setOf: (0..<layers).map { $0 % k }, sets: k,
            groups: stride(from: 0, to: layers, by: k).map { $0..<min($0 + k, layers) })
    }

    /// The group whose backward starts at layer `l` (its last layer), if any.
    func groupEnding(at l: Int) -> Range<Int>? { groups.first { $0.upperBound - 1 == l } }
}

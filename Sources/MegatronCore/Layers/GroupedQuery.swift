// GroupedQuery.swift — grouped-query attention (Ainslie et al.; Megatron's `--group-query-attention
// --num-query-groups g`): the QKV projection gives, per query group, Megatron's layout
// [q of the group's a/g heads | k | v] (d columns each), so a column split over t gives each rank
// whole groups. The attention core runs on the per-head [q | k | v] layout of multi-head
// attention: `expand` copies each group's keys and values beside each of its query heads, and
// `reduce` (backward) sums the heads' key and value gradients back into their group's.
import Tensor

public enum GroupedQuery {
    /// grouped [rows, groups·(perGroup + 2)·d] → perHead [rows, groups·perGroup·3·d].
    public static func expand(
        _ grouped: UnsafePointer<Float>, into perHead: UnsafeMutablePointer<Float>, rows n: Int, groups: Int,
        headsPerGroup k: Int, headDim d: Int
    ) {
        let inWidth = groups * (k + 2) * d, outWidth = groups * k * 3 * d
        ThreadBudget.parallelFor(n, grain: 16) { rr in
            for r in rr {
                for g in 0..<groups {
                    let src = grouped + r * inWidth + g * (k + 2) * d
                    for j in 0..<k {
                        let dst = perHead + r * outWidth + (g * k + j) * 3 * d
                        dst.update(from: src + j * d, count: d)
                        (dst + d).update(from: src + k * d, count: 2 * d)  // k and v, side by side in both
                    }
                }
            }
        }
    }

    /// dPerHead [rows, groups·perGroup·3·d] → dGrouped [rows, groups·(perGroup + 2)·d] (overwritten):
    /// query gradients copied, key and value gradients summed over the group's heads in head order.
    public static func reduce(
        _ perHead: UnsafePointer<Float>, into grouped: UnsafeMutablePointer<Float>, rows n: Int, groups: Int,
        headsPerGroup k: Int, headDim d: Int
    ) {
        let outWidth = groups * (k + 2) * d, inWidth = groups * k * 3 * d
        ThreadBudget.parallelFor(n, grain: 16) { rr in
            for r in rr {
                for g in 0..<groups {
                    let dst = grouped + r * outWidth + g * (k + 2) * d
                    let kv = dst + k * d
                    kv.update(repeating: 0, count: 2 * d)
                    for j in 0..<k {
                        let src = perHead + r * inWidth + (g * k + j) * 3 * d
                        (dst + j * d).update(from: src, count: d)
                        var e = 0
                        while e + 16 <= 2 * d { store16(load16(kv, e) + load16(src, d + e), kv, e); e += 16 }
                        while e < 2 * d { kv[e] += src[d + e]; e += 1 }
                    }
                }
            }
        }
    }
}

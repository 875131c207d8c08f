// SparseRowGradient.swift — the input word embedding's gradient rows of a step's last micro-batch,
// kept apart from the gradient arena (the data-parallel "sparse ending"). The rest of the word
// embedding's gradient — the LM head's part, which its fused backward computes before the backward
// pass, and every earlier micro-batch's — is then final when the last backward pass begins, so its
// all-reduce runs under that whole pass instead of after it. At the end the data-parallel ranks
// exchange only these rows (at most the micro-batch's s·b tokens each, all-gathered) and add them, in
// rank order, to the reduced gradient, or under the distributed optimizer to this rank's piece of it.
// GradientBuckets owns one when `ddp_sparse_embedding_ending` asks for it (by default when the
// exchange moves fewer bytes than the all-reduce would).
import Distributed
import Tensor

public final class SparseRowGradient {
    /// Rows of the embedding table on this rank (its vocabulary shard), the row width, and the most
    /// distinct rows one micro-batch can touch (its tokens).
    public let tableRows: Int, hidden: Int, capacity: Int
    /// The compact rows' gradients, [capacity, hidden]; rows past `rows.count` are unused.
    public let values: UnsafeMutablePointer<Float>
    /// Table row of each compact row, in order of first appearance.
    public private(set) var rows: [Int32] = []
    /// Compact row of each table row, -1 for none.
    private var compactOf: [Int32]
    /// Compact row of each token of the micro-batch collected last, -1 outside this shard.
    private let tokenRows: UnsafeMutablePointer<Int32>, maxTokens: Int
    /// True from `collect` until `addExchanged`: this step's last micro-batch left rows here.
    public private(set) var holdsRows = false

    /// Row indices travel as fp32 values in the exchange, exact below 2^24.
    public static let maxTableRows = 1 << 24

    public init(tableRows: Int, hidden: Int, tokensPerMicrobatch: Int) {
        precondition(tableRows < Self.maxTableRows, "table rows must stay below 2^24 (exact as fp32)")
        self.tableRows = tableRows; self.hidden = hidden; capacity = min(tokensPerMicrobatch, tableRows)
        values = .allocate(capacity: capacity * hidden)
        compactOf = [Int32](repeating: -1, count: tableRows)
        maxTokens = tokensPerMicrobatch
        tokenRows = .allocate(capacity: tokensPerMicrobatch)
    }
    deinit { values.deallocate(); tokenRows.deallocate() }

    /// Whether exchanging rows beats the dense all-reduce for `dataParallel` ranks: every rank
    /// receives all ranks' rows (d·s·b·(h + 1) values at most) where a ring all-reduce moves about
    /// 2·rows·h; sparse when that is at most half.
    public static func pays(tableRows: Int, hidden: Int, tokensPerMicrobatch: Int, dataParallel d: Int) -> Bool {
        d * tokensPerMicrobatch * (hidden + 1) <= tableRows * hidden
    }

    /// Starts this micro-batch's rows: maps each token (`vocabStart` is the shard's first vocabulary
    /// row) to a compact row, zeroing new ones. Returns each token's compact row (-1: outside the shard).
    public func collect(tokens: UnsafePointer<Int32>, count: Int, vocabStart: Int) -> UnsafePointer<Int32> {
        precondition(count <= maxTokens, "a micro-batch has at most \(maxTokens) tokens")
        for r in rows { compactOf[Int(r)] = -1 }
        rows.removeAll(keepingCapacity: true)
        for i in 0..<count {
            let t = Int(tokens[i]) - vocabStart
            guard t >= 0 && t < tableRows else { tokenRows[i] = -1; continue }
            if compactOf[t] < 0 {
                compactOf[t] = Int32(rows.count)
                (values + rows.count * hidden).update(repeating: 0, count: hidden)
                rows.append(Int32(t))
            }
            tokenRows[i] = compactOf[t]
        }
        holdsRows = true
        return UnsafePointer(tokenRows)
    }

    /// Adds every rank's rows (gathered over `group`, summed in rank order) into the flattened table
    /// elements `range` (row · hidden + column), element e at `out[e − range.lowerBound]`.
    func addExchanged(group: Communicator, into out: UnsafeMutablePointer<Float>, range: Range<Int>) throws {
        defer { holdsRows = false }
        let h = hidden, n = try group.allReduceMax(rows.count), record = 1 + n + n * h
        let mine = UnsafeMutablePointer<Float>.allocate(capacity: record)
        let all = UnsafeMutablePointer<Float>.allocate(capacity: record * group.size)
        defer { mine.deallocate(); all.deallocate() }
        mine[0] = Float(rows.count)
        for (i, r) in rows.enumerated() { mine[1 + i] = Float(r) }
        (mine + 1 + n).update(from: values, count: rows.count * h)
        try group.allGather(mine, count: record, into: all)
        for q in 0..<group.size {
            let rec = all + q * record, count = Int(rec[0])
            for i in 0..<count {
                let start = Int(rec[1 + i]) * h
                let lo = max(start, range.lowerBound), hi = min(start + h, range.upperBound)
                guard lo < hi else { continue }
                let dst = out + (lo - range.lowerBound)
                Kernels.add(dst, rec + 1 + n + i * h + (lo - start), into: dst, count: hi - lo)
            }
        }
    }
}

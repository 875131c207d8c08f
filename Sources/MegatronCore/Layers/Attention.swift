// Attention.swift — multi-head self-attention core (softmax(QKᵀ/√d)·V), blocked per (batch, key/value head) —
// tasks handed to the threads one at a time, the longest sequences first — and by query tiles: a
// tile of scores [T, keys] lives in per-thread scratch and only the log-sum-exp per row is saved;
// backward recomputes the probabilities from it (flash-attention style). Three masks (AttentionMask):
// causal (GPT) — the upper triangle beyond the tile is never computed, and within it the tile
// kernels skip it at 8-row steps (TileTrims); causal within documents (GPT with Megatron's
// reset_attention_mask) — causal, and each query also blind to the keys before its document's first
// token: a tile skips the keys before its first row's document (from a multiple of 16 below its
// start), and within what it computes those keys get no weight; key padding (BERT) — every query
// sees the first `length` keys of its sequence, padded keys are never computed and receive no
// weight (padded queries' outputs are computed and unused). Sliding-window attention (window_size)
// is the causal masks with each query's first key raised to the window's (AttentionMask.limited).
//
// QKV layout is Megatron's: the [s, b, 3h] projection holds, per head, [q_head | k_head | v_head]
// (d columns each), so a tensor-parallel column split gives each rank whole heads; with grouped-query
// attention (`AttentionShape.headsPerGroup` k > 1), per group of k heads, [q of its k heads | k | v].
// A task is then a (batch, group): its keys and values are packed once for its k heads, and their
// gradients are summed over the k heads in place (no per-head copies of the keys and values).
import Foundation
import Tensor

/// Which keys each query may attend to.
public enum AttentionMask: Sendable, Equatable {
    /// Query i sees keys 0...i.
    case causal
    /// Query i of sequence j sees keys firstKeys[j][i]...i (the tokens of its own document so far).
    case causalWithinDocuments(firstKeys: [[Int32]])
    /// Every query of sequence j sees keys 0 ..< lengths[j] (each ≥ 1); the rest are padding.
    case keyPadding(lengths: [Int])

    /// The mask within a sliding window: each query also blind to keys more than `left` before it
    /// (as documents, so the kernels skip the tiles' keys before the window). Key padding (BERT)
    /// is returned as it is.
    func limited(toWindow left: Int, seq: Int, batch: Int) -> AttentionMask {
        switch self {
        case .keyPadding: return self
        case .causal:
            let row = (0..<seq).map { Int32(max(0, $0 - left)) }
            return .causalWithinDocuments(firstKeys: Array(repeating: row, count: batch))
        case .causalWithinDocuments(let firstKeys):
            return .causalWithinDocuments(
                firstKeys: firstKeys.map { row in
                    row.enumerated().map { i, first in max(first, Int32(max(0, i - left))) }
                })
        }
    }

    /// Keys computed for query rows i0 ..< i0 + rows of sequence `bi` (the tile's width).
    @inline(__always) func keys(rows i0: Int, count rows: Int, sequence bi: Int) -> Int {
        switch self {
        case .causal, .causalWithinDocuments: return i0 + rows
        case .keyPadding(let lengths): return lengths[bi]
        }
    }

    /// Whether query i never sees a key after i (the causal trims apply).
    var isCausal: Bool {
        if case .keyPadding = self { return false }
        return true
    }

    /// The order to hand out the (sequence, head) tasks of `batch` sequences × `heads` heads, costliest
    /// first: under key padding the longer sequences' (a task's work grows with its keys); nil
    /// (in order) when every task costs the same.
    func taskOrder(batch: Int, heads: Int) -> [Int]? {
        guard case .keyPadding(let lengths) = self, Set(lengths).count > 1 else { return nil }
        let sequences = (0..<batch).sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        return sequences.flatMap { bi in (0..<heads).map { bi * heads + $0 } }
    }

    /// Keys query `i` of sequence `bi` attends to (a prefix of the tile's keys).
    @inline(__always) func visible(query i: Int, sequence bi: Int) -> Int {
        switch self {
        case .causal, .causalWithinDocuments: return i + 1
        case .keyPadding(let lengths): return lengths[bi]
        }
    }

    /// The first key query `i` of sequence `bi` attends to (0 but within documents).
    @inline(__always) func firstKey(query i: Int, sequence bi: Int) -> Int {
        if case .causalWithinDocuments(let firstKeys) = self { return Int(firstKeys[bi][i]) }
        return 0
    }

    /// The keys a query tile from row `i0` of sequence `bi` skips: none but within documents, where
    /// the first keys never decrease, so no row of the tile sees a key before its first row's first
    /// key — rounded down to a multiple of 16, where the packed operands' panels begin.
    @inline(__always) func skippedKeys(firstQuery i0: Int, sequence bi: Int) -> Int {
        firstKey(query: i0, sequence: bi) / 16 * 16
    }
}

public struct AttentionShape: Sendable {
    /// `heads` are the heads this rank computes: global heads headOffset ..< headOffset + heads of totalHeads,
    /// in groups of `headsPerGroup` sharing one key and value head (1: multi-head attention).
    public let seq: Int, batch: Int, heads: Int, headDim: Int, headOffset: Int, totalHeads: Int, headsPerGroup: Int
    public init(
        seq: Int, batch: Int, heads: Int, headDim: Int, headOffset: Int = 0, totalHeads: Int? = nil,
        headsPerGroup: Int = 1
    ) {
        precondition(headsPerGroup >= 1 && heads % headsPerGroup == 0, "heads must be whole groups")
        self.seq = seq; self.batch = batch; self.heads = heads; self.headDim = headDim
        self.headOffset = headOffset; self.totalHeads = totalHeads ?? heads; self.headsPerGroup = headsPerGroup
    }
    /// Key and value heads (groups) this rank computes.
    public var groups: Int { heads / headsPerGroup }
    /// Columns of one row of the QKV projection: per group its heads' queries, its key and its value.
    public var qkvWidth: Int { groups * (headsPerGroup + 2) * headDim }
    /// Column of local head `head`'s query within a QKV row.
    @inline(__always) func queryColumn(head: Int) -> Int {
        (head / headsPerGroup) * (headsPerGroup + 2) * headDim + (head % headsPerGroup) * headDim
    }
    /// Column of group `group`'s key within a QKV row (its value follows).
    @inline(__always) func keyColumn(group: Int) -> Int {
        group * (headsPerGroup + 2) * headDim + headsPerGroup * headDim
    }
    /// Dropout element index of (batch bi, local head, query i, key 0): global, so masks do not depend on t.
    @inline(__always) func dropoutRowStart(batch bi: Int, head: Int, query i: Int) -> Int {
        ((bi * totalHeads + headOffset + head) * seq + i) * seq
    }
    public var hidden: Int { heads * headDim }
    /// Query rows per tile.
    public var tile: Int { min(seq, 128) }
    /// Scratch floats each worker thread needs: two tiles of scores, then `taskScratch` floats.
    public var scratchPerWorker: Int { 2 * tile * seq + taskScratch }
    /// The backward's key and value gradients of one task, [seq, 2·headDim], accumulated there rather
    /// than in place; in the forward, a tile's 1 / Σ exp per row and its output [tile, headDim].
    var taskScratch: Int { max(seq * 2 * headDim, tile * (1 + headDim)) }
}

/// The GEMMs of one attention tile on the calling thread. fp32 (and fp16 runs, whose attention
/// core is fp32): the fp32 tile kernel (F32Tiles), or SGEMM on a CPU without AVX-512. bf16 runs on a
/// CPU with a bf16 kernel: the bf16 product (operands rounded to bf16 while packed — the
/// probabilities and their gradients included, as under autocast — with fp32 accumulation). The
/// tile kernels pack a B operand once per (batch, head) for all its query tiles and skip what a
/// causal tile's trim leaves empty; SGEMM computes everything, which gives the same values.
struct TileProduct {
    enum Engine { case sgemm, f32Tiles, bf16 }
    let engine: Engine
    init(precision: Precision) {
        engine = precision == .bf16 && BF16.native ? .bf16 : F32Tiles.available ? .f32Tiles : .sgemm
    }

    /// A B operand packed for the tile kernels: 16-bit words (bf16) or floats (f32Tiles), in panels of
    /// 16 columns × k rows (`panel` elements of `elementBytes` each).
    struct Packed {
        let storage: UnsafeRawPointer
        let k: Int
        let panel: Int, elementBytes: Int

        /// The same operand from column `j` (a multiple of 16) on.
        func columns(from j: Int) -> Packed { advanced(by: j / 16 * panel) }
        /// The same operand from row `kk` (even) on: a product reads its rows kk ..< kk + its k (the
        /// panels' stride stays that of all k rows).
        func rows(from kk: Int) -> Packed { advanced(by: kk * 16) }
        private func advanced(by elements: Int) -> Packed {
            Packed(storage: storage + elements * elementBytes, k: k, panel: panel, elementBytes: elementBytes)
        }
    }

    /// Packs B[j, kk] (as `gemm` reads `b` with `transB`) for j < n, kk < k into this thread's
    /// workspace `slot` (2…4 for operands kept for a task, 0 for one product); nil for SGEMM,
    /// which packs as it goes.
    func pack(transB: Bool = false, n: Int, k: Int, b: UnsafePointer<Float>, ldb: Int, slot: Int) -> Packed? {
        switch engine {
        case .sgemm: return nil
        case .bf16:
            return Packed(
                storage: UnsafeRawPointer(
                    BF16.packOnThisThread(transB: transB, n: n, k: k, b: b, ldb: ldb, slot: slot)), k: k,
                panel: BF16.packedPanelWords(k: k), elementBytes: 2)
        case .f32Tiles:
            return Packed(
                storage: UnsafeRawPointer(
                    F32Tiles.packOnThisThread(transB: transB, n: n, k: k, b: b, ldb: ldb, slot: slot)), k: k,
                panel: F32Tiles.packedPanelFloats(k: k), elementBytes: 4)
        }
    }

    /// C = A·B (+ C with beta 1), B given as `b` and, when `packed` is given, read from it (its
    /// first n columns and k rows: bit for bit packing only those).
    @inline(__always)
    func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, packed: Packed? = nil,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, trim: TileTrim = .none
    ) {
        guard m > 0, n > 0 else { return }
        if engine == .sgemm {
            BLAS.sgemm(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
                beta: beta, c: c, ldc: ldc)
            return
        }
        // pack returns nil only for SGEMM, which returned above.
        let p = packed ?? pack(transB: transB, n: n, k: k, b: b, ldb: ldb, slot: 0)!
        if engine == .bf16 {
            BF16.gemmOnThisThread(
                transA: transA, m: m, n: n, k: k, a: a, lda: lda,
                packed: p.storage.assumingMemoryBound(to: UInt16.self),
                packedK: p.k, beta: beta, c: c, ldc: ldc, trim: trim)
        } else {
            F32Tiles.gemmOnThisThread(
                transA: transA, m: m, n: n, k: k, a: a, lda: lda, packed: p.storage.assumingMemoryBound(to: Float.self),
                packedK: p.k, beta: beta, c: c, ldc: ldc, trim: trim)
        }
    }
}

extension TileProduct {
    /// A tile's scores QKᵀ (unscaled): rows × keys into `c` (ldc keys), Q rows `q` and K rows `k` of
    /// the QKV layout (`ld` apart), K read from `packed` on the tile kernels.
    @inline(__always)
    func scores(
        rows: Int, keys: Int, d: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, ld: Int, packed: Packed?,
        into c: UnsafeMutablePointer<Float>, _ trims: TileTrims
    ) {
        gemm(
            transB: true, m: rows, n: keys, k: d, a: q, lda: ld, b: k, ldb: ld, packed: packed, c: c, ldc: keys,
            trim: trims.scores)
    }
}

/// A query tile's trims (TileTrim) under the causal masks, none under key padding. Row r of the tile
/// (query i0 + r) sees keys j < i0 + r + 1: so S and dP need only those columns, P and dS are zero
/// from there on, and their transposes (rows j) are zero for r < j − i0 — in the tile's columns,
/// which begin at key k0 (the keys it skips).
struct TileTrims {
    let scores: TileTrim, rows: TileTrim, transposed: TileTrim
    init(causal: Bool, firstQuery i0: Int, firstKey k0: Int = 0) {
        scores = causal ? .columnsBelow(i0 + 1 - k0) : .none
        rows = causal ? .zeroFrom(i0 + 1 - k0) : .none
        transposed = causal ? .zeroBefore(k0 - i0) : .none
    }
}

public enum SelfAttention {
    /// - qkv: [s, b, 3h] (per head q|k|v)   - context: [s, b, h] (overwritten)   - lse: [b, a, s] (saved)
    /// - scratch: `threads × shape.scratchPerWorker` floats
    public static func forward(
        qkv: UnsafePointer<Float>, context: UnsafeMutablePointer<Float>,
        lse: UnsafeMutablePointer<Float>, shape: AttentionShape, mask: AttentionMask = .causal,
        dropout p: Float, stream: DropoutStream?, scratch: UnsafeMutablePointer<Float>,
        precision: Precision = .fp32
    ) {
        if case .keyPadding(let lengths) = mask {
            precondition(
                lengths.count == shape.batch && lengths.allSatisfy { (1...shape.seq).contains($0) },
                "key-padding lengths must be 1...seq, one per sequence")
        }
        if case .causalWithinDocuments(let firstKeys) = mask {
            precondition(
                firstKeys.count == shape.batch
                    && firstKeys.allSatisfy { keys in
                        keys.count == shape.seq
                            && keys.indices.allSatisfy {
                                0 <= keys[$0] && keys[$0] <= $0 && ($0 == 0 || keys[$0 - 1] <= keys[$0])
                            }
                    },
                "first keys must be in 0...query and never decrease, seq of them per sequence")
        }
        let (s, b, a, d) = (shape.seq, shape.batch, shape.heads, shape.headDim)
        let h = a * d, ld = b * shape.qkvWidth, g = shape.groups
        let tile = TileProduct(precision: precision)
        ThreadBudget.withSingleThreadedBLAS {
            ThreadBudget.parallelTasks(b * g, order: mask.taskOrder(batch: b, heads: g)) { worker, task in
                let S = scratch + worker * shape.scratchPerWorker
                let bi = task / g, group = task % g
                let row = qkv + bi * shape.qkvWidth
                let k = row + shape.keyColumn(group: group), v = k + d
                // On the tile kernels K (as QKᵀ's B) and V (as PV's B) are packed once for every query
                // tile of the group's heads.
                let allKeys = mask.keys(rows: 0, count: s, sequence: bi)
                let kColumns = tile.pack(transB: true, n: allKeys, k: d, b: k, ldb: ld, slot: 2)
                let vRows = tile.pack(n: d, k: allKeys, b: v, ldb: ld, slot: 3)
                for head in group * shape.headsPerGroup..<(group + 1) * shape.headsPerGroup {
                    let q = row + shape.queryColumn(head: head), o = context + bi * h + head * d
                    headForward(
                        q: q, k: k, v: v, o: o, lseRow: lse + (bi * a + head) * s, scratch: S, shape: shape, mask: mask,
                        sequence: bi, head: head, packed: (kColumns, vRows), tile: tile, dropout: p, stream: stream)
                }
            }
        }
    }

    /// One head's forward over its sequence's query tiles, K and V packed (or not) by the caller.
    @inline(__always)
    static func headForward(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, o: UnsafeMutablePointer<Float>,
        lseRow: UnsafeMutablePointer<Float>, scratch S: UnsafeMutablePointer<Float>, shape: AttentionShape,
        mask: AttentionMask, sequence bi: Int, head: Int, packed: (TileProduct.Packed?, TileProduct.Packed?),
        tile: TileProduct, dropout p: Float, stream: DropoutStream?
    ) {
        let (s, d, T) = (shape.seq, shape.headDim, shape.tile)
        let ld = shape.batch * shape.qkvWidth, ldo = shape.batch * shape.hidden
        let scale = 1 / Float(d).squareRoot()
        let (kColumns, vRows) = packed
        // 1 / Σ exp per row of a tile, and the tile's unnormalised output [T, d] (contiguous: o's rows
        // lie b·h floats apart, a multiple of 4 KB in most models, all in the same cache sets), past
        // the two tiles of scores.
        let inverseSums = S + 2 * T * s, tileOut = inverseSums + T
        forEachQueryTile(seq: s, tile: T, mask: mask, sequence: bi) { i0, rows, k0, keys, trims in
            // S = QKᵀ (scaled in the softmax) over keys k0 ..< k0 + keys
            tile.scores(
                rows: rows, keys: keys, d: d, q: q + i0 * ld, k: k + k0 * ld, ld: ld,
                packed: kColumns?.columns(from: k0), into: S, trims)
            // S = exp(scale·S − max), unnormalised: the product is normalised instead (d columns
            // a row rather than `keys`).
            for r in 0..<rows {
                let i = i0 + r, visible = mask.visible(query: i, sequence: bi) - k0
                let row = S + r * keys
                let (shift, sum) = exponentiateRowInPlace(
                    row, from: mask.firstKey(query: i, sequence: bi) - k0, valid: visible, width: keys,
                    scale: scale)
                lseRow[i] = shift + Foundation.log(sum)
                inverseSums[r] = 1 / sum
                if p > 0, let stream {
                    stream.applyMask(
                        row, into: row, count: visible,
                        start: shape.dropoutRowStart(batch: bi, head: head, query: i) + k0, p: p)
                }
            }
            tile.gemm(
                m: rows, n: d, k: keys, a: S, lda: keys, b: v + k0 * ld, ldb: ld, packed: vRows?.rows(from: k0),
                c: tileOut, ldc: d, trim: trims.rows)
            let out = o + i0 * ldo
            for r in 0..<rows { scaleRow(tileOut + r * d, count: d, by: inverseSums[r], into: out + r * ldo) }
        }
    }

    /// - dcontext: [s, b, h]   - qkv, lse: as saved by forward   - dqkv: [s, b, qkvWidth] (overwritten)
    public static func backward(
        dcontext: UnsafePointer<Float>, qkv: UnsafePointer<Float>, lse: UnsafePointer<Float>,
        dqkv: UnsafeMutablePointer<Float>, shape: AttentionShape, mask: AttentionMask = .causal,
        dropout p: Float, stream: DropoutStream?, scratch: UnsafeMutablePointer<Float>,
        precision: Precision = .fp32
    ) {
        let (s, b, a, d) = (shape.seq, shape.batch, shape.heads, shape.headDim)
        let h = a * d, ld = b * shape.qkvWidth, g = shape.groups
        let tile = TileProduct(precision: precision)
        ThreadBudget.withSingleThreadedBLAS {
            ThreadBudget.parallelTasks(b * g, order: mask.taskOrder(batch: b, heads: g)) { worker, task in
                let A = scratch + worker * shape.scratchPerWorker
                let bi = task / g, group = task % g
                let row = qkv + bi * shape.qkvWidth, dRow = dqkv + bi * shape.qkvWidth
                let k = row + shape.keyColumn(group: group), v = k + d
                let dk = dRow + shape.keyColumn(group: group)
                // The group's key and value gradients are sums over its heads, started at zero, in the
                // worker's scratch ([s, 2d]: rows 2d floats apart) and copied into dqkv at the end. In
                // place, consecutive keys' rows lie b·qkvWidth floats apart — a multiple of 4 KB for
                // most models (bert-base and gpt2-124m at micro-batch 4: 36 KB), so every row falls
                // in the same few cache sets and the products accumulating there missed the caches.
                let kv = A + 2 * shape.tile * s
                kv.update(repeating: 0, count: s * 2 * d)
                // On the tile kernels K (as QKᵀ's B and dQ's B) and V (as dP's B) are packed once per task.
                let allKeys = mask.keys(rows: 0, count: s, sequence: bi)
                let kColumns = tile.pack(transB: true, n: allKeys, k: d, b: k, ldb: ld, slot: 2)
                let vColumns = tile.pack(transB: true, n: allKeys, k: d, b: v, ldb: ld, slot: 3)
                let kRows = tile.pack(n: d, k: allKeys, b: k, ldb: ld, slot: 4)
                for head in group * shape.headsPerGroup..<(group + 1) * shape.headsPerGroup {
                    let column = shape.queryColumn(head: head)
                    headBackward(
                        q: row + column, k: k, v: v, dq: dRow + column, dk: kv, dO: dcontext + bi * h + head * d,
                        lseRow: lse + (bi * a + head) * s, scratch: A, shape: shape, mask: mask, sequence: bi,
                        head: head, packed: (kColumns, vColumns, kRows), tile: tile, dropout: p, stream: stream)
                }
                for i in 0..<s { (dk + i * ld).update(from: kv + i * 2 * d, count: 2 * d) }
            }
        }
    }

    /// One head's backward over its sequence's query tiles: writes its dq, adds to its group's dk, dv
    /// (rows [dk | dv] of 2d floats).
    @inline(__always)
    static func headBackward(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>,
        dk: UnsafeMutablePointer<Float>, dO: UnsafePointer<Float>, lseRow: UnsafePointer<Float>,
        scratch A: UnsafeMutablePointer<Float>, shape: AttentionShape, mask: AttentionMask, sequence bi: Int, head: Int,
        packed: (TileProduct.Packed?, TileProduct.Packed?, TileProduct.Packed?), tile: TileProduct, dropout p: Float,
        stream: DropoutStream?
    ) {
        let (s, d, T) = (shape.seq, shape.headDim, shape.tile)
        let ld = shape.batch * shape.qkvWidth, ldo = shape.batch * shape.hidden
        let scale = 1 / Float(d).squareRoot()
        let (kColumns, vColumns, kRows) = packed
        let B = A + T * s, dv = dk + d, ldkv = 2 * d
        forEachQueryTile(seq: s, tile: T, mask: mask, sequence: bi) { i0, rows, k0, keys, trims in
            // A = P (recomputed probabilities) over keys k0 ..< k0 + keys, zero outside each
            // row's visible keys.
            tile.scores(
                rows: rows, keys: keys, d: d, q: q + i0 * ld, k: k + k0 * ld, ld: ld,
                packed: kColumns?.columns(from: k0), into: A, trims)
            for (r, i) in (i0..<i0 + rows).enumerated() {
                expRowInPlace(
                    A + r * keys, from: mask.firstKey(query: i, sequence: bi) - k0,
                    valid: mask.visible(query: i, sequence: bi) - k0, width: keys, scale: scale,
                    shift: lseRow[i])
            }
            // B = dP = dO·Vᵀ (with dropout, the gradient of the dropped probabilities).
            tile.gemm(
                transB: true, m: rows, n: keys, k: d, a: dO + i0 * ldo, lda: ldo, b: v + k0 * ld, ldb: ld,
                packed: vColumns?.columns(from: k0), c: B, ldc: keys, trim: trims.scores)
            if p > 0, let stream {
                // Per row, one mask for both: A = dS and B = the dropped probabilities PV used;
                // then dV += Bᵀ·dO.
                for r in 0..<rows {
                    let i = i0 + r
                    stream.softmaxBackwardRow(
                        A + r * keys, dP: B + r * keys, valid: mask.visible(query: i, sequence: bi) - k0,
                        width: keys, start: shape.dropoutRowStart(batch: bi, head: head, query: i) + k0,
                        p: p, scale: scale)
                }
                tile.gemm(
                    transA: true, m: keys, n: d, k: rows, a: B, lda: keys, b: dO + i0 * ldo, ldb: ldo, beta: 1,
                    c: dv + k0 * ldkv, ldc: ldkv, trim: trims.transposed)
            } else {
                // dV += Pᵀ·dO; then A = dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale
                tile.gemm(
                    transA: true, m: keys, n: d, k: rows, a: A, lda: keys, b: dO + i0 * ldo, ldb: ldo, beta: 1,
                    c: dv + k0 * ldkv, ldc: ldkv, trim: trims.transposed)
                for r in 0..<rows {
                    softmaxBackwardRow(
                        A + r * keys, dP: B + r * keys, valid: mask.visible(query: i0 + r, sequence: bi) - k0,
                        width: keys, scale: scale)
                }
            }
            tile.gemm(
                m: rows, n: d, k: keys, a: A, lda: keys, b: k + k0 * ld, ldb: ld, packed: kRows?.rows(from: k0),
                c: dq + i0 * ld, ldc: ld, trim: trims.rows)
            tile.gemm(
                transA: true, m: keys, n: d, k: rows, a: A, lda: keys, b: q + i0 * ld, ldb: ld,
                beta: 1, c: dk + k0 * ldkv, ldc: ldkv, trim: trims.transposed)
        }
    }

    /// Calls `body(i0, rows, k0, keys, trims)` for each query tile of sequence `bi`: rows i0 ..< i0 + rows,
    /// the keys k0 ..< k0 + keys the tile's scores span (k0: the keys it skips), and its causal trims.
    @inline(__always)
    static func forEachQueryTile(
        seq s: Int, tile T: Int, mask: AttentionMask, sequence bi: Int,
        _ body: (_ i0: Int, _ rows: Int, _ k0: Int, _ keys: Int, _ trims: TileTrims) -> Void
    ) {
        var i0 = 0
        while i0 < s {
            let rows = min(T, s - i0), k0 = mask.skippedKeys(firstQuery: i0, sequence: bi)
            body(
                i0, rows, k0, mask.keys(rows: i0, count: rows, sequence: bi) - k0,
                TileTrims(causal: mask.isCausal, firstQuery: i0, firstKey: k0))
            i0 += rows
        }
    }

    /// Softmax of `scale`·x over `row[first..<valid]` (scale > 0), zeros in `row[0..<first]` and
    /// `row[valid..<width]`; returns log Σ exp(scale·x) (the LSE).
    @inline(__always)
    static func softmaxRowInPlace(
        _ row: UnsafeMutablePointer<Float>, from first: Int = 0, valid: Int, width: Int, scale: Float
    ) -> Float {
        let (shift, sum) = exponentiateRowInPlace(row, from: first, valid: valid, width: width, scale: scale)
        scaleRow(row, count: valid, by: 1 / sum)
        return shift + Foundation.log(sum)
    }

    /// `row[j] = exp(scale·row[j] − shift)` for first ≤ j < valid with shift = scale·max over those
    /// (scale > 0), zeros in `row[0..<first]` and `row[valid..<width]`: the softmax's numerators.
    /// Returns the shift and Σ of the numerators.
    @inline(__always)
    static func exponentiateRowInPlace(
        _ row: UnsafeMutablePointer<Float>, from first: Int = 0, valid: Int, width: Int, scale: Float
    ) -> (shift: Float, sum: Float) {
        let m = Kernels.rowMax(row, from: first, valid: valid) * scale
        return (m, expRowInPlace(row, from: first, valid: valid, width: width, scale: scale, shift: m))
    }

    /// `y[0..<count] = x[0..<count] * factor` (y defaults to x: in place).
    @inline(__always)
    static func scaleRow(
        _ x: UnsafeMutablePointer<Float>, count: Int, by factor: Float, into y: UnsafeMutablePointer<Float>? = nil
    ) {
        let y = y ?? x
        var j = 0
        while j + 16 <= count { store16(load16(x, j) * factor, y, j); j += 16 }
        while j < count { y[j] = x[j] * factor; j += 1 }
    }

    /// `row[j] = exp(scale·row[j] − shift)` for first ≤ j < valid, 0 before and beyond; returns Σ of
    /// the exponentials (Kernels.softmaxExpRow: simdExp's values, in C with AVX-512).
    @inline(__always) @discardableResult
    static func expRowInPlace(
        _ row: UnsafeMutablePointer<Float>, from first: Int = 0, valid: Int, width: Int, scale: Float, shift: Float
    ) -> Float {
        Kernels.softmaxExpRow(row, from: first, valid: valid, width: width, scale: scale, shift: shift)
    }

    /// In place on P: `P[j] = P[j]·(dP[j] − Σ_k P[k]·dP[k])·scale` for j < valid (P is zero beyond,
    /// and dP there may be anything: a trimmed product leaves it unwritten), 0 for valid ≤ j < width.
    @inline(__always)
    static func softmaxBackwardRow(
        _ P: UnsafeMutablePointer<Float>, dP: UnsafePointer<Float>, valid: Int, width: Int, scale: Float
    ) {
        var acc = F16(repeating: 0)
        var j = 0
        while j + 16 <= valid { acc = acc.addingProduct(load16(P, j), load16(dP, j)); j += 16 }
        var dot = acc.sum()
        while j < valid { dot += P[j] * dP[j]; j += 1 }
        j = 0
        while j + 16 <= valid { store16(load16(P, j) * (load16(dP, j) - dot) * scale, P, j); j += 16 }
        while j < valid { P[j] = P[j] * (dP[j] - dot) * scale; j += 1 }
        if valid < width { (P + valid).update(repeating: 0, count: width - valid) }
    }
}

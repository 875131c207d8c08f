// Embedding.swift — GPT input embedding: out[i, b] = wordEmbeddings[token[i, b]] + positionEmbeddings[i]
// (or at the position ids given per token: Megatron's reset_position_ids), with the word table split
// by vocabulary rows across tensor ranks (VocabParallelEmbedding).
// Backward scatters into both tables; it runs column-parallel so no two threads touch one element.
import Tensor

public enum Embedding {
    /// Single rank: out = word[token] + position[i].
    /// - tokens: [s, b]   - word: [Vp, h]   - position: [maxPositions, h]   - out: [s, b, h]
    public static func forward(
        tokens: UnsafePointer<Int32>, word: UnsafePointer<Float>, position: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, seq s: Int, batch b: Int, hidden h: Int
    ) {
        forward(
            tokens: tokens, word: word, vocab: VocabShard(start: 0, rows: Int(Int32.max), realRows: Int(Int32.max)),
            position: position, out: out, seq: s, batch: b, hidden: h)
    }

    /// VocabParallelEmbedding's local part: rows of tokens outside this rank's vocabulary slice are
    /// zero (the tensor group's all-reduce completes them); `position` (if given) is added, at row
    /// `positions[r]` of it when the ids are given, else at the token's index in its sequence.
    public static func forward(
        tokens: UnsafePointer<Int32>, word: UnsafePointer<Float>, vocab: VocabShard,
        position: UnsafePointer<Float>?, positions: UnsafePointer<Int32>? = nil, out: UnsafeMutablePointer<Float>,
        seq s: Int, batch b: Int, hidden h: Int
    ) {
        ThreadBudget.parallelFor(s * b, grain: 16) { rr in
            for r in rr {
                let o = out + r * h
                let t = Int(tokens[r]) - vocab.start
                if t >= 0 && t < vocab.rows {
                    let w = word + t * h
                    if let position {
                        let p = position + positionRow(r, batch: b, positions) * h
                        var c = 0
                        while c + 16 <= h { store16(load16(w, c) + load16(p, c), o, c); c += 16 }
                        while c < h { o[c] = w[c] + p[c]; c += 1 }
                    } else {
                        o.update(from: w, count: h)
                    }
                } else if let position {
                    o.update(from: position + positionRow(r, batch: b, positions) * h, count: h)
                } else {
                    o.update(repeating: 0, count: h)
                }
            }
        }
    }

    /// Row r = i·b + j's position: `positions[r]` when given, else i.
    @inline(__always) static func positionRow(_ r: Int, batch b: Int, _ positions: UnsafePointer<Int32>?) -> Int {
        positions.map { Int($0[r]) } ?? r / b
    }

    /// `out[i, b] += position[i]` (or at `positions`, as `forward`) after the tensor group's all-reduce
    /// of the word part.
    public static func addPosition(
        _ out: UnsafeMutablePointer<Float>, position: UnsafePointer<Float>, positions: UnsafePointer<Int32>? = nil,
        seq s: Int, batch b: Int, hidden h: Int
    ) {
        ThreadBudget.parallelFor(s * b, grain: 16) { rr in
            for r in rr {
                let o = out + r * h, p = position + positionRow(r, batch: b, positions) * h
                var c = 0
                while c + 16 <= h { store16(load16(o, c) + load16(p, c), o, c); c += 16 }
                while c < h { o[c] += p[c]; c += 1 }
            }
        }
    }

    /// Single rank backward.
    /// - dout: [s, b, h]   - dword: [Vp, h] +=   - dposition: [maxPositions, h] +=
    public static func backward(
        dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
        dword: UnsafeMutablePointer<Float>, dposition: UnsafeMutablePointer<Float>,
        seq s: Int, batch b: Int, hidden h: Int
    ) {
        backward(
            dout: dout, tokens: tokens, dword: dword,
            vocab: VocabShard(start: 0, rows: Int(Int32.max), realRows: Int(Int32.max)),
            dposition: dposition, seq: s, batch: b, hidden: h)
    }

    /// Backward of the vocab-parallel embedding: only this rank's vocabulary rows get gradient.
    public static func backward(
        dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>, dword: UnsafeMutablePointer<Float>,
        vocab: VocabShard, dposition: UnsafeMutablePointer<Float>?, positions: UnsafePointer<Int32>? = nil,
        seq s: Int, batch b: Int, hidden h: Int
    ) {
        scatterAdd(
            dout: dout, dword: dword, dposition: dposition, positions: positions, seq: s, batch: b, hidden: h
        ) { r in
            let t = Int(tokens[r]) - vocab.start
            return t >= 0 && t < vocab.rows ? t : -1
        }
    }

    /// The same into the compact rows of a SparseRowGradient: token r's gradient goes to row
    /// `rows[r]` of `dword` (none when -1).
    static func backward(
        dout: UnsafePointer<Float>, rows: UnsafePointer<Int32>, dword: UnsafeMutablePointer<Float>,
        dposition: UnsafeMutablePointer<Float>?, positions: UnsafePointer<Int32>? = nil, seq s: Int, batch b: Int,
        hidden h: Int
    ) {
        scatterAdd(
            dout: dout, dword: dword, dposition: dposition, positions: positions, seq: s, batch: b, hidden: h
        ) { Int(rows[$0]) }
    }

    /// dword[row(r)] += dout[r] (when row(r) ≥ 0) and dposition[position of r] += dout[r] (when
    /// there is a position table) for every token r, in token order, each thread over its own columns.
    @inline(__always)
    private static func scatterAdd(
        dout: UnsafePointer<Float>, dword: UnsafeMutablePointer<Float>, dposition: UnsafeMutablePointer<Float>?,
        positions: UnsafePointer<Int32>?, seq s: Int, batch b: Int, hidden h: Int, row: (Int) -> Int
    ) {
        ThreadBudget.parallelFor(h, grain: 64) { cr in
            for r in 0..<(s * b) {
                let d = dout + r * h, p = dposition.map { $0 + positionRow(r, batch: b, positions) * h }
                let t = row(r)
                let inSlice = t >= 0
                let w = dword + (inSlice ? t : 0) * h
                var c = cr.lowerBound
                while c + 16 <= cr.upperBound {
                    let v = load16(d, c)
                    if inSlice { store16(load16(w, c) + v, w, c) }
                    if let p { store16(load16(p, c) + v, p, c) }
                    c += 16
                }
                while c < cr.upperBound { if inSlice { w[c] += d[c] }; p?[c] += d[c]; c += 1 }
            }
        }
    }
}

extension Embedding {
    /// `out[r] += table[indices[r]]` for every row (BERT's token-type embedding).
    /// - out: [n, h]   - table: [types, h]   - indices: [n]
    public static func addRows(
        _ out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, indices: UnsafePointer<Int32>, rows n: Int,
        hidden h: Int
    ) {
        ThreadBudget.parallelFor(n, grain: 16) { rr in
            for r in rr {
                let o = out + r * h, t = table + Int(indices[r]) * h
                var c = 0
                while c + 16 <= h { store16(load16(o, c) + load16(t, c), o, c); c += 16 }
                while c < h { o[c] += t[c]; c += 1 }
            }
        }
    }

    /// Backward of `addRows`: `dtable[indices[r]] += dout[r]` (column-parallel, rows in order).
    public static func addRowsBackward(
        dout: UnsafePointer<Float>, indices: UnsafePointer<Int32>, dtable: UnsafeMutablePointer<Float>, rows n: Int,
        hidden h: Int
    ) {
        ThreadBudget.parallelFor(h, grain: 64) { cr in
            for r in 0..<n {
                let d = dout + r * h, t = dtable + Int(indices[r]) * h
                for c in cr { t[c] += d[c] }
            }
        }
    }
}

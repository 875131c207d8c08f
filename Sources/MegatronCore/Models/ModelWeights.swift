// ModelWeights.swift — the arena a model's forward and backward passes read their weights from.
// fp32: the main parameters themselves. Reduced precision needs every matrix as its 16-bit rounding.
// Where the GEMMs run on the bf16 kernel (bf16 on a CPU with AVX512-BF16 or AMX), the kernel rounds
// fp32 operands while it packs them, bit for bit the product of the rounded values, so the arena is a
// view of the main parameters: only the tables read row by row get rounded copies of their own (the
// position and token-type embeddings), and the word embedding's rows are rounded as they are
// gathered (TransformerStack.embed). That saves a copy of the model (4 bytes per parameter).
// Otherwise (fp16, bf16 on SGEMM, or a rounded copy asked for, as generation's row-at-a-time
// products need) every slot has a copy, matrices rounded (ParameterChunk.syncWeights).
import Tensor

enum ModelWeights {
    /// Whether `precision`'s products round fp32 operands themselves (the bf16 kernel).
    static func productsRound(_ precision: Precision) -> Bool { precision == .bf16 && BF16.available }

    /// The weight arena for `params` (filled later by syncWeights).
    static func arena(
        params: ParameterArena, precision: Precision, rowTables: [Int?], roundedCopy: Bool
    ) -> ParameterArena {
        guard precision.isReduced else { return params }
        guard productsRound(precision) && !roundedCopy else { return ParameterArena(table: params.table) }
        return ParameterArena(sharing: params, own: Set(rowTables.compactMap { $0 }))
    }
}

// DocumentMasks.swift — Megatron's options for GPT samples that pack several documents, each ended
// by EOD (its get_ltor_masks_and_position_ids, applied to a sample's input tokens):
//   eod_mask_loss        the loss mask is 0 where the input token is EOD (the prediction made there,
//                        the next document's first token, does not count);
//   reset_position_ids   positions restart at 0 after each EOD;
//   reset_attention_mask a token after an EOD sees no key up to and including it, so attention stays
//                        within its document (AttentionMask.causalWithinDocuments).
// The loss of a micro-batch is then normalised as Megatron does: by its own counted tokens
// (Σ mask·loss / Σ mask, averaged over micro-batches and data-parallel ranks), or with
// calculate_per_token_loss by the global batch's counted tokens. Computed on every rank from the
// micro-batch's tokens, so every stage and tensor rank holds the same masks.
import Tensor

public struct DocumentMasks: Sendable, Equatable {
    public var eodMaskLoss = false, resetPositionIds = false, resetAttentionMask = false
    /// Normalise every token's loss by the global batch's counted tokens instead of each
    /// micro-batch's (Megatron's calculate_per_token_loss).
    public var perTokenLoss = false
    /// The id that ends a document.
    public var eod: Int32

    public init(
        eod: Int32, eodMaskLoss: Bool = false, resetPositionIds: Bool = false, resetAttentionMask: Bool = false,
        perTokenLoss: Bool = false
    ) {
        self.eod = eod
        self.eodMaskLoss = eodMaskLoss; self.resetPositionIds = resetPositionIds
        self.resetAttentionMask = resetAttentionMask; self.perTokenLoss = perTokenLoss
    }

    /// The options of a config (nil when none is on: the plain causal LM); `eod` is asked only then.
    public init?(config c: TrainingConfig, eod: @autoclosure () -> Int32) {
        guard c.eodMaskLoss || c.resetPositionIds || c.resetAttentionMask || c.calculatePerTokenLoss else {
            return nil
        }
        self.init(
            eod: eod(), eodMaskLoss: c.eodMaskLoss, resetPositionIds: c.resetPositionIds,
            resetAttentionMask: c.resetAttentionMask, perTokenLoss: c.calculatePerTokenLoss)
    }

    /// The tokens of a sample whose loss counts: all but those equal to EOD under eod_mask_loss.
    public func countedTokens(_ tokens: some Sequence<Int32>) -> Int {
        eodMaskLoss ? tokens.reduce(0) { $0 + ($1 == eod ? 0 : 1) } : tokens.reduce(0) { c, _ in c + 1 }
    }

    /// One sequence's position ids (restarting after each EOD when reset_position_ids is on) and
    /// each token's first visible key (the index after the last EOD before it; 0 without
    /// reset_attention_mask), from its input tokens.
    public func positionsAndFirstKeys(_ tokens: [Int32]) -> (positions: [Int32], firstKeys: [Int32]) {
        var positions = [Int32](repeating: 0, count: tokens.count), firstKeys = positions
        var documentStart: Int32 = 0
        for (i, t) in tokens.enumerated() {
            positions[i] = resetPositionIds ? Int32(i) - documentStart : Int32(i)
            firstKeys[i] = resetAttentionMask ? documentStart : 0
            if t == eod { documentStart = Int32(i + 1) }
        }
        return (positions, firstKeys)
    }

    /// Sets the masks of the micro-batch whose tokens `acts` holds ([s, b]): loss mask and counted
    /// rows, position ids, attention mask, and the loss-gradient weight — s·b / counted rows
    /// (Megatron's per-micro-batch mean; 0 when no row counts), or s·b · micro-batches · d /
    /// `globalCounted` with calculate_per_token_loss (the trainer's gradient scale assumes s·b
    /// tokens per micro-batch).
    public func apply(to acts: TransformerActivations, globalCounted: Int? = nil, microbatchesTimesData: Int = 1) {
        let s = acts.seq, b = acts.batch, n = s * b
        var sequences = [[Int32]](repeating: [], count: b)
        for j in 0..<b { sequences[j] = (0..<s).map { acts.tokens.base[$0 * b + j] } }
        var counted = n
        if eodMaskLoss {
            let mask = acts.lossMask ?? FloatBuffer(count: n)
            for r in 0..<n {
                let end = acts.tokens.base[r] == eod
                mask.base[r] = end ? 0 : 1
                if end { counted -= 1 }
            }
            acts.lossMask = mask
        }
        acts.countedRows = counted
        if perTokenLoss, let globalCounted {
            acts.lossGradientWeight = globalCounted > 0 ? Float(n * microbatchesTimesData) / Float(globalCounted) : 0
        } else {
            acts.lossGradientWeight = counted > 0 ? Float(n) / Float(counted) : 0
        }
        guard resetPositionIds || resetAttentionMask else { return }
        let perSequence = sequences.map(positionsAndFirstKeys)
        if resetPositionIds {
            let ids = acts.positionIds ?? Int32Buffer(count: n)
            for j in 0..<b { for i in 0..<s { ids.base[i * b + j] = perSequence[j].positions[i] } }
            acts.positionIds = ids
        }
        if resetAttentionMask { acts.attentionMask = .causalWithinDocuments(firstKeys: perSequence.map(\.firstKeys)) }
    }
}

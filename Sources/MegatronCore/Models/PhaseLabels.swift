// PhaseLabels.swift — the PhaseTimer labels of the parts of a training pass that StageCostProbe
// sorts into its cost classes (embedding, attention core, head, a layer's attention and MLP products). The models time those parts under
// these names and the probe classifies by the same sets, so renaming a phase cannot quietly move its
// time into "layer".

enum PhaseLabel {
    static let forwardEmbedding = "fwd embedding", backwardEmbedding = "bwd embedding"
    static let forwardAttentionCore = "fwd attention core", backwardAttentionCore = "bwd attention core"
    static let lmHead = "lm head + cross entropy (fwd+bwd)"
    static let maskedLMHead = "masked-LM head (fwd+bwd)", sentenceOrderHead = "sentence-order head (fwd+bwd)"
    static let taskHead = "task head (fwd+bwd)"
    static let forwardQKV = "fwd qkv (column-parallel)", backwardQKV = "bwd qkv (column-parallel)"
    static let forwardProjection = "fwd proj (row-parallel)", backwardProjection = "bwd proj (row-parallel)"
    static let forwardFC1 = "fwd fc1 + gelu (column-parallel)", backwardFC1 = "bwd fc1 (column-parallel)"
    static let forwardFC2 = "fwd fc2 (row-parallel)", backwardFC2 = "bwd fc2 + gelu (row-parallel)"

    static let embedding: Set = [forwardEmbedding, backwardEmbedding]
    static let attentionCore: Set = [forwardAttentionCore, backwardAttentionCore]
    static let head: Set = [lmHead, maskedLMHead, sentenceOrderHead, taskHead]
    /// A layer's products on each side of a sub-layer boundary (the norms, dropout and residual adds
    /// around them count half to each side).
    static let attentionProducts: Set = [forwardQKV, backwardQKV, forwardProjection, backwardProjection]
    static let mlpProducts: Set = [forwardFC1, backwardFC1, forwardFC2, backwardFC2]
}

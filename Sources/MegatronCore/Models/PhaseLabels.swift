// PhaseLabels.swift — the PhaseTimer labels of the parts of a training pass that StageCostProbe
// sorts into its cost classes (embedding, attention core, head). The models time those parts under
// these names and the probe classifies by the same sets, so renaming a phase cannot quietly move its
// time into "layer".

enum PhaseLabel {
    static let forwardEmbedding = "fwd embedding", backwardEmbedding = "bwd embedding"
    static let forwardAttentionCore = "fwd attention core", backwardAttentionCore = "bwd attention core"
    static let lmHead = "lm head + cross entropy (fwd+bwd)"
    static let maskedLMHead = "masked-LM head (fwd+bwd)", sentenceOrderHead = "sentence-order head (fwd+bwd)"
    static let taskHead = "task head (fwd+bwd)"

    static let embedding: Set = [forwardEmbedding, backwardEmbedding]
    static let attentionCore: Set = [forwardAttentionCore, backwardAttentionCore]
    static let head: Set = [lmHead, maskedLMHead, sentenceOrderHead, taskHead]
}

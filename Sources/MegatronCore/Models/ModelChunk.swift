// ModelChunk.swift — what the training core (pipeline executor, gradient buckets, optimizers,
// checkpoints, evaluation, conversion) knows of a model: a chunk declares its parameter table and
// holds the arenas it describes (ParameterChunk); it runs forward and backward of its stage on an
// activation set handed to it, reports its loss and announces when gradients are final
// (ModelChunk). GPTModel conforms; another model family conforms with files under Models/ only.
//
// The boundary contract (what the pipeline sends between stages) is one tensor each way, [nS, h]:
//   stageInput      the input of the chunk's first layer (received, or made by the embedding)
//   stageOutput     the output of its last layer (sent to the next stage)
//   boundaryGradient ∂loss/∂stageOutput before `backward` (received), ∂loss/∂stageInput after it
import Distributed
import Tensor

/// One micro-batch's activation memory of one chunk, as the pipeline sees it.
public protocol ChunkActivations: AnyObject {
    var stageInput: UnsafeMutablePointer<Float> { get }
    var stageOutput: UnsafeMutablePointer<Float> { get }
    var boundaryGradient: UnsafeMutablePointer<Float> { get }
    /// Elements of a boundary tensor (rows this rank holds × hidden).
    var boundaryCount: Int { get }
    /// Bytes this set holds.
    var bytes: Int { get }
    /// Bytes the transformer layers hold for one micro-batch (their inputs and saved activations).
    var layerBytes: Int { get }
    /// Weight gradients a zero-bubble B pass left for the W pass (PassContext.deferWeightGradients).
    var deferredWeightGradients: DeferredWeightGradients { get }
}

/// A model chunk's parameters: declared once in `table`; fp32 main values, the values forward and
/// backward read (16-bit roundings in reduced precision, see `ModelWeights`), and gradients, each an
/// arena of the table.
public protocol ParameterChunk: AnyObject {
    var table: ParameterTable { get }
    var params: ParameterArena { get }
    var weights: ParameterArena { get }
    var grads: ParameterArena { get }
    var precision: Precision { get }
    var stage: StagePlan { get }
    var tensorParallel: TensorParallel { get }
    /// The parameter shared with another pipeline stage (the tied word embedding: the input
    /// embedding on the first stage, its copy on the last), whose gradient is summed over the
    /// embedding group; nil when this chunk holds none or holds both ends.
    var tiedSlot: Int? { get }
    /// The model's sizes as checkpoints record them (and check on load), and its seed.
    var modelSizes: [(String, Int)] { get }
    var seed: Int { get }
    /// One line for the start-up log: the family and its sizes, the whole model's parameter count.
    var modelDescription: String { get }
}

extension ParameterChunk {
    /// Whether the word embedding is read from the main parameters (ModelWeights), so its gathered
    /// rows must be rounded to the run's precision.
    var roundsWordRows: Bool {
        guard precision.isReduced, let word = table.slot(named: GPTSlots.wordEmbeddingsName) else { return false }
        return weights.pointer(word) == params.pointer(word)
    }

    /// Refreshes the 16-bit model weights from the fp32 main parameters (reduced precision; a no-op
    /// in fp32; only the slots with copies of their own). Call after anything writes `params`: an
    /// optimizer step, a checkpoint load.
    public func syncWeights() {
        guard precision.isReduced else { return }
        for (slot, spec) in table.specs.enumerated() where weights.pointer(slot) != params.pointer(slot) {
            weights.pointer(slot).update(from: params.pointer(slot), count: spec.count)
            if spec.shape.count > 1 { precision.round(weights.pointer(slot), count: spec.count) }
        }
    }

    /// After the step's last micro-batch: with sequence parallelism the norm parameters saw only
    /// this rank's rows, and qk_layernorm's weights only this rank's heads, so their gradients are
    /// all-reduced over the tensor group.
    public func finalizeGradients() throws {
        guard tensorParallel.size > 1 else { return }
        for (slot, spec) in table.specs.enumerated() where spec.isPartial(under: tensorParallel) {
            try tensorParallel.group?.allReduceSum(grads.pointer(slot), count: spec.count)
        }
    }
}

/// A model chunk that runs its stage.
public protocol ModelChunk: ParameterChunk {
    associatedtype Activations: ChunkActivations
    /// The transformer's sizes (GEMM shapes, sequence length, vocabulary).
    var transformer: GPTConfig { get }
    /// A new activation set for one micro-batch of this chunk.
    func makeActivations() -> Activations
    /// Forward of the micro-batch in `acts`; on the last stage also the loss, with the head's
    /// backward fused in when `gradScale` is given (training). Returns the summed token loss on the
    /// last stage, nil elsewhere.
    func forward(_ acts: Activations, _ ctx: PassContext, gradScale: Float?) throws -> Double?
    /// Backward of the micro-batch in `acts` after its training forward: gradients of
    /// gradScale·Σ losses are added to `grads`; ∂loss/∂stageInput is left in `acts.boundaryGradient`.
    func backward(_ acts: Activations, _ ctx: PassContext) throws
    /// When set (the step's last micro-batch), `backward` reports the slots whose gradients are
    /// final as soon as they are, so data-parallel reduction can start (GradientBuckets).
    var onGradientsFinal: (([Int]) -> Void)? { get set }
    /// The input word embedding's slot and the tokens one micro-batch embeds; nil on a chunk without
    /// the input embedding.
    var inputWordEmbedding: (slot: Int, tokensPerMicrobatch: Int)? { get }
    /// When set (the step's last micro-batch, data-parallel sparse ending): the embedding backward
    /// adds the word rows' gradients here instead of to `grads`, and `backward` reports the word
    /// embedding final before the layers' backward (SparseRowGradient).
    var sparseWordGradient: SparseRowGradient? { get set }
    /// When set, forward and backward add their per-phase wall times to it (`megatron benchmark`).
    var timer: PhaseTimer? { get set }
    /// What `forward`'s loss of one micro-batch is a sum over (GPT: its s·b tokens; 1 for a model
    /// whose micro-batch loss is already a mean): the trainer's gradient scale divides by this ×
    /// micro-batches × d.
    var lossUnitsPerMicrobatch: Int { get }
    /// The units the loss of the micro-batch just run forward in `acts` summed (last stage): the
    /// reported loss is Σ losses / Σ these (GPT under a loss mask: its counted rows). By default
    /// `lossUnitsPerMicrobatch`.
    func lossUnits(_ acts: Activations) -> Int
    /// Korthikanti et al.'s activation formula (selective form, 4-byte tensors) for this chunk's
    /// layers of one micro-batch, beside `Activations.layerBytes` in the memory report.
    var layerActivationFormulaBytes: Double { get }
    /// Model FLOPs of one iteration of `globalBatch` sequences (Megatron's formula; forward and backward).
    func flopsPerIteration(globalBatch: Int) -> Double
    /// The parts of the loss the model reports apart (log label, metrics key); none by default.
    var lossComponentNames: [(log: String, json: String)] { get }
    /// Each part's value for the micro-batch just run forward in `acts` (last stage).
    func lossComponents(_ acts: Activations) -> [Double]
    /// What validation reports besides the loss (log label, metrics key), beginning with the loss
    /// parts in `lossComponentNames` order; none by default.
    var evaluationMetricNames: [(log: String, json: String)] { get }
    /// Each metric's value for the micro-batch just run forward (evaluation) in `acts` (last stage).
    func evaluationMetrics(_ acts: Activations) -> [Double]
    /// How much that micro-batch's metrics weigh in the average over micro-batches (1 by default;
    /// finetuning: its counted examples, so accuracies are over examples and filler counts nowhere).
    func evaluationWeight(_ acts: Activations) -> Double
}

extension ModelChunk {
    public func lossUnits(_ acts: Activations) -> Int { lossUnitsPerMicrobatch }
    public var lossComponentNames: [(log: String, json: String)] { [] }
    public func lossComponents(_ acts: Activations) -> [Double] { [] }
    public var evaluationMetricNames: [(log: String, json: String)] { [] }
    public func evaluationMetrics(_ acts: Activations) -> [Double] { [] }
    public func evaluationWeight(_ acts: Activations) -> Double { 1 }
}

/// Which step and micro-batch a pass belongs to: keys the dropout masks.
public struct PassContext: Sendable {
    public let iteration: Int, microbatch: Int, training: Bool
    /// A zero-bubble B pass: the transformer layers' weight gradients are left in the activation
    /// set's `deferredWeightGradients` for a later W pass instead of being computed now. In an F pass
    /// on the last stage (GPT), the same for the LM head's weight gradient, whose backward runs
    /// fused with the loss.
    public var deferWeightGradients = false
    public init(iteration: Int, microbatch: Int, training: Bool) {
        self.iteration = iteration; self.microbatch = microbatch; self.training = training
    }
}

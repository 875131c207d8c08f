// TrainingOptimizer.swift — what the trainer and checkpoints ask of an optimizer, whichever way it
// keeps its state: ReplicatedOptimizer (one ChunkOptimizer per model chunk, state on every data-parallel
// rank) or DistributedOptimizer (state and main gradients sharded over the data-parallel group).
// A step, after the data-parallel reduction:
//     finalizeGradients → [unscaleAndFindNonFinite] → gradientNorm → update(lr, clip coefficient)
import Distributed

public protocol TrainingOptimizer: AnyObject {
    /// Completed optimizer steps (the t of Adam's bias corrections).
    var step: Int { get set }
    /// The update rule and its hyperparameters (its state names are the checkpoint's).
    var hyper: OptimizerHyperparameters { get }
    /// Whether the state is sharded over the data-parallel group (recorded in checkpoints).
    var isSharded: Bool { get }
    /// The phase name of `update` in timing tables.
    var updatePhase: String { get }
    /// Sums the sequence-parallel norm parameters' gradients over the tensor group.
    func finalizeGradients() throws
    /// Divides the gradients by `scale` (unless 1) and returns whether any rank holds a non-finite
    /// one (Megatron's found_inf, reduced with MAX over every rank holding gradients).
    func unscaleAndFindNonFinite(scale: Float) throws -> Bool
    /// ‖g‖₂ over the whole model, every parameter counted once: split parameters by every tensor
    /// rank, replicated ones by tensor rank 0, tied copies never.
    func gradientNorm() throws -> Double
    /// Gradient elements exactly 0 over the whole model, each parameter counted once as in the norm
    /// (Megatron's log_num_zeros_in_grad). A collective: every rank calls it.
    func zeroGradientCount() throws -> Int
    /// The update at `lr` (`decoupledLR` for the word embedding and its tied copy, when given) from
    /// the gradients clipped by `clipCoefficient` (GradClipping.coefficient; the multiply happens as
    /// the update reads each gradient, which equals scaling them first bit for bit, and the stored
    /// gradients are left unscaled); afterwards every rank holds its chunks' whole updated main parameters.
    func update(lr: Float, decoupledLR: Float?, clipCoefficient: Double) throws
    /// Test hook: writes +∞ into the first gradient element this rank holds (an overflow).
    func injectOverflow()

    // MARK: Checkpoints
    /// The state as whole per-chunk arenas (per chunk, in `hyper.stateNames` order), when this
    /// optimizer keeps it so (it goes into the mp_rank files); nil when its state is sharded.
    var chunkState: [[ParameterArena]]? { get }
    /// Arenas to read a checkpoint's state into (per chunk, in `hyper.stateNames` order), then
    /// `adoptState` them.
    func stateForLoading() -> [[ParameterArena]]
    func adoptState(_ state: [[ParameterArena]])
    /// Writes this rank's shard of sharded state into the checkpoint directory being written
    /// (OptimizerShardFiles.swift); nothing when the state goes into the rank files.
    func writeShard(into directory: String, parallel: ParallelState) throws
}

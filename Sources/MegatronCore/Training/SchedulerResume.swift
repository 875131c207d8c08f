// SchedulerResume.swift — Megatron's rule for the learning-rate schedule on resume
// (OptimizerParamScheduler.load_state_dict, `_check_and_set`): the checkpoint's lr, min_lr, warm-up
// and decay lengths and decay style must equal this run's, unless `override_opt_param_scheduler`
// (use this run's) or `use_checkpoint_opt_param_scheduler` (keep the checkpoint's) says otherwise.
// A longer train_iters without lr_decay_iters changes the decay length, so it needs one of the two.
import Checkpoint

public enum SchedulerResumePolicy: Sendable {
    /// Any difference is an error naming the value on both sides.
    case check
    /// This run's values (Megatron's --override-opt_param-scheduler).
    case override
    /// The checkpoint's values (Megatron's --use-checkpoint-opt_param-scheduler).
    case useCheckpoint
}

public struct ScheduleMismatch: Error, CustomStringConvertible {
    public let path: String
    public let differences: [String]
    public var description: String {
        "resuming from '\(path)' would change the learning-rate schedule: \(differences.joined(separator: "; ")). "
            + "Pass --override-opt-param-scheduler to use this run's values, or "
            + "--use-checkpoint-opt-param-scheduler to keep the checkpoint's"
    }
}

extension SchedulerResumePolicy {
    /// The schedule to continue with, given this run's and the stored one (attributes of `file`).
    func reconcile(_ current: LRSchedule, with file: HDF5File) throws -> LRSchedule {
        if self == .override { return current }
        var stored = current
        stored.maxLR = try file.doubleAttribute("opt_param_scheduler_max_lr")
        stored.minLR = try file.doubleAttribute("opt_param_scheduler_min_lr")
        stored.warmupSteps = try file.intAttribute("opt_param_scheduler_warmup_steps")
        stored.decaySteps = try file.intAttribute("opt_param_scheduler_decay_steps")
        let style = try file.stringAttribute("opt_param_scheduler_decay_style")
        stored.style = LRDecayStyle(rawValue: style) ?? current.style
        if self == .useCheckpoint { return stored }
        var differences: [String] = []
        func compare(_ what: String, _ checkpoint: String, _ run: String) {
            if checkpoint != run { differences.append("\(what): checkpoint \(checkpoint), this run \(run)") }
        }
        compare("lr", "\(stored.maxLR)", "\(current.maxLR)")
        compare("min_lr", "\(stored.minLR)", "\(current.minLR)")
        compare("warm-up (lr_warmup_iters in samples)", "\(stored.warmupSteps)", "\(current.warmupSteps)")
        compare(
            "decay length (lr_decay_iters, default train_iters, in samples)", "\(stored.decaySteps)",
            "\(current.decaySteps)")
        compare("lr_decay_style", style, current.style.rawValue)
        guard differences.isEmpty else { throw ScheduleMismatch(path: file.path, differences: differences) }
        return current
    }
}

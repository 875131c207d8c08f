// ExitSignal.swift — Megatron's exit_signal_handler: a handler for one signal (SIGTERM by default)
// that only records its arrival; the training loop asks every rank at the end of each iteration
// (Trainer.exitReason), and if any rank got it, all save and stop together. A batch system's
// notice before it kills a job (SLURM sends SIGTERM, then SIGKILL after KillWait) thus leaves a
// checkpoint of the last finished iteration.
import Foundation

/// Set by the handler (async-signal-safe: one aligned word store), read by the training loop.
nonisolated(unsafe) private var exitSignalArrived: sig_atomic_t = 0

public enum ExitSignal {
    /// The signals `exit_signal` may name.
    public static let names: [(name: String, number: Int32)] = [
        ("SIGTERM", SIGTERM), ("SIGINT", SIGINT), ("SIGUSR1", SIGUSR1), ("SIGUSR2", SIGUSR2), ("SIGHUP", SIGHUP),
    ]

    public static func number(_ name: String) -> Int32? { names.first { $0.name == name }?.number }

    /// Catches `name` from now on (instead of its default action, which ends the process).
    public static func install(_ name: String) {
        guard let n = number(name) else { return }
        signal(n) { _ in exitSignalArrived = 1 }
    }

    /// Whether the signal arrived on this rank.
    public static var received: Bool { exitSignalArrived != 0 }
}

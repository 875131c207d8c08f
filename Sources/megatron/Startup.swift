// Startup.swift — what every MPI subcommand does first, in this order: read the config (file +
// flags), pick the BLAS kernels (may re-execute the process, so before MPI starts), start MPI,
// validate the config against the world size on every rank, agree across ranks (exit 2 on any
// config error, before any other collective), and set the thread budget.
import Distributed
import Foundation
import MegatronCore
import Tensor

struct Startup {
    let config: TrainingConfig
    let runtime: MPIRuntime
    let blasNote: String
    let threads: Int

    /// The config stored in checkpoint `load`, as `begin`'s `base` (which a `--config` file
    /// overrides); exits 2 when there is neither.
    static func storedConfig(load: String, configPath: String?) -> (json: String, source: String)? {
        let stored = CheckpointReader.storedConfigJSON(root: load)
        if configPath == nil && stored == nil {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "load", value: "\"\(load)\"",
                    rule: "holds no readable checkpoint with a stored config; check the path or pass --config"), code: 2
            )
        }
        return stored.map { ($0, "the config stored in \(load)") }
    }

    /// `adjust` edits the parsed config before validation (e.g. the benchmark turns off saving).
    /// `base` (JSON text and where it came from) is applied before the flags when there is no file.
    /// `training` false skips the rules only a training schedule needs (evaluation, generation).
    static func begin(
        configPath: String?, flags: [String], base: (json: String, source: String)? = nil, training: Bool = true,
        adjust: (inout TrainingConfig) -> Void = { _ in }
    ) -> Startup {
        var cfg = TrainingConfig()
        var configError: ConfigError? = nil
        do {
            if configPath == nil, let base {
                try ConfigLoader.applyJSON(Data(base.json.utf8), source: base.source, to: &cfg)
                try ConfigLoader.applyFlags(flags, to: &cfg)
                ConfigLoader.inferDefaults(&cfg)
            } else {
                cfg = try ConfigLoader.parse(path: configPath, flags: flags)
            }
        } catch let e as ConfigError { configError = e } catch {
            configError = .invalidValue(key: "config", value: "\(configPath ?? "-")", rule: "\(error)")
        }
        adjust(&cfg)
        let blasNote = configError == nil ? BLASKernels.select(cfg.blasCoretype) : ""  // may re-exec this process
        let runtime: MPIRuntime
        do { runtime = try MPIRuntime.start(progress: cfg.communicationProgress) } catch {
            CLIErrors.fail(error, code: 1)
        }
        if configError == nil {
            do { try ConfigValidation.validate(cfg, worldSize: runtime.world.size, training: training) } catch let e
                as ConfigError
            {
                configError = e
            } catch {
                configError = .invalidValue(key: "config", value: "\(configPath ?? "-")", rule: "\(error)")
            }
        }
        CLIErrors.agreeOnConfig(configError, runtime: runtime)
        Watchdog.shared.start(timeout: cfg.distributedTimeoutMinutes * 60, worldRank: runtime.world.rank)
        if cfg.distributedTimeoutMinutes > 0 {
            do { try Watchdog.shared.connect(world: runtime.world) } catch {
                CLIErrors.fail(error, code: 1, runtime: runtime, rank: runtime.world.rank)
            }
        }
        let threads = CLIThreads.resolve(cfg.numThreads)
        ThreadBudget.configure(threads: threads)
        do {
            try IdleWait.configure(cfg.idleWait, threads: threads, world: runtime.world)
        } catch {
            CLIErrors.fail(error, code: 1, runtime: runtime, rank: runtime.world.rank)
        }
        return Startup(config: cfg, runtime: runtime, blasNote: blasNote, threads: threads)
    }
}

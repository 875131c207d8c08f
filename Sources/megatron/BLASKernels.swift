// BLASKernels.swift — makes OpenBLAS use the best kernels for this CPU (`blas_coretype`).
// OpenBLAS picks its kernels in a library constructor, before main, from OPENBLAS_CORETYPE; the
// reference machine presets OPENBLAS_CORETYPE=Haswell, which halves SGEMM on AVX-512 CPUs. So
// `auto` (the default) removes a preset and re-executes this process once, letting OpenBLAS
// detect the CPU; `env` keeps the environment's choice; any other value is used as the core type.
// OPENBLAS_THREAD_TIMEOUT, when unset, is set to 4 in the same re-execution (see `threadTimeout`).
import Foundation
import Tensor

enum BLASKernels {
    static let marker = "MEGATRON_BLAS_REEXEC"
    /// OpenBLAS's idle worker threads spin (calling sched_yield) for 2^28 cycles after each product
    /// unless this is set; on a few cores they then take time from the elementwise passes between
    /// products. 4 (2^4 cycles) lets them sleep at once: evaluation 8–23 % faster on 2 cores (Intel Xeon).
    static let threadTimeout = ("OPENBLAS_THREAD_TIMEOUT", "4")

    /// Returns a note for the start-up line (the kernels, then the thread timeout in force); may
    /// replace the process (execv) and not return.
    static func select(_ setting: String) -> String {
        let kernels = selectKernels(setting)
        let timeout = ProcessInfo.processInfo.environment[threadTimeout.0] ?? "unset"
        return kernels + "; \(threadTimeout.0)=\(timeout)"
    }

    private static func selectKernels(_ setting: String) -> String {
        let env = ProcessInfo.processInfo.environment
        let current = env["OPENBLAS_CORETYPE"]
        if let previous = env[marker] {
            unsetenv(marker)
            // An empty mark: only the thread timeout was added; the kernels are as the setting asks.
            if previous.isEmpty { return selectKernels(setting) }
            return
                "\(setting): OPENBLAS_CORETYPE=\(previous) from the environment replaced, OpenBLAS chose "
                + "\(BLAS.coreName)"
        }
        var note = "", replacedCore = false
        switch setting {
        case "env":
            note = "env: OPENBLAS_CORETYPE=\(current ?? "unset") kept"
        case "auto":
            if current == nil {
                note = "auto: OpenBLAS detected the CPU"
            } else {
                unsetenv("OPENBLAS_CORETYPE")
                replacedCore = true
            }
        default:
            if current == setting {
                note = setting
            } else {
                setenv("OPENBLAS_CORETYPE", setting, 1)
                replacedCore = true
            }
        }
        let addTimeout = env[threadTimeout.0] == nil
        if addTimeout { setenv(threadTimeout.0, threadTimeout.1, 1) }
        guard replacedCore || addTimeout else { return note }
        return reexec(marking: replacedCore ? current ?? "unset" : "")
    }

    /// Replaces this process with a fresh copy of itself; returns a note only if that failed.
    private static func reexec(marking previous: String) -> String {
        setenv(marker, previous, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached if execv failed: carry on with the kernels already loaded.
        unsetenv(marker)
        return "could not re-execute (\(String(cString: strerror(errno)))); kept \(BLAS.coreName)"
    }
}

// BLASKernels.swift — makes OpenBLAS use the best kernels for this CPU (`blas_coretype`).
// OpenBLAS picks its kernels in a library constructor, before main, from OPENBLAS_CORETYPE; the
// reference machine presets OPENBLAS_CORETYPE=Haswell, which halves SGEMM on AVX-512 CPUs. So
// `auto` (the default) removes a preset and re-executes this process once, letting OpenBLAS
// detect the CPU; `env` keeps the environment's choice; any other value is used as the core type.
import Foundation
import Tensor

enum BLASKernels {
    static let marker = "MEGATRON_BLAS_REEXEC"

    /// Returns a note for the start-up line; may replace the process (execv) and not return.
    static func select(_ setting: String) -> String {
        let env = ProcessInfo.processInfo.environment
        let current = env["OPENBLAS_CORETYPE"]
        if let previous = env[marker] {
            unsetenv(marker)
            return
                "\(setting): OPENBLAS_CORETYPE=\(previous) from the environment replaced, OpenBLAS chose "
                + "\(BLAS.coreName)"
        }
        switch setting {
        case "env":
            return "env: OPENBLAS_CORETYPE=\(current ?? "unset") kept"
        case "auto":
            guard let current else { return "auto: OpenBLAS detected the CPU" }
            unsetenv("OPENBLAS_CORETYPE")
            return reexec(marking: current)
        default:
            if current == setting { return "\(setting)" }
            setenv("OPENBLAS_CORETYPE", setting, 1)
            return reexec(marking: current ?? "unset")
        }
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

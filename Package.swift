import Foundation
// swift-tools-version:6.0
// megatron: a PTD-P (tensor × pipeline × data parallel) GPT trainer for CPU clusters over MPI.
//
// Build switch: release builds generate code for the building CPU (`-march=native`; AVX-512 on the
// reference machine, 3–4× faster kernels than the generic x86-64 target). To build a binary that
// runs on other x86-64 machines, set `MEGATRON_MARCH` before building, e.g.
//     MEGATRON_MARCH=x86-64-v3 swift build -c release     # AVX2 + FMA machines
//     MEGATRON_MARCH=none swift build -c release          # the toolchain's default target
import PackageDescription

let march = ProcessInfo.processInfo.environment["MEGATRON_MARCH"] ?? "native"
let cpuFlags: [String] = march == "none" ? [] : ["-Xcc", "-march=\(march)"]
/// Compute targets: CPU-specific code generation, and optimised even in debug builds.
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(cpuFlags),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

/// `MEGATRON_FUZZ=1` adds `megatron-fuzz`, the libFuzzer binary (scripts/fuzz.sh builds it with
/// `-sanitize=fuzzer`, which supplies its main; an ordinary build could not link it).
let fuzzing = ProcessInfo.processInfo.environment["MEGATRON_FUZZ"] == "1"
let fuzzTargets: [Target] =
    fuzzing
    ? [
        .executableTarget(
            name: "megatron-fuzz", dependencies: ["FuzzTargets"], swiftSettings: [.unsafeFlags(["-parse-as-library"])])
    ] : []

let package = Package(
    name: "megatron",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "megatron", targets: ["megatron"]),
        .library(name: "MegatronCore", targets: ["MegatronCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // `megatron serve`: Megatron's text-generation HTTP API.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // MARK: - C libraries (systemLibrary shims: static inline getters only)
        .systemLibrary(
            name: "CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CHDF5", pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]),

        // MARK: - C kernels (bf16 GEMM: AVX512-BF16 selected at run time, portable fallback)
        .target(name: "CBF16", cSettings: [.unsafeFlags(["-O3"])]),

        // MARK: - Libraries
        .target(name: "Tensor", dependencies: ["COpenBLAS", "CBF16"], swiftSettings: kernelSettings),
        .target(name: "Distributed", dependencies: ["CMPI"]),
        .target(name: "Checkpoint", dependencies: ["CHDF5"]),
        .target(
            name: "MegatronCore", dependencies: ["Tensor", "Distributed", "Checkpoint"],
            swiftSettings: kernelSettings),

        // MARK: - The command-line tool
        .executableTarget(
            name: "megatron",
            dependencies: [
                "MegatronCore", "Tensor", "Distributed", "Checkpoint",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]),

        // MARK: - Fuzzing: every input parser's entry point (replayed by FuzzCorpusTests, fuzzed by scripts/fuzz.sh)
        .target(name: "FuzzTargets", dependencies: ["MegatronCore", "Checkpoint"]),

        // MARK: - Tests (mirror Sources; CLITests run the built binary)
        // Shared helpers: running the binary (alone or under mpirun), metrics files, loss and tensor comparison.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint"]),
        .testTarget(
            name: "MegatronCoreTests", dependencies: ["MegatronCore", "Tensor", "Checkpoint", "TestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "CLITests", dependencies: ["megatron", "MegatronCore", "Checkpoint", "Tensor", "TestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "FuzzTests", dependencies: ["FuzzTargets", "TestSupport"], exclude: ["Corpus", "Regressions"]),
    ] + fuzzTargets
)

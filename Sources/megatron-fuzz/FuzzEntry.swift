// FuzzEntry.swift — the libFuzzer entry of `megatron-fuzz`, built only by scripts/fuzz.sh
// (MEGATRON_FUZZ=1, `-sanitize=fuzzer`: libFuzzer supplies main). MEGATRON_FUZZ_TARGET names the
// FuzzTarget whose reader receives every input.
import Foundation
import FuzzTargets

nonisolated(unsafe) var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(
    _ argc: UnsafeMutablePointer<CInt>?,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?
) -> CInt {
    let name = ProcessInfo.processInfo.environment["MEGATRON_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("error: MEGATRON_FUZZ_TARGET '\(name)' is not one of \(names)\n".utf8))
        exit(2)
    }
    if let reason = target.unavailableReason {
        FileHandle.standardError.write(Data("error: fuzz target \(name) cannot run: \(reason)\n".utf8))
        exit(2)
    }
    selected = target
    return 0
}

/// libFuzzer's own driver (linked in by `-sanitize=fuzzer`).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM links an executable's entry point under `<module>_main` and points `main` at it; this one
/// hands the command line to libFuzzer.
@_cdecl("megatron_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzOneInput(data, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let target = selected else { return 0 }
    target.run(data.map { Data(bytes: $0, count: size) } ?? Data())
    return 0
}

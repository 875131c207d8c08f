// PhaseTimer.swift — optional wall-clock accounting per named phase of a step (for `megatron
// benchmark`). Code under measurement calls `timer?.measure("name") { … }`; with no timer the
// cost is one nil check.
import Dispatch

public final class PhaseTimer: @unchecked Sendable {
    public private(set) var seconds: [String: Double] = [:]
    public private(set) var order: [String] = []

    public init() {}

    @inline(__always)
    public func measure<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = try body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        if seconds[name] == nil { order.append(name) }
        seconds[name, default: 0] += dt
        return r
    }

    public func reset() { seconds = [:]; order = [] }
}

extension Optional where Wrapped == PhaseTimer {
    /// `timer.measure("x") { … }` on an optional timer: runs `body` either way.
    @inline(__always)
    public func measure<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        if let t = self { return try t.measure(name, body) }
        return try body()
    }
}

// Buffer.swift — owned, 64-byte-aligned Float storage (arenas) and the `Shape` helper.
// Parameters, gradients, Adam moments and activations each live in one FloatBuffer; layers get
// views (raw pointers + shapes) into them, never their own allocations inside a step.

/// A zero-initialised, 64-byte aligned block of `count` floats, freed on deinit — or a block of
/// memory owned by someone else (`borrowing:`), which it keeps alive and never frees.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>
    private let owner: AnyObject?

    public init(count: Int) {
        precondition(count >= 0)
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
        owner = nil
    }

    /// `count` floats at `memory`, which `owner` keeps valid (a shared-memory window); contents as found.
    public init(borrowing memory: UnsafeMutableRawPointer, count: Int, owner: AnyObject) {
        self.count = count
        base = memory.bindMemory(to: Float.self, capacity: max(count, 1))
        self.owner = owner
    }

    deinit { if owner == nil { UnsafeMutableRawPointer(base).deallocate() } }

    public subscript(i: Int) -> Float {
        get { base[i] }
        set { base[i] = newValue }
    }

    public func pointer(at offset: Int) -> UnsafeMutablePointer<Float> {
        precondition(offset >= 0 && offset <= count)
        return base + offset
    }

    public func zero() { base.update(repeating: 0, count: count) }
}

/// An Int32 block (token ids), zero-initialised.
public final class Int32Buffer: @unchecked Sendable {
    public let count: Int
    public let base: UnsafeMutablePointer<Int32>
    public init(count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { base.deallocate() }
    public subscript(i: Int) -> Int32 {
        get { base[i] }
        set { base[i] = newValue }
    }
}

/// Shapes are plain `[Int]`, row-major, last dimension contiguous.
extension Array where Element == Int {
    public var elementCount: Int { reduce(1, *) }
}

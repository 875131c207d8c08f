// HeldTensor.swift — a tensor a layer keeps from its forward pass for its backward pass (the
// LayerActivations entries that feed a GEMM). fp32 runs keep it in fp32 where it is computed. bf16
// and fp16 runs round it to 16 bits where it is produced anyway (Precision.swift), so it is kept
// exactly as 16-bit words, in half the memory: the layer computes it in a staging buffer shared by
// the chunk's layers, `roundAndKeep` rounds it there and writes its words, and `restore` widens the
// words into the staging buffer again before the backward pass (or a deferred weight gradient)
// reads it.
import Tensor

public struct HeldTensor: @unchecked Sendable {
    /// Where the tensor is computed and read: its fp32 storage, or (16-bit runs) the staging buffer,
    /// valid from `roundAndKeep` until the next tensor of that buffer is produced, and after `restore`.
    public let values: UnsafeMutablePointer<Float>
    /// The kept 16-bit words (bf16/fp16 runs); nil when the values are the storage.
    public let words: UnsafeMutablePointer<UInt16>?
    public let count: Int
    public let precision: Precision

    /// Rounds the values to the run's precision and (16-bit runs) keeps their words.
    public func roundAndKeep() {
        if let words {
            precision.roundKeeping(values, words: words, count: count)
        } else {
            precision.round(values, count: count)
        }
    }

    /// Puts the kept values back into `values` (nothing to do in fp32).
    public func restore() {
        if let words { precision.restore(words, into: values, count: count) }
    }
}

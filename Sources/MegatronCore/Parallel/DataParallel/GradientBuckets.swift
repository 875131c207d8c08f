// GradientBuckets.swift — data-parallel gradient reduction in buckets (Megatron's
// param_and_grad_buffer): each model chunk's gradient arena is cut into contiguous buckets of about
// `ddp_bucket_size` elements, in reverse declaration order (≈ the order backward finishes them).
// During the step's last micro-batch the model reports parameters whose gradients are final; a
// bucket whose parameters are all final starts its non-blocking all-reduce at once, overlapping the
// rest of the backward pass. `finish` starts what is left and waits for everything.
import Distributed

public final class GradientBuckets {
    struct Bucket {
        let chunk: Int
        let offset: Int, count: Int
        let slots: [Int]
        var pending = 0
        var request: Request? = nil
    }

    let chunks: [GPTModel]
    let group: Communicator
    private var buckets: [Bucket] = []
    private var bucketOf: [[Int]] = []   // [chunk][slot] → bucket index
    private var failure: Error? = nil
    /// Elements of gradient whose all-reduce started before `finish` (overlapped with backward).
    public private(set) var overlappedElements = 0
    public private(set) var totalElements = 0

    public init(chunks: [GPTModel], group: Communicator, bucketElements: Int) {
        self.chunks = chunks
        self.group = group
        for (c, model) in chunks.enumerated() {
            let table = model.table
            var slotBucket = [Int](repeating: 0, count: table.specs.count)
            var current: [Int] = []
            func close() {
                guard let last = current.last, let first = current.first else { return }
                // Slots are in descending order: memory runs from the last slot's offset to the end of the first's.
                let start = table.offsets[last]
                let end = first + 1 < table.offsets.count ? table.offsets[first + 1] : table.totalCount
                for s in current { slotBucket[s] = buckets.count }
                buckets.append(Bucket(chunk: c, offset: start, count: end - start, slots: current))
                current = []
            }
            var size = 0
            for slot in stride(from: table.specs.count - 1, through: 0, by: -1) {
                current.append(slot)
                size += table.specs[slot].count
                if size >= bucketElements { close(); size = 0 }
            }
            close()
            bucketOf.append(slotBucket)
        }
        totalElements = buckets.reduce(0) { $0 + $1.count }
    }

    public var bucketCount: Int { buckets.count }

    /// Before the step's last micro-batch: nothing is final yet.
    public func beginLastMicrobatch() {
        overlappedElements = 0
        failure = nil
        for i in buckets.indices { buckets[i].pending = buckets[i].slots.count; buckets[i].request = nil }
    }

    /// The gradients of `slots` of chunk `chunk` will not change again in this step.
    public func markFinal(chunk: Int, slots: [Int]) {
        for slot in slots {
            let b = bucketOf[chunk][slot]
            buckets[b].pending -= 1
            if buckets[b].pending == 0 && buckets[b].request == nil {
                start(b)
                overlappedElements += buckets[b].count
            }
        }
    }

    /// Starts every bucket not yet started and waits for all; the gradients are then summed over the group.
    public func finish() throws {
        for b in buckets.indices where buckets[b].request == nil { start(b) }
        for b in buckets.indices { try buckets[b].request?.wait(); buckets[b].request = nil }
        if let failure { throw failure }
    }

    private func start(_ b: Int) {
        let bucket = buckets[b]
        do {
            buckets[b].request = try group.iallReduceSum(chunks[bucket.chunk].grads.storage.base + bucket.offset, count: bucket.count)
        } catch { failure = failure ?? error }
    }
}

// PipelineExecutor.swift — runs this rank's list of a PipelineSchedule over MPI point-to-point.
// Sends copy the tensor into a pooled buffer and are non-blocking until the end of the iteration.
// Receives are pre-posted: before each compute the next receive of the list is posted into a pooled
// staging buffer (copied into the activation set when the list reaches it), and at every layer
// boundary MPI_Test (or a progress thread: CommunicationProgress) drives the outstanding transfers, so a transfer overlaps the
// compute before it. The order of completions is the list's, the semantics the ScheduleSimulator
// proved deadlock-free; MEGATRON_PIPELINE_PREPOST=0 turns pre-posting off (blocking receives, for
// measuring). Each (chunk, micro-batch) in flight owns an activation set from its chunk's pool,
// sized by the schedule's peak.
//
// Tags cannot confuse directions, chunks or micro-batches (p = 2 included, where the next and
// previous stage are the same rank): tag = direction + 2·(receiving chunk + v·micro-batch).
// With t > 1 and no sequence parallelism, the PTD-P scatter/gather optimisation sends each tensor
// rank's 1/t of the boundary activation and all-gathers it over the tensor group on arrival.
// Zero-bubble schedules: a B action runs the backward with the transformer layers' weight gradients
// deferred into the activation set (DeferredWeightGradients), its W action runs them; the set is
// released after W. A B directly followed by its W with no send between (the first stage) runs fused.
// On the last stage the F action runs the LM head's backward with the loss; its weight gradient is
// deferred the same way (the kept ∂loss/∂logits cost s·b·V/t floats per set), so that F is no
// heavier than the others' by a GEMM that only the optimizer needs.
// The executor knows a model only as ModelChunk: its stage plan and its activation sets' boundaries.
import Distributed
import Foundation
import Tensor

public final class PipelineExecutor<Chunk: ModelChunk> {
    public typealias Activations = Chunk.Activations
    public let chunks: [Chunk]
    public let parallel: ParallelState
    let scatterGather: Bool
    private var free: [[Activations]]
    private var active: [[Int: Activations]]
    private var sendBuffers: [FloatBuffer] = []
    private var freeSendBuffers: [FloatBuffer] = []
    private var requests: [Request] = []
    /// Pre-posted receives by action: the request and the staging buffer it fills.
    private var posted: [PipelineAction: (request: Request, buffer: FloatBuffer)] = [:]
    private var freeReceiveBuffers: [FloatBuffer] = []
    let prepostReceives = ProcessInfo.processInfo.environment["MEGATRON_PIPELINE_PREPOST"] != "0"
    /// Wall time of this iteration spent computing (the rest of the step is communication and idle).
    public private(set) var computeSeconds = 0.0
    /// Of that, the time in forward, backward (B when split; B + W when run fused) and deferred
    /// weight-gradient (W) passes.
    public private(set) var forwardSeconds = 0.0, backwardSeconds = 0.0, weightSeconds = 0.0
    /// When set, every compute, receive wait and send of the following iterations is appended here
    /// (seconds since `traceOrigin`), in the timeline format the schedule tools draw.
    public var trace: [TimelineEvent]? = nil
    public var traceOrigin = 0.0
    /// The micro-batch's index in the whole global batch (keys dropout): k·d + data-parallel rank.
    public var microbatchIndex: (Int) -> Int = { $0 }

    public init(chunks: [Chunk], parallel: ParallelState, schedules: [PipelineSchedule], scatterGather: Bool) {
        self.chunks = chunks
        self.parallel = parallel
        self.scatterGather = scatterGather
        let need = PipelineSchedule.activationSetsNeeded(
            schedules: schedules, rank: parallel.pipelineRank, chunks: chunks.count)
        free = chunks.enumerated().map { c, model in (0..<max(1, need[c])).map { _ in model.makeActivations() } }
        active = chunks.map { _ in [:] }
    }

    /// Whether the backward and weight pass of (chunk, micro-batch) directly follow the forward at
    /// `index`. A last stage's F also runs the LM head's backward; its weight gradient waits for W
    /// unless W comes at once.
    private func runsAtOnce(_ actions: [PipelineAction], after index: Int, _ c: Int, _ k: Int) -> Bool {
        index + 2 < actions.count && actions[index + 1] == .backward(chunk: c, microbatch: k)
            && actions[index + 2] == .weightGradient(chunk: c, microbatch: k)
    }

    /// Every activation set of chunk `c`'s pool.
    public func activationSets(chunk c: Int) -> [Activations] { free[c] + active[c].values }

    /// Bytes of activation memory held by this rank's pools.
    public var activationBytes: Int {
        free.flatMap { $0 }.reduce(0) { $0 + $1.bytes } + active.flatMap { $0.values }.reduce(0) { $0 + $1.bytes }
    }

    /// Runs one iteration. `fill(microbatch, acts)` writes the micro-batch's tokens and targets.
    /// Training (`gradScale` given) accumulates every chunk's gradients. Returns the summed token
    /// loss over the micro-batches on the last stage, 0 elsewhere. `collect(microbatch, acts)`, if
    /// given, sees each micro-batch on the last stage right after its forward (evaluation results).
    public func run(
        _ schedule: PipelineSchedule, iteration: Int, gradScale: Float?, fill: (Int, Activations) -> Void,
        collect: ((Int, Activations) -> Void)? = nil
    ) throws -> Double {
        let r = parallel.pipelineRank, pipe = parallel.pipeline, actions = schedule.actions[r]
        let split = schedule.kind.splitsBackward
        var loss = 0.0
        (computeSeconds, forwardSeconds, backwardSeconds, weightSeconds) = (0, 0, 0, 0)
        CommunicationProgress.begin(tester: { [unowned self] in self.progress() })
        defer { CommunicationProgress.end() }
        for (index, action) in actions.enumerated() {
            let t0 = MPIRuntime.wallTime
            if action.isCompute { try prepost(after: index, actions, chunks: schedule.chunks) }
            defer {
                trace?.append(
                    TimelineEvent(
                        rank: r, action: action, start: t0 - traceOrigin, end: MPIRuntime.wallTime - traceOrigin))
            }
            switch action {
            case .receiveActivation(let c, let k, let peer):
                let slot = acquire(c, k, fill: fill)
                try receive(
                    action, into: slot.stageInput, count: slot.boundaryCount, from: peer,
                    tag: tag(gradient: false, chunk: c, microbatch: k, v: schedule.chunks), pipe)
            case .forward(let c, let k):
                let slot = active[c][k] ?? acquire(c, k, fill: fill)
                let t0 = MPIRuntime.wallTime
                var ctx = PassContext(iteration: iteration, microbatch: microbatchIndex(k), training: gradScale != nil)
                ctx.deferWeightGradients = split && gradScale != nil && !runsAtOnce(actions, after: index, c, k)
                if let l = try chunks[c].forward(slot, ctx, gradScale: gradScale) {
                    loss += l
                    collect?(k, slot)
                }
                computeSeconds += MPIRuntime.wallTime - t0
                forwardSeconds += MPIRuntime.wallTime - t0
                if gradScale == nil && !sendsOutput(after: action) { release(c, k) }
            case .sendActivation(let c, let k, let peer):
                let slot = try active[c][k].unwrap("activation of micro-batch \(k)")
                try send(
                    slot.stageOutput, count: slot.boundaryCount, to: peer,
                    tag: tag(
                        gradient: false, chunk: c + (r == parallel.layout.pipeline - 1 ? 1 : 0), microbatch: k,
                        v: schedule.chunks), pipe)
                if gradScale == nil { release(c, k) }
            case .receiveGradient(let c, let k, let peer):
                let slot = try active[c][k].unwrap("gradient of micro-batch \(k)")
                try receive(
                    action, into: slot.boundaryGradient, count: slot.boundaryCount, from: peer,
                    tag: tag(gradient: true, chunk: c, microbatch: k, v: schedule.chunks), pipe)
            case .backward(let c, let k):
                let slot = try active[c][k].unwrap("backward of micro-batch \(k)")
                let t0 = MPIRuntime.wallTime
                var ctx = PassContext(iteration: iteration, microbatch: microbatchIndex(k), training: true)
                let fused =
                    split && index + 1 < actions.count && actions[index + 1] == .weightGradient(chunk: c, microbatch: k)
                ctx.deferWeightGradients = split && !fused
                try chunks[c].backward(slot, ctx)
                computeSeconds += MPIRuntime.wallTime - t0
                backwardSeconds += MPIRuntime.wallTime - t0
                if !split && !sendsOutput(after: action) { release(c, k) }
            case .weightGradient(let c, let k):
                let slot = try active[c][k].unwrap("weight pass of micro-batch \(k)")
                let t0 = MPIRuntime.wallTime
                slot.deferredWeightGradients.run()
                let dt = MPIRuntime.wallTime - t0
                computeSeconds += dt
                weightSeconds += dt
                release(c, k)
            case .sendGradient(let c, let k, let peer):
                let slot = try active[c][k].unwrap("gradient of micro-batch \(k)")
                try send(
                    slot.boundaryGradient, count: slot.boundaryCount, to: peer,
                    tag: tag(gradient: true, chunk: c - (r == 0 ? 1 : 0), microbatch: k, v: schedule.chunks), pipe)
                if !split { release(c, k) }
            }
        }
        try finishSends()
        return loss
    }

    // MARK: Slots, sends, receives

    private func acquire(_ c: Int, _ k: Int, fill: (Int, Activations) -> Void) -> Activations {
        let slot = free[c].popLast() ?? chunks[c].makeActivations()
        active[c][k] = slot
        fill(k, slot)
        return slot
    }

    private func release(_ c: Int, _ k: Int) {
        if let slot = active[c].removeValue(forKey: k) { free[c].append(slot) }
    }

    /// Whether the schedule sends this compute's output on: forwards of every chunk but the last
    /// stage's, backwards of every chunk but the first stage's.
    private func sendsOutput(after action: PipelineAction) -> Bool {
        switch action {
        case .forward(let c, _): return chunks[c].stage.hasHead == false
        case .backward(let c, _): return chunks[c].stage.hasEmbedding == false
        default: return false
        }
    }

    private func tag(gradient: Bool, chunk: Int, microbatch: Int, v: Int) -> Int {
        (gradient ? 1 : 0) + 2 * (chunk + v * microbatch)
    }

    /// The part of a boundary tensor this tensor rank transfers: all of it, or its 1/t under scatter/gather.
    private func part(_ count: Int) -> (offset: Int, count: Int) {
        let tp = chunks[0].tensorParallel
        guard scatterGather, tp.size > 1, !tp.sequenceParallel, count % tp.size == 0 else { return (0, count) }
        let each = count / tp.size
        return (tp.rank * each, each)
    }

    private func send(_ x: UnsafePointer<Float>, count: Int, to peer: Int, tag: Int, _ pipe: Communicator) throws {
        let (offset, n) = part(count)
        let buffer =
            freeSendBuffers.firstIndex { $0.count >= n }.map { freeSendBuffers.remove(at: $0) } ?? FloatBuffer(count: n)
        buffer.base.update(from: x + offset, count: n)
        sendBuffers.append(buffer)
        requests.append(try pipe.isend(buffer.base, count: n, to: peer, tag: tag))
    }

    /// The receive of `action`: from its pre-posted staging buffer, or blocking.
    private func receive(
        _ action: PipelineAction, into x: UnsafeMutablePointer<Float>, count: Int, from peer: Int, tag: Int,
        _ pipe: Communicator
    ) throws {
        let (offset, n) = part(count)
        if let pre = posted.removeValue(forKey: action) {
            try pre.request.wait()
            (x + offset).update(from: pre.buffer.base, count: n)
            freeReceiveBuffers.append(pre.buffer)
        } else {
            try pipe.recv(x + offset, count: n, from: peer, tag: tag)
        }
        if n != count { try chunks[0].tensorParallel.group?.allGatherInPlace(x, count: n) }
    }

    /// Posts the next receive of the list after `index` (if not yet posted) into a staging buffer.
    private func prepost(after index: Int, _ actions: [PipelineAction], chunks v: Int) throws {
        guard prepostReceives else { return }
        for action in actions[(index + 1)...] {
            let gradient: Bool, c: Int, k: Int, peer: Int
            switch action {
            case .receiveActivation(let cc, let kk, let pp): (gradient, c, k, peer) = (false, cc, kk, pp)
            case .receiveGradient(let cc, let kk, let pp): (gradient, c, k, peer) = (true, cc, kk, pp)
            default: continue
            }
            guard posted[action] == nil else { return }
            let n = part(boundaryCount(chunk: c)).count
            let buffer =
                freeReceiveBuffers.firstIndex { $0.count >= n }.map { freeReceiveBuffers.remove(at: $0) }
                ?? FloatBuffer(count: n)
            let request = try parallel.pipeline.irecv(
                buffer.base, count: n, from: peer, tag: tag(gradient: gradient, chunk: c, microbatch: k, v: v))
            posted[action] = (request, buffer)
            return
        }
    }

    /// Elements of chunk `c`'s boundary tensor (every activation set of a chunk has the same).
    private func boundaryCount(chunk c: Int) -> Int {
        (free[c].first ?? active[c].values.first).map(\.boundaryCount) ?? 0
    }

    /// Lets MPI move the outstanding sends and pre-posted receives (called at layer boundaries).
    private func progress() {
        for r in requests where !r.completed { _ = try? r.test() }
        for (_, pre) in posted where !pre.request.completed { _ = try? pre.request.test() }
    }

    private func finishSends() throws {
        for r in requests { try r.wait() }
        requests.removeAll()
        freeSendBuffers += sendBuffers
        sendBuffers.removeAll()
    }
}

struct PipelineStateError: Error, CustomStringConvertible {
    let what: String
    var description: String {
        "pipeline executor: no activation set for the \(what); the schedule and the executor disagree"
    }
}

extension Optional where Wrapped: ChunkActivations {
    func unwrap(_ what: String) throws -> Wrapped {
        guard let v = self else { throw PipelineStateError(what: what) }
        return v
    }
}

extension PipelineSchedule {
    /// Activation sets per chunk that rank `rank` needs for `schedules`: the most micro-batches of
    /// each chunk held at once, by the executor's rules — a set is taken at the receive of its input
    /// (or its forward, without one) and given back after the send that follows the forward
    /// (forward-only) or the backward (training), after the pass itself when nothing is sent, and
    /// after W when the backward is split; at least one.
    public static func activationSetsNeeded(schedules: [PipelineSchedule], rank r: Int, chunks: Int) -> [Int] {
        var need = [Int](repeating: 1, count: chunks)
        for s in schedules {
            var held = Set<[Int]>()
            var inFlight = [Int](repeating: 0, count: chunks)
            func take(_ c: Int, _ k: Int) {
                if held.insert([c, k]).inserted { inFlight[c] += 1; need[c] = max(need[c], inFlight[c]) }
            }
            func give(_ c: Int, _ k: Int) { if held.remove([c, k]) != nil { inFlight[c] -= 1 } }
            var sends = Set<[Int]>()
            for a in s.actions[r] {
                switch a {
                case .sendActivation(let c, let k, _) where s.kind == .forwardOnly: sends.insert([c, k])
                case .sendGradient(let c, let k, _) where s.kind != .forwardOnly: sends.insert([c, k])
                default: break
                }
            }
            let split = s.kind.splitsBackward
            for a in s.actions[r] {
                switch a {
                case .receiveActivation(let c, let k, _): take(c, k)
                case .forward(let c, let k):
                    take(c, k)
                    if s.kind == .forwardOnly && !sends.contains([c, k]) { give(c, k) }
                case .sendActivation(let c, let k, _) where s.kind == .forwardOnly: give(c, k)
                case .backward(let c, let k) where !split && !sends.contains([c, k]): give(c, k)
                case .sendGradient(let c, let k, _) where !split: give(c, k)
                case .weightGradient(let c, let k): give(c, k)
                default: break
                }
            }
        }
        return need
    }
}

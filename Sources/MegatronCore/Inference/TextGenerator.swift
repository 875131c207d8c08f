// TextGenerator.swift — autoregressive generation from a GPT checkpoint on any (t, p, d) grid, with
// Megatron's scheme for a batch of prompts: prompts are left-aligned; the first step feeds every
// sequence's first min(prompt length) tokens at once (the prompt phase), then each step feeds one
// token per sequence (the decode phase) through the KV caches of InferenceChunk. A sequence whose
// prompt is longer keeps its own prompt tokens until they run out (its "choice" at those
// positions is its prompt). Each sequence gets at most `tokensToGenerate` new tokens and stops at
// end-of-document unless told otherwise.
// Under pipeline parallelism the hidden states pass stage to stage (chunk by chunk when stages
// hold several virtual chunks); the last stage chooses the tokens and broadcasts them over the
// pipeline group, so every rank holds the same sequences. Data-parallel replicas repeat the work.
import Distributed
import Foundation
import Tensor

public struct GenerationRequest: Sendable, Codable {
    /// Token ids of each prompt (each non-empty).
    public var prompts: [[Int32]]
    public var tokensToGenerate: Int
    public var sampling: SamplingOptions
    public var stopAtEOD: Bool
    /// Also report log p(token | prefix) for every token after the first.
    public var logprobs: Bool
    /// The index of the first prompt in the whole job (sampling streams are per prompt index).
    public var firstPromptIndex: Int

    public init(
        prompts: [[Int32]], tokensToGenerate: Int, sampling: SamplingOptions = SamplingOptions(temperature: 0),
        stopAtEOD: Bool = true, logprobs: Bool = false, firstPromptIndex: Int = 0
    ) {
        self.prompts = prompts; self.tokensToGenerate = tokensToGenerate; self.sampling = sampling
        self.stopAtEOD = stopAtEOD; self.logprobs = logprobs; self.firstPromptIndex = firstPromptIndex
    }

    /// Positions a prompt of `n` tokens needs to generate `g` more; nil past Int (a hostile
    /// tokens_to_generate), which no model has.
    public static func positionsNeeded(prompt n: Int, generating g: Int) -> Int? {
        let (sum, overflow) = n.addingReportingOverflow(g)
        return overflow ? nil : sum
    }
}

public struct GenerationResult: Sendable {
    /// Prompt followed by the generated tokens (the end-of-document token included when generated).
    public var tokens: [[Int32]]
    public var promptLengths: [Int]
    /// logprobs[j][i] = log p(tokens[j][i + 1] | tokens[j][0 ... i]) (when requested).
    public var logprobs: [[Float]]
    /// Wall time and tokens fed in the prompt phase (the first step) and in the decode steps.
    public var promptSeconds = 0.0, decodeSeconds = 0.0
    public var promptTokens = 0, decodeTokens = 0

    public init(tokens: [[Int32]], promptLengths: [Int], logprobs: [[Float]]) {
        (self.tokens, self.promptLengths, self.logprobs) = (tokens, promptLengths, logprobs)
    }
}

public enum GenerationError: Error, CustomStringConvertible {
    case tooLong(prompt: Int, length: Int, tokensToGenerate: Int, maxPositions: Int)
    case emptyPrompt(index: Int)
    case badOptions([String])

    public var description: String {
        switch self {
        case .tooLong(let i, let n, let g, let m):
            return
                "prompt \(i) has \(n) tokens; with tokens_to_generate \(g) it needs "
                + (GenerationRequest.positionsNeeded(prompt: n, generating: g).map { "\($0) positions, more than" }
                    ?? "more positions than")
                + " the model's max_position_embeddings "
                + "\(m): shorten the prompt or lower tokens_to_generate"
        case .emptyPrompt(let i): return "prompt \(i) is empty: give at least one token (or add_BOS)"
        case .badOptions(let problems): return problems.joined(separator: "; ")
        }
    }
}

public final class TextGenerator {
    public let config: GPTConfig
    public let parallel: ParallelState
    public let layout: PipelineLayout
    /// This rank's chunks, in chunk order.
    public let models: [GPTModel]
    public let eod: Int32
    /// Wall time per phase of the decoding steps (layers, LM head, sampling), when set.
    public var timer: PhaseTimer? = nil

    /// This rank's chunks of the model `c` describes on `parallel`'s grid (load weights into
    /// `models` before generating).
    public init(config c: TrainingConfig, vocabSize: Int, eod: Int32, threads: Int, parallel: ParallelState) throws {
        try MemoryPreflight.require(config: c, vocab: vocabSize, world: parallel.world.size, training: false)
        let gpt = GPTConfig(training: c, vocabSize: vocabSize)
        // Token ids travel between stages as floats: exact below 2^24.
        guard gpt.paddedVocabSize < 1 << 24 else {
            throw ConfigError.invalidValue(
                key: "vocab_size", value: "\(gpt.paddedVocabSize) (padded)",
                rule: "generation passes token ids between stages as floats, exact below 2^24 = 16,777,216")
        }
        let tp = TensorParallel(group: parallel.layout.tensor > 1 ? parallel.tensor : nil, sequenceParallel: false)
        layout = try PipelineLayout(c)
        models = layout.plans(stage: parallel.pipelineRank).map {
            GPTModel(
                config: gpt, microBatch: 1, threads: threads, tensorParallel: tp, stage: $0, precision: c.precision,
                initialize: false, roundedWeightCopy: true)  // decoding's one-row products read weights as they are
        }
        config = gpt
        self.parallel = parallel
        self.eod = eod
    }

    /// Generates for every prompt of `r` together. All ranks call this with the same request;
    /// `onStep(sequence, token)` reports each token appended after the prompt phase began, in order.
    public func generate(_ r: GenerationRequest, onStep: ((Int, Int32) -> Void)? = nil) throws -> GenerationResult {
        let problems =
            r.sampling.problems(vocabSize: config.vocabSize)
            + (r.tokensToGenerate < 0 ? ["tokens_to_generate \(r.tokensToGenerate) must be ≥ 0"] : [])
        if !problems.isEmpty { throw GenerationError.badOptions(problems) }
        for (i, p) in r.prompts.enumerated() {
            if p.isEmpty { throw GenerationError.emptyPrompt(index: r.firstPromptIndex + i) }
            if (GenerationRequest.positionsNeeded(prompt: p.count, generating: r.tokensToGenerate) ?? .max)
                > config.maxPositionEmbeddings
            {
                throw GenerationError.tooLong(
                    prompt: r.firstPromptIndex + i, length: p.count, tokensToGenerate: r.tokensToGenerate,
                    maxPositions: config.maxPositionEmbeddings)
            }
        }
        let b = r.prompts.count, limits = r.prompts.map { $0.count + r.tokensToGenerate }
        var result = GenerationResult(
            tokens: r.prompts, promptLengths: r.prompts.map(\.count), logprobs: r.prompts.map { _ in [] })
        guard b > 0 else { return result }
        if r.tokensToGenerate == 0 { return r.logprobs ? try score(r, result) : result }
        let chunks = models.map { InferenceChunk(model: $0, batch: b, capacity: limits.max()!) }
        for chunk in chunks { chunk.timer = timer }
        var done = [Bool](repeating: false, count: b)
        var start = 0, L = r.prompts.map(\.count).min()!
        while done.contains(false) {
            let t0 = MPIRuntime.wallTime
            let fed = (0..<b).flatMap { j in
                (start..<(start + L)).map { result.tokens[j].indices.contains($0) ? result.tokens[j][$0] : eod }
            }
            let (next, logprobs) = try step(
                chunks, tokens: fed, start: start, newTokens: L, request: r, state: result, done: done)
            for j in 0..<b where !done[j] {
                if r.logprobs { result.logprobs[j] += logprobs[j] }
                // Positions inside a longer prompt are already there.
                guard start + L == result.tokens[j].count else { continue }
                result.tokens[j].append(next[j])
                onStep?(j, next[j])
                let generated = result.tokens[j].count > result.promptLengths[j]
                done[j] = result.tokens[j].count >= limits[j] || (r.stopAtEOD && generated && next[j] == eod)
            }
            let seconds = MPIRuntime.wallTime - t0
            if start == 0 {
                (result.promptSeconds, result.promptTokens) = (seconds, b * L)
            } else {
                result.decodeSeconds += seconds
                result.decodeTokens += b
            }
            start += L
            L = 1
        }
        return result
    }

    /// Megatron's tokens_to_generate = 0: the log-probabilities of every prompt's tokens, from one
    /// pass over the prompts (left-aligned; the shorter ones padded after their end, which causal
    /// attention never lets their own tokens see).
    private func score(_ r: GenerationRequest, _ state: GenerationResult) throws -> GenerationResult {
        var result = state
        let b = r.prompts.count, L = r.prompts.map(\.count).max()!
        let chunks = models.map { InferenceChunk(model: $0, batch: b, capacity: L) }
        let fed = r.prompts.flatMap { $0 + [Int32](repeating: eod, count: L - $0.count) }
        let t0 = MPIRuntime.wallTime
        let (_, logprobs) = try step(
            chunks, tokens: fed, start: 0, newTokens: L, request: r, state: result,
            done: [Bool](repeating: true, count: b))
        for j in 0..<b { result.logprobs[j] = Array(logprobs[j].prefix(r.prompts[j].count - 1)) }
        (result.promptSeconds, result.promptTokens) = (MPIRuntime.wallTime - t0, r.prompts.map(\.count).reduce(0, +))
        return result
    }

    /// One step on every rank: the pipeline pass of `tokens` (b·L, sequence-major), then the last
    /// stage's choice of each sequence's next token (and, when asked, the log-probabilities of the
    /// tokens that follow each fed row), broadcast over the pipeline group.
    private func step(
        _ chunks: [InferenceChunk], tokens: [Int32], start: Int, newTokens L: Int, request r: GenerationRequest,
        state: GenerationResult, done: [Bool]
    ) throws -> (next: [Int32], logprobs: [[Float]]) {
        let b = r.prompts.count, h = config.hiddenSize, p = layout.stages, v = layout.chunks
        let stage = parallel.pipelineRank, group = parallel.pipeline
        let x = FloatBuffer(count: b * L * h)
        for (c, chunk) in chunks.enumerated() {
            let index = c * p + stage  // this chunk's place in the model's order
            if index == 0 {
                try chunk.embed(tokens: tokens, start: start, newTokens: L, into: x.base)
            } else {
                try group.recv(x.base, count: b * L * h, from: (stage + p - 1) % p, tag: index)
            }
            try chunk.forward(x.base, start: start, newTokens: L)
            if index < p * v - 1 {
                try group.isend(x.base, count: b * L * h, to: (stage + 1) % p, tag: index + 1).wait()
            }
        }
        // [b next tokens][b·L log-probabilities], filled on the last stage.
        let message = FloatBuffer(count: b + b * L)
        if stage == p - 1 {
            let scoredRows = r.logprobs ? Array(0..<(b * L)) : (0..<b).map { $0 * L + L - 1 }
            let logits = try (L <= 8 ? timer : nil).measure("final layernorm + lm head") {
                try chunks.last!.logits(x.base, rows: scoredRows)
            }
            let vp = config.paddedVocabSize, vocab = config.vocabSize
            logits.withUnsafeBufferPointer { all in
                for (k, row) in scoredRows.enumerated() {
                    let rowLogits = UnsafeBufferPointer(rebasing: all[(k * vp)..<((k + 1) * vp)])
                    let j = row / L, i = row % L, position = start + i + 1
                    var token: Int32
                    if i < L - 1 {
                        token = tokens[row + 1]
                    } else if done[j] {
                        token = eod
                    } else if position < state.promptLengths[j] {
                        token = state.tokens[j][position]
                    } else {
                        token = Sampler.choose(
                            rowLogits, vocabSize: vocab, options: r.sampling, prompt: r.firstPromptIndex + j,
                            position: position)
                    }
                    if i == L - 1 { message[j] = Float(token) }
                    if r.logprobs {
                        message[b + row] = Sampler.logProbability(rowLogits, vocabSize: vocab, token: token)
                    }
                }
            }
        }
        try group.broadcast(message.base, count: b + b * L, root: p - 1)
        let next = (0..<b).map { Int32(message[$0]) }
        let logprobs = (0..<b).map { j in (0..<L).map { message[b + j * L + $0] } }
        return (next, logprobs)
    }
}

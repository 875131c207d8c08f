// Generate.swift — `megatron generate`: text from a GPT checkpoint on any (t, p, d) grid
// (TextGenerator: KV cache, Megatron's batching and sampling). Prompts come from --prompt (repeatable)
// or --prompts-file (one per line, or jsonl with a "prompt" or "text" field, or token ids as "prompt_tokens") and are decoded
// --max-batch at a time. The generated text goes to stdout (streamed token by token when a batch
// holds one prompt), everything else to stderr; --output writes one JSON line per prompt (its
// text, token ids and, with --logprobs, log-probabilities). Rank 0 prints and writes.
import ArgumentParser
import Checkpoint
import Distributed
import Foundation
import MegatronCore
import Tensor

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a GPT checkpoint (greedy or sampled, with a KV cache, on any grid).")

    @Option(help: "Checkpoint directory (its latest iteration is used).") var load: String
    @Option(help: "A prompt (repeat for several).") var prompt: [String] = []
    @Option(
        help:
            "Prompts, one per line, or jsonl lines with a \"prompt\" or \"text\" field, or token ids as \"prompt_tokens\"."
    )
    var promptsFile: String?
    @Option(help: "New tokens per prompt (at most).") var tokensToGenerate = 64
    @Option(help: "Softmax temperature; 0 is greedy.") var temperature = 1.0
    @Option(help: "Sample from the k most probable tokens (0: off; 1: greedy).") var topK = 0
    @Option(help: "Nucleus sampling: the smallest set of tokens whose probability exceeds p (0: off).")
    var topP = 0.0
    @Option(help: "Seed of the sampling draws (each prompt and position has its own draw).") var seed = 1234
    @Option(help: "Prompts decoded together.") var maxBatch = 8
    @Flag(help: "Keep generating after the end-of-document token.") var ignoreEod = false
    @Flag(help: "Report log-probabilities of every token after the first (in --output).") var logprobs = false
    @Option(help: "Write one JSON line per prompt here.") var output: String?
    @Flag(help: "Print the decoding steps' time per phase (rank 0's view).") var phases = false
    @Option(help: "Config file (default: the config stored in the checkpoint).") var config: String?
    @Argument(
        parsing: .allUnrecognized,
        help: "Config overrides: --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --vocab-file …")
    var overrides: [String] = []

    func run() throws {
        let session = GenerationSession.start(load: load, config: config, overrides: overrides)
        let rank = session.runtime.world.rank
        do {
            let prompts = try readPrompts(session)
            let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed)
            let problems =
                options.problems(vocabSize: session.tokenizer.vocabSize)
                + (maxBatch < 1 ? ["max-batch \(maxBatch) must be ≥ 1"] : [])
                + (prompts.isEmpty ? ["no prompt: give --prompt TEXT or --prompts-file FILE"] : [])
            if !problems.isEmpty { throw GenerationError.badOptions(problems) }
            if phases { session.generator.timer = PhaseTimer() }
            var lines: [String] = []
            var totals = GenerationResult(tokens: [], promptLengths: [], logprobs: [])
            for first in stride(from: 0, to: prompts.count, by: maxBatch) {
                let batch = Array(prompts[first..<min(prompts.count, first + maxBatch)])
                let request = GenerationRequest(
                    prompts: batch.map(\.ids), tokensToGenerate: tokensToGenerate, sampling: options,
                    stopAtEOD: !ignoreEod, logprobs: logprobs, firstPromptIndex: first)
                let stream = TextStream(
                    tokenizer: session.tokenizer, enabled: rank == 0 && batch.count == 1, eod: session.generator.eod,
                    context: batch[0].ids)
                if stream.enabled { FileHandle.standardOutput.write(Data(batch[0].text.utf8)) }
                let result = try session.generator.generate(request) { _, token in stream.append(token) }
                stream.finish()
                for j in batch.indices {
                    let text = session.decode(result, j)
                    if rank == 0 && batch.count > 1 {  // unbuffered, like the streamed text
                        FileHandle.standardOutput.write(Data((batch[j].text + text + "\n\n").utf8))
                    }
                    lines.append(try jsonLine(prompt: batch[j].text, text: text, result: result, j))
                }
                totals.promptSeconds += result.promptSeconds; totals.promptTokens += result.promptTokens
                totals.decodeSeconds += result.decodeSeconds; totals.decodeTokens += result.decodeTokens
            }
            if rank == 0 {
                session.note(
                    String(
                        format:
                            "prompt processing: %d tokens in %.3f s (%.1f tokens/s); decoding: %d tokens in %.3f s "
                            + "(%.1f tokens/s)", totals.promptTokens, totals.promptSeconds,
                        Double(totals.promptTokens) / max(1e-9, totals.promptSeconds), totals.decodeTokens,
                        totals.decodeSeconds, Double(totals.decodeTokens) / max(1e-9, totals.decodeSeconds)))
                if let timer = session.generator.timer {
                    let total = timer.seconds.values.reduce(0, +)
                    for name in timer.order {
                        let s = timer.seconds[name]!
                        session.note(
                            "  " + name.padding(toLength: 28, withPad: " ", startingAt: 0)
                                + String(format: "%8.3f s %6.1f%%", s, 100 * s / total))
                    }
                }
                if let output {
                    try (lines.joined(separator: "\n") + "\n").write(toFile: output, atomically: true, encoding: .utf8)
                }
            }
        } catch {
            CLIErrors.fail(error, code: 2, runtime: session.runtime, rank: rank)
        }
        session.runtime.finalize()
    }

    /// Each prompt's text and token ids (from the tokenizer, or given as "prompt_tokens" in jsonl).
    private func readPrompts(_ session: GenerationSession) throws -> [(text: String, ids: [Int32])] {
        var out = prompt.map { ($0, session.encode($0)) }
        if let path = promptsFile {
            guard let text = FileManager.default.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) })
            else { throw GenerationPromptError.unreadable(path: path) }
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
                guard line.first == "{" else { out.append((String(line), session.encode(String(line)))); continue }
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                let vocabulary = session.tokenizer.vocabSize
                if let ids = object?["prompt_tokens"] as? [Int] {
                    guard !ids.isEmpty, ids.allSatisfy({ $0 >= 0 && $0 < vocabulary }) else {
                        throw GenerationPromptError.badTokens(path: path, line: n + 1, vocabulary: vocabulary)
                    }
                    let tokens = ids.map(Int32.init)
                    out.append((String(decoding: session.tokenizer.decode(tokens), as: UTF8.self), tokens))
                } else if let value = (object?["prompt"] ?? object?["text"]) as? String {
                    out.append((value, session.encode(value)))
                } else {
                    throw GenerationPromptError.badLine(path: path, line: n + 1)
                }
            }
        }
        return out
    }

    private func jsonLine(prompt: String, text: String, result: GenerationResult, _ j: Int) throws -> String {
        var object: [String: Any] = [
            "prompt": prompt, "text": text,
            "prompt_tokens": result.tokens[j].prefix(result.promptLengths[j]).map(Int.init),
            "tokens": result.tokens[j].dropFirst(result.promptLengths[j]).map(Int.init),
        ]
        if logprobs { object["logprobs"] = result.logprobs[j].map(Double.init) }
        return String(
            decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}

enum GenerationPromptError: Error, CustomStringConvertible {
    case unreadable(path: String)
    case badLine(path: String, line: Int)
    case badTokens(path: String, line: Int, vocabulary: Int)
    var description: String {
        switch self {
        case .unreadable(let p): return "cannot read prompts file '\(p)' (--prompts-file): check the path"
        case .badLine(let p, let l):
            return
                "'\(p)' line \(l) starts with '{' but is not a JSON object with a \"prompt\" or \"text\" string or "
                + "\"prompt_tokens\" ids"
        case .badTokens(let p, let l, let v):
            return "'\(p)' line \(l): \"prompt_tokens\" must be a non-empty list of ids in 0 ..< \(v) (the vocabulary)"
        }
    }
}

/// Writes a sequence's new text to stdout as its tokens arrive, holding back an incomplete UTF-8
/// character until its last byte comes.
final class TextStream {
    let tokenizer: Tokenizer, enabled: Bool, eod: Int32, context: [Int32]
    private var tokens: [Int32] = [], written = 0

    /// `context`: the prompt's ids, which the streamed text continues.
    init(tokenizer: Tokenizer, enabled: Bool, eod: Int32, context: [Int32]) {
        (self.tokenizer, self.enabled, self.eod, self.context) = (tokenizer, enabled, eod, context)
    }

    func append(_ token: Int32) {
        guard enabled, token != eod else { return }
        tokens.append(token)
        let bytes = tokenizer.decodeContinuation(tokens, after: context)
        let end = TextStream.completeUTF8Prefix(bytes)
        if end > written {
            FileHandle.standardOutput.write(Data(bytes[written..<end]))
            written = end
        }
    }

    func finish() { if enabled { FileHandle.standardOutput.write(Data("\n".utf8)) } }

    /// The length of the longest prefix of `bytes` that does not end inside a UTF-8 character.
    static func completeUTF8Prefix(_ bytes: [UInt8]) -> Int {
        var i = bytes.count
        var back = 0
        while i > 0 && back < 4 && bytes[i - 1] & 0xC0 == 0x80 { i -= 1; back += 1 }
        guard i > 0 else { return bytes.count }
        let lead = bytes[i - 1]
        let need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return back + 1 >= need ? bytes.count : i - 1
    }
}

/// A loaded model ready to generate: the config (stored in the checkpoint unless given), MPI, the
/// grid, the tokenizer and the weights. Shared by `generate` and `serve`.
struct GenerationSession {
    let runtime: MPIRuntime
    let generator: TextGenerator
    let tokenizer: Tokenizer
    let iteration: Int

    static func start(load: String, config: String?, overrides: [String]) -> GenerationSession {
        let start = Startup.begin(
            configPath: config, flags: overrides, base: Startup.storedConfig(load: load, configPath: config),
            training: false
        ) { cfg in
            cfg.load = load; cfg.save = nil; cfg.saveInterval = nil; cfg.dataPath = []
            cfg.mockData = cfg.tokenizerType == .null  // no data is read; NullTokenizer's rule asks for some
            cfg.metricsFile = nil; cfg.traceDir = nil; cfg.skipTrain = true
            if cfg.trainIters <= 0 { cfg.trainIters = 1 }
            // The grid is this run's (checkpoints load on any grid), not the training run's.
            if !overrides.contains("--tensor-model-parallel-size") { cfg.tensorModelParallelSize = 1 }
            if !overrides.contains("--pipeline-model-parallel-size") { cfg.pipelineModelParallelSize = 1 }
            if !overrides.contains(where: TrainingConfig.pipelineSplitFlags.contains) { cfg.resetPipelineSplit() }
            cfg.sequenceParallel = false; cfg.useDistributedOptimizer = false; cfg.globalBatchSize = nil
            if cfg.lr <= 0 { cfg.lr = 1 }  // unused: generation takes no step
        }
        let (cfg, runtime) = (start.config, start.runtime)
        let rank = runtime.world.rank
        if cfg.modelType != .gpt {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "model_type", value: "\"\(cfg.modelType.rawValue)\"",
                    rule: "generation needs a GPT checkpoint (BERT has no generation)"), code: 2, runtime: runtime,
                rank: rank)
        }
        do {
            let parallel = try ParallelState(
                world: runtime.world, tensor: cfg.tensorModelParallelSize, pipeline: cfg.pipelineModelParallelSize)
            let tokenizer: Tokenizer =
                cfg.tokenizerType == .null
                ? NullTokenizer(vocabSize: cfg.vocabSize ?? 2)
                : try Tokenizers.make(config: cfg)
            let generator = try TextGenerator(
                config: cfg, vocabSize: tokenizer.vocabSize, eod: tokenizer.eod, threads: start.threads,
                parallel: parallel)
            let iteration = try ModelCheckpoint.loadWeights(
                from: CheckpointDirectory(root: load), chunks: generator.models)
            let session = GenerationSession(
                runtime: runtime, generator: generator, tokenizer: tokenizer, iteration: iteration)
            if rank == 0 {
                session.note(
                    "generate from \(load) iteration \(iteration): \(generator.models[0].modelDescription); grid "
                        + "tensor \(parallel.layout.tensor) × pipeline \(parallel.layout.pipeline) × data "
                        + "\(parallel.layout.data); \(tokenizer.name); \(cfg.precision)")
            }
            return session
        } catch {
            CLIErrors.fail(error, code: 2, runtime: runtime, rank: rank)
        }
    }

    /// A status line on stderr (stdout carries only text).
    func note(_ line: String) { Self.note(line) }
    static func note(_ line: String) { FileHandle.standardError.write(Data((" > " + line + "\n").utf8)) }

    /// A prompt's token ids; an empty prompt starts from the end-of-document token.
    func encode(_ prompt: String) -> [Int32] {
        let ids = tokenizer.encode(Array(prompt.utf8))
        return ids.isEmpty ? [tokenizer.eod] : ids
    }

    /// The generated text of sequence `j` (without the end-of-document token).
    func decode(_ result: GenerationResult, _ j: Int) -> String {
        let prompt = Array(result.tokens[j].prefix(result.promptLengths[j]))
        let new = result.tokens[j].dropFirst(result.promptLengths[j]).filter { $0 != tokenizer.eod }
        return String(decoding: tokenizer.decodeContinuation(Array(new), after: prompt), as: UTF8.self)
    }
}

// Serve.swift — `megatron serve`: Megatron-LM's text-generation server (PUT /api; GenerationAPI
// holds the request and response format) on Hummingbird, on any (t, p, d) grid. World rank 0
// serves HTTP; its handlers validate each request (400 with the reason: bad JSON, a field out of
// range, a body over --max-request-bytes, a prompt too long for the model) and queue the valid
// ones. The main thread of rank 0 takes them one at a time, broadcasts each to every rank, and all
// ranks generate it together (TextGenerator), so requests are served in arrival order, one batch
// at a time, none lost. SIGTERM or SIGINT to rank 0 stops the server after the request in hand;
// rank 0 then tells the other ranks to stop, and every rank exits 0. The other ranks ignore those
// signals (mpirun forwards them to all) so they never stop inside a collective. While no request is
// in hand they wait for the next asleep between polls (Communicator.broadcast's `idle`), not
// spinning in MPI: an idle server takes no core.
import ArgumentParser
import Distributed
import Foundation
import Hummingbird
import MegatronCore

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve Megatron's text-generation API (PUT /api) from a GPT checkpoint on any grid.")

    @Option(help: "Checkpoint directory (its latest iteration is served).") var load: String
    @Option(help: "TCP port.") var port = 5000
    @Option(help: "Address to listen on (0.0.0.0 for every interface).") var host = "127.0.0.1"
    @Option(help: "Largest request body accepted (bytes).") var maxRequestBytes = 1 << 20
    @Option(help: "Config file (default: the config stored in the checkpoint).") var config: String?
    @Argument(parsing: .allUnrecognized, help: "Config overrides: --tensor-model-parallel-size 2 --vocab-file …")
    var overrides: [String] = []

    func run() throws {
        // Checked before the model loads, the same on every rank: a port past 65535 had been taken
        // modulo 2^16 by the server while the log announced the number given.
        if !(1...65535).contains(port) {
            CLIErrors.fail(
                ConfigError.invalidValue(key: "--port", value: "\(port)", rule: "must be 1 to 65535"), code: 2)
        }
        if maxRequestBytes < 1 {
            CLIErrors.fail(
                ConfigError.invalidValue(
                    key: "--max-request-bytes", value: "\(maxRequestBytes)", rule: "must be a positive number of bytes"),
                code: 2)
        }
        let session = GenerationSession.start(load: load, config: config, overrides: overrides)
        let world = session.runtime.world
        do {
            if world.rank == 0 {
                try lead(session)
            } else {
                signal(SIGTERM, SIG_IGN)
                signal(SIGINT, SIG_IGN)
                try follow(session)
            }
        } catch {
            CLIErrors.fail(error, code: 1, runtime: session.runtime, rank: world.rank)
        }
        session.runtime.finalize()
    }

    /// Rank 0: the HTTP server on a task, the generation loop on this thread.
    private func lead(_ session: GenerationSession) throws {
        let queue = JobQueue()
        let tokenizer = session.tokenizer, maxPositions = session.generator.config.maxPositionEmbeddings
        let maxBytes = maxRequestBytes, address = "http://\(host):\(port)/api"
        let router = Router()
        router.put("api") { request, _ -> Response in
            await Self.answer(
                request, queue: queue, tokenizer: tokenizer, maxPositions: maxPositions, maxBytes: maxBytes)
        }
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { _ in GenerationSession.note("serving Megatron's text-generation API: PUT \(address)") })
        Task {
            do { try await app.runService() } catch { GenerationSession.note("server stopped: \(error)") }
            queue.push(.stop)
        }
        let world = session.runtime.world
        while case .generate(let request, let done) = queue.pop() {
            _ = try world.broadcast(bytes: [1] + Array(try JSONEncoder().encode(request)), root: 0, idle: true)
            do { done(.success(try session.generator.generate(request))) } catch let error as GenerationError {
                done(.failure("\(error)"))
            }
        }
        _ = try world.broadcast(bytes: [0], root: 0, idle: true)
        session.note("stopped")
    }

    /// One PUT /api: the body read (at most `maxBytes`), validated, queued for generation, answered.
    private static func answer(
        _ request: Request, queue: JobQueue, tokenizer: Tokenizer, maxPositions: Int, maxBytes: Int
    ) async -> Response {
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: maxBytes) } catch {
            return .text(.badRequest, "the request body is larger than \(maxBytes) bytes (--max-request-bytes)")
        }
        let parsed = GenerationAPI.parse(Data(body.readableBytesView), tokenizer: tokenizer, maxPositions: maxPositions)
        let generation: GenerationRequest
        switch parsed {
        case .failure(let refusal): return .text(.badRequest, refusal.description)
        case .success(let valid): generation = valid
        }
        let outcome: Result<GenerationResult, ServeFailure> = await withCheckedContinuation { done in
            queue.push(.generate(generation, { done.resume(returning: $0) }))
        }
        switch outcome {
        case .success(let result):
            let json = GenerationAPI.response(result, tokenizer: tokenizer, logprobs: generation.logprobs)
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: json)))
        case .failure(let failure): return .text(.badRequest, failure.description)
        }
    }

    /// Other ranks: generate each request rank 0 broadcasts, until it says stop.
    private func follow(_ session: GenerationSession) throws {
        let world = session.runtime.world
        while true {
            let message = try Watchdog.shared.whileIdle { try world.broadcast(bytes: [], root: 0, idle: true) }
            guard message.first == 1 else { return }
            let request = try JSONDecoder().decode(GenerationRequest.self, from: Data(message.dropFirst()))
            do { _ = try session.generator.generate(request) } catch is GenerationError {}
        }
    }
}

extension Response {
    /// A plain-text response (Megatron's server answers errors with the reason as text).
    static func text(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }
}

/// Work for rank 0's generation loop, in arrival order.
enum ServeJob: Sendable {
    case generate(GenerationRequest, @Sendable (Result<GenerationResult, ServeFailure>) -> Void)
    case stop
}

struct ServeFailure: Error, CustomStringConvertible {
    let description: String
}

extension Result where Failure == ServeFailure {
    static func failure(_ message: String) -> Self { .failure(ServeFailure(description: message)) }
}

final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [ServeJob] = []

    func push(_ job: ServeJob) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// The oldest job, waiting for one if there is none.
    func pop() -> ServeJob {
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty { condition.wait() }
        return jobs.removeFirst()
    }
}

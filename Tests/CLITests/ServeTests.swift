// ServeTests.swift — `megatron serve` as a client sees it: the server is started (one rank, and
// t = 2 under mpirun), real HTTP PUT requests go to /api (Tests/Scripts/serve_client.py), greedy
// answers equal `megatron generate`'s text, seeded sampling repeats, tokens_to_generate 0 scores the
// prompt, malformed and out-of-range requests get 400 with the reason, concurrent requests are all
// answered, an idle server's ranks take almost no CPU, and SIGTERM stops the server with exit code
// 0. Needs ../shared's GPT-2 vocabulary.
import Foundation
import TestSupport
import XCTest

final class ServeTests: XCTestCase {
    let fixture = CLI.repoRoot.appendingPathComponent("Tests/CLITests/Fixtures/hf_gpt2_tiny")
    let prompts = ["The old man looked at the sea and said", "It was", "She opened the door,"]

    /// A checkpoint of the tiny GPT-2 fixture that knows its GPT-2 tokenizer files.
    func prepare(_ name: String) throws -> URL {
        let shared = CLI.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data/tokenizers/gpt2")
        guard FileManager.default.fileExists(atPath: shared.appendingPathComponent("vocab.json").path) else {
            throw XCTSkip("needs ../shared/data/tokenizers/gpt2 (GPT-2's vocab.json and merges.txt)")
        }
        let dir = CLI.scratch(name)
        let source = dir.appendingPathComponent("hf")
        try FileManager.default.copyItem(at: fixture, to: source)
        for file in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(
                at: shared.appendingPathComponent(file), to: source.appendingPathComponent(file))
        }
        let r = try CLI.run(["convert-checkpoint", "--from", "hf", "hf", "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        return dir
    }

    /// A port on 127.0.0.1 that a probe could bind just now, below Linux's ephemeral range (32768…),
    /// so outgoing connections (mpirun's among them) do not take it before the server binds it.
    func freePort() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { break }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if bound == 0 { return port }
        }
        throw NSError(
            domain: "ServeTests", code: 1,
            userInfo: [NSLocalizedDescriptionKey: "no free port on 127.0.0.1 in 200 tries"])
    }

    /// Starts the server (under mpirun when `ranks` > 1) on a free port; returns it and the port.
    func start(_ dir: URL, ranks: Int, extra: [String] = []) throws -> (Process, Int) {
        let port = try freePort()
        let p = Process()
        let args = ["serve", "--load", "ckpt", "--port", "\(port)", "--num-threads", "1"] + extra
        if ranks > 1 {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
            p.arguments = ["-np", "\(ranks)", CLI.binary] + args
        } else {
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = args
        }
        var env = CLI.mpiEnvironment(ProcessInfo.processInfo.environment)
        env["OMPI_MCA_pml"] = "ob1"; env["OMPI_MCA_btl"] = "self,vader"
        p.environment = env
        p.currentDirectoryURL = dir
        _ = FileManager.default.createFile(atPath: dir.appendingPathComponent("server.log").path, contents: nil)
        let log = try FileHandle(forWritingTo: dir.appendingPathComponent("server.log"))
        p.standardOutput = log; p.standardError = log
        try p.run()
        return (p, port)
    }

    /// Sends `requests` (JSON values, or ["raw": text]) and returns [(status, body)].
    func send(_ requests: [Any], port: Int, in dir: URL, parallel: Bool = false) throws -> [(Int, Any)] {
        let file = dir.appendingPathComponent("requests-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: requests).write(to: file)
        let script = CLI.repoRoot.appendingPathComponent("Tests/Scripts/serve_client.py").path
        let r = try CLI.run(
            ["python3", script, "http://127.0.0.1:\(port)/api", file.path] + (parallel ? ["--parallel"] : []), in: dir,
            program: "/usr/bin/env")
        let log = (try? String(contentsOf: dir.appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
        XCTAssertEqual(r.code, 0, r.stderr + "\nserver log:\n" + log)
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        return list.map { ($0["status"] as? Int ?? 0, $0["body"] ?? "") }
    }

    /// SIGTERM, then the exit code (waits up to 60 s).
    func stop(_ p: Process) -> Int32? {
        p.terminate()
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline { usleep(100_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); return nil }
        return p.terminationStatus
    }

    /// The processes whose parent is `pid` (/proc/*/stat).
    func children(of pid: Int32) -> [Int32] {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return all.compactMap(Int32.init).filter { statFields($0).dropFirst(1).first == "\(pid)" }
    }

    /// The fields of /proc/PID/stat after the command name: state, ppid, … (utime and stime at 11, 12).
    func statFields(_ pid: Int32) -> [String] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return [] }
        return text[text.index(after: close)...].split(separator: " ").map(String.init)
    }

    /// User and system CPU seconds `pid` has used.
    func cpuSeconds(_ pid: Int32) -> Double {
        let f = statFields(pid)
        guard f.count > 12, let user = Double(f[11]), let system = Double(f[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// `megatron generate`'s greedy continuation of each prompt.
    func generated(_ dir: URL, tokens: Int) throws -> [String] {
        let file = dir.appendingPathComponent("prompts.txt")
        try (prompts.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        let r = try CLI.run(
            [
                "generate", "--load", "ckpt", "--prompts-file", "prompts.txt", "--top-k", "1", "--tokens-to-generate",
                "\(tokens)", "--output", "generated.jsonl", "--ignore-eod",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let texts = try CLI.jsonLines(dir.appendingPathComponent("generated.jsonl")).map { $0["text"] as? String ?? "" }
        XCTAssertEqual(texts.count, prompts.count, "one generated text per prompt")
        return texts
    }

    func testServerAnswersLikeGenerateRefusesBadRequestsAndStopsCleanly() throws {
        let dir = try prepare("serve")
        let want = try generated(dir, tokens: 12)
        let (server, port) = try start(dir, ranks: 1)
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        let greedy: [String: Any] = ["prompts": prompts, "tokens_to_generate": 12, "top_k": 1]
        let seeded: [String: Any] = [
            "prompts": ["It was"], "tokens_to_generate": 10, "top_p": 0.9, "temperature": 0.8, "random_seed": 5,
        ]
        let answers = try send(
            [
                greedy, seeded, seeded, ["prompts": ["It was"], "tokens_to_generate": 0, "logprobs": true],
                ["raw": "{not json"], ["prompts": ["a"], "top_k": 5, "top_p": 0.5], ["prompts": "a"],
                ["prompts": ["a"], "temperature": 0], ["prompts": ["a"], "tokens_to_generate": 1000],
                ["raw": "{\"prompts\": [\"" + String(repeating: "x", count: 2 << 20) + "\"]}"],
                ["prompts": ["a"], "beam_width": 2],
            ], port: port, in: dir)
        XCTAssertEqual(answers.count, 11)
        XCTAssertEqual(answers[0].0, 200, "\(answers[0].1)")
        let body = try XCTUnwrap(answers[0].1 as? [String: Any])
        XCTAssertEqual(body["text"] as? [String], zip(prompts, want).map { $0 + $1 }, "the server's text is generate's")
        let segments = try XCTUnwrap(body["segments"] as? [[String]])
        XCTAssertEqual(segments.map { $0.joined() }, body["text"] as? [String], "segments are the text's tokens")
        XCTAssertTrue(body["logprobs"] is NSNull)
        XCTAssertEqual(
            (answers[1].1 as? [String: Any])?["text"] as? [String],
            (answers[2].1 as? [String: Any])?["text"] as? [String],
            "the same random_seed gives the same text")
        let scored = try XCTUnwrap((answers[3].1 as? [String: Any])?["logprobs"] as? [[Double]])
        XCTAssertEqual(scored.first?.count, 1, "'It was' is two tokens: one log-probability")
        XCTAssertLessThan(scored.first?.first ?? 0, 0)
        let reasons: [(Int, String)] = [
            (4, "not a JSON object"), (5, "cannot set both top-k and top-p"), (6, "prompts is not a non-empty list"),
            (7, "temperature must be a positive number"), (8, "more than the model's 256"),
            (9, "larger than 1048576 bytes"), (10, "beam_width is not supported"),
        ]
        for (i, reason) in reasons {
            XCTAssertEqual(answers[i].0, 400, "request \(i)")
            XCTAssertTrue((answers[i].1 as? String)?.contains(reason) ?? false, "request \(i): \(answers[i].1)")
        }
        // Concurrent requests are queued and all answered.
        let burst = try send(
            (0..<4).map { _ in greedy }, port: port, in: dir, parallel: true)
        XCTAssertEqual(burst.map(\.0), [200, 200, 200, 200])
        for (_, answer) in burst {
            XCTAssertEqual((answer as? [String: Any])?["text"] as? [String], body["text"] as? [String])
        }
        XCTAssertEqual(stop(server), 0, "SIGTERM stops the server cleanly")
        let log = try String(contentsOf: dir.appendingPathComponent("server.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("serving Megatron's text-generation API"), log)
    }

    /// A port outside 1…65535 or a non-positive body limit is refused before anything loads (a port
    /// past 65535 had been served modulo 2^16 under the number given).
    func testBadPortAndBodyLimitAreRefusedAtOnce() throws {
        let dir = CLI.scratch("serve-bad")
        for (flags, words) in [
            (["--port", "70000"], "'--port' = 70000 is invalid: must be 1 to 65535"),
            (["--port", "0"], "'--port' = 0"),
            (["--max-request-bytes", "0"], "'--max-request-bytes' = 0"),
        ] {
            let r = try CLI.run(["serve", "--load", "nowhere"] + flags, in: dir)
            XCTAssertEqual(r.code, 2, "\(flags): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(words), "\(flags): \(r.stderr)")
        }
    }

    func testServerOnTwoTensorRanksAnswersTheSame() throws {
        let dir = try prepare("serve-grid")
        let want = try generated(dir, tokens: 12)
        let (server, port) = try start(dir, ranks: 2, extra: ["--tensor-model-parallel-size", "2"])
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        let answers = try send(
            [["prompts": prompts, "tokens_to_generate": 12, "top_k": 1]], port: port, in: dir)
        XCTAssertEqual(answers.first?.0, 200)
        XCTAssertEqual(
            (answers.first?.1 as? [String: Any])?["text"] as? [String], zip(prompts, want).map { $0 + $1 })
        // Idle, the ranks wait for the next request asleep: over 2 s both together take well under a
        // core-second (rank 1 waiting in MPI's own broadcast took about a core).
        let ranks = children(of: server.processIdentifier)
        XCTAssertEqual(ranks.count, 2, "the server's two ranks under mpirun")
        let before = ranks.map(cpuSeconds).reduce(0, +)
        sleep(2)
        let idle = ranks.map(cpuSeconds).reduce(0, +) - before
        XCTAssertLessThan(idle, 0.5, "an idle server's ranks took \(idle) s of CPU in 2 s")
        // mpirun forwards SIGTERM to every rank; rank 0 stops serving and tells the others, and the job
        // ends (mpirun's own status reports that it was signalled).
        XCTAssertNotNil(stop(server), "the job ends after SIGTERM")
        let log = try String(contentsOf: dir.appendingPathComponent("server.log"), encoding: .utf8)
        XCTAssertTrue(log.contains(" > stopped"), log)
    }
}

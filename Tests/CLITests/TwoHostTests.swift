// TwoHostTests.swift — one job over two hosts made on this machine (scripts/two_hosts.sh: two
// network namespaces joined by a veth pair, each with its own hostname; Open MPI launches into the
// other namespace instead of over ssh; TCP only). Training at t = 2 × p = 2 and at p = 2 × d = 2
// with the distributed optimizer gives bitwise the losses of the same grid on one host (shared
// memory). Needs root and network namespaces; skipped with the reason otherwise.
import Foundation
import TestSupport
import XCTest

final class TwoHostTests: XCTestCase {
    let script = CLI.repoRoot.appendingPathComponent("scripts/two_hosts.sh").path

    func requireNamespaces() throws {
        guard getuid() == 0 else { throw XCTSkip("network namespaces need root") }
        let probe = try CLI.run(
            ["-c", "ip netns add mgprobe$$ && ip netns del mgprobe$$ && command -v unshare"],
            in: CLI.scratch("two-hosts"), program: "/bin/sh")
        guard probe.code == 0 else { throw XCTSkip("cannot make network namespaces here: \(probe.stderr)") }
    }

    func twoHosts(_ perHost: Int, _ args: [String], in dir: URL, binary: String? = nil) throws -> RunResult {
        try CLI.run(
            [script, "\(perHost)"] + args, in: dir, program: "/bin/bash",
            environment: ["MEGATRON_BIN": binary ?? CLI.binary, "OMPI_MCA_btl": "self,tcp"])
    }

    func testRanksRunOnTwoHostsOverTCP() throws {
        try requireNamespaces()
        let dir = CLI.scratch("two-hosts-names")
        let r = try twoHosts(2, [], in: dir, binary: "/bin/hostname")
        XCTAssertEqual(r.code, 0, r.stderr)
        let names = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(names.count, 4, r.stdout)
        XCTAssertEqual(Set(names).count, 2, "two hosts, two ranks each: \(names)")
        XCTAssertFalse(names.contains(ProcessInfo.processInfo.hostName), "the ranks run on the made hosts: \(names)")
    }

    func testTrainingOverTwoHostsEqualsOneHostBitwise() throws {
        try requireNamespaces()
        let dir = CLI.scratch("two-hosts-train")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "10", "--num-threads", "1",
            "--global-batch-size", "8", "--micro-batch-size", "2", "--hidden-dropout", "0", "--attention-dropout", "0",
            "--eval-iters", "0",
        ]
        let grids: [(String, [String])] = [
            ("t2p2", ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"]),
            ("p2d2-distopt", ["--pipeline-model-parallel-size", "2", "--use-distributed-optimizer", "true"]),
        ]
        for (name, flags) in grids {
            let two = try twoHosts(2, common + flags + ["--metrics-file", "\(name)-two.jsonl"], in: dir)
            XCTAssertEqual(two.code, 0, "\(name) over two hosts: \(two.stderr)")
            let one = try CLI.mpirun(ranks: 4, common + flags + ["--metrics-file", "\(name)-one.jsonl"], in: dir)
            XCTAssertEqual(one.code, 0, "\(name) on one host: \(one.stderr)")
            let a = try CLI.losses(dir, "\(name)-two"), b = try CLI.losses(dir, "\(name)-one")
            XCTAssertEqual(a.count, 10, name)
            XCTAssertEqual(a, b, "\(name): two hosts over TCP give bitwise the losses of one host")
        }
    }
}

// SGDTrainingTests.swift — `--optimizer sgd --sgd-momentum μ` through the binary: it trains (the
// loss falls), t = 2 × p = 2 and d = 2 with the distributed optimizer equal one rank, a resumed run
// continues bitwise (the momentum buffer is in the checkpoint, as optimizer/momentum_buffer, readable
// by h5ls, in both the rank files and the distributed optimizer's shards), and resuming SGD state
// with Adam is refused, naming --no-load-optim.
import Foundation
import TestSupport
import XCTest

final class SGDTrainingTests: XCTestCase {
    func testSGDTrainsOnEveryGridAndResumesBitwise() throws {
        let dir = CLI.scratch("sgd")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--eval-iters", "0", "--num-threads", "1",
            "--optimizer", "sgd", "--sgd-momentum", "0.8", "--lr", "0.05", "--min-lr", "0.005",
        ]
        let ref = try CLI.run(common + ["--train-iters", "12", "--metrics-file", "ref.jsonl"], in: dir)
        XCTAssertEqual(ref.code, 0, ref.stderr)
        let losses = try CLI.losses(dir, "ref")
        XCTAssertEqual(losses.count, 12)
        XCTAssertLessThan(losses.last ?? 9, (losses.first ?? 0) - 0.5, "SGD with momentum learns: \(losses)")
        for (name, ranks, args) in [
            ("t2p2", 4, ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"]),
            ("d2-distopt", 2, ["--use-distributed-optimizer"]),
        ] {
            let r = try CLI.mpirun(
                ranks: ranks, common + args + ["--train-iters", "12", "--metrics-file", "\(name).jsonl"], in: dir)
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            assertLossesMatch(try CLI.losses(dir, name), losses, count: 12, relativeTolerance: 1e-5, name)
        }
        // Stop at 6 (exit_interval saves), resume to 12: bitwise the uninterrupted run — on one rank and
        // with the state sharded over d = 2.
        for (name, ranks, extra) in [("one", 1, [String]()), ("sharded", 2, ["--use-distributed-optimizer"])] {
            let run = { (args: [String]) in
                ranks == 1 ? try CLI.run(args, in: dir) : try CLI.mpirun(ranks: ranks, args, in: dir)
            }
            let base = common + extra + ["--train-iters", "12", "--save", "ck-\(name)", "--load", "ck-\(name)"]
            let first = try run(base + ["--exit-interval", "6", "--metrics-file", "\(name)-a.jsonl"])
            XCTAssertEqual(first.code, 0, first.stderr)
            let second = try run(base + ["--metrics-file", "\(name)-b.jsonl"])
            XCTAssertEqual(second.code, 0, second.stderr)
            let resumed = try CLI.losses(dir, "\(name)-a") + CLI.losses(dir, "\(name)-b")
            let expected = name == "one" ? losses : try CLI.losses(dir, "d2-distopt")
            assertLossesMatch(resumed, expected, count: 12, relativeTolerance: 0, "\(name): resumed at 6")
        }
        let listing = try CLI.run(
            ["-r", "ck-one/iter_0000012/mp_rank_00_000.h5"], in: dir, program: "/usr/bin/h5ls")
        XCTAssertTrue(listing.stdout.contains("/optimizer/momentum_buffer/"), listing.stdout)
        XCTAssertFalse(listing.stdout.contains("exp_avg"), listing.stdout)
        let shards = try CLI.run(
            ["-r", "ck-sharded/iter_0000012/distrib_optim_00_000_001.h5"], in: dir, program: "/usr/bin/h5ls")
        XCTAssertTrue(shards.stdout.contains("/momentum_buffer/"), shards.stdout)
        // SGD state into Adam: refused, saying what to do; with --no-load-optim the weights load.
        let adam = ["train", "--config", CLI.config("gpt2-tiny.json"), "--eval-iters", "0", "--num-threads", "1"]
        let refused = try CLI.run(adam + ["--train-iters", "14", "--load", "ck-one"], in: dir)
        XCTAssertNotEqual(refused.code, 0)
        XCTAssertTrue(
            refused.stderr.contains("holds sgd state") && refused.stderr.contains("--no-load-optim"), refused.stderr)
        let weights = try CLI.run(adam + ["--train-iters", "14", "--load", "ck-one", "--no-load-optim"], in: dir)
        XCTAssertEqual(weights.code, 0, weights.stderr)
    }
}

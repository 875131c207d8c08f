// BenchmarkCommandTests.swift — `megatron benchmark` (scripts/bench*.sh build on it) runs a tiny
// GPT on one rank and on a p = 2 pipeline under `mpirun`: it prints the step line, writes its JSON
// with the pipeline's bubble beside its theory and the page faults of a step, and names the keys it
// does not honour (save, load, metrics_file, trace_dir) instead of dropping them silently; a p = 2
// step whose tied word embedding's gradient sum is larger than glibc's mmap threshold faults in no
// pages afresh; `--attention-only` times the attention core alone. Speed itself is never checked here.
import Foundation
import TestSupport
import XCTest

final class BenchmarkCommandTests: XCTestCase {
    func testOneRankStepLineAndIgnoredKeysNamed() throws {
        let dir = CLI.scratch("benchmark")
        let r = try CLI.run(
            [
                "benchmark", "--config", CLI.config("gpt2-tiny.json"), "--steps", "1", "--num-threads", "1",
                "--trace-dir", "traces", "--json", "one.json",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("benchmark: not used here: trace_dir"), r.stdout)
        XCTAssertTrue(r.stdout.contains("tokens/s"), r.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("traces").path))
        let json = try CLI.jsonObject(dir.appendingPathComponent("one.json"))
        XCTAssertGreaterThan(try XCTUnwrap(json["tokens_per_s"] as? Double), 0)
        XCTAssertEqual(json["world"] as? Int, 1)
        // Memory is planned: after the warm-up step a step maps in almost no new page (under 1% of
        // the resident set; a per-step allocation of the activations would fault them all afresh).
        let faults = try XCTUnwrap(json["page_faults_per_step"] as? Double)
        let residentPages = try XCTUnwrap(json["peak_rss_mib"] as? Double) * 256
        XCTAssertLessThan(
            faults, residentPages / 100, "\(faults) page faults per step, \(residentPages) pages resident")
        XCTAssertTrue(r.stdout.contains("page faults per step"), r.stdout)
    }

    /// `--attention-only` times the attention core alone at the config's shape: no training step,
    /// one row per precision the CPU runs (bf16 only with a bf16 kernel), each pass's time positive
    /// and its rate consistent with the counted pairs (causal for GPT: s(s + 1)/2 per head).
    func testAttentionOnlyTimesTheCoreAtTheConfigShape() throws {
        let dir = CLI.scratch("benchmark-attention")
        let r = try CLI.run(
            [
                "benchmark", "--attention-only", "--config", CLI.config("gpt2-tiny.json"), "--num-threads", "1",
                "--micro-batch-size", "2", "--json", "attention.json",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("attention core: causal (GPT)"), r.stdout)
        XCTAssertFalse(r.stdout.contains("tokens/s"), r.stdout)
        let json = try CLI.jsonObject(dir.appendingPathComponent("attention.json"))
        let (s, b, heads, d) = (64, 2, 4, 16)  // gpt2-tiny: seq 64, hidden 64, 4 heads
        XCTAssertEqual(json["seq"] as? Int, s)
        XCTAssertEqual(json["micro_batch"] as? Int, b)
        XCTAssertEqual(json["heads"] as? Int, heads)
        XCTAssertEqual(json["head_dim"] as? Int, d)
        let rows = try XCTUnwrap(json["attention"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["precision"] as? String }.first, "fp32")
        XCTAssertTrue((1...2).contains(rows.count), "\(rows)")
        for row in rows {
            let ms = try XCTUnwrap(row["forward_ms"] as? Double)
            let rate = try XCTUnwrap(row["forward_gflops"] as? Double)
            XCTAssertGreaterThan(ms, 0)
            XCTAssertEqual(
                rate * ms * 1e6, 4.0 * Double(b * heads * d * s * (s + 1) / 2), accuracy: 1e-3 * rate * ms * 1e6)
            XCTAssertGreaterThan(try XCTUnwrap(row["backward_ms"] as? Double), 0)
        }
    }

    func testPipelineReportsItsBubbleAndSplit() throws {
        let dir = CLI.scratch("benchmark-pp")
        let r = try CLI.mpirun(
            ranks: 2,
            [
                "benchmark", "--config", CLI.config("gpt2-tiny.json"), "--steps", "1", "--num-threads", "1",
                "--num-layers", "8", "--micro-batch-size", "2", "--pipeline-model-parallel-size", "2",
                "--pipeline-schedule", "zb-h1", "--pipeline-auto-balance", "true", "--json", "pp.json",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("pipeline zb-h1 p = 2, v = 1"), r.stdout)
        let json = try CLI.jsonObject(dir.appendingPathComponent("pp.json"))
        let measured = try XCTUnwrap(json["bubble_measured"] as? Double)
        let theory = try XCTUnwrap(json["bubble_theory"] as? Double)
        XCTAssertTrue(measured >= 0 && theory >= 0 && theory < 1, "bubble \(measured), theory \(theory)")
        // One rank per stage here, so the stages' bubbles average to the measured one.
        let byStage = try XCTUnwrap(json["bubble_by_stage"] as? [Double])
        XCTAssertEqual(byStage.count, 2)
        XCTAssertEqual(byStage.reduce(0, +) / 2, measured, accuracy: 1e-9)
        XCTAssertTrue(r.stdout.contains("by stage "), r.stdout)
        let layers = try XCTUnwrap(json["stage_layers"] as? [Double])
        XCTAssertEqual(layers.count, 2)
        XCTAssertEqual(layers.reduce(0, +), 8)
    }

    /// The first and last stage sum the tied word embedding's gradient (103 MB here) every step; one
    /// MPI_Allreduce of it had Open MPI map and unmap a temporary buffer above glibc's mmap threshold
    /// each time: 12,578 fresh pages (49 MB) a step before the sum went in pieces.
    func testPipelineStepFaultsNoPagesForTheTiedEmbeddingSum() throws {
        let dir = CLI.scratch("benchmark-pp-faults")
        let r = try CLI.mpirun(
            ranks: 2,
            [
                "benchmark", "--config", CLI.config("gpt2-tiny.json"), "--steps", "2", "--num-threads", "1",
                "--num-layers", "2", "--hidden-size", "512", "--num-attention-heads", "8", "--micro-batch-size", "1",
                "--global-batch-size", "2", "--tokenizer-type", "NullTokenizer", "--vocab-size", "50257",
                "--mock-data", "true", "--pipeline-model-parallel-size", "2", "--json", "faults.json",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let json = try CLI.jsonObject(dir.appendingPathComponent("faults.json"))
        let faults = try XCTUnwrap(json["page_faults_per_step"] as? Double)
        XCTAssertLessThan(faults, 1_000, "\(faults) page faults per step on the first stage")
    }
}

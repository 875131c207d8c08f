// Megatron.swift — the `megatron` command: a PTD-P GPT trainer for CPU clusters over MPI.
// One file per subcommand; this root only lists them.
import ArgumentParser

@main
struct Megatron: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "megatron",
        abstract: "Train GPT models with Megatron-LM's tensor, pipeline and data parallelism on CPUs over MPI.",
        discussion: """
            Start with:  megatron train --config configs/gpt2-tiny.json --train-iters 40
            Every config key can also be given as a flag: --train-iters 40 overrides train_iters.
            """,
        version: "0.1.0",
        subcommands: [
            Train.self, Finetune.self, Evaluate.self, Generate.self, Serve.self, ConvertCheckpoint.self,
            PreprocessData.self,
            Benchmark.self,
            Schedule.self,
            Plan.self,
        ])
}

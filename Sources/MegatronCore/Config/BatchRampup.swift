// BatchRampup.swift — Megatron's batch-size ramp-up (`--rampup-batch-size START INCREMENT SAMPLES`,
// its RampupBatchsizeNumMicroBatches): the global batch starts at START and grows by INCREMENT
// each time another SAMPLES / ((global_batch_size − START) / INCREMENT) samples have been consumed,
// reaching global_batch_size after SAMPLES samples; after that it stays there.
//     batch(consumed) = global_batch_size                         if consumed > SAMPLES
//                     = START + ⌊consumed / per-increment⌋·INCREMENT   otherwise
// Training is sample-based (train_samples): train_iters counts the ramp's iterations one by one,
// then the remaining samples in whole global batches (Megatron's update_train_iters).

public struct BatchRampup: Sendable, Equatable {
    public let start: Int, increment: Int, samples: Int
    /// The batch size the ramp ends at (global_batch_size).
    public let final: Int

    /// Parses the key's three values (as given in a config or on the command line), or explains what is wrong.
    public init(values: [String], globalBatchSize: Int) throws {
        let ints = values.compactMap { Int($0) }
        guard values.count == 3, ints.count == 3, ints[0] > 0, ints[1] > 0, ints[2] >= 0 else {
            throw ConfigError.invalidValue(
                key: "rampup_batch_size", value: values.joined(separator: " "),
                rule: "must be three integers: start batch size, increment, ramp-up samples (e.g. 16 16 5859375)")
        }
        (start, increment, samples, final) = (ints[0], ints[1], ints[2], globalBatchSize)
        guard start <= final, (final - start) % increment == 0 else {
            throw ConfigError.inconsistent(
                keys: ["rampup_batch_size", "global_batch_size"],
                rule:
                    "global_batch_size \(final) minus the start batch size \(start) must be a non-negative multiple "
                    + "of the increment \(increment)")
        }
    }

    /// Samples consumed per increment of the batch size (fractional, as Megatron computes it).
    var samplesPerIncrement: Double {
        let increments = (final - start) / increment
        return increments == 0 ? .infinity : Double(samples) / Double(increments)
    }

    /// The global batch size of the iteration that starts after `consumed` samples.
    public func batchSize(consumed: Int) -> Int {
        if consumed > samples { return final }
        let steps = Int(Double(consumed) / samplesPerIncrement)
        return min(final, start + steps * increment)
    }

    /// Every batch size the ramp passes through, smallest first.
    public var batchSizes: [Int] { Array(stride(from: start, through: final, by: increment)) }

    /// Iterations that train `trainSamples` samples (Megatron's update_train_iters): the ramp's
    /// iterations while consumed ≤ the ramp's samples and ≤ trainSamples, then whole final batches.
    public func trainIterations(trainSamples: Int) -> Int {
        var iterations = 0, consumed = 0
        while consumed <= samples && consumed <= trainSamples {
            consumed += batchSize(consumed: consumed)
            iterations += 1
        }
        if trainSamples > consumed { iterations += (trainSamples - consumed) / final }
        return iterations
    }

    /// Samples consumed by the first `iterations` iterations.
    public func consumedSamples(afterIterations iterations: Int) -> Int {
        var consumed = 0
        for _ in 0..<iterations { consumed += batchSize(consumed: consumed) }
        return consumed
    }
}

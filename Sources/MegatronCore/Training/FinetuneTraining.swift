// FinetuneTraining.swift — a finetuning run (Megatron's tasks/main.py): RACE, MNLI or QQP examples
// (FinetuneReaders.swift) encoded as BERT sequences, epochs over a per-epoch shuffle, and a BERT
// partition with the task's head (BertTask), handed to the model-agnostic Trainer.
//   encoding (Megatron's build_tokens_types_paddings_from_ids): [CLS] A [SEP] B, types 0 for
//     [CLS] A [SEP] and 1 for B; cut to seq_length − 1 when longer (the end of B goes first), then
//     [SEP] (type 1) and padding. MNLI/QQP: A = the first sentence, B = the second. RACE: one
//     sequence per option, A = the question with the option (a "_" replaced by it, else appended;
//     at most 128 tokens: Megatron's max_qa_length), B = the article — so truncation shortens the
//     article, never the question.
//   order: example k of the run is epoch k / N's shuffled position k mod N (the shuffle keyed by
//     seed and epoch), so a resumed run continues mid-epoch exactly; validation scores every
//     validation example exactly once per evaluation (the last global batch is filled up with
//     examples labelled −1, which count nowhere).
import Foundation

/// The finetuning tasks of Megatron's tasks/main.py that this tool implements.
public enum FinetuneTask: String, Sendable, CaseIterable {
    case race = "RACE"
    case mnli = "MNLI"
    case qqp = "QQP"

    public var bertTask: BertTask {
        switch self {
        case .race: return .multipleChoice(choices: 4)
        case .mnli: return .classification(classes: 3)
        case .qqp: return .classification(classes: 2)
        }
    }
}

/// One example as the model reads it: its sequences (one, or a question's options) and its label.
public struct FinetuneExample: Sendable, Equatable {
    public var tokens: [[Int32]], types: [[Int32]], lengths: [Int]
    public var label: Int32
}

public enum FinetuneEncoding {
    /// Megatron's RACE cap on the question-with-option tokens.
    public static let maxQuestionTokens = 128

    /// [CLS] a [SEP] b, cut to `seqLength − 1`, then [SEP]; padded to `seqLength`. Returns tokens, types, length.
    public static func pair(_ a: [Int32], _ b: [Int32], vocabulary v: BertVocabulary, seqLength s: Int) -> (
        [Int32], [Int32], Int
    ) {
        var tokens = [v.cls] + a + [v.sep] + b
        var types = [Int32](repeating: 0, count: a.count + 2) + [Int32](repeating: 1, count: b.count)
        if tokens.count >= s {
            tokens.removeLast(tokens.count - (s - 1))
            types.removeLast(types.count - (s - 1))
        }
        tokens.append(v.sep)
        types.append(1)
        let length = tokens.count
        return (
            tokens + [Int32](repeating: v.pad, count: s - length), types + [Int32](repeating: 0, count: s - length),
            length
        )
    }

    /// The examples of `paths` (files, or RACE split directories) for `task`.
    public static func load(
        _ task: FinetuneTask, paths: [String], tokenize: (String) -> [Int32], vocabulary: BertVocabulary,
        seqLength: Int
    ) throws -> [FinetuneExample] {
        var out: [FinetuneExample] = []
        for path in paths {
            switch task {
            case .race:
                for q in try RACEReader.read(path: path) {
                    let article = tokenize(q.article)
                    var example = FinetuneExample(tokens: [], types: [], lengths: [], label: Int32(q.answer))
                    for k in 0..<4 {
                        let qa = Array(tokenize(q.questionWithOption(k)).prefix(maxQuestionTokens))
                        let (t, ty, n) = pair(qa, article, vocabulary: vocabulary, seqLength: seqLength)
                        example.tokens.append(t); example.types.append(ty); example.lengths.append(n)
                    }
                    out.append(example)
                }
            case .mnli, .qqp:
                for p in try GLUEReader.read(task == .mnli ? .mnli : .qqp, path: path) {
                    guard let label = p.label else {
                        throw FinetuneDataError.bad(
                            path: path, line: nil,
                            reason: "a test file has no labels; finetuning needs train and dev files")
                    }
                    let (t, ty, n) = pair(
                        tokenize(p.first), tokenize(p.second), vocabulary: vocabulary, seqLength: seqLength)
                    out.append(FinetuneExample(tokens: [t], types: [ty], lengths: [n], label: Int32(label)))
                }
            }
        }
        return out
    }
}

public final class FinetuneData: TrainingBatches {
    public let train: [FinetuneExample], valid: [FinetuneExample]
    let microBatch: Int, dataParallel: Int, dataRank: Int
    private var trainOrder: EpochShuffle

    public init(train: [FinetuneExample], valid: [FinetuneExample], config c: TrainingConfig, parallel: ParallelState) {
        self.train = train; self.valid = valid
        microBatch = c.microBatchSize
        dataParallel = parallel.layout.data
        dataRank = parallel.dataRank
        trainOrder = EpochShuffle(count: max(1, train.count), seed: c.seed, stream: 5)
    }

    public var hasValidation: Bool { !valid.isEmpty }

    /// Training example k of the run (epoch k / N, shuffled per epoch).
    func trainExample(_ k: Int) -> FinetuneExample { train[trainOrder.item(k)] }

    public func fillTraining(consumedSamples: Int, micro: Int, microbatches: Int, _ acts: BertActivations) {
        let first = consumedSamples + (micro * dataParallel + dataRank) * microBatch
        Self.place((0..<microBatch).map { trainExample(first + $0) }, into: acts)
    }

    /// Validation examples in order; past the last one, filler (label −1: counted nowhere), so an
    /// evaluation of ⌈N / global batch⌉ iterations scores every example exactly once.
    public func fillValidation(iteration: Int, micro: Int, microbatches: Int, _ acts: BertActivations) {
        let batch = (iteration * microbatches + micro) * dataParallel + dataRank
        Self.place(
            (0..<microBatch).map { j in
                let k = batch * microBatch + j
                var example = valid[k % valid.count]
                if k >= valid.count { example.label = -1 }
                return example
            }, into: acts)
    }

    /// Example j's sequences go to columns j·G ..< (j + 1)·G of the [s, b·G] rows; its label to entry j.
    static func place(_ examples: [FinetuneExample], into acts: BertActivations) {
        let core = acts.core, b = core.batch
        var lengths: [Int] = []
        for (j, example) in examples.enumerated() {
            for (g, tokens) in example.tokens.enumerated() {
                let column = j * example.tokens.count + g
                for (pos, t) in tokens.enumerated() {
                    core.tokens.base[pos * b + column] = t
                    acts.tokentypes.base[pos * b + column] = example.types[g][pos]
                    acts.labels.base[pos * b + column] = -1
                }
                lengths.append(example.lengths[g])
            }
            acts.sequenceLabels[j] = example.label
        }
        acts.setLengths(lengths)
    }
}

extension Trainer where Chunk == BertModel, Data == FinetuneData {
    /// A finetuning run of `task` on `data` for a validated BERT config (train_iters set by the caller).
    public static func finetune(
        config c: TrainingConfig, task: FinetuneTask, data: FinetuneData, vocabSize: Int, log: RankLog, threads: Int,
        parallel: ParallelState
    ) throws -> Trainer<BertModel, FinetuneData> {
        let d = parallel.layout.data, globalBatch = c.globalBatchSize ?? c.microBatchSize * d
        let options = partitionOptions(c, microbatches: globalBatch / (c.microBatchSize * d))
        let partition = try ModelPartition.bert(
            config: c, vocabSize: vocabSize, threads: threads, parallel: parallel, options: options, task: task.bertTask
        )
        return Trainer(config: c, log: log, parallel: parallel, partition: partition, data: data)
    }
}

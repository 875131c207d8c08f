// SentencePieceTokenizer.swift — Megatron's three tokenizers over a SentencePiece model
// (`tokenizer_model`), each with Megatron's ids and special tokens:
//   Llama2Tokenizer — the model's ids with its BOS in front of every text; eod is its EOS;
//     the vocabulary is the model's (Llama 2, Mistral, …).
//   GPTSentencePieceTokenizer — the model's ids alone; eod is its EOS.
//   SentencePieceTokenizer — the model's pieces plus <CLS>, <SEP>, <EOD>, <MASK> and the pad, BOS and
//     EOS pieces (<PAD>, <BOS>, <EOS> when the model has none), each appended after the model's ids
//     unless the model has that piece; those strings in the text are their ids (the text between
//     them encoded on its own), decoding writes them back between spaces; eod is <EOD>.
import Foundation

public final class SentencePieceTokenizer: Tokenizer, @unchecked Sendable {
    public enum Flavour: Sendable { case megatron, gpt, llama2 }

    public let flavour: Flavour
    public let vocabSize: Int
    public let eod: Int32
    public let bos: Int32?, eos: Int32?
    let encoder: SentencePieceEncoder
    /// SentencePieceTokenizer's special tokens (its added ones and the model's pad/BOS/EOS pieces), in
    /// Megatron's order.
    let specials: [(text: [UInt8], id: Int32)]
    public let path: String

    /// SentencePieceTokenizer's <CLS>, <SEP>, <MASK> and pad ids (BERT's special tokens); nil for the
    /// other two flavours.
    public let bertSpecials: (cls: Int32, sep: Int32, mask: Int32, pad: Int32)?

    /// The model's <unk> piece.
    public var unk: Int32 { encoder.unkID }

    /// The text of piece `id` as the model file writes it ("<s>", "▁the", "<0x0A>").
    public func pieceText(_ id: Int32) -> String { String(decoding: encoder.model.pieces[Int(id)].text, as: UTF8.self) }

    public var name: String {
        switch flavour {
        case .megatron: return "SentencePieceTokenizer"
        case .gpt: return "GPTSentencePieceTokenizer"
        case .llama2: return "Llama2Tokenizer"
        }
    }

    public init(modelFile: String, flavour: Flavour) throws {
        let model = try SentencePieceModelFile(path: modelFile)
        encoder = try SentencePieceEncoder(model: model, path: modelFile)
        self.flavour = flavour
        path = modelFile
        let count = model.pieces.count
        func id(_ i: Int) -> Int32? { i >= 0 && i < count ? Int32(i) : nil }
        (bos, eos) = (id(model.bosID), id(model.eosID))
        switch flavour {
        case .gpt, .llama2:
            guard let eos else {
                throw TokenizerError.malformed(
                    path: modelFile,
                    reason:
                        "no EOS piece (eos_id \(model.eosID)): "
                        + "\(flavour == .llama2 ? "Llama2Tokenizer" : "GPTSentencePieceTokenizer")'s eod is the EOS")
            }
            if flavour == .llama2 && bos == nil {
                throw TokenizerError.malformed(
                    path: modelFile,
                    reason: "no BOS piece (bos_id \(model.bosID)): Llama2Tokenizer puts the BOS before every text; "
                        + "use GPTSentencePieceTokenizer")
            }
            (vocabSize, eod, specials, bertSpecials) = (count, eos, [], nil)
        case .megatron:
            var vocabulary: [[UInt8]: Int32] = [:]
            for (i, p) in model.pieces.enumerated() where vocabulary[p.text] == nil { vocabulary[p.text] = Int32(i) }
            var specials: [(text: [UInt8], id: Int32)] = []
            var next = Int32(count)
            let named = [("<PAD>", model.padID), ("<BOS>", model.bosID), ("<EOS>", model.eosID)].map { fallback, i in
                id(i).map { model.pieces[Int($0)].text } ?? Array(fallback.utf8)
            }
            for text in ["<CLS>", "<SEP>", "<EOD>", "<MASK>"].map({ Array($0.utf8) }) + named {
                let tokenID = vocabulary[text] ?? next
                if vocabulary[text] == nil {
                    vocabulary[text] = next
                    next += 1
                }
                if !specials.contains(where: { $0.text == text }) { specials.append((text, tokenID)) }
            }
            self.specials = specials
            vocabSize = Int(next)
            let ids = (["<CLS>", "<SEP>", "<EOD>", "<MASK>"].map { Array($0.utf8) } + [named[0]]).map {
                vocabulary[$0]!
            }
            eod = ids[2]
            bertSpecials = (ids[0], ids[1], ids[3], ids[4])
        }
    }

    public func encode(_ text: UnsafeBufferPointer<UInt8>) -> [Int32] {
        switch flavour {
        case .gpt: return encoder.encode(text)
        case .llama2: return [bos!] + encoder.encode(text)
        case .megatron:
            var ids: [Int32] = []
            var start = 0
            while let (at, special) = firstSpecial(text, from: start) {
                ids += encoder.encode(UnsafeBufferPointer(rebasing: text[start..<at]))
                ids.append(special.id)
                start = at + special.text.count
            }
            return ids + encoder.encode(UnsafeBufferPointer(rebasing: text[start...]))
        }
    }

    /// The pieces of `text` after other text: without the BOS, and its one leading space left to the
    /// dummy prefix ("▁word", as inside "context word"), where the model adds one.
    public func encodeContinuation(_ text: [UInt8]) -> [Int32] {
        let dropsSpace = encoder.model.addDummyPrefix && !encoder.model.treatWhitespaceAsSuffix && text.first == 0x20
        return Array(dropsSpace ? text.dropFirst() : text[...]).withUnsafeBufferPointer { encoder.encode($0) }
    }

    /// The earliest special token at or after `start` (the first listed when two start together).
    private func firstSpecial(
        _ text: UnsafeBufferPointer<UInt8>, from start: Int
    ) -> (Int, (text: [UInt8], id: Int32))? {
        guard !specials.isEmpty else { return nil }
        var position = start
        while position < text.count {
            for s in specials
            where s.text.count <= text.count - position
                && text[position..<(position + s.text.count)].elementsEqual(s.text)
            {
                return (position, s)
            }
            position += 1
        }
        return nil
    }

    public func decode(_ ids: [Int32]) -> [UInt8] { decode(ids, continuing: false) }

    public func decodeContinuation(_ ids: [Int32], after context: [Int32]) -> [UInt8] {
        // Megatron's SentencePieceTokenizer decodes the text after a special token on its own.
        let lastRun = context.lastIndex { id in specials.contains { $0.id == id } }.map { context[($0 + 1)...] }
        return decode(ids, continuing: encoder.hasText(Array(lastRun ?? context[...])))
    }

    private func decode(_ ids: [Int32], continuing: Bool) -> [UInt8] {
        guard flavour == .megatron else { return encoder.decode(ids, continuing: continuing) }
        var out: [UInt8] = []
        var run: [Int32] = []
        var continuing = continuing
        for id in ids {
            if let s = specials.first(where: { $0.id == id }) {
                out += encoder.decode(run, continuing: continuing) + [0x20] + s.text + [0x20]
                run.removeAll()
                continuing = false  // Megatron decodes the run after a special token as a new text
            } else {
                run.append(id)
            }
        }
        return out + encoder.decode(run, continuing: continuing)
    }
}

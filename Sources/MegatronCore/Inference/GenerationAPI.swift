// GenerationAPI.swift — Megatron-LM's text-generation server API (PUT /api), without the HTTP: the
// request's fields, defaults and validation (megatron/inference/text_generation_server.py:
// `prompts` a non-empty list of at most 128 strings, `tokens_to_generate` ≥ 0 (default 64; 0 scores
// the prompts and needs `logprobs`), `logprobs` (false), `temperature` in (0, 100] (1.0), `top_k` in
// [0, 1000] (0), `top_p` in [0, 1] (0), not both top-k and top-p, `add_BOS` (false), `random_seed`
// ≥ 0 (unset: a new seed per request), `stop_on_eod`-style end at <|endoftext|>), each refusal a
// sentence naming the field; and the response: `text` (prompt and continuation), `segments` (each
// token's text) and `logprobs` (log p of every token after the first, when asked; else null).
// Unsupported Megatron fields (beam search, stop_on_eol, …) are refused by name, never ignored.
import Foundation

public enum GenerationAPI {
    public static let maxPrompts = 128

    /// The generation request in `body`, or the reason it is refused (an HTTP 400).
    public static func parse(_ body: Data, tokenizer: Tokenizer, maxPositions: Int) -> Result<
        GenerationRequest, Refusal
    > {
        guard let object = try? JSONSerialization.jsonObject(with: body), let fields = object as? [String: Any] else {
            return .refuse("the request body is not a JSON object")
        }
        let known: Set<String> = [
            "prompts", "tokens_to_generate", "logprobs", "temperature", "top_k", "top_p", "add_BOS", "random_seed",
        ]
        let refused = [
            "beam_width", "length_penalty", "stop_token", "stop_on_eol", "stop_on_double_eol",
            "prevent_newline_after_colon",
        ]
        if let name = fields.keys.sorted().first(where: { refused.contains($0) }) {
            return .refuse("\(name) is not supported by this server")
        }
        if let name = fields.keys.sorted().first(where: { !known.contains($0) && $0 != "no_log" }) {
            return .refuse("unknown field \(name); the fields are \(known.sorted().joined(separator: ", "))")
        }
        guard let raw = fields["prompts"] else { return .refuse("prompts argument required") }
        guard let prompts = raw as? [String], !prompts.isEmpty else {
            return .refuse("prompts is not a non-empty list of strings")
        }
        if prompts.count > maxPrompts { return .refuse("Maximum number of prompts is \(maxPrompts)") }
        var request = GenerationRequest(prompts: [], tokensToGenerate: 64, sampling: SamplingOptions())
        do {
            request.tokensToGenerate = try integer(fields, "tokens_to_generate", default: 64, "an integer ≥ 0") {
                $0 >= 0
            }
            request.logprobs = try boolean(fields, "logprobs", default: false)
            if request.tokensToGenerate == 0 && !request.logprobs {
                return .refuse("tokens_to_generate=0 implies logprobs should be True")
            }
            request.sampling.temperature = try number(
                fields, "temperature", default: 1, "a positive number less than or equal to 100.0"
            ) { $0 > 0 && $0 <= 100 }
            request.sampling.topK = try integer(fields, "top_k", default: 0, "an integer from 0 to 1000") {
                $0 >= 0 && $0 <= 1000
            }
            request.sampling.topP = try number(fields, "top_p", default: 0, "a number from 0 to 1") {
                $0 >= 0 && $0 <= 1
            }
            if request.sampling.topK > 0 && request.sampling.topP > 0 {
                return .refuse("cannot set both top-k and top-p samplings.")
            }
            let seed = try integer(fields, "random_seed", default: -1, "an integer ≥ 0") { $0 >= 0 }
            request.sampling.seed = seed >= 0 ? seed : Int.random(in: 0..<(1 << 31))
            let addBOS = try boolean(fields, "add_BOS", default: false)
            request.prompts = prompts.map { text in
                (addBOS ? [tokenizer.eod] : []) + tokenizer.encode(Array(text.utf8))
            }
        } catch let error as FieldError {
            return .refuse(error.message)
        } catch {
            return .refuse("\(error)")
        }
        for (i, ids) in request.prompts.enumerated() {
            if ids.isEmpty { return .refuse("prompt \(i) is empty (send text, or add_BOS: true)") }
            // tokens_to_generate may be any integer up to Int.max: the sum is checked, never trapped on.
            let needed = GenerationRequest.positionsNeeded(prompt: ids.count, generating: request.tokensToGenerate)
            if (needed ?? .max) > maxPositions {
                return .refuse(
                    "prompt \(i) has \(ids.count) tokens; with tokens_to_generate \(request.tokensToGenerate) it "
                        + "needs \(needed.map { "\($0) positions" } ?? "more positions"), more than the model's "
                        + "\(maxPositions)")
            }
        }
        return .success(request)
    }

    /// The response body: {"text": […], "segments": [[…]], "logprobs": [[…]] or null}.
    public static func response(_ result: GenerationResult, tokenizer: Tokenizer, logprobs: Bool) -> Data {
        let text = result.tokens.map { String(decoding: tokenizer.decode($0), as: UTF8.self) }
        let segments = result.tokens.map { ids in ids.map { String(decoding: tokenizer.decode([$0]), as: UTF8.self) } }
        let object: [String: Any] = [
            "text": text, "segments": segments,
            "logprobs": logprobs ? result.logprobs.map { $0.map(Double.init) } : NSNull(),
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }

    /// Why a request is refused (the body of the 400 answer).
    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
    }

    struct FieldError: Error { let message: String }

    /// JSON true/false arrive as NSNumber too; their type code is C's char.
    static func isBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    static func integer(_ f: [String: Any], _ key: String, default d: Int, _ rule: String, _ ok: (Int) -> Bool) throws
        -> Int
    {
        guard let value = f[key] else { return d }
        guard let number = value as? NSNumber, !isBoolean(number),
            let v = Int(exactly: number.doubleValue), ok(v)
        else { throw FieldError(message: "\(key) must be \(rule) (got \(value))") }
        return v
    }

    static func number(_ f: [String: Any], _ key: String, default d: Double, _ rule: String, _ ok: (Double) -> Bool)
        throws -> Double
    {
        guard let value = f[key] else { return d }
        guard let number = value as? NSNumber, !isBoolean(number), ok(number.doubleValue)
        else { throw FieldError(message: "\(key) must be \(rule) (got \(value))") }
        return number.doubleValue
    }

    static func boolean(_ f: [String: Any], _ key: String, default d: Bool) throws -> Bool {
        guard let value = f[key] else { return d }
        guard let number = value as? NSNumber, isBoolean(number) else {
            throw FieldError(message: "\(key) must be a boolean value (got \(value))")
        }
        return number.boolValue
    }
}

extension Result where Failure == GenerationAPI.Refusal {
    static func refuse(_ reason: String) -> Self { .failure(GenerationAPI.Refusal(description: reason)) }
}

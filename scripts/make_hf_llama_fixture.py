#!/usr/bin/env python3
"""Writes Tests/CLITests/Fixtures/hf_llama_tiny/: a small random LlamaForCausalLM in Hugging Face
format (config.json, model.safetensors) and what transformers computes with it (expected.json), so
the Swift tests can check `convert-checkpoint --from hf` and `--to hf` for Llama without torch.

    pip install torch transformers safetensors && python3 scripts/make_hf_llama_fixture.py [--check-export DIR]

The model: 2 layers, hidden 64, 4 heads in 2 key/value groups (grouped-query attention), SwiGLU
width 96, vocabulary 61, rope_theta 10000, RMSNorm eps 1e-5, an untied LM head; random (seed 0)
with norm weights drawn around 1, stored as float32. expected.json holds input_ids [2, 12] and,
per sequence and position, the log-probability of the next token and the arg-max token.
--check-export DIR loads a directory written by `megatron convert-checkpoint --to hf` with
LlamaForCausalLM.from_pretrained and checks its log-probabilities against expected.json.

Also Tests/CLITests/Fixtures/hf_llama_sp/: a Llama with a SentencePiece tokenizer — the 1,000-piece
Llama-2-style BPE model of Tests/MegatronCoreTests/Fixtures/sentencepiece (llama_bpe.model, from
scripts/make_sentencepiece_fixture.py) as tokenizer.model, LlamaTokenizer's tokenizer_config.json
(add_bos_token), 2 layers, hidden 32, 4 heads in 2 groups, vocabulary 1,000, tied embeddings — and
its expected.json: for three text prompts, transformers' AutoTokenizer ids and 12 greedily generated
tokens with their text (tokenizer.decode of the new ids after the prompt's, special tokens skipped).
--check-tokenizer DIR loads DIR's tokenizer with AutoTokenizer and checks the prompts' ids.

And Tests/CLITests/Fixtures/hf_mistral_tiny/: a MistralForCausalLM (2 layers, hidden 64, 4 heads in 2
groups, vocabulary 61, 64 positions with a sliding window of 16, rope_theta 1e6) and expected.json
as for the Llama, over two sequences of 64 tokens (four windows long), plus a greedy generation of
16 tokens after 24 random prompt ids (prompt_tokens, generated).

And Tests/CLITests/Fixtures/hf_llama3_rope/: a LlamaForCausalLM with Llama 3.1's rope (rope_theta 5e5,
rope_scaling llama3, factor 8, low/high frequency factors 1 and 4, original context 8,192; 2 layers,
hidden 64, 4 heads in 2 groups, 256 positions) and expected.json as for the Llama over two sequences of
256 tokens, plus transformers' rescaled inverse frequencies (inv_freq, float32).
--check-export-rope DIR reloads an export of it and checks its log-probabilities.

And Tests/CLITests/Fixtures/hf_llama3_tok/: a tiny Llama 3 — Llama 3.2's rope (theta 5e5, llama3
scaling with factor 32), tied embeddings, vocabulary 1,011 — with the Llama-3-layout tokenizer.json of
Tests/MegatronCoreTests/Fixtures/hf_tokenizer/llama3 (scripts/make_hf_tokenizer_fixture.py) and its
expected.json: for three text prompts, AutoTokenizer's ids, 12 greedily generated tokens and their
text (tokenizer.decode of the new ids). --check-tokenizer-json DIR checks DIR's tokenizer on them.

And Tests/CLITests/Fixtures/hf_qwen2_tok/: a tiny Qwen2ForCausalLM (biases in q, k and v only, drawn
non-zero; tied embeddings; a sliding_window it does not use, use_sliding_window false; 960 embedding
rows over its tokenizer's 900 ids, as Qwen 2.5 has more rows than ids) with the Qwen-2-layout
tokenizer.json of that fixture and its expected.json: the same three prompts' generations, and the
log-probabilities of two random 100-token sequences of ids below 960.

And Tests/CLITests/Fixtures/hf_qwen3_tiny/: a Qwen3ForCausalLM (RMSNorm over each query and key head,
q_norm and k_norm, drawn around 1 like every norm weight; 2 layers, hidden 64, 4 heads of head_dim 24 —
wider than hidden / heads = 16, as Qwen 3's 128 is at hidden 1024 or 2560 — in 2 groups, vocabulary 61, tied
embeddings, rope_theta 1e6) and expected.json as for the Llama over two
sequences of 32 tokens, plus a greedy generation of 16 tokens after 12 random prompt ids.
    python3 scripts/make_hf_llama_fixture.py --qwen3      (writes that fixture alone)
--check-export-qwen3 DIR reloads an export of it and checks its log-probabilities.
"""
import shutil
import json
import os
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests/CLITests/Fixtures/hf_llama_tiny")


@torch.no_grad()
def scores(model, ids):
    logp = torch.log_softmax(model(ids).logits.double(), dim=-1)  # [b, s, V]
    nxt = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
    return nxt.tolist(), logp[:, :-1].argmax(-1).tolist()


SP_OUT = os.path.join(ROOT, "Tests/CLITests/Fixtures/hf_llama_sp")
SP_PROMPTS = ["First Citizen:", "Before we proceed any further, hear me speak.", "KING RICHARD III:\nNow is the"]


def with_tokenizer():
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                      tie_word_embeddings=True, initializer_range=0.2, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg).eval()
    os.makedirs(SP_OUT, exist_ok=True)
    model.save_pretrained(SP_OUT, safe_serialization=True)
    shutil.copy(os.path.join(ROOT, "Tests/MegatronCoreTests/Fixtures/sentencepiece/llama_bpe.model"),
                os.path.join(SP_OUT, "tokenizer.model"))
    json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "legacy": True,
               "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
              open(os.path.join(SP_OUT, "tokenizer_config.json"), "w"), indent=1)
    write_generations(model, SP_OUT, SP_PROMPTS,
                      lambda tok, out, new: {"text": tok.decode(out, skip_special_tokens=True)})


def write_generations(model, out_dir, prompts, texts):
    """expected.json of `out_dir`: for each prompt, AutoTokenizer's ids, 12 greedy tokens after them
    (an explicit attention mask, so no prompt id is taken for padding) and texts(tok, all ids, new ids)."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(out_dir)
    cases = []
    for prompt in prompts:
        ids = tok(prompt)["input_ids"]
        x = torch.tensor([ids])
        with torch.no_grad():
            out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=12, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)[0].tolist()
        new = out[len(ids):]
        cases.append({"prompt": prompt, "ids": ids, "generated": new, **texts(tok, out, new)})
    json.dump({"cases": cases}, open(os.path.join(out_dir, "expected.json"), "w"), indent=1, ensure_ascii=False)
    print(f"wrote {os.path.normpath(out_dir)}")


L3_OUT = os.path.join(ROOT, "Tests/CLITests/Fixtures/hf_llama3_tok")
L3_PROMPTS = ["First Citizen:", "What's 1234 + 56? I'M not sure.", "KING RICHARD III:\nNow is the"]


def llama3_with_tokenizer():
    torch.manual_seed(4)
    scaling = llama3_scaling(32.0)
    cfg = LlamaConfig(vocab_size=1011, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=500000.0,
                      rope_scaling=scaling, tie_word_embeddings=True, initializer_range=0.2, bos_token_id=1000,
                      eos_token_id=1001)
    model = LlamaForCausalLM(cfg).eval()
    os.makedirs(L3_OUT, exist_ok=True)
    model.save_pretrained(L3_OUT, safe_serialization=True)
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(ROOT, "Tests/MegatronCoreTests/Fixtures/hf_tokenizer/llama3", name),
                    os.path.join(L3_OUT, name))
    write_generations(model, L3_OUT, L3_PROMPTS, lambda tok, out, new: {"continuation": tok.decode(new)})


Q2_OUT = os.path.join(ROOT, "Tests/CLITests/Fixtures/hf_qwen2_tok")


def qwen2_with_tokenizer():
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(5)
    cfg = Qwen2Config(vocab_size=960, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-6, rope_theta=1e6,
                      tie_word_embeddings=True, use_sliding_window=False, sliding_window=64, max_window_layers=2,
                      initializer_range=0.2, bos_token_id=None, eos_token_id=0)
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # transformers starts biases at zero: give q, k and v's something to carry
        for name, p in model.named_parameters():
            if name.endswith("_proj.bias"):
                p.copy_(0.3 * torch.randn_like(p))
    assert sum(1 for n, _ in model.named_parameters() if n.endswith("bias")) == 6
    os.makedirs(Q2_OUT, exist_ok=True)
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(ROOT, "Tests/MegatronCoreTests/Fixtures/hf_tokenizer/qwen2", name),
                    os.path.join(Q2_OUT, name))
    ids = torch.randint(0, 960, (2, 100))
    logprob, _ = scores(model, ids)
    model.save_pretrained(Q2_OUT, safe_serialization=True)
    write_generations(model, Q2_OUT, L3_PROMPTS, lambda tok, out, new: {"continuation": tok.decode(new)})
    exp = json.load(open(os.path.join(Q2_OUT, "expected.json")))
    exp.update({"input_ids": ids.tolist(), "next_token_logprob": logprob})
    json.dump(exp, open(os.path.join(Q2_OUT, "expected.json"), "w"), indent=1, ensure_ascii=False)


def mistral():
    from transformers import MistralConfig, MistralForCausalLM
    torch.manual_seed(2)
    cfg = MistralConfig(vocab_size=61, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=64, sliding_window=16, rms_norm_eps=1e-5,
                        rope_theta=1e6, tie_word_embeddings=False, initializer_range=0.1, bos_token_id=1,
                        eos_token_id=2)
    model = MistralForCausalLM(cfg).eval()
    prompt = torch.randint(0, 61, (1, 24))
    with torch.no_grad():
        # An explicit mask: with pad_token_id set, generate would take the prompt's id 0 for padding.
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=16, do_sample=False,
                             eos_token_id=None, pad_token_id=0)[0]
    generation = {"prompt_tokens": prompt[0].tolist(), "generated": out[24:].tolist()}
    save_with_scores(model, os.path.join(ROOT, "Tests/CLITests/Fixtures/hf_mistral_tiny"), 64, generation)


ROPE_OUT = os.path.join(ROOT, "Tests/CLITests/Fixtures/hf_llama3_rope")


def llama3_scaling(factor):
    """Llama 3.1's rope_scaling with `factor` (the other three are Megatron's fixed values)."""
    return {"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}


def llama3_rope():
    torch.manual_seed(3)
    scaling = llama3_scaling(8.0)
    cfg = LlamaConfig(vocab_size=61, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=500000.0,
                      rope_scaling=scaling, tie_word_embeddings=False, initializer_range=0.1, bos_token_id=1,
                      eos_token_id=2)
    model = LlamaForCausalLM(cfg).eval()
    inv_freq = model.model.rotary_emb.inv_freq.tolist()
    save_with_scores(model, ROPE_OUT, 256, {"inv_freq": inv_freq})


def save_with_scores(model, out, length, extra=None):
    """Writes `model` to `out` with expected.json: two random sequences of `length` ids and scores."""
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    ids = torch.randint(0, 61, (2, length))
    logprob, argmax = scores(model, ids)
    json.dump({"input_ids": ids.tolist(), "next_token_logprob": logprob, "argmax": argmax, **(extra or {})},
              open(os.path.join(out, "expected.json"), "w"), indent=1)
    print(f"wrote {os.path.normpath(out)}")


Q3_OUT = os.path.join(ROOT, "Tests/CLITests/Fixtures/hf_qwen3_tiny")


def qwen3():
    from transformers import Qwen3Config, Qwen3ForCausalLM
    torch.manual_seed(4)
    cfg = Qwen3Config(vocab_size=61, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=24, max_position_embeddings=64, rms_norm_eps=1e-6,
                      rope_theta=1e6, tie_word_embeddings=True, attention_bias=False, use_sliding_window=False,
                      initializer_range=0.1, bos_token_id=1, eos_token_id=2)
    model = Qwen3ForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
    prompt = torch.randint(0, 61, (1, 12))
    with torch.no_grad():
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=16, do_sample=False,
                             eos_token_id=None, pad_token_id=0)[0]
    save_with_scores(model, Q3_OUT, 32, {"prompt_tokens": prompt[0].tolist(), "generated": out[12:].tolist()})


def check_tokenizer(directory, fixture=SP_OUT):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(directory)
    exp = json.load(open(os.path.join(fixture, "expected.json")))
    bad = [c["prompt"] for c in exp["cases"] if tok(c["prompt"])["input_ids"] != c["ids"]]
    print(f"tokenizer of {directory}: {len(exp['cases']) - len(bad)} of {len(exp['cases'])} prompts give the same ids")
    sys.exit(1 if bad else 0)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check-tokenizer":
        check_tokenizer(sys.argv[2])
    if len(sys.argv) == 3 and sys.argv[1] == "--check-tokenizer-json":
        check_tokenizer(sys.argv[2], L3_OUT)
    if len(sys.argv) == 2 and sys.argv[1] == "--qwen3":
        qwen3()
        return
    if len(sys.argv) == 3 and sys.argv[1] in ("--check-export", "--check-export-rope", "--check-export-qwen3"):
        from transformers import AutoModelForCausalLM
        fixture = {"--check-export": OUT, "--check-export-rope": ROPE_OUT, "--check-export-qwen3": Q3_OUT}[sys.argv[1]]
        exp = json.load(open(os.path.join(fixture, "expected.json")))
        model = AutoModelForCausalLM.from_pretrained(sys.argv[2], attn_implementation="eager").eval()
        got, _ = scores(model, torch.tensor(exp["input_ids"]))
        err = max(abs(a - b) for ga, ea in zip(got, exp["next_token_logprob"]) for a, b in zip(ga, ea))
        print(f"export reloaded by transformers: max |log-probability difference| {err:.2e}")
        sys.exit(0 if err < 1e-4 else 1)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=61, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=32, rms_norm_eps=1e-5, rope_theta=10000.0,
                      tie_word_embeddings=False, attention_bias=False, mlp_bias=False, initializer_range=0.1,
                      bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
    save_with_scores(model, OUT, 12)
    with_tokenizer()
    mistral()
    llama3_rope()
    llama3_with_tokenizer()
    qwen2_with_tokenizer()
    qwen3()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes Tests/CLITests/Fixtures/hf_gpt2_tiny/: a small random GPT-2 in Hugging Face format and
what transformers computes with it, so the Swift tests can check `convert-checkpoint --from hf`,
`--to hf` and `megatron evaluate` without torch installed.

    pip install torch transformers tokenizers h5py && python3 scripts/make_hf_fixtures.py [--check-export DIR]

The model: GPT-2 with 4 layers, hidden 96, 6 heads (3 per rank at t = 2), 256 positions, GPT-2's
vocabulary of 50,257 (odd: padded differently at t = 1 and t = 2),
random (seed 0), then trained for 150 steps (batch 8 × 128 tokens) on LAMBADA's development
passages so its predictions are not noise, and rounded to float16 so that model.safetensors stays
small (stored as F16; the references are computed in float32 from the rounded weights). Its
LAMBADA accuracy is still 0; the arg-max path is checked against transformers' predictions by the
import test instead. expected.h5 holds:
  input_ids [2, 16], token_loss [2, 15] (float64), last_logits [2, 50257], logit_slice [2, 16, 64]
  (the first 64 vocabulary logits at every position), and as root attributes the results of an
  independent implementation, written here from Megatron's description, of its zero-shot method
  on the real test files: WikiText-103 (detokeniser, seq 128, overlapping_eval 32) and LAMBADA
  (seq 256, strict and non-strict).
--check-export DIR loads a directory written by `megatron convert-checkpoint --to hf` with
GPT2LMHeadModel.from_pretrained and compares its logits with DIR/expected_logits.json (written by
the Swift test) — the other half of the round trip.
"""
import json
import math
import os
import re
import sys

import h5py
import numpy as np
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests/CLITests/Fixtures/hf_gpt2_tiny")
DATA = os.environ.get("DATA", os.path.join(ROOT, "..", "shared", "data"))
WIKI_SEQ, WIKI_OVERLAP, LAMBADA_SEQ = 128, 32, 256


def detokenize_wikitext(s):
    """Megatron's wikitext detokeniser rules, in their order."""
    s = s.replace("s '", "s'")
    s = re.sub(r"/' [0-9]/", r"/'[0-9]/", s)
    for a, b in [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" : ", ": "), (" ; ", "; "), (" . ", ". "),
                 (" ! ", "! "), (" ? ", "? "), (" , ", ", ")]:
        s = s.replace(a, b)
    s = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", s)
    s = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", s)
    s = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", s)
    s = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', s)
    s = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", s)
    for a, b in [("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" \u00b0 ", "\u00b0"), (" \n", "\n"),
                 ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s")]:
        s = s.replace(a, b)
    return s


@torch.no_grad()
def wikitext(model, tok, path):
    raw = open(path, encoding="utf-8").read()
    original = len(raw.strip().split(" "))
    ids = tok.encode(detokenize_wikitext(raw)).ids
    T, s, o = len(ids), WIKI_SEQ, WIKI_OVERLAP
    windows = max(math.ceil(max(T - 1 - o, 0) / o) + 1, 1)
    total, scored = 0.0, 0
    for i in range(windows):
        w = ids[i * o: i * o + s + 1]
        if len(w) < 2:
            continue
        first = 0 if i == 0 else s - o
        hidden = model.transformer(torch.tensor([w[:-1]])).last_hidden_state[0][first:]
        logits = (hidden @ model.lm_head.weight.T).double()      # the LM head on scored positions only
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(w[1:])[first:], reduction="none")
        total += float(loss.sum())
        scored += len(loss)
    avg = total / (T - 1)
    ratio = (T - 1) / (original - 1)
    return {"wikitext_avg_loss": avg, "wikitext_ppl": math.exp(min(20, avg)), "wikitext_adjusted_ppl": math.exp(min(20, avg * ratio)),
            "wikitext_token_ratio": ratio, "wikitext_num_original_tokens": original, "wikitext_num_tokenized_tokens": T,
            "wikitext_scored_tokens": scored}


@torch.no_grad()
def lambada(model, tok, path, strict):
    correct, total, loss_sum, targets = 0, 0, 0.0, 0
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            continue
        text = json.loads(line)["text"]
        if strict:
            last = text.split()[-1]
            start = text.rfind(last)
            context = tok.encode(text[:start].strip()).ids
            target = tok.encode(" " + last).ids
        else:
            ids = tok.encode(text).ids
            context, target = ids[:-1], ids[-1:]
        seq = context + target
        hidden = model.transformer(torch.tensor([seq[:-1]])).last_hidden_state[0][len(context) - 1:]
        pred = (hidden @ model.lm_head.weight.T).double()
        y = torch.tensor(target)
        correct += int(bool((pred.argmax(-1) == y).all()))
        loss_sum += float(torch.nn.functional.cross_entropy(pred, y, reduction="sum"))
        targets += len(target)
        total += 1
    key = "lambada_strict" if strict else "lambada"
    return {f"{key}_correct": correct, f"{key}_total": total, f"{key}_accuracy": correct / total, f"{key}_target_loss": loss_sum / targets}


def make():
    torch.manual_seed(0)
    config = GPT2Config(n_embd=96, n_layer=4, n_head=6, n_positions=256, vocab_size=50257, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, activation_function="gelu_new")
    model = GPT2LMHeadModel(config)
    tok = ByteLevelBPETokenizer(os.path.join(DATA, "tokenizers/gpt2/vocab.json"), os.path.join(DATA, "tokenizers/gpt2/merges.txt"))
    train_ids = torch.tensor(tok.encode(open(os.path.join(DATA, "lambada/lambada_development_plain_text.txt"), encoding="utf-8").read()).ids)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    model.train()
    for step in range(150):
        starts = torch.randint(0, len(train_ids) - 129, (8,), generator=g)
        batch = torch.stack([train_ids[i:i + 129] for i in starts])
        loss = torch.nn.functional.cross_entropy(model(batch[:, :-1]).logits.reshape(-1, 50257), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 24:
            print(f"train step {step + 1}: loss {loss.item():.3f}", file=sys.stderr)
    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    os.makedirs(OUT, exist_ok=True)
    config.save_pretrained(OUT)
    from safetensors.torch import save_file
    state = {k: v.half().contiguous() for k, v in model.state_dict().items() if not k.startswith("lm_head") and not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
    save_file(state, os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})
    reloaded = GPT2LMHeadModel.from_pretrained(OUT, torch_dtype=torch.float32).eval()
    texts = ["The quick brown fox jumps over the lazy dog, and then it runs far away from the farm.",
             "In 1879, Megatron-LM was not yet written; the scientists trained models on paper instead."]
    ids = np.array([tok.encode(t).ids[:16] for t in texts], dtype=np.int32)
    with torch.no_grad():
        logits = reloaded(torch.tensor(ids, dtype=torch.long)).logits.double()
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), torch.tensor(ids[:, 1:], dtype=torch.long).reshape(-1),
                                                 reduction="none").reshape(2, 15)
    results = {}
    results.update(wikitext(reloaded, tok, os.path.join(DATA, "wikitext/wikitext-103/wiki.test.tokens")))
    for strict in (False, True):
        results.update(lambada(reloaded, tok, os.path.join(DATA, "lambada/lambada_test.jsonl"), strict))
    with h5py.File(os.path.join(OUT, "expected.h5"), "w") as f:
        f["input_ids"] = ids
        f["token_loss"] = loss.numpy()
        f["last_logits"] = logits[:, -1].float().numpy()
        f["logit_slice"] = logits[:, :, :64].float().numpy()
        for k, v in results.items():
            f.attrs[k] = v
    print(json.dumps(results, indent=1))


def check_export(directory):
    model = GPT2LMHeadModel.from_pretrained(directory, torch_dtype=torch.float32).eval()
    expected = json.load(open(os.path.join(directory, "expected_logits.json")))
    with torch.no_grad():
        logits = model(torch.tensor([expected["input_ids"]], dtype=torch.long)).logits[0]
    ours = torch.tensor(expected["logits"])
    diff = float((logits[:, :ours.shape[1]] - ours).abs().max())
    print(f"transformers vs megatron logits: max |difference| {diff:.3g}")
    sys.exit(0 if diff < 1e-4 else 1)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--check-export":
        check_export(sys.argv[2])
    else:
        make()

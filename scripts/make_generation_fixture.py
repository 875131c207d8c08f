#!/usr/bin/env python3
"""Writes Tests/CLITests/Fixtures/hf_gpt2_tiny/generate.json: what transformers' greedy `generate`
(with its KV cache) produces from the committed tiny GPT-2 fixture for a few prompts, so the Swift
tests can check `megatron generate` token for token without torch installed.

    pip install torch transformers && python3 scripts/make_generation_fixture.py

Prompts are tokenized by transformers' GPT-2 tokenizer built from ../shared/data's vocab.json and
merges.txt. Each prompt is generated alone (no padding), 40 new tokens at most, stopping at
<|endoftext|>. The smallest gap between the chosen token's logit and the runner-up over all steps
is recorded too: an fp32 implementation can only disagree where that gap is within rounding.
"""
import json
import os

import torch
from transformers import GPT2LMHeadModel, GPT2Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURE = os.path.join(ROOT, "Tests/CLITests/Fixtures/hf_gpt2_tiny")
DATA = os.environ.get("DATA", os.path.join(ROOT, "..", "shared", "data"))
PROMPTS = [
    "The old man looked at the sea and said",
    "She opened the door,",
    "In the morning the children went to the river where",
    "\"I don't know,\" he said. \"Maybe we should ask",
    "It was",
]
NEW_TOKENS = 40


@torch.no_grad()
def main():
    torch.manual_seed(0)
    tok = GPT2Tokenizer(os.path.join(DATA, "tokenizers/gpt2/vocab.json"), os.path.join(DATA, "tokenizers/gpt2/merges.txt"))
    model = GPT2LMHeadModel.from_pretrained(FIXTURE, torch_dtype=torch.float32).eval()
    cases = []
    for prompt in PROMPTS:
        ids = tok.encode(prompt)
        out = model.generate(
            torch.tensor([ids]), do_sample=False, max_new_tokens=NEW_TOKENS, eos_token_id=50256,
            pad_token_id=50256, output_scores=True, return_dict_in_generate=True)
        new = out.sequences[0, len(ids):].tolist()
        gaps = []
        for step, scores in enumerate(out.scores):
            top2 = torch.topk(scores[0], 2).values
            gaps.append(float(top2[0] - top2[1]))
        cases.append({"prompt": prompt, "prompt_tokens": ids, "tokens": new, "min_logit_gap": min(gaps)})
        print(f"{prompt!r}: {len(new)} tokens, min gap {min(gaps):.2e}: {tok.decode(new)!r}")
    with open(os.path.join(FIXTURE, "generate.json"), "w") as f:
        json.dump({"new_tokens": NEW_TOKENS, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Helper of scripts/bench_generate.sh (needs torch and transformers).

    bench_generate_torch.py make DIR          a random GPT-2 124M (seed 0) in DIR/hf, and DIR/prompts_B.jsonl
                                              (B prompts of PROMPT random token ids) for B in BATCHES
    bench_generate_torch.py time DIR B N      transformers' greedy generate with its KV cache on the same
                                              prompts: prints prompt and decoding tokens/s as JSON

Decoding tokens/s counts the B·(N − 1) tokens after the first of each prompt, over the time of
generate(N new tokens) less the time of generate(1 new token) (the prompt pass), as
`megatron generate` counts them. Threads: torch.set_num_threads(THREADS).
"""
import json
import os
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

PROMPT = int(os.environ.get("PROMPT", "896"))
BATCHES = [int(b) for b in os.environ.get("BATCHES", "1 8").split()]
torch.set_num_threads(int(os.environ.get("THREADS", os.cpu_count())))


def make(directory):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config())  # 124M: 12 layers, hidden 768, 12 heads, 1,024 positions
    model.save_pretrained(os.path.join(directory, "hf"))
    generator = torch.Generator().manual_seed(1)
    for b in BATCHES:
        ids = torch.randint(0, 50000, (b, PROMPT), generator=generator).tolist()
        with open(os.path.join(directory, f"prompts_{b}.jsonl"), "w") as f:
            for row in ids:
                f.write(json.dumps({"prompt_tokens": row}) + "\n")


@torch.no_grad()
def timed(directory, b, n):
    model = GPT2LMHeadModel.from_pretrained(os.path.join(directory, "hf"), torch_dtype=torch.float32).eval()
    with open(os.path.join(directory, f"prompts_{b}.jsonl")) as f:
        ids = torch.tensor([json.loads(line)["prompt_tokens"] for line in f])

    def run(new):
        start = time.perf_counter()
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new, min_new_tokens=new,
            use_cache=True, pad_token_id=50256)
        assert out.shape[1] == ids.shape[1] + new
        return time.perf_counter() - start

    run(2)  # warm-up
    prompt_time = min(run(1) for _ in range(2))
    total = run(n)
    print(json.dumps({
        "prompt_tokens_per_s": b * ids.shape[1] / prompt_time,
        "decode_tokens_per_s": b * (n - 1) / (total - prompt_time),
    }))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        timed(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))

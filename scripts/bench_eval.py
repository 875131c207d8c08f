#!/usr/bin/env python3
"""PyTorch side of scripts/bench_eval.sh: makes a random GPT-2 124M in Hugging Face format (seed 0)
and times transformers' forward pass (fp32, no grad, the given threads) over the same WikiText-103
windows `megatron evaluate --limit-windows N` scores: seq 1024, overlapping_eval 32, GPT-2 tokens of
the detokenised test file. Prints JSON: tokens/s over the windows (window tokens / seconds).

    python3 scripts/bench_eval.py make DIR            # writes DIR/config.json + model.safetensors
    python3 scripts/bench_eval.py time DIR WIKI VOCAB MERGES N THREADS
"""
import json
import os
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_hf_fixtures import detokenize_wikitext  # noqa: E402

if sys.argv[1] == "make":
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)).save_pretrained(sys.argv[2], safe_serialization=True)
else:
    from tokenizers import ByteLevelBPETokenizer
    directory, wiki, vocab, merges, n, threads = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
    torch.set_num_threads(threads)
    model = GPT2LMHeadModel.from_pretrained(directory, torch_dtype=torch.float32).eval()
    ids = ByteLevelBPETokenizer(vocab, merges).encode(detokenize_wikitext(open(wiki, encoding="utf-8").read())).ids
    s, o = 1024, 32
    windows = [ids[i * o: i * o + s] for i in range(n)]
    with torch.no_grad():
        model(torch.tensor([windows[0]]))
        t = time.perf_counter()
        for w in windows:
            model(torch.tensor([w]))
        dt = time.perf_counter() - t
    print(json.dumps({"tokens_per_s": n * s / dt, "seconds": dt, "windows": n, "torch": torch.__version__}))

#!/usr/bin/env python3
"""PyTorch eager references for scripts/bench.sh: training steps of GPT-2 124M-shaped model
(pre-LN, tanh-GELU, F.scaled_dot_product_attention, tied embeddings padded to 50,304 rows as ours,
AdamW) on random tokens with the same micro-batch, sequence length and thread count as the
megatron benchmark, in fp32 or (--bf16) under CPU bf16 autocast, eager or (--compile) compiled by
torch.compile (TorchInductor's CPU code; the compilation runs in the untimed warm-up step).
Prints tokens/s and model TFLOP/s (Megatron's formula) and writes them as JSON.

    python3 scripts/bench_torch.py --layers 12 --hidden 768 --heads 12 --seq 1024 --micro-batch 4 --threads 2 --json out.json
    python3 scripts/bench_torch.py --bf16 --json out-bf16.json
    python3 scripts/bench_torch.py --compile --json out-compiled.json
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, h, a):
        super().__init__()
        self.a = a
        self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        self.qkv, self.proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
        self.fc1, self.fc2 = nn.Linear(h, 4 * h), nn.Linear(4 * h, h)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(h, dim=2)
        q, k, v = (t.view(b, s, self.a, h // self.a).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, s, h)
        x = x + self.proj(y)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, layers, h, a, s, vocab):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, h), nn.Embedding(s, h)
        self.blocks = nn.ModuleList(Block(h, a) for _ in range(layers))
        self.lnf = nn.LayerNorm(h)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for blk in self.blocks:
            x = blk(x)
        logits = self.lnf(x) @ self.wte.weight.T
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    p = argparse.ArgumentParser()
    for name, default in [("layers", 12), ("hidden", 768), ("heads", 12), ("seq", 1024), ("micro-batch", 4),
                          ("threads", 2), ("vocab", 50257), ("padded-vocab", 50304), ("steps", 3)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--json")
    p.add_argument("--bf16", action="store_true", help="run forward and loss under torch.autocast('cpu', dtype=torch.bfloat16)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (default inductor backend)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    # The embedding and LM head padded to 50,304 rows as ours are (Megatron's make-vocab-size-divisible-by
    # 128): PyTorch's bf16 GEMMs are markedly slower on 50,257 columns. Tokens stay below 50,257.
    model = GPT(a.layers, a.hidden, a.heads, a.seq, a.padded_vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    forward = torch.compile(model) if a.compile else model
    idx = torch.randint(0, a.vocab, (a.micro_batch, a.seq))
    tgt = torch.randint(0, a.vocab, (a.micro_batch, a.seq))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = forward(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sec = (time.perf_counter() - t0) / a.steps
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / a.steps  # pages mapped in afresh
    B, s, L, h, V = a.micro_batch, a.seq, a.layers, a.hidden, a.padded_vocab
    flops = 72 * B * s * L * h * h * (1 + s / (6 * h) + V / (12 * L * h))
    label = ("bf16 autocast" if a.bf16 else "fp32") + (", torch.compile" if a.compile else "")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; the whole process
    out = {"step_ms": sec * 1000, "tokens_per_s": B * s / sec, "tflops": flops / sec / 1e12, "threads": a.threads,
           "torch": torch.__version__, "precision": label, "peak_rss_mib": peak_mib, "page_faults_per_step": faults}
    print(f"pytorch {'compiled' if a.compile else 'eager'} {label}: step {sec * 1000:.1f} ms | {B * s / sec:.1f} tokens/s | model {flops / sec / 1e12:.3f} TFLOP/s | peak RSS {peak_mib:.0f} MiB | page faults per step {faults:.0f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()

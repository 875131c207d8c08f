#!/usr/bin/env python3
"""PyTorch eager reference for scripts/bench.sh's BERT rows: training steps of a BERT of the
megatron benchmark's shape — word + position + token-type embeddings, pre-LN layers (Megatron's
arrangement; --post-ln for the original) with F.scaled_dot_product_attention under a key-padding
mask, the masked-LM head (dense, GELU, LayerNorm, tied output + bias) on the masked 15% of the
positions, the pooler and binary head, AdamW and clipping — on random tokens with the same
micro-batch, sequence length, vocabulary and thread count, in fp32 or (--bf16) under CPU bf16
autocast. Prints tokens/s (positions per second, as ours) and writes them as JSON.

    python3 scripts/bench_torch_bert.py --layers 12 --hidden 768 --heads 12 --seq 512 --micro-batch 4 --threads 2
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    def __init__(self, h, a, post_ln):
        super().__init__()
        self.a, self.post_ln = a, post_ln
        self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        self.qkv, self.proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
        self.fc1, self.fc2 = nn.Linear(h, 4 * h), nn.Linear(4 * h, h)

    def attention(self, x, mask):
        b, s, h = x.shape
        q, k, v = self.qkv(x).split(h, dim=2)
        q, k, v = (t.view(b, s, self.a, h // self.a).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, s, h)
        return self.proj(y)

    def mlp(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))

    def forward(self, x, mask):
        if self.post_ln:
            x = self.ln1(x + self.attention(x, mask))
            return self.ln2(x + self.mlp(x))
        x = x + self.attention(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


class Bert(nn.Module):
    def __init__(self, layers, h, a, s, vocab, post_ln):
        super().__init__()
        self.wte, self.wpe, self.wtt = nn.Embedding(vocab, h), nn.Embedding(s, h), nn.Embedding(2, h)
        self.layers = nn.ModuleList(Layer(h, a, post_ln) for _ in range(layers))
        self.norm = nn.LayerNorm(h)          # final LayerNorm (pre-LN) or the embeddings' (post-LN)
        self.post_ln = post_ln
        self.lm_dense, self.lm_norm = nn.Linear(h, h), nn.LayerNorm(h)
        self.lm_bias = nn.Parameter(torch.zeros(vocab))
        self.pooler, self.binary = nn.Linear(h, h), nn.Linear(h, 2)

    def forward(self, tokens, types, mask, masked, labels, order):
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1])) + self.wtt(types)
        if self.post_ln:
            x = self.norm(x)
        for layer in self.layers:
            x = layer(x, mask)
        if not self.post_ln:
            x = self.norm(x)
        y = self.lm_norm(F.gelu(self.lm_dense(x[masked]), approximate="tanh"))
        lm = F.cross_entropy(y @ self.wte.weight.T + self.lm_bias, labels)
        sop = F.cross_entropy(self.binary(torch.tanh(self.pooler(x[:, 0]))), order)
        return lm + sop


def main():
    p = argparse.ArgumentParser()
    for name, default in [("layers", 12), ("hidden", 768), ("heads", 12), ("seq", 512), ("micro-batch", 4),
                          ("threads", 2), ("vocab", 30592), ("steps", 3)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--json")
    p.add_argument("--post-ln", action="store_true")
    p.add_argument("--bf16", action="store_true", help="forward and loss under torch.autocast('cpu', dtype=torch.bfloat16)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Bert(a.layers, a.hidden, a.heads, a.seq, a.vocab, a.post_ln)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    b, s = a.micro_batch, a.seq
    tokens = torch.randint(0, a.vocab, (b, s))
    types = (torch.arange(s) >= s // 2).long().expand(b, s)
    mask = torch.ones(b, 1, 1, s, dtype=torch.bool)      # a key-padding mask, as BERT needs (nothing padded here)
    masked = torch.rand(b, s) < 0.15
    labels = torch.randint(0, a.vocab, (int(masked.sum()),))
    order = torch.randint(0, 2, (b,))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = model(tokens, types, mask, masked, labels, order)
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
    label = "bf16 autocast" if a.bf16 else "fp32"
    out = {"step_ms": sec * 1000, "tokens_per_s": b * s / sec, "threads": a.threads, "torch": torch.__version__,
           "precision": label, "page_faults_per_step": faults}
    print(f"pytorch eager BERT {label}: step {sec * 1000:.1f} ms | {b * s / sec:.1f} tokens/s | page faults per step {faults:.0f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes Tests/MegatronCoreTests/Fixtures/gpt_reference.h5: a tiny GPT computed by PyTorch (float64)
with Megatron's parameter names and layouts, so the Swift tests can check the forward pass, every
gradient and five AdamW steps without torch installed.

    pip install torch h5py && python3 scripts/make_fixtures.py

Layouts (same as the Swift model): activations [s, b, h]; Linear weights [out, in] (y = x W^T + b);
linear_qkv output features per head [q_head | k_head | v_head]; LM head tied to the first V rows of
the (padded) word embedding; tanh-GELU; pre-LN; causal softmax attention; mean token loss.
Optimizer: Megatron/Apex AdamW (p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p), no decay on 1-D
parameters), global-norm clipping clip/(norm + 1e-6), Megatron's sample-based LR schedule.
"""
import math
import os
import h5py
import numpy as np
import torch

torch.manual_seed(0)
DT = torch.float64
L, H, A, F, S, B, V, VP, MAXPOS = 2, 32, 4, 128, 16, 3, 61, 128, 20
EPS, D = 1e-5, H // A
MICRO, STEPS = 2, 5
LR, MIN_LR, WARMUP, DECAY, WD, B1, B2, AEPS, CLIP = 3e-3, 3e-4, 2, 5, 0.1, 0.9, 0.95, 1e-8, 0.5
GBS = B * MICRO


def names():
    out = [("embedding.word_embeddings.weight", (VP, H)), ("embedding.position_embeddings.weight", (MAXPOS, H))]
    for l in range(L):
        p = f"decoder.layers.{l}."
        out += [(p + "input_layernorm.weight", (H,)), (p + "input_layernorm.bias", (H,)),
                (p + "self_attention.linear_qkv.weight", (3 * H, H)), (p + "self_attention.linear_qkv.bias", (3 * H,)),
                (p + "self_attention.linear_proj.weight", (H, H)), (p + "self_attention.linear_proj.bias", (H,)),
                (p + "pre_mlp_layernorm.weight", (H,)), (p + "pre_mlp_layernorm.bias", (H,)),
                (p + "mlp.linear_fc1.weight", (F, H)), (p + "mlp.linear_fc1.bias", (F,)),
                (p + "mlp.linear_fc2.weight", (H, F)), (p + "mlp.linear_fc2.bias", (H,))]
    out += [("decoder.final_layernorm.weight", (H,)), ("decoder.final_layernorm.bias", (H,))]
    return out


def init_params():
    params = {}
    for name, shape in names():
        if name.endswith("layernorm.weight"):
            t = 1 + 0.1 * torch.randn(shape, dtype=DT)        # not all ones, so their gradients are tested
        elif len(shape) == 1:
            t = 0.05 * torch.randn(shape, dtype=DT)           # non-zero biases
        else:
            t = 0.08 * torch.randn(shape, dtype=DT)
        params[name] = t.requires_grad_(True)
    return params


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(P, tokens):
    """tokens [s, b] -> logits [s, b, V]"""
    s, b = tokens.shape
    x = P["embedding.word_embeddings.weight"][tokens] + P["embedding.position_embeddings.weight"][:s][:, None, :]
    mask = torch.triu(torch.ones(s, s, dtype=torch.bool), 1)
    for l in range(L):
        p = f"decoder.layers.{l}."
        ln1 = torch.nn.functional.layer_norm(x, (H,), P[p + "input_layernorm.weight"], P[p + "input_layernorm.bias"], EPS)
        qkv = ln1 @ P[p + "self_attention.linear_qkv.weight"].T + P[p + "self_attention.linear_qkv.bias"]
        qkv = qkv.view(s, b, A, 3, D)
        q, k, v = (qkv[:, :, :, i, :].permute(1, 2, 0, 3) for i in range(3))    # [b, a, s, d]
        scores = q @ k.transpose(-1, -2) / math.sqrt(D)
        probs = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        ctx = (probs @ v).permute(2, 0, 1, 3).reshape(s, b, H)
        x = x + ctx @ P[p + "self_attention.linear_proj.weight"].T + P[p + "self_attention.linear_proj.bias"]
        ln2 = torch.nn.functional.layer_norm(x, (H,), P[p + "pre_mlp_layernorm.weight"], P[p + "pre_mlp_layernorm.bias"], EPS)
        hid = gelu_tanh(ln2 @ P[p + "mlp.linear_fc1.weight"].T + P[p + "mlp.linear_fc1.bias"])
        x = x + hid @ P[p + "mlp.linear_fc2.weight"].T + P[p + "mlp.linear_fc2.bias"]
    lnf = torch.nn.functional.layer_norm(x, (H,), P["decoder.final_layernorm.weight"], P["decoder.final_layernorm.bias"], EPS)
    return lnf @ P["embedding.word_embeddings.weight"][:V].T


def loss_of(P, tokens, targets):
    logits = forward(P, tokens)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)), logits


def lr_at(num_steps):
    warm, decay = WARMUP * GBS, DECAY * GBS
    if warm > 0 and num_steps <= warm:
        return LR * num_steps / warm
    if num_steps > decay:
        return MIN_LR
    ratio = (num_steps - warm) / (decay - warm)
    return MIN_LR + 0.5 * (math.cos(math.pi * ratio) + 1) * (LR - MIN_LR)


def main():
    P = init_params()
    init = {n: t.detach().clone() for n, t in P.items()}
    tokens = torch.randint(0, V, (S, B))
    targets = torch.randint(0, V, (S, B))
    loss, logits = loss_of(P, tokens, targets)
    loss.backward()
    grads = {n: t.grad.detach().clone() for n, t in P.items()}

    # Five training steps: two micro-batches each, loss = mean of micro-batch means.
    step_tokens = torch.randint(0, V, (STEPS, MICRO, S, B))
    step_targets = torch.randint(0, V, (STEPS, MICRO, S, B))
    for t in P.values():
        t.grad = None
    m = {n: torch.zeros_like(t) for n, t in P.items()}
    v = {n: torch.zeros_like(t) for n, t in P.items()}
    losses, lrs, norms = [], [], []
    for k in range(STEPS):
        total = 0.0
        for mb in range(MICRO):
            l, _ = loss_of(P, step_tokens[k, mb], step_targets[k, mb])
            (l / MICRO).backward()
            total += l.item() / MICRO
        lr = lr_at(k * GBS)
        norm = math.sqrt(sum(float((t.grad ** 2).sum()) for t in P.values()))
        coeff = CLIP / (norm + 1e-6)
        with torch.no_grad():
            for n, t in P.items():
                g = t.grad * (coeff if coeff < 1 else 1.0)
                m[n] = B1 * m[n] + (1 - B1) * g
                v[n] = B2 * v[n] + (1 - B2) * g * g
                mh, vh = m[n] / (1 - B1 ** (k + 1)), v[n] / (1 - B2 ** (k + 1))
                wd = WD if t.dim() > 1 else 0.0
                t -= lr * (mh / (vh.sqrt() + AEPS) + wd * t)
                t.grad = None
        losses.append(total); lrs.append(lr); norms.append(norm)

    out = os.path.join(os.path.dirname(__file__), "..", "Tests", "MegatronCoreTests", "Fixtures", "gpt_reference.h5")
    with h5py.File(out, "w") as f:
        for key, val in dict(num_layers=L, hidden_size=H, num_attention_heads=A, ffn_hidden_size=F, seq_length=S,
                             micro_batch_size=B, vocab_size=V, padded_vocab_size=VP, max_position_embeddings=MAXPOS,
                             microbatches=MICRO, steps=STEPS, warmup_iters=WARMUP, decay_iters=DECAY).items():
            f.attrs[key] = np.int64(val)
        for key, val in dict(norm_epsilon=EPS, lr=LR, min_lr=MIN_LR, weight_decay=WD, adam_beta1=B1, adam_beta2=B2,
                             adam_eps=AEPS, clip_grad=CLIP, loss=loss.item()).items():
            f.attrs[key] = np.float64(val)
        f["tokens"] = tokens.numpy().astype(np.int32)
        f["targets"] = targets.numpy().astype(np.int32)
        f["logits"] = logits.detach().numpy().astype(np.float32)
        for n in init:
            f["params/" + n] = init[n].numpy().astype(np.float32)
            f["grads/" + n] = grads[n].numpy().astype(np.float32)
            f["final/" + n] = P[n].detach().numpy().astype(np.float32)
        f["train/tokens"] = step_tokens.numpy().astype(np.int32)
        f["train/targets"] = step_targets.numpy().astype(np.int32)
        f["train/losses"] = np.array(losses, dtype=np.float64)
        f["train/lrs"] = np.array(lrs, dtype=np.float64)
        f["train/grad_norms"] = np.array(norms, dtype=np.float64)
    print(f"wrote {os.path.normpath(out)}: loss {loss.item():.6f}, step losses {[round(x, 5) for x in losses]}, grad norms {[round(x, 4) for x in norms]}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes Tests/MegatronCoreTests/Fixtures/bert_reference.h5: Megatron's pre-LN BERT computed by
PyTorch in float64 with our parameter names and layouts, so the Swift test checks the loss, the
masked-LM and sentence-order logits and every parameter gradient without torch installed.

    pip install torch h5py && python3 scripts/make_bert_reference.py

The model (BertModel.swift, BertHeads.swift): x = wte[tokens] + wpe[positions] + wtt[types]; pre-LN
layers with bidirectional attention where padded keys get no weight; final LayerNorm y; masked-LM
head on the rows with a label: LN(GELU_tanh(y·Wdᵀ + bd))·wte[:V]ᵀ + bias[:V], mean cross entropy
over those rows; pooler tanh(y[position 0]·Wpᵀ + bp) and binary head ·Wbᵀ + bb, mean cross entropy
over the sequences; loss = masked-LM + sentence-order. Activations [s, b, h]; Linear weights
[out, in]; linear_qkv's output features per head [q | k | v]. Weights are drawn here, rounded to
float32 (what the file stores), and the reference is computed from the rounded values.
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
CLS, SEP, MASK, PAD = 57, 58, 59, 60
LENGTHS = [16, 11, 7]        # the second and third sequences are padded


def names():
    out = [("embedding.word_embeddings.weight", (VP, H)), ("embedding.position_embeddings.weight", (MAXPOS, H)),
           ("embedding.tokentype_embeddings.weight", (2, H))]
    for l in range(L):
        p = f"decoder.layers.{l}."
        out += [(p + "input_layernorm.weight", (H,)), (p + "input_layernorm.bias", (H,)),
                (p + "self_attention.linear_qkv.weight", (3 * H, H)), (p + "self_attention.linear_qkv.bias", (3 * H,)),
                (p + "self_attention.linear_proj.weight", (H, H)), (p + "self_attention.linear_proj.bias", (H,)),
                (p + "pre_mlp_layernorm.weight", (H,)), (p + "pre_mlp_layernorm.bias", (H,)),
                (p + "mlp.linear_fc1.weight", (F, H)), (p + "mlp.linear_fc1.bias", (F,)),
                (p + "mlp.linear_fc2.weight", (H, F)), (p + "mlp.linear_fc2.bias", (H,))]
    out += [("decoder.final_layernorm.weight", (H,)), ("decoder.final_layernorm.bias", (H,)),
            ("lm_head.dense.weight", (H, H)), ("lm_head.dense.bias", (H,)),
            ("lm_head.layer_norm.weight", (H,)), ("lm_head.layer_norm.bias", (H,)), ("output_layer.bias", (VP,)),
            ("pooler.dense.weight", (H, H)), ("pooler.dense.bias", (H,)),
            ("binary_head.weight", (2, H)), ("binary_head.bias", (2,))]
    return out


def init_params():
    params = {}
    for name, shape in names():
        if name.endswith("norm.weight"):
            t = 1 + 0.1 * torch.randn(shape, dtype=DT)        # not all ones, so their gradients are tested
        elif len(shape) == 1:
            t = 0.05 * torch.randn(shape, dtype=DT)           # non-zero biases
        else:
            t = 0.08 * torch.randn(shape, dtype=DT)
        params[name] = t.float().double().requires_grad_(True)    # the float32 values the file stores
    return params


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, P, name):
    return torch.nn.functional.layer_norm(x, (H,), P[name + ".weight"], P[name + ".bias"], EPS)


def encoder(P, tokens, types):
    """tokens, types [s, b] -> final-norm output [s, b, h]"""
    s, b = tokens.shape
    x = (P["embedding.word_embeddings.weight"][tokens] + P["embedding.position_embeddings.weight"][:s][:, None, :]
         + P["embedding.tokentype_embeddings.weight"][types])
    padded_key = torch.tensor([[k >= n for k in range(s)] for n in LENGTHS])[:, None, None, :]   # [b, 1, 1, s]
    for l in range(L):
        p = f"decoder.layers.{l}."
        qkv = layer_norm(x, P, p + "input_layernorm") @ P[p + "self_attention.linear_qkv.weight"].T
        qkv = (qkv + P[p + "self_attention.linear_qkv.bias"]).view(s, b, A, 3, D)
        q, k, v = (qkv[:, :, :, i, :].permute(1, 2, 0, 3) for i in range(3))    # [b, a, s, d]
        scores = (q @ k.transpose(-1, -2) / math.sqrt(D)).masked_fill(padded_key, float("-inf"))
        ctx = (torch.softmax(scores, dim=-1) @ v).permute(2, 0, 1, 3).reshape(s, b, H)
        x = x + ctx @ P[p + "self_attention.linear_proj.weight"].T + P[p + "self_attention.linear_proj.bias"]
        hid = gelu_tanh(layer_norm(x, P, p + "pre_mlp_layernorm") @ P[p + "mlp.linear_fc1.weight"].T
                        + P[p + "mlp.linear_fc1.bias"])
        x = x + hid @ P[p + "mlp.linear_fc2.weight"].T + P[p + "mlp.linear_fc2.bias"]
    return layer_norm(x, P, "decoder.final_layernorm")


def heads(P, y, labels, sop):
    """-> (loss, masked-LM logits [k, V] in row order position·b + sample, sentence-order logits [b, 2])"""
    rows = y.reshape(-1, H)[labels.reshape(-1) >= 0]
    dense = gelu_tanh(rows @ P["lm_head.dense.weight"].T + P["lm_head.dense.bias"])
    logits = (layer_norm(dense, P, "lm_head.layer_norm") @ P["embedding.word_embeddings.weight"][:V].T
              + P["output_layer.bias"][:V])
    lm = torch.nn.functional.cross_entropy(logits, labels.reshape(-1)[labels.reshape(-1) >= 0])
    pooled = torch.tanh(y[0] @ P["pooler.dense.weight"].T + P["pooler.dense.bias"])
    z = pooled @ P["binary_head.weight"].T + P["binary_head.bias"]
    return lm + torch.nn.functional.cross_entropy(z, sop), logits, z


def sample_inputs():
    tokens = torch.full((S, B), PAD)
    types = torch.zeros((S, B), dtype=torch.long)
    labels = torch.full((S, B), -1)
    g = torch.Generator().manual_seed(1)
    for j, n in enumerate(LENGTHS):
        body = torch.randint(0, CLS, (n,), generator=g)
        body[0], body[n // 2], body[n - 1] = CLS, SEP, SEP
        types[n // 2 + 1:n, j] = 1
        for p in range(1, n - 1):
            if p != n // 2 and p % 3 == 1:
                labels[p, j] = int(body[p])
                body[p] = MASK if p % 2 else body[p]
        tokens[:n, j] = body
    return tokens, types, labels, torch.tensor([1, 0, 1])


def main():
    P = init_params()
    tokens, types, labels, sop = sample_inputs()
    loss, logits, z = heads(P, encoder(P, tokens, types), labels, sop)
    loss.backward()
    out = os.path.join(os.path.dirname(__file__), "..", "Tests", "MegatronCoreTests", "Fixtures", "bert_reference.h5")
    with h5py.File(out, "w") as f:
        for key, val in dict(num_layers=L, hidden_size=H, num_attention_heads=A, ffn_hidden_size=F, seq_length=S,
                             micro_batch_size=B, vocab_size=V, padded_vocab_size=VP,
                             max_position_embeddings=MAXPOS).items():
            f.attrs[key] = np.int64(val)
        f.attrs["norm_epsilon"], f.attrs["loss"] = np.float64(EPS), np.float64(loss.item())
        f["tokens"], f["tokentypes"] = tokens.numpy().astype(np.int32), types.numpy().astype(np.int32)
        f["labels"], f["sop_labels"] = labels.numpy().astype(np.int32), sop.numpy().astype(np.int32)
        f["lengths"] = np.array(LENGTHS, dtype=np.int32)
        f["mlm_logits"] = logits.detach().numpy().astype(np.float32)
        f["sop_logits"] = z.detach().numpy().astype(np.float32)
        for n, t in P.items():
            f["params/" + n] = t.detach().numpy().astype(np.float32)
            f["grads/" + n] = t.grad.numpy().astype(np.float32)
    print(f"wrote {os.path.normpath(out)}: loss {loss.item():.6f}, {int((labels >= 0).sum())} masked rows")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes Tests/MegatronCoreTests/Fixtures/llama_reference.h5: a tiny GPT with Megatron's Llama-style
options (position_embedding_type rope, normalization RMSNorm, swiglu, disable_bias_linear,
untie_embeddings_and_output_weights, group_query_attention with num_query_groups 2 of 4 heads) computed by PyTorch in float64 with Megatron's parameter names
and layouts, so the Swift tests can check the loss, the logits and every gradient without torch.

    pip install torch h5py transformers && python3 scripts/make_llama_reference.py

Layouts (as the Swift model): activations [s, b, h]; Linear weights [out, in]; linear_qkv output
features per query group [q of the group's heads | k | v] (Megatron's); rope on the first rotary_percent of each head's q and k,
the two halves rotated (x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin; theta_i = base^(-2i/rot_dim));
RMSNorm x / sqrt(mean(x^2) + eps) * w; SwiGLU FC2(silu(gate) * up) with FC1's halves as
mlp.linear_fc1.gate.weight and mlp.linear_fc1.up.weight; no linear biases; the LM head is its own
output_layer.weight over the padded vocabulary; mean token loss over the real vocabulary.

Two forward passes check the reference itself: with rotary_percent 1 the same weights in
transformers' LlamaForCausalLM (float64, eager attention) give the same logits (the fixture's case
uses rotary_percent 0.5, which Llama does not have).

--qk-layernorm writes Fixtures/llama_qknorm_reference.h5 instead: the same model with Megatron's
qk_layernorm (RMSNorm over each query head and each group's key head, weights
self_attention.q_layernorm.weight and k_layernorm.weight of head size, before rope), cross-checked
the same way against transformers' Qwen3ForCausalLM.

--kv-channels writes Fixtures/llama_kv_channels_reference.h5: Qwen 3's shape of head — qk_layernorm and
heads 24 wide (Megatron's kv_channels, transformers' head_dim) where hidden_size / num_attention_heads
is 16, so QKV gives (4 + 2·2)·24 columns and the projection maps 4·24 = 96 back to 64 — cross-checked
against Qwen3ForCausalLM with head_dim 24.
"""
import math
import os
import h5py
import numpy as np
import sys

import torch

KV = "--kv-channels" in sys.argv[1:]
QK = "--qk-layernorm" in sys.argv[1:] or KV
torch.manual_seed(0)
DT = torch.float64
L, H, A, G, F, S, B, V, VP, MAXPOS = 2, 64, 4, 2, 96, 16, 3, 61, 128, 20
EPS, D, BASE, K = 1e-5, 24 if KV else H // A, 10000.0, A // G  # K query heads per group
Q = A * D  # the queries' and the context's width (H unless kv_channels)


def names():
    out = [("embedding.word_embeddings.weight", (VP, H))]
    for l in range(L):
        p = f"decoder.layers.{l}."
        out += [(p + "input_layernorm.weight", (H,)), (p + "self_attention.linear_qkv.weight", ((A + 2 * G) * D, H))]
        if QK:
            out += [(p + "self_attention.q_layernorm.weight", (D,)), (p + "self_attention.k_layernorm.weight", (D,))]
        out += [
                (p + "self_attention.linear_proj.weight", (H, Q)), (p + "pre_mlp_layernorm.weight", (H,)),
                (p + "mlp.linear_fc1.gate.weight", (F, H)), (p + "mlp.linear_fc1.up.weight", (F, H)),
                (p + "mlp.linear_fc2.weight", (H, F))]
    out += [("decoder.final_layernorm.weight", (H,)), ("output_layer.weight", (VP, H))]
    return out


def init_params():
    params = {}
    for name, shape in names():
        if name.endswith("layernorm.weight"):
            t = 1 + 0.1 * torch.randn(shape, dtype=DT)  # not all ones, so their gradients are tested
        else:
            t = 0.05 * torch.randn(shape, dtype=DT)
        params[name] = t.requires_grad_(True)
    return params


def rms_norm(x, w):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + EPS) * w


def rope(x, rot, table=DT):
    """x [s, b, heads, d]: rotate the first `rot` channels of each head by position (cos and sin
    tabulated in `table` precision)."""
    half = rot // 2
    inv = 1.0 / (BASE ** (torch.arange(0, rot, 2, dtype=torch.int64).to(table) / rot))
    ang = torch.arange(x.shape[0], dtype=table)[:, None] * inv[None, :]  # [s, half]
    c, s_ = torch.cos(ang).to(DT)[:, None, None, :], torch.sin(ang).to(DT)[:, None, None, :]
    x1, x2, rest = x[..., :half], x[..., half:rot], x[..., rot:]
    return torch.cat([x1 * c - x2 * s_, x2 * c + x1 * s_, rest], dim=-1)


def forward(params, tokens, rot, table=DT):
    s, b = tokens.shape
    x = params["embedding.word_embeddings.weight"][tokens]  # [s, b, H]
    mask = torch.triu(torch.ones(s, s, dtype=torch.bool), diagonal=1)
    for l in range(L):
        p = f"decoder.layers.{l}."
        u = rms_norm(x, params[p + "input_layernorm.weight"])
        qkv = (u @ params[p + "self_attention.linear_qkv.weight"].T).view(s, b, G, (K + 2) * D)
        q = qkv[..., :K * D].reshape(s, b, A, D)
        k = qkv[..., K * D:(K + 1) * D].repeat_interleave(K, dim=2)  # each group's keys for its K heads
        v = qkv[..., (K + 1) * D:].repeat_interleave(K, dim=2)
        if QK:  # each head's query and each group's key (repeated or not, the same vectors)
            q, k = rms_norm(q, params[p + "self_attention.q_layernorm.weight"]), rms_norm(
                k, params[p + "self_attention.k_layernorm.weight"])
        q, k = rope(q, rot, table), rope(k, rot, table)
        scores = torch.einsum("ibhd,jbhd->bhij", q, k) / math.sqrt(D)
        probs = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        ctx = torch.einsum("bhij,jbhd->ibhd", probs, v).reshape(s, b, Q)
        x = x + ctx @ params[p + "self_attention.linear_proj.weight"].T
        u = rms_norm(x, params[p + "pre_mlp_layernorm.weight"])
        gate, up = u @ params[p + "mlp.linear_fc1.gate.weight"].T, u @ params[p + "mlp.linear_fc1.up.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ params[p + "mlp.linear_fc2.weight"].T
    u = rms_norm(x, params["decoder.final_layernorm.weight"])
    return u @ params["output_layer.weight"][:V].T  # [s, b, V]


def check_against_transformers(params, tokens):
    """rotary_percent 1: the same weights in LlamaForCausalLM give the same logits. transformers
    tabulates rope's cos and sin in float32 even in a float64 model (so the comparison does too) and
    computes RMSNorm in float32, which leaves differences near 1e-7; a wrong convention (rope's
    halves, the norm, SwiGLU's order, the QKV layout) gives differences of order 1e-2 and more."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM
    common = dict(vocab_size=V, hidden_size=H, intermediate_size=F, num_hidden_layers=L, num_attention_heads=A,
                  num_key_value_heads=G, max_position_embeddings=MAXPOS, rms_norm_eps=EPS, rope_theta=BASE,
                  tie_word_embeddings=False, attention_bias=False, attn_implementation="eager")
    if QK:
        model = Qwen3ForCausalLM(Qwen3Config(head_dim=D, use_sliding_window=False, **common)).to(DT).eval()
    else:
        model = LlamaForCausalLM(LlamaConfig(mlp_bias=False, **common)).to(DT).eval()
    sd = {"model.embed_tokens.weight": params["embedding.word_embeddings.weight"][:V],
          "lm_head.weight": params["output_layer.weight"][:V],
          "model.norm.weight": params["decoder.final_layernorm.weight"]}
    for l in range(L):
        p, q = f"decoder.layers.{l}.", f"model.layers.{l}."
        w = params[p + "self_attention.linear_qkv.weight"].view(G, K + 2, D, H)
        sd[q + "self_attn.q_proj.weight"] = w[:, :K].reshape(Q, H)
        sd[q + "self_attn.k_proj.weight"] = w[:, K].reshape(G * D, H)
        sd[q + "self_attn.v_proj.weight"] = w[:, K + 1].reshape(G * D, H)
        sd[q + "self_attn.o_proj.weight"] = params[p + "self_attention.linear_proj.weight"]
        sd[q + "input_layernorm.weight"] = params[p + "input_layernorm.weight"]
        sd[q + "post_attention_layernorm.weight"] = params[p + "pre_mlp_layernorm.weight"]
        sd[q + "mlp.gate_proj.weight"] = params[p + "mlp.linear_fc1.gate.weight"]
        sd[q + "mlp.up_proj.weight"] = params[p + "mlp.linear_fc1.up.weight"]
        sd[q + "mlp.down_proj.weight"] = params[p + "mlp.linear_fc2.weight"]
        if QK:
            sd[q + "self_attn.q_norm.weight"] = params[p + "self_attention.q_layernorm.weight"]
            sd[q + "self_attn.k_norm.weight"] = params[p + "self_attention.k_layernorm.weight"]
    missing, unexpected = model.load_state_dict({k: v.detach() for k, v in sd.items()}, strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    with torch.no_grad():
        theirs = model(tokens.T.contiguous()).logits.transpose(0, 1)  # [b, s, V] -> [s, b, V]
        ours = forward(params, tokens, D, table=torch.float32)
    err = (theirs - ours).abs().max().item()
    name = type(model).__name__
    assert err < 1e-5, f"the reference differs from {name} by {err}"
    print(f"reference equals transformers' {name} at rotary_percent 1 (max |diff| {err:.1e})")


def main():
    params = init_params()
    tokens = torch.randint(0, V, (S, B))
    targets = torch.randint(0, V, (S, B))
    try:
        check_against_transformers(params, tokens)
    except ImportError:
        print("transformers is not installed: the LlamaForCausalLM cross-check is skipped")
    rotary_percent = 0.5
    rot = int(D * rotary_percent)
    logits = forward(params, tokens, rot)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
    loss.backward()
    out = os.path.join(os.path.dirname(__file__), "..", "Tests", "MegatronCoreTests", "Fixtures",
                       "llama_kv_channels_reference.h5" if KV else
                       "llama_qknorm_reference.h5" if QK else "llama_reference.h5")
    with h5py.File(out, "w") as f:
        for key, val in [("num_layers", L), ("hidden_size", H), ("num_attention_heads", A), ("num_query_groups", G),
                         ("ffn_hidden_size", F),
                         ("seq_length", S), ("max_position_embeddings", MAXPOS), ("vocab_size", V),
                         ("padded_vocab_size", VP), ("micro_batch_size", B), ("qk_layernorm", int(QK)),
                         ("kv_channels", D)]:
            f.attrs[key] = np.int64(val)
        for key, val in [("norm_epsilon", EPS), ("rotary_base", BASE), ("rotary_percent", rotary_percent),
                         ("loss", loss.item())]:
            f.attrs[key] = np.float64(val)
        f["tokens"] = tokens.numpy().astype(np.int32)
        f["targets"] = targets.numpy().astype(np.int32)
        f["logits"] = logits.detach().numpy().astype(np.float32)
        for n, t in params.items():
            f["params/" + n] = t.detach().numpy().astype(np.float32)
            f["grads/" + n] = t.grad.numpy().astype(np.float32)
    print(f"wrote {os.path.normpath(out)}: loss {loss.item():.6f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes Tests/CLITests/Fixtures/hf_bert_tiny/ (BertForPreTraining, the original post-LN BERT) and
hf_megatron_bert_tiny/ (MegatronBertForPreTraining, Megatron's pre-LN BERT): small BERTs made and
briefly trained by transformers, with what transformers computes on fixed inputs, so the Swift tests
check `convert-checkpoint --from hf` / `--to hf` for BERT without torch installed.

    pip install torch transformers safetensors h5py && python3 scripts/make_hf_bert_fixtures.py
    python3 scripts/make_hf_bert_fixtures.py --check-export DIR   # DIR written by convert-checkpoint --to hf

The models: 2 layers, hidden 64, 4 heads, FFN 256, 32 positions, the byte-level BERT vocabulary of
the built-in corpus (260: bytes, [CLS] 256, [SEP] 257, [MASK] 258, [PAD] 259), tanh GELU
(gelu_new, as ours), dropout 0; random (seed 0), then trained for 60 steps (batch 16 × 32) with
masked-LM + sentence-order losses on byte-level samples of LAMBADA's development passages, so the
weights are not their initial values. expected.h5 holds the fixed inputs — input_ids and
token_type_ids [2, 24], lengths [2] (the second sequence is padded after 17 tokens) — and
transformers' prediction_logits [2, 24, 260] and seq_relationship_logits [2, 2] in float32.
--check-export loads DIR with from_pretrained and compares its logits on the same inputs with
DIR/../expected.h5 of the fixture it came from (the other half of the round trip).
"""
import os
import sys

import h5py
import numpy as np
import torch
from transformers import BertConfig, BertForPreTraining, MegatronBertConfig, MegatronBertForPreTraining

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "Tests/CLITests/Fixtures")
DATA = os.environ.get("DATA", os.path.join(ROOT, "..", "shared", "data"))
CLS, SEP, MASK, PAD, VOCAB = 256, 257, 258, 259, 260
SEQ, BATCH, STEPS = 32, 16, 60
SIZES = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
             max_position_embeddings=SEQ, type_vocab_size=2, hidden_act="gelu_new", hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12, pad_token_id=0)


def training_batch(text, g):
    """BATCH samples [CLS] A [SEP] B [SEP] of byte spans (A/B swapped with p = 0.5), 15% masked."""
    ids, types, labels, order = [], [], [], []
    half = (SEQ - 3) // 2
    for _ in range(BATCH):
        start = int(torch.randint(0, len(text) - 2 * half, (1,), generator=g))
        a, b = list(text[start:start + half]), list(text[start + half:start + 2 * half])
        swapped = int(torch.rand(1, generator=g) < 0.5)
        if swapped:
            a, b = b, a
        tokens = [CLS] + a + [SEP] + b + [SEP]
        tt = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        lab = [-100] * len(tokens)
        for p in range(len(tokens)):
            if tokens[p] < 256 and float(torch.rand(1, generator=g)) < 0.15:
                lab[p] = tokens[p]
                tokens[p] = MASK
        ids.append(tokens); types.append(tt); labels.append(lab); order.append(swapped)
    return torch.tensor(ids), torch.tensor(types), torch.tensor(labels), torch.tensor(order)


def fixed_inputs():
    """Two sequences of 24 positions: the first all real, the second padded after 17 tokens."""
    a = list(b"The quick brown") + [SEP] + list(b"fox")
    b = list(b"Megatron") + [SEP] + list(b"BERT") + [SEP]
    first = [CLS] + a + [SEP] + [MASK, 106, 117]
    second = [CLS] + b[:4] + [MASK] + b[5:]
    seqs, types, lengths = [], [], []
    for s, split in ((first[:24], 17), (second[:17], 10)):
        lengths.append(len(s))
        types.append([0] * split + [1] * (len(s) - split) + [0] * (24 - len(s)))
        seqs.append(s + [PAD] * (24 - len(s)))
    return np.array(seqs, dtype=np.int32), np.array(types, dtype=np.int32), np.array(lengths, dtype=np.int32)


@torch.no_grad()
def outputs(model, ids, types, lengths):
    mask = torch.tensor([[1 if p < n else 0 for p in range(ids.shape[1])] for n in lengths])
    out = model(input_ids=torch.tensor(ids, dtype=torch.long), token_type_ids=torch.tensor(types, dtype=torch.long),
                attention_mask=mask)
    return out.prediction_logits.float().numpy(), out.seq_relationship_logits.float().numpy()


def make(name, config_class, model_class):
    torch.manual_seed(0)
    model = model_class(config_class(**SIZES))
    text = open(os.path.join(DATA, "lambada/lambada_development_plain_text.txt"), "rb").read()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    model.train()
    for step in range(STEPS):
        ids, types, labels, order = training_batch(text, g)
        out = model(input_ids=ids, token_type_ids=types, labels=labels, next_sentence_label=order)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if step % 20 == 19:
            print(f"{name} step {step + 1}: loss {out.loss.item():.3f}", file=sys.stderr)
    model.eval()
    out_dir = os.path.join(FIXTURES, name)
    model.save_pretrained(out_dir, safe_serialization=True)
    reloaded = model_class.from_pretrained(out_dir, dtype=torch.float32).eval()
    ids, types, lengths = fixed_inputs()
    logits, sop = outputs(reloaded, ids, types, lengths)
    with h5py.File(os.path.join(out_dir, "expected.h5"), "w") as f:
        f["input_ids"], f["token_type_ids"], f["lengths"] = ids, types, lengths
        f["prediction_logits"], f["seq_relationship_logits"] = logits, sop
    print(f"wrote {out_dir}")


def check_export(directory, expected_path):
    with open(os.path.join(directory, "config.json")) as f:
        kind = "megatron-bert" in f.read()
    model_class = MegatronBertForPreTraining if kind else BertForPreTraining
    model = model_class.from_pretrained(directory, dtype=torch.float32).eval()
    with h5py.File(expected_path) as f:
        ids, types, lengths = f["input_ids"][()], f["token_type_ids"][()], f["lengths"][()]
        expected_logits, expected_sop = f["prediction_logits"][()], f["seq_relationship_logits"][()]
    logits, sop = outputs(model, ids, types, lengths)
    real = np.array([[p < n for p in range(ids.shape[1])] for n in lengths])
    diff = max(float(np.abs(logits - expected_logits)[real].max()), float(np.abs(sop - expected_sop).max()))
    print(f"transformers ({model_class.__name__}) on the export vs expected: max |difference| {diff:.3g}")
    sys.exit(0 if diff < 1e-4 else 1)


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--check-export":
        check_export(sys.argv[2], sys.argv[3])
    else:
        make("hf_bert_tiny", BertConfig, BertForPreTraining)
        make("hf_megatron_bert_tiny", MegatronBertConfig, MegatronBertForPreTraining)

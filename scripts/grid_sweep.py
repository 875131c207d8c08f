#!/usr/bin/env python3
"""scripts/grid_sweep.py — the central invariant over random layouts: draws CASES layouts of a tiny
GPT or BERT (t, p, d, virtual stages, micro-batch size, sequence parallelism, the distributed
optimizer, recomputation, the ZB-H1 schedule, uneven and balanced stages, dropout, bf16 and fp16,
post-LN BERT, GPT on packed short documents with Megatron's eod_mask_loss / reset_position_ids /
reset_attention_mask / calculate_per_token_loss, GPT with a subset of Megatron's Llama-style options
(rope, RMSNorm, SwiGLU, no linear biases, an untied head, grouped-query attention); some cases stopped halfway with a
checkpoint and resumed on another layout), trains
each under mpirun for ITERS iterations, and checks every iteration's losses against one rank
with the same model, micro-batch size, precision and dropout (fp32: within 1e-5 relative; bf16 and
fp16: within 1e-3, as the grid changes the order of sums whose inputs were rounded to 16 bits).
The tests check chosen layouts; this checks the combinations between them. Prints one line per
case and exits 1 on any mismatch or failed run, naming the command to repeat it.

  scripts/grid_sweep.py [--cases 20] [--seed 1] [--iters 10] [--bf16-share 0.25] [--resume-share 0.3]
                        [--packed-share 0.3] [--llama-share 0.3] [--binary PATH] [--perturb] [--keep DIR]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOSS_KEYS = ("lm_loss", "sop_loss")
LAYERS = 8


def draw_model(rng, bf16_share):
    """The model, batch, dropout and precision flags (shared with the one-rank reference), a name, and
    whether the run is 16-bit."""
    model = rng.choice(["gpt", "bert"])
    mbs = rng.choice([1, 2, 4])
    config = "gpt2-tiny.json" if model == "gpt" else "bert-tiny.json"
    flags = ["--config", os.path.join(ROOT, "configs", config), "--num-layers", str(LAYERS),
             "--global-batch-size", "16", "--micro-batch-size", str(mbs), "--eval-iters", "0"]
    name = [model, f"mbs{mbs}"]
    if model == "bert" and rng.random() < 0.3:
        flags += ["--layernorm-arrangement", "post_ln"]; name.append("post-ln")
    if rng.random() < 0.5:
        flags += ["--hidden-dropout", "0.1", "--attention-dropout", "0.1"]; name.append("dropout")
    else:
        flags += ["--hidden-dropout", "0", "--attention-dropout", "0"]
    precision = "bf16" if rng.random() < bf16_share else rng.choice(["fp32", "fp32", "fp16"])
    if precision != "fp32":
        flags += ["--" + precision]; name.append(precision)
    return flags, "-".join(name), precision != "fp32", mbs


PACKED_OPTIONS = ["--eod-mask-loss", "--reset-position-ids", "--reset-attention-mask", "--calculate-per-token-loss"]


def draw_packed(rng, share, prefix):
    """For a GPT case, with probability `share`: the packed-document corpus and a non-empty subset of
    Megatron's options for it (drawn from their own generator, so the other draws of a seed stay put)."""
    if rng.random() >= share:
        return [], None
    chosen = [o for o in PACKED_OPTIONS if rng.random() < 0.5] or [rng.choice(PACKED_OPTIONS[:3])]
    short = "+".join({"--eod-mask-loss": "eod", "--reset-position-ids": "pos", "--reset-attention-mask": "attn",
                      "--calculate-per-token-loss": "per-token"}[o] for o in chosen)
    return ["--data-path", prefix] + chosen, "packed(" + short + ")"


LLAMA_OPTIONS = [["--position-embedding-type", "rope", "--rotary-percent", "0.5"], ["--normalization", "RMSNorm"],
                 ["--swiglu"], ["--disable-bias-linear"], ["--untie-embeddings-and-output-weights"],
                 # 8 heads in 4 groups, so every drawn t (up to 4) holds whole groups
                 ["--group-query-attention", "--num-query-groups", "4", "--num-attention-heads", "8"]]


def draw_llama(rng, share):
    """For a GPT case, with probability `share`: a non-empty subset of Megatron's Llama-style options
    (their own generator, as the packed draws)."""
    if rng.random() >= share:
        return [], None
    chosen = [o for o in LLAMA_OPTIONS if rng.random() < 0.5] or [rng.choice(LLAMA_OPTIONS)]
    short = "+".join({"--position-embedding-type": "rope", "--normalization": "rms", "--swiglu": "swiglu",
                      "--disable-bias-linear": "nobias", "--untie-embeddings-and-output-weights": "untied",
                      "--group-query-attention": "gqa"}[o[0]]
                     for o in chosen)
    return [f for o in chosen for f in o], "llama(" + short + ")"


def packed_corpus(binary, work):
    """3,000 documents of 3 to 40 words, each ended by EOD: a 64-token sample spans several."""
    rng = random.Random(7)
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex bad jam".split()
    with open(os.path.join(work, "docs.jsonl"), "w") as f:
        for _ in range(3000):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 40))) + "."
            f.write(json.dumps({"text": text}) + "\n")
    subprocess.run([binary, "preprocess-data", "--input", "docs.jsonl", "--tokenizer-type", "ByteLevelTokenizer",
                    "--append-eod", "--output-prefix", "docs"], cwd=work, check=True, capture_output=True)
    return os.path.join(work, "docs_text_document")


def draw_grid(rng, mbs):
    """A layout for that model: its flags, its rank count and a name."""
    t, p, d = 1, 1, 1
    while t * p * d == 1 or t * p * d > 8:
        t, p, d = rng.choice([1, 2, 4]), rng.choice([1, 2, 4]), rng.choice([1, 2])
    flags = ["--tensor-model-parallel-size", str(t), "--pipeline-model-parallel-size", str(p)]
    name = [f"t{t}p{p}d{d}"]
    if t > 1 and rng.random() < 0.5:
        flags += ["--sequence-parallel"]; name.append("sp")
    microbatches = 16 // (mbs * d)
    if p > 1:
        per_stage = LAYERS // p
        choice = rng.random()
        if choice < 0.35 and per_stage >= 2 and microbatches % p == 0:
            flags += ["--num-layers-per-virtual-pipeline-stage", str(per_stage // 2)]; name.append("v2")
        elif choice < 0.6:
            flags += ["--pipeline-schedule", "zb-h1"]; name.append("zb-h1")
        elif choice < 0.75:
            flags += ["--pipeline-auto-balance", "--pipeline-balance-costs", "flops",
                      "--pipeline-balance-unit", "sublayer"]; name.append("sublayer")
        elif choice < 0.85 and p == 2:
            first = rng.choice([1, 3])
            flags += ["--decoder-first-pipeline-num-layers", str(first)]; name.append(f"first{first}")
        elif choice < 0.95 and (LAYERS + 2) % p == 0:  # Megatron-LM's rule: the two extra slots split evenly
            flags += ["--account-for-embedding-in-pipeline-split", "--account-for-loss-in-pipeline-split"]
            name.append("account-split")
    if d > 1 and rng.random() < 0.5:
        flags += ["--use-distributed-optimizer"]; name.append("distopt")
    r = rng.random()
    if "zb-h1" in name:
        pass  # ZB-H1 defers weight gradients, which need each layer's saved inputs: no full recomputation
    elif r < 0.25:
        flags += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
        name.append("recompute-uniform")
    elif r < 0.4:
        flags += ["--recompute-granularity", "full", "--recompute-method", "block", "--recompute-num-layers", "1"]
        name.append("recompute-block")
    return flags, t * p * d, "-".join(name)


def run(binary, args, ranks, cwd, metrics):
    cmd = [binary, "train"] + args + ["--num-threads", "1", "--metrics-file", metrics]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if ranks > 1:
        cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(ranks)] + cmd
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    return out, cmd


def losses(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    return [{k: row[k] for k in LOSS_KEYS if k in row} for row in rows]


def compare(got, want, tolerance):
    """The worst relative difference of the losses of `got` against `want`, and the first failure (or None)."""
    worst, bad = 0.0, None
    if len(got) != len(want):
        bad = f"{len(got)} iterations logged, the reference {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        for k in w:
            if k not in g:
                bad = bad or f"iteration {i + 1} has no {k}"
                continue
            rel = abs(g[k] - w[k]) / max(abs(w[k]), 1e-12)
            worst = max(worst, rel)
            if rel > tolerance and bad is None:
                bad = f"iteration {i + 1} {k} {g[k]:.8g} against one rank's {w[k]:.8g} (relative {rel:.2e})"
    return worst, bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--bf16-share", type=float, default=0.25, help="share of cases run in bf16 (a third of the rest in fp16)")
    ap.add_argument("--resume-share", type=float, default=0.3,
                    help="share of cases saved halfway and resumed on another layout")
    ap.add_argument("--packed-share", type=float, default=0.3,
                    help="share of GPT cases trained on packed short documents with Megatron's EOD options")
    ap.add_argument("--llama-share", type=float, default=0.3,
                    help="share of GPT cases with a subset of Megatron's Llama-style architecture options")
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "megatron"))
    ap.add_argument("--perturb", action="store_true",
                    help="give the layouts' runs another seed than the reference's, so every case must "
                    "mismatch (checks the checker)")
    ap.add_argument("--keep", help="keep the runs' files in this directory")
    a = ap.parse_args()
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"grid_sweep: {a.binary} is missing: run `swift build -c release --product megatron` first")
    rng = random.Random(a.seed)
    work = a.keep or tempfile.mkdtemp(prefix="grid_sweep.")
    os.makedirs(work, exist_ok=True)
    references, failures = {}, 0
    prefix = packed_corpus(a.binary, work) if a.packed_share > 0 else None
    perturb = ["--seed", "4321"] if a.perturb else []
    for case in range(a.cases):
        model, model_name, half, mbs = draw_model(rng, a.bf16_share)
        if "gpt2-tiny.json" in model[1] and prefix:
            packed, packed_name = draw_packed(random.Random(a.seed * 1_000_003 + case), a.packed_share, prefix)
            model, model_name = model + packed, model_name + ("-" + packed_name if packed_name else "")
        if "gpt2-tiny.json" in model[1]:
            llama, llama_name = draw_llama(random.Random(a.seed * 2_000_003 + case), a.llama_share)
            model, model_name = model + llama, model_name + ("-" + llama_name if llama_name else "")
        grid, ranks, grid_name = draw_grid(rng, mbs)
        # Some cases stop halfway with a checkpoint and resume on another layout.
        resume = draw_grid(rng, mbs) if rng.random() < a.resume_share else None
        name = f"{model_name} on {grid_name}" + (f", resumed on {resume[2]}" if resume else "")
        common = model + ["--train-iters", str(a.iters)]
        key = tuple(common)
        if key not in references:
            metrics = os.path.join(work, f"ref{len(references)}.jsonl")
            out, cmd = run(a.binary, common, 1, work, metrics)
            if out.returncode != 0:
                print(f"case {case:3} {name}: the one-rank reference failed:\n  {' '.join(cmd)}\n{out.stderr[-2000:]}")
                failures += 1
                continue
            references[key] = losses(metrics)
        metrics = os.path.join(work, f"case{case}.jsonl")
        ckpt = os.path.join(work, f"case{case}.ckpt")
        legs = [(grid, ranks, [])]
        if resume:
            half_way = str(a.iters // 2)
            legs = [(grid, ranks, ["--save", ckpt, "--save-interval", half_way, "--exit-interval", half_way]),
                    (resume[0], resume[1], ["--load", ckpt])]
        failed, commands = None, []
        for flags, n, extra in legs:
            out, cmd = run(a.binary, common + flags + extra + perturb, n, work, metrics)
            commands.append(" ".join(cmd))
            if out.returncode != 0:
                failed = f"  {commands[-1]}\n{out.stderr[-2000:]}"
                break
        if failed:
            print(f"case {case:3} {name}: FAILED to run:\n{failed}")
            failures += 1
            continue
        got = losses(metrics)
        worst, bad = compare(got, references[key], 1e-3 if half else 1e-5)
        status = "ok" if bad is None else "MISMATCH"
        print(f"case {case:3} {name}: {status}, worst relative difference {worst:.2e} over {len(got)} iterations"
              + ("" if bad is None else f"\n  {bad}\n  " + "\n  ".join(commands)), flush=True)
        failures += bad is not None
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{a.cases - failures} of {a.cases} cases equal one rank")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

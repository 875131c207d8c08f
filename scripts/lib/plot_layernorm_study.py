#!/usr/bin/env python3
"""Table and PNG for scripts/bert_layernorm_study.sh: reads OUT/{pre_ln,post_ln}_L{depth}.jsonl
(the metrics files of the runs) and writes OUT/table.md (printed too) and OUT/loss_curves.png.

    python3 scripts/lib/plot_layernorm_study.py OUT 6 12 24 48

Per run: the training loss (masked-LM + sentence-order) averaged over the last 10% of the steps,
the validation masked-LM loss and sentence-order accuracy at the end, and whether it diverged (a
non-finite loss, or the run stopped early). The PNG has one panel per depth with both arrangements'
masked-LM training loss, smoothed over 10 steps.
"""
import json
import math
import os
import sys


def read(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    return rows


def main():
    out, depths = sys.argv[1], [int(d) for d in sys.argv[2:]]
    runs = {(a, d): read(os.path.join(out, f"{a}_L{d}.jsonl")) for a in ("pre_ln", "post_ln") for d in depths}
    lines = ["| layers | arrangement | steps run | training loss, MLM + SOP (last 10%) | valid masked-LM loss | valid SOP accuracy |",
             "|---:|---|---:|---:|---:|---:|"]
    for d in depths:
        for a in ("pre_ln", "post_ln"):
            train = [r for r in runs[(a, d)] if "mlm_loss" in r and "iteration" in r]
            valid = [r for r in runs[(a, d)] if "valid_mlm_loss" in r]
            tail = train[-max(1, len(train) // 10):] if train else []
            loss = sum(r["lm_loss"] for r in tail) / len(tail) if tail else float("nan")
            mlm = valid[-1]["valid_mlm_loss"] if valid else float("nan")
            sop = valid[-1].get("valid_sop_accuracy", float("nan")) if valid else float("nan")
            flag = " (diverged)" if not math.isfinite(loss) else ""
            label = {"pre_ln": "pre-LN (Megatron)", "post_ln": "post-LN (original)"}[a]
            lines.append(f"| {d} | {label} | {len(train)} | {loss:.3f}{flag} "
                         f"| {mlm:.3f} | {sop:.3f} |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: pip install matplotlib for the PNG)")
        return
    fig, axes = plt.subplots(1, len(depths), figsize=(4 * len(depths), 3.4), sharey=True)
    axes = axes if len(depths) > 1 else [axes]
    for ax, d in zip(axes, depths):
        for a, style in (("pre_ln", "-"), ("post_ln", "--")):
            train = [r for r in runs[(a, d)] if "mlm_loss" in r and "iteration" in r]
            xs = [r["iteration"] for r in train]
            ys = [r["mlm_loss"] for r in train]
            smooth = [sum(ys[max(0, i - 9):i + 1]) / len(ys[max(0, i - 9):i + 1]) for i in range(len(ys))]
            ax.plot(xs, smooth, style, label="pre-LN (Megatron)" if a == "pre_ln" else "post-LN (original)")
        ax.set_title(f"{d} layers")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("masked-LM training loss")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss_curves.png"), dpi=110)
    print(f"wrote {os.path.join(out, 'loss_curves.png')}")


if __name__ == "__main__":
    main()

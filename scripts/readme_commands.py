#!/usr/bin/env python3
"""Runs every command block (```sh) of README.md in order, as a new user would, and fails on the
first command that fails. Called by scripts/readme_commands.sh, which builds and sets up MPI.

The README's placeholders are pointed at real files: ../shared/data (GPT-2 and BERT vocabularies,
Tiny Shakespeare, WikiText-103, LAMBADA) and a few inputs made here (a Hugging Face export of the
trained checkpoint for `--from hf path/to/gpt2`, the committed tiny Llamas for `path/to/llama` and
`path/to/llama-with-tokenizer` (its SentencePiece model also for `/path/to/tokenizer.model`) and
`path/to/llama3`, a prompts file, a text corpus cut from
WikiText-103, and small GLUE-format MNLI files, since GLUE is not bundled); `swift build` runs in
the repository, every other command in runs/readme (configs, scripts and .build linked there). Two commands are
bounded so the run ends: the bert-base pretraining line (1,000,000 iterations as configured) gets
`--exit-interval 2`, and `scripts/test.sh` is left to CI (.ci/run runs it). Every change to a
command is printed beside it.

    scripts/readme_commands.sh            # from the repository root; work files in runs/readme
"""
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
WORK = os.path.join(ROOT, "runs", "readme")

# Placeholder → real path (applied in this order, whole words only where it matters).
PLACEHOLDERS = [
    ("/path/to/gpt2/vocab.json", f"{SHARED}/tokenizers/gpt2/vocab.json"),
    ("/path/to/gpt2/merges.txt", f"{SHARED}/tokenizers/gpt2/merges.txt"),
    ("/path/to/tinyshakespeare/input.txt", f"{SHARED}/corpora/tinyshakespeare/input.txt"),
    (" path/to/gpt2 ", " hf-gpt2 "),
    (" path/to/llama ", f" {ROOT}/Tests/CLITests/Fixtures/hf_llama_tiny "),
    (" path/to/llama-with-tokenizer ", f" {ROOT}/Tests/CLITests/Fixtures/hf_llama_sp "),
    (" path/to/llama3 ", f" {ROOT}/Tests/CLITests/Fixtures/hf_llama3_tok "),
    ("/path/to/tokenizer.model", f"{ROOT}/Tests/MegatronCoreTests/Fixtures/sentencepiece/llama_bpe.model"),
    (" wiki.test.tokens", f" {SHARED}/wikitext/wikitext-103/wiki.test.tokens"),
    (" lambada_test.jsonl", f" {SHARED}/lambada/lambada_test.jsonl"),
    (" vocab.txt", f" {SHARED}/tokenizers/bert-base-uncased/vocab.txt"),
]

# Inputs made just before the first command that names them (pattern, command, why).
BEFORE = [
    (r"--from hf hf-gpt2", ".build/release/megatron convert-checkpoint --load ckpt --to hf hf-gpt2",
     "a Hugging Face GPT-2 directory to import: the checkpoint trained above, exported"),
]

# Commands changed so the run ends (pattern, appended flags or None to skip, why).
BOUNDED = [
    (r"^scripts/test\.sh\b", None, "the test suite is CI's own step (.ci/run runs scripts/test.sh)"),
    (r"train --config configs/bert-base\.json", "--exit-interval 2", "bert-base is configured for 1,000,000 iterations"),
    (r"^scripts/fuzz\.sh\b", None,
     "a million executions per target take about an hour and grow the committed corpus; FuzzCorpusTests replays it"),
]


def blocks(readme):
    """The ```sh blocks of the README, each as a list of commands (continuation lines joined)."""
    out, current = [], None
    for line in open(readme, encoding="utf-8"):
        line = line.rstrip("\n")
        if current is None and line.strip() == "```sh":
            current = []
        elif current is not None and line.strip() == "```":
            out.append(current)
            current = None
        elif current is not None:
            current.append(line)
    commands = []
    for block in out:
        cmds, pending = [], ""
        for line in block:
            if pending:
                line = pending + " " + line.strip()
                pending = ""
            code = re.sub(r"\s+#.*$", "", line) if not line.lstrip().startswith("#") else ""
            if code.endswith("\\"):
                pending = code[:-1].rstrip()
                continue
            if code.strip():
                cmds.append(code.strip())
        commands.append(cmds)
    return commands


def prepare():
    """Inputs the README names that neither the repository nor ../shared holds."""
    os.makedirs(os.path.join(WORK, "MNLI"), exist_ok=True)
    header = "\t".join(["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                        "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                        "sentence2", "label1", "gold_label"])
    pairs = [("The cat sat on the mat.", "A cat is sitting.", "entailment"),
             ("The cat sat on the mat.", "The mat is empty.", "contradiction"),
             ("He walked to the station.", "He was late for the train.", "neutral")]
    for name, rows in (("train.tsv", 32), ("dev_matched.tsv", 9), ("dev_mismatched.tsv", 9)):
        with open(os.path.join(WORK, "MNLI", name), "w", encoding="utf-8") as f:
            f.write(header + "\n")
            for i in range(rows):
                a, b, label = pairs[i % 3]
                f.write("\t".join([str(i), str(i), f"{i}e", "fiction", "", "", "", "", a, b, label, label]) + "\n")
    with open(os.path.join(WORK, "prompts.txt"), "w", encoding="utf-8") as f:
        f.write("First Citizen:\nROMEO:\n")
    with open(f"{SHARED}/wikitext/wikitext-103/wiki.test.tokens", encoding="utf-8") as src:
        text = src.read(400_000)
    with open(os.path.join(WORK, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    for name in ("configs", "scripts", ".build"):
        link = os.path.join(WORK, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(ROOT, name), link)


def wait_for_port(port, seconds=120):
    import socket
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    sys.exit(f"readme: the server never listened on port {port}")


def main():
    if not os.path.isdir(SHARED):
        sys.exit(f"readme: {SHARED} is absent; this check needs ../shared/data beside the repository")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    prepare()
    background = []
    started = time.time()
    try:
        for number, cmds in enumerate(blocks(os.path.join(ROOT, "README.md")), 1):
            for cmd in cmds:
                run = cmd
                for old, new in PLACEHOLDERS:
                    run = run.replace(old, new)
                note = ""
                for pattern, extra, why in BOUNDED:
                    if re.search(pattern, run):
                        if extra is None:
                            run, note = None, f"skipped: {why}"
                        else:
                            run, note = f"{run} {extra}", f"appended {extra}: {why}"
                        break
                print(f"\n==> block {number}: {cmd}" + (f"\n    ({note})" if note else ""), flush=True)
                if run is None:
                    continue
                for pattern, setup, why in BEFORE:
                    if re.search(pattern, run):
                        print(f"    first ({why}): {setup}", flush=True)
                        if subprocess.run(setup, shell=True, cwd=WORK, executable="/bin/bash").returncode != 0:
                            sys.exit(f"readme: preparing block {number} failed: {setup}")
                cwd = ROOT if run.startswith("swift ") else WORK
                if run.endswith("&"):
                    background.append(subprocess.Popen(run[:-1], shell=True, cwd=cwd, executable="/bin/bash"))
                    port = re.search(r"--port (\d+)", run)
                    if port:
                        wait_for_port(int(port.group(1)))
                    continue
                t = time.time()
                result = subprocess.run(run, shell=True, cwd=cwd, executable="/bin/bash")
                if result.returncode != 0:
                    sys.exit(f"readme: block {number} failed (exit {result.returncode}): {run}")
                print(f"    ok in {time.time() - t:.1f} s", flush=True)
    finally:
        for p in background:
            p.terminate()
            p.wait()
    print(f"\nreadme: every command of README.md ran ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Loads a `megatron convert-checkpoint --to hf` directory as a new user would — AutoTokenizer,
AutoModelForCausalLM and pipeline("text-generation") — and prints one JSON object: the tokenizer's
class, its ids for each --encode text, and the greedy continuation of each --prompt.

    python3 hf_generate_check.py DIR --prompt TEXT [--prompt …] --new-tokens N [--encode TEXT …]
Exit code 3 when torch or transformers is missing (the caller skips).
"""
import argparse
import json
import sys

try:
    import torch  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
except ImportError as e:
    print(f"missing: {e}", file=sys.stderr)
    sys.exit(3)

parser = argparse.ArgumentParser()
parser.add_argument("directory")
parser.add_argument("--prompt", action="append", default=[])
parser.add_argument("--encode", action="append", default=[])
parser.add_argument("--new-tokens", type=int, default=20)
args = parser.parse_args()

tokenizer = AutoTokenizer.from_pretrained(args.directory)
model = AutoModelForCausalLM.from_pretrained(args.directory)
generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
result = {
    "tokenizer": type(tokenizer).__name__,
    "encoded": [tokenizer(t)["input_ids"] for t in args.encode],
    "generated": [
        generator(p, do_sample=False, max_new_tokens=args.new_tokens, return_full_text=False)[0]["generated_text"]
        for p in args.prompt
    ],
}
print(json.dumps(result))

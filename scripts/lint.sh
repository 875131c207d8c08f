#!/usr/bin/env bash
# scripts/lint.sh — the house format and size rules, checked (scripts/test.sh runs this first):
#   - `swift format lint --strict` with the committed .swift-format (4 spaces, lines ≤ 120);
#   - no function or initializer in Sources/MegatronCore longer than 80 lines.
# Fix formatting with:  swift format format --in-place --recursive Sources Tests Package.swift
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
if ! swift format lint --strict --recursive Sources Tests Package.swift; then
    echo "error: the code is not formatted; run: swift format format --in-place --recursive Sources Tests Package.swift" >&2
    status=1
fi
if ! python3 scripts/lib/function_lengths.py 80 $(find Sources/MegatronCore -name '*.swift' | sort); then
    echo "error: split the functions above into smaller ones (limit: 80 lines in Sources/MegatronCore)" >&2
    status=1
fi
[ $status -eq 0 ] && echo "==> lint: formatted, functions within 80 lines"
exit $status

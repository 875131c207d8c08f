#!/usr/bin/env bash
# scripts/readme_commands.sh — runs every command block of README.md in order, as written, against
# the release build, with the README's placeholders pointed at ../shared/data (see
# scripts/readme_commands.py for the exact substitutions and the two bounded commands); fails on
# the first command that fails. Work files go to runs/readme. Takes about 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
swift build -c release 2>&1 | grep -E "error|Build complete" || true
PATH=/usr/bin:$PATH exec python3 scripts/readme_commands.py "$@"

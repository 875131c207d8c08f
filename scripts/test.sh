#!/usr/bin/env bash
# scripts/test.sh — installs what the tests need, checks formatting and function sizes
# (scripts/lint.sh), builds (release: the tests check numerics and run the real binary), and runs
# every test. CI runs this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
# The tests' Python helpers need the Debian python3 that ensure_packages gave numpy and h5py, not
# another python3 earlier on PATH (a pyenv shim, say).
export PATH="/usr/bin:$PATH"
echo "==> lint (format and function sizes)"
scripts/lint.sh
echo "==> building (release, with tests)"
swift build -c release --build-tests
echo "==> running tests"
swift test -c release --skip-build "$@"

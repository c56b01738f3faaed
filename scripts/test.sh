#!/usr/bin/env bash
# Run every check CI runs: formatting, lints, unit tests and the black-box tests of the binary.
# Usage: scripts/test.sh            (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== build the ferrogrid binary for the black-box tests"
cargo build -p ferrogrid-engine --bin ferrogrid
export FERROGRID_BIN="$PWD/target/debug/ferrogrid"

echo "== cargo test (unit tests and black-box tests)"
cargo test --workspace --no-fail-fast

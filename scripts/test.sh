#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: formatting, lints, unit and integration tests
# (conformance suite, hostile inputs, property tests, command line), doctests, the benchmark once
# as a test, and the core's build for wasm32 with its purity check.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

say() { printf '\033[1m== %s\033[0m\n' "$*"; }

say "formatting"
cargo fmt --all -- --check

say "lints (clippy, warnings are errors)"
cargo clippy --all-targets --all-features -- -D warnings

say "tests"
cargo test --all-features

say "benchmarks, once each, as tests"
cargo test --benches --all-features

say "the core builds for wasm32-unknown-unknown without the command line"
cargo build --lib --target wasm32-unknown-unknown --no-default-features --profile wasm-release

say "the core has no I/O, clock, threads or environment"
if grep -rnE 'std::(fs|net|time|thread|process|env)\b|SystemTime|Instant::|getrandom' src --include='*.rs' \
     | grep -v '^src/bin/'; then
  echo "error: the core must take time, files and randomness from its callers" >&2
  exit 1
fi
echo "ok"
say "all tests passed"

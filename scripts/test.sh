#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: formatting, lints, unit and integration tests
# (conformance suite, hostile inputs, property tests, command line), doctests, the benchmark once
# as a test, a minute of each fuzz target (scripts/fuzz.sh), the core's build for wasm32 with its
# purity check; then the npm package: its build,
# wasm-bindgen tests in Node and headless Chromium, the node --test suites (conformance and hostile
# inputs through the package, the packed package by require, import, TypeScript, in Chromium and
# in workerd, its size budget), and the npm benchmark once on a small workload; then the Worker:
# its build, and its suites in workerd (routes and bad input, the conformance suite over HTTP,
# revocations, tiers, restarts, logs) and against `wrangler dev`; then the origin's publisher against
# two Workers (revocations, grants, an edge down, crashes at each step, --watch, the big group) and
# its propagation benchmark once; and the admin preview page (build/assets/admin) in headless
# Chromium, served by the Worker under /admin (screenshots in target/admin-screenshots/); the Worker's
# limits and fault drills in workerd; the scale benchmark and the soak once each, quick.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

say() { printf '\033[1m== %s\033[0m\n' "$*"; }

say "formatting"
cargo fmt --all -- --check

say "lints (clippy, warnings are errors)"
cargo clippy --all-targets --all-features -- -D warnings
cargo clippy --target wasm32-unknown-unknown --no-default-features --features wasm --lib --test wasm \
  -- -D warnings
cargo clippy --target wasm32-unknown-unknown --no-default-features --features worker --lib \
  -- -D warnings

say "tests"
cargo test --all-features

say "benchmarks, once each, as tests"
cargo test --benches --all-features

say "the fuzz targets, a minute each (seeds and regression cases first; exits 1 on a crash)"
./scripts/fuzz.sh run 60 | tee target/fuzz-short.txt

say "the core builds for wasm32-unknown-unknown without the command line"
cargo build --lib --target wasm32-unknown-unknown --no-default-features --profile wasm-release

say "the core has no I/O, clock, threads or environment"
if grep -rnE 'std::(fs|net|time|thread|process|env)\b|SystemTime|Instant::|getrandom' src --include='*.rs' \
     | grep -v '^src/bin/'; then
  echo "error: the core must take time, files and randomness from its callers" >&2
  exit 1
fi
echo "ok"

say "the npm package (pkg/): build"
./scripts/build-pkg.sh

say "wasm-bindgen tests in Node"
cargo test --target wasm32-unknown-unknown --no-default-features --features wasm --test wasm
say "wasm-bindgen tests in headless Chromium"
WASM_BINDGEN_USE_BROWSER=1 \
  cargo test --target wasm32-unknown-unknown --no-default-features --features wasm --test wasm

say "the release build (the benchmark's workload generator)"
cargo build --release --quiet

say "the Worker (build/) and the admin page (build/assets/admin)"
./scripts/build-worker.sh

say "node --test: the package from Node, Chromium and workerd; the Worker; the publisher; the admin page; the benchmarks' own tests"
node --test --test-reporter=tap tests/js/ bench/test/ | tee target/node-test.tap
if grep -qE '^# (skipped|todo|cancelled) [1-9]' target/node-test.tap; then
  echo "error: node --test left tests skipped, todo or cancelled (target/node-test.tap)" >&2
  exit 1
fi

say "the npm benchmark once, on a small workload (every answer checked)"
node bench/run.mjs --quick > /dev/null

say "the Worker's benchmark once, quick, against wrangler dev (exits 1 on a stale allow)"
node bench/worker.mjs --quick > target/bench-worker.md
tail -n 20 target/bench-worker.md

say "the publisher's benchmark once, quick, against two Workers in workerd (exits 1 on a wrong answer)"
node bench/publish.mjs --quick > target/bench-publish.md
grep -A 12 '^### Targets' target/bench-publish.md || tail -n 20 target/bench-publish.md

say "the scale benchmark once, quick (a small tenant natively, in Node and in workerd)"
node bench/scale.mjs --quick > target/bench-scale.md
cat target/bench-scale.md

say "the soak once, quick (30 s of mixed tiers against wrangler dev while the origin revokes and grants; exits 1 on an error, a wrong answer or a stale allow)"
node bench/soak.mjs --quick --no-build > target/soak-quick.md
cat target/soak-quick.md

say "all tests passed"

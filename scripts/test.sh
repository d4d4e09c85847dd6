#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test, or a subset for a fast inner loop:
#
#   scripts/test.sh            everything, in the order CI runs it (.ci/run)
#   scripts/test.sh core       formatting, lints, the Rust crates' tests (core, protocol, command
#                              line), the core's purity, the benchmark once as a test
#   scripts/test.sh pkg        the npm package: its build, wasm-bindgen tests in Node and headless
#                              Chromium, the node --test suites of the package, the npm benchmark once
#   scripts/test.sh toolchains the packed package built and run by the toolchains of tests/toolchains/
#                              (Vite 5 to 8, webpack, esbuild, Next.js, Jest, Vitest, Node 18)
#   scripts/test.sh worker     the Worker and the admin page in workerd and Chromium, and the
#                              Worker's benchmarks once, quick (scale, soak)
#   scripts/test.sh publish    the origin's publisher against Workers in workerd, its benchmark once;
#                              replicas and the push receiver; the replica benchmark once
#   scripts/test.sh fuzz       45 seconds of each fuzz target (seeds and regressions first)
#
# Several subsets may be named: `scripts/test.sh core pkg`. The node --test files of each subset
# are listed below; a test file that no subset names fails the run of everything.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

say() { printf '\033[1m== %s\033[0m\n' "$*"; }

# The node --test files of each subset (globs under tests/js and bench/test).
PKG_TESTS="tests/js/package.test.mjs tests/js/conformance.test.mjs tests/js/hostile.test.mjs
  tests/js/hostile.test.cjs tests/js/limits.test.mjs tests/js/copy-fuzz.test.mjs tests/js/context.test.mjs
  tests/js/token.test.mjs tests/js/decision-log.test.mjs tests/js/impact.test.mjs
  tests/js/keys.test.mjs tests/js/size.test.mjs tests/js/name-cache.test.mjs
  tests/js/browser.test.mjs tests/js/workerd.test.mjs tests/js/golden.test.mjs
  tests/js/docs.test.mjs
  bench/test/bench.test.mjs"
WORKER_TESTS="tests/js/worker*.test.mjs tests/js/admin*.test.mjs"
# The packed package built by real toolchains (Vite, webpack, esbuild, Next.js, Jest, Vitest, Node 18).
TOOLCHAIN_TESTS="tests/js/toolchains.test.mjs"
# The README's examples run against a live origin (the Worker and the publisher): with these.
PUBLISH_TESTS="tests/js/publish*.test.mjs tests/js/serve*.test.mjs tests/js/replica.test.mjs tests/js/receiver.test.mjs
  tests/js/browser-replica.test.mjs tests/js/workerd-replica.test.mjs tests/js/readme.test.mjs"

node_tests() { # name, files...
  local name=$1
  shift
  local files=()
  for f in $*; do [ -e "$f" ] && files+=("$f"); done
  node --test --test-reporter=tap "${files[@]}" | tee "target/node-test-$name.tap"
  if grep -qE '^# (skipped|todo|cancelled) [1-9]' "target/node-test-$name.tap"; then
    echo "error: node --test left tests skipped, todo or cancelled (target/node-test-$name.tap)" >&2
    exit 1
  fi
}

every_node_test_is_in_a_subset() {
  local listed missing=0
  listed=$(for f in $PKG_TESTS $TOOLCHAIN_TESTS $WORKER_TESTS $PUBLISH_TESTS; do echo "$f"; done | sort -u)
  for f in tests/js/*.test.mjs tests/js/*.test.cjs bench/test/*.test.mjs; do
    if ! grep -qx "$f" <<< "$listed"; then
      echo "error: $f is in no subset of scripts/test.sh" >&2
      missing=1
    fi
  done
  [ "$missing" = 0 ]
}

core() {
  say "formatting"
  cargo fmt --all -- --check

  say "lints (clippy, warnings are errors; the core's clippy.toml refuses I/O, clocks and threads)"
  cargo clippy --workspace --all-targets --all-features -- -D warnings
  cargo clippy --target wasm32-unknown-unknown -p edge-authz-wasm --lib --tests -- -D warnings
  cargo clippy --target wasm32-unknown-unknown -p edge-authz-worker --lib -- -D warnings

  say "tests: the core (and its purity: tests/deps.rs), the host formats, the command line and the conformance suite natively"
  cargo test --workspace --all-features

  say "benchmarks, once each, as tests"
  cargo test -p edge-authz --benches --all-features
  cargo test -p edge-authz-protocol --benches --all-features

  say "the core builds for wasm32-unknown-unknown alone"
  cargo build -p edge-authz --lib --target wasm32-unknown-unknown --profile wasm-release
}

pkg() {
  say "the npm package (pkg/): build"
  ./scripts/build-pkg.sh

  say "wasm-bindgen tests in Node"
  cargo test --target wasm32-unknown-unknown -p edge-authz-wasm --test wasm
  say "wasm-bindgen tests in headless Chromium"
  WASM_BINDGEN_USE_BROWSER=1 cargo test --target wasm32-unknown-unknown -p edge-authz-wasm --test wasm

  say "the release build (the benchmark's workload generator), the hostile catalogue"
  cargo build --release --quiet
  [ -f target/tmp/hostile-catalogue.json ] || cargo test -p edge-authz --test it hostile --quiet

  say "node --test: the package from Node, Chromium and workerd, golden files, the benchmarks' own tests"
  node_tests pkg $PKG_TESTS

  say "the npm benchmark once, on a small workload (every answer checked)"
  node bench/run.mjs --quick > /dev/null
  say "the hot-path benchmark once, on a small workload (answers of check and checkMany compared; where their time goes)"
  node bench/hotpath.mjs --quick --shares > target/bench-hotpath.md
  say "the first-load benchmark once, on a small workload (fresh processes; their answers compared)"
  node bench/firstload.mjs --quick > target/bench-firstload.md
}

toolchains() {
  ./scripts/build-pkg.sh --if-stale
  say "node --test: the packed package built and run by Vite 5 to 8, webpack 5, esbuild, Next.js 15 and 16, wrangler, Jest, Vitest and Node 18 (tools from the npm registry, cached in ~/.npm)"
  node_tests toolchains $TOOLCHAIN_TESTS
}

worker() {
  say "the release build, the Worker (build/) and the admin page (build/assets/admin)"
  cargo build --release --quiet
  ./scripts/build-pkg.sh --if-stale
  ./scripts/build-worker.sh
  [ -f target/tmp/hostile-catalogue.json ] || cargo test -p edge-authz --test it hostile --quiet

  say "node --test: the Worker in workerd and wrangler dev; the admin page in Chromium"
  node_tests worker $WORKER_TESTS

  say "the Worker's benchmark once, quick, against wrangler dev (exits 1 on a stale allow)"
  node bench/worker.mjs --quick > target/bench-worker.md
  tail -n 20 target/bench-worker.md

  say "the scale benchmark once, quick (a small tenant natively, in Node and in workerd)"
  node bench/scale.mjs --quick > target/bench-scale.md
  cat target/bench-scale.md

  say "the soak once, quick (30 s of mixed tiers against wrangler dev while the origin revokes and grants; exits 1 on an error, a wrong answer or a stale allow)"
  node bench/soak.mjs --quick --no-build > target/soak-quick.md
  cat target/soak-quick.md
}

publish() {
  say "the release build and the Worker"
  cargo build --release --quiet
  ./scripts/build-pkg.sh --if-stale
  ./scripts/build-worker.sh

  say "node --test: the publisher and the origin service against Workers in workerd (revocations, grants, an edge down, crashes at each step, --watch, the change API, SCIM)"
  node_tests publish $PUBLISH_TESTS

  say "the publisher's benchmark once, quick, against two Workers in workerd (exits 1 on a wrong answer)"
  node bench/publish.mjs --quick > target/bench-publish.md
  grep -A 12 '^### Targets' target/bench-publish.md || tail -n 20 target/bench-publish.md

  say "the origin service's benchmark once, quick, against two Workers in workerd (exits 1 on a wrong answer)"
  node bench/serve.mjs --quick > target/bench-serve.md
  cat target/bench-serve.md

  say "the replica benchmark once, quick, against a Worker in workerd (exits 1 on an allow after a revocation)"
  node bench/replica.mjs --quick > target/bench-replica.md
  cat target/bench-replica.md
}

fuzz() {
  say "the fuzz targets, 45 seconds each (seeds and regression cases first; exits 1 on a crash)"
  mkdir -p target
  ./scripts/fuzz.sh run "${FUZZ_SECONDS:-45}" | tee target/fuzz-short.txt
}

mkdir -p target
if [ $# = 0 ]; then
  every_node_test_is_in_a_subset
  set -- core fuzz pkg toolchains worker publish
fi
for subset in "$@"; do
  case $subset in
    core | pkg | toolchains | worker | publish | fuzz) "$subset" ;;
    *) echo "usage: scripts/test.sh [core|pkg|toolchains|worker|publish|fuzz]..." >&2; exit 2 ;;
  esac
done
say "all tests passed ($*)"

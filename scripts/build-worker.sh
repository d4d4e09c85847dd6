#!/usr/bin/env bash
# Builds the Cloudflare Worker (crates/worker) into build/ with worker-build: build/index.js
# (the entry wrangler.toml names) and build/index_bg.wasm, and its static assets (the admin page,
# scripts/build-www.sh) into build/assets. Skips the build when nothing it is
# made from changed since the last one (wrangler runs this on every `wrangler dev` start).
# Needs the tools of scripts/setup.sh (worker-build, wasm-bindgen, npm's binaryen and esbuild).
set -euo pipefail
cd "$(dirname "$0")/.."

# The admin page, served as static assets under /admin (wrangler.toml, [assets]).
./scripts/build-www.sh

stamp=$(cat Cargo.toml Cargo.lock scripts/build-worker.sh $(find crates/core crates/protocol crates/worker -type f -not -path '*/target/*' | sort) |
  sha256sum | cut -d' ' -f1)
if [ -f build/index.js ] && [ -f build/index_bg.wasm ] && [ "$(cat build/.stamp 2>/dev/null)" = "$stamp" ]; then
  echo "build/: the Worker is up to date"
  exit 0
fi
# worker-build would download wasm-bindgen, wasm-opt and esbuild from GitHub: point it at ours.
WASM_BINDGEN_BIN=$(command -v wasm-bindgen) \
WASM_OPT_BIN=$PWD/node_modules/.bin/wasm-opt \
ESBUILD_BIN=$PWD/node_modules/.bin/esbuild \
  worker-build --release --out-dir ../../build crates/worker
echo "$stamp" > build/.stamp
ls -l build/index.js build/index_bg.wasm

#!/usr/bin/env bash
# Builds the Cloudflare Worker (crates/worker) into build/: worker-build's build/index.js and
# build/index_bg.wasm, the admin page (scripts/build-www.sh, into build/assets) packed into
# build/admin.bin and build/admin.mjs, and the entry wrangler.toml names, build/worker.mjs
# (crates/worker/entry.mjs). Skips the build when nothing it is
# made from changed since the last one (wrangler runs this on every `wrangler dev` start).
# Needs the tools of scripts/setup.sh (worker-build, wasm-bindgen, npm's binaryen and esbuild).
set -euo pipefail
cd "$(dirname "$0")/.."

# The admin page, assembled into build/assets/admin (packed for the Worker at the end).
./scripts/build-www.sh

# The admin page packed into the two modules through which the Worker serves it under /admin
# (build/admin.bin, build/admin.mjs), and the Worker's entry, which imports them and the Rust
# Worker (build/index.js). Cheap: run whether or not the Rust Worker is rebuilt.
entry() {
  node scripts/pack-admin.mjs build/assets build
  cp crates/worker/entry.mjs build/worker.mjs
}

stamp=$(cat Cargo.toml Cargo.lock scripts/build-worker.sh $(find crates/core crates/protocol crates/worker -type f -not -path '*/target/*' -not -name entry.mjs | sort) |
  sha256sum | cut -d' ' -f1)
if [ -f build/index.js ] && [ -f build/index_bg.wasm ] && [ "$(cat build/.stamp 2>/dev/null)" = "$stamp" ]; then
  echo "build/: the Worker is up to date"
  entry
  exit 0
fi
# worker-build would download wasm-bindgen, wasm-opt and esbuild from GitHub: point it at ours.
WASM_BINDGEN_BIN=$(command -v wasm-bindgen) \
WASM_OPT_BIN=$PWD/node_modules/.bin/wasm-opt \
ESBUILD_BIN=$PWD/node_modules/.bin/esbuild \
  worker-build --release --out-dir ../../build crates/worker
echo "$stamp" > build/.stamp
entry
ls -l build/index.js build/index_bg.wasm

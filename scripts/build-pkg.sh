#!/usr/bin/env bash
# Builds the npm package's generated files into pkg/dist/: the core compiled to wasm32 with the
# size-tuned profile, wasm-bindgen's glue (target `web`, one glue for every host), the wasm shrunk
# with `wasm-opt -Oz`, the CommonJS build of the JavaScript API (esbuild), and the CommonJS copy of
# the type declarations. Needs the tools of scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# --if-stale: nothing to do when pkg/dist was built from the sources as they are now.
stamp=$(cat Cargo.toml Cargo.lock scripts/build-pkg.sh $(find crates/core crates/protocol crates/wasm pkg/src pkg/index.d.ts -type f | sort) |
  sha256sum | cut -d' ' -f1)
if [ "${1:-}" = "--if-stale" ] && [ -f pkg/dist/edge_authz_bg.wasm ] && [ -f pkg/dist/node.cjs ] &&
   [ "$(cat pkg/dist/.stamp 2>/dev/null)" = "$stamp" ]; then
  echo "pkg/dist: the package is up to date"
  exit 0
fi

# BOUNDARY=1 builds, instead, the variant with the alternative crossings that bench/boundary.mjs
# measures, into target/pkg-boundary/ (dist/ and a copy of pkg/src/).
FEATURES=
OUT=pkg/dist
TMP=target/pkg-build
if [ "${BOUNDARY:-0}" = 1 ]; then
  FEATURES=bench-boundary
  OUT=target/pkg-boundary/dist
  TMP=target/pkg-boundary/build
  rm -rf target/pkg-boundary
  mkdir -p target/pkg-boundary
  cp -r pkg/src target/pkg-boundary/src
  echo '{"type": "module"}' > target/pkg-boundary/package.json
fi
rm -rf "$TMP"
mkdir -p "$TMP" "$OUT"

cargo rustc --quiet -p edge-authz-wasm --lib --target wasm32-unknown-unknown --profile wasm-release \
  ${FEATURES:+--features "$FEATURES"} --crate-type cdylib
wasm-bindgen --target web --no-typescript --out-dir "$TMP" --out-name edge_authz \
  target/wasm32-unknown-unknown/wasm-release/edge_authz_wasm.wasm
# The features rustc's wasm32 target enables by default (Rust 1.95), so that wasm-opt keeps them.
# `--low-memory-unused`: rustc's linker places data from 1024 on (its default global base), so the
# first kilobyte is never addressed; wasm-opt then folds more constant offsets. `--converge` runs
# the passes until nothing shrinks (together about 9 KB off the package, 2 KB gzipped).
node_modules/.bin/wasm-opt -Oz --low-memory-unused --converge --strip-debug --strip-producers \
  --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-reference-types --enable-multivalue \
  "$TMP/edge_authz_bg.wasm" -o "$OUT/edge_authz_bg.wasm"
# The glue's initSync compiles what is not `instanceof WebAssembly.Module`; a module compiled in
# another realm (Next.js's Edge runtime gives its `?module` imports from its own) fails that test
# and is not bytes either: recognise a module by its tag too, in whatever realm it was made.
grep -q 'if (!(module instanceof WebAssembly.Module)) {' "$TMP/edge_authz.js" ||
  { echo "build-pkg.sh: wasm-bindgen's initSync changed; revisit the realm patch" >&2; exit 1; }
sed "s/if (!(module instanceof WebAssembly.Module)) {/if (!(module instanceof WebAssembly.Module) \&\& Object.prototype.toString.call(module) !== '[object WebAssembly.Module]') {/" \
  "$TMP/edge_authz.js" > "$OUT/edge_authz.js"
if [ "${BOUNDARY:-0}" = 1 ]; then
  exit 0
fi
# Node's CommonJS entry: the same API and glue, bundled into one CommonJS file with the wasm
# embedded (base64, decoded by node-cjs.js with what the host has, so the file also runs in Jest's
# jsdom environment, with text-codec.js in place of the global TextDecoder and TextEncoder it
# lacks); node:crypto is required only on Node 18, node:util only where those globals are missing.
node_modules/.bin/esbuild pkg/src/node-cjs.js --bundle --platform=neutral --format=cjs \
  --loader:.wasm=base64 --external:node:crypto --external:node:util --inject:pkg/src/text-codec.js \
  --target=node18 --log-level=warning --log-override:empty-import-meta=silent --outfile="$OUT/node.cjs"
cp pkg/index.d.ts pkg/index.d.cts
printf 'wasm: %s bytes (%s gzipped)\n' "$(wc -c < "$OUT/edge_authz_bg.wasm")" \
  "$(gzip -9 -c "$OUT/edge_authz_bg.wasm" | wc -c)"
if [ "$OUT" = pkg/dist ]; then echo "$stamp" > pkg/dist/.stamp; fi

#!/usr/bin/env bash
# Assembles the admin preview page (www/) with the npm package's browser build and the example
# model into build/assets/admin/, and its response headers (www/_headers) into
# build/assets/_headers: what scripts/pack-admin.mjs packs into the modules through which the
# Worker serves the page under /admin (scripts/build-worker.sh), and a folder any static host
# can serve as it is. Needs pkg/dist
# (scripts/build-pkg.sh, run when it is missing or stale). Cheap: it copies a handful of files each time.
set -euo pipefail
cd "$(dirname "$0")/.."
# The package's browser build, rebuilt only when what it is made from changed.
./scripts/build-pkg.sh --if-stale
out=build/assets/admin
rm -rf "$out"
mkdir -p "$out/lib" "$out/pkg/src" "$out/pkg/dist" "$out/examples"
cp www/index.html www/app.js www/style.css "$out/"
# Its response headers (the Content-Security-Policy, no framing, ...) for the paths under /admin:
# the packing reads them there, as a static host that reads _headers (Cloudflare Pages) would.
cp www/_headers build/assets/_headers
cp www/lib/*.js "$out/lib/"
cp pkg/src/web.mjs pkg/src/init.mjs pkg/src/load.js pkg/src/api.js pkg/src/args.js pkg/src/internal.js \
  pkg/src/replica.js pkg/src/receiver.js pkg/src/token.js "$out/pkg/src/"
cp pkg/dist/edge_authz.js pkg/dist/edge_authz_bg.wasm "$out/pkg/dist/"
cp examples/acme.json "$out/examples/"
echo "build/assets/admin: $(find "$out" -type f | wc -l) files, $(du -sk "$out" | cut -f1) KiB"

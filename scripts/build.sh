#!/usr/bin/env bash
# Builds every artifact from the sources, skipping what is up to date:
#   target/release/edge-authz   the command line and publisher (crates/cli)
#   pkg/dist/                   the npm package's wasm and glue (crates/wasm, scripts/build-pkg.sh)
#   build/                      the Worker and the admin page (crates/worker, www/; build-worker.sh)
# Needs the tools of scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
./scripts/build-pkg.sh --if-stale
./scripts/build-worker.sh
ls -l target/release/edge-authz pkg/dist/edge_authz_bg.wasm build/index_bg.wasm

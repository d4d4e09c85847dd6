#!/usr/bin/env bash
# Installs what edge-authz needs and skips what is already there. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m== %s\033[0m\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed (install Rust with rustup first)" >&2
  exit 1
fi

have_target() { rustup target list --installed 2>/dev/null | grep -qx "$1"; }
have_component() { rustup component list --installed 2>/dev/null | grep -q "^$1"; }

if command -v rustup >/dev/null 2>&1; then
  if have_target wasm32-unknown-unknown; then
    say "wasm32-unknown-unknown target: present"
  else
    say "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  for c in clippy rustfmt; do
    if have_component "$c"; then
      say "$c: present"
    else
      say "installing $c"
      rustup component add "$c"
    fi
  done
else
  say "rustup not found: assuming the toolchain already has wasm32-unknown-unknown, clippy and rustfmt"
fi

say "fetching crates"
cargo fetch --quiet

# wasm-bindgen's command line must be the version of the wasm-bindgen crate in Cargo.lock.
WB_VERSION=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
if [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $WB_VERSION" ]; then
  say "wasm-bindgen $WB_VERSION: present"
else
  say "installing wasm-bindgen-cli $WB_VERSION (about 3 minutes)"
  # Not --locked: its lock file wants a crate version the registry mirror lacks.
  cargo install --quiet wasm-bindgen-cli --version "$WB_VERSION"
fi

# worker-build turns the `worker` feature into the Worker's build/ (scripts/build-worker.sh). Its
# version goes with the `worker` crate's in Cargo.toml.
WORKER_BUILD_VERSION=0.8.7
if worker-build --version 2>/dev/null | grep -qx "\(worker-build \)\?$WORKER_BUILD_VERSION"; then
  say "worker-build $WORKER_BUILD_VERSION: present"
else
  say "installing worker-build $WORKER_BUILD_VERSION (about 4 minutes)"
  cargo install --quiet --locked worker-build --version "$WORKER_BUILD_VERSION"
fi

# cargo fuzz runs the fuzz targets of fuzz/ (scripts/fuzz.sh).
CARGO_FUZZ_VERSION=0.13.2
if cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  say "cargo-fuzz $CARGO_FUZZ_VERSION: present"
else
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION (about 1 minute)"
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "error: Node.js and npm are needed (Node 20 or newer)" >&2
  exit 1
fi
# npm tools (wasm-opt, esbuild, TypeScript, playwright-core, Miniflare, wrangler, the benchmark's
# peers), reinstalled only when package-lock.json changed since the last install.
LOCK_SUM=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f node_modules/.edge-authz-lock ] && [ "$(cat node_modules/.edge-authz-lock)" = "$LOCK_SUM" ]; then
  say "npm tools: present"
else
  say "installing npm tools (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$LOCK_SUM" > node_modules/.edge-authz-lock
fi

# Python 3.11 or newer with its venv module, from Debian's packages when it is missing.
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  say "installing python3 and python3-venv (apt)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Python 3.11 or newer is needed (python3, with its venv module)" >&2
  exit 1
fi
# The SCIM client library and compliance checker that tests/js/serve-scim.test.mjs drives the
# origin service with (tests/scim/requirements.txt, exact versions), in a venv at
# target/scim-venv, made again only when the requirements changed since the last install.
SCIM_VENV=target/scim-venv
SCIM_SUM=$(sha256sum tests/scim/requirements.txt | cut -d' ' -f1)
if [ -x "$SCIM_VENV/bin/python" ] && [ -f "$SCIM_VENV/.edge-authz-requirements" ] \
  && [ "$(cat "$SCIM_VENV/.edge-authz-requirements")" = "$SCIM_SUM" ]; then
  say "SCIM test tools (scim2-client, scim2-tester): present"
else
  say "installing the SCIM test tools (python3 -m venv $SCIM_VENV, pip install -r tests/scim/requirements.txt)"
  python3 -m venv --clear "$SCIM_VENV"
  "$SCIM_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r tests/scim/requirements.txt
  echo "$SCIM_SUM" > "$SCIM_VENV/.edge-authz-requirements"
fi

# Headless Chromium and its driver for the browser tests, from Debian's packages.
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  say "chromium: present"
else
  say "installing chromium and chromium-driver (apt)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

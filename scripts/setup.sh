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

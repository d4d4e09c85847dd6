#!/usr/bin/env bash
# Sets up (scripts/setup.sh), builds the command line, and runs it on the example model: a key
# pair, a signed snapshot, decisions with their reasons, a batch, a revocation delivered with a
# watermark. Everything is written under target/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
run() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

cargo build --release --quiet
BIN=target/release/edge-authz
D=target/demo
rm -rf "$D"
mkdir -p "$D"
NOW=$(( $(date +%s) * 1000 ))

run "$BIN" keygen --out-dir "$D/keys"
run "$BIN" compile examples/acme.json --epoch 1 --secret-key "$D/keys/origin.key" -o "$D/acme-1.snapshot"
run "$BIN" inspect "$D/acme-1.snapshot" --public-key "$D/keys/origin.pub"
for req in "user:alice read doc:roadmap" "user:alice export doc:roadmap" "user:mallory read doc:roadmap" "user:bob read doc:roadmap" "user:alice read doc:missing"; do
  # shellcheck disable=SC2086
  run "$BIN" check --snapshot "$D/acme-1.snapshot" --public-key "$D/keys/origin.pub" $req
done

say "a batch of JSON lines on standard input"
printf '%s\n' '["user:alice","write","workspace:eng"]' \
  '{"subject":"user:alice","action":"export","resource":"doc:roadmap","context":{"now":1798761600000}}' \
  '["not an id","read","doc:roadmap"]' |
  "$BIN" check --snapshot "$D/acme-1.snapshot" --public-key "$D/keys/origin.pub" --now "$NOW" --requests -

say "revoke: alice leaves group:eng (epoch 2); the delta rides on the watermark"
sed 's/{ "member": "user:alice", "group": "group:eng" },//' examples/acme.json > "$D/acme-2.json"
run "$BIN" diff examples/acme.json "$D/acme-2.json" --base-epoch 1 --epoch 2 --secret-key "$D/keys/origin.key" -o "$D/acme-2.delta"
run "$BIN" watermark --tenant acme --watermark 2 --delta "$D/acme-2.delta" --secret-key "$D/keys/origin.key" -o "$D/acme-2.watermark"
run "$BIN" check --snapshot "$D/acme-1.snapshot" --public-key "$D/keys/origin.pub" --watermark "$D/acme-2.watermark" user:alice read org:acme
say "the same edge with only the bare watermark (the delta not yet there) fails closed"
run "$BIN" watermark --tenant acme --watermark 2 --secret-key "$D/keys/origin.key" -o "$D/acme-2.heartbeat"
run "$BIN" check --snapshot "$D/acme-1.snapshot" --public-key "$D/keys/origin.pub" --watermark "$D/acme-2.heartbeat" user:alice read org:acme
run "$BIN" list-subjects --snapshot "$D/acme-1.snapshot" --public-key "$D/keys/origin.pub" --delta "$D/acme-2.delta" org:acme read

#!/usr/bin/env bash
# The main job: sets up (scripts/setup.sh), builds the command line and the Worker, starts the
# Worker locally with `wrangler dev` on 127.0.0.1 (offline, state under target/edge/), publishes
# the example model to it as a signed snapshot, and runs a few `curl` checks against it. Then it
# keeps the Worker running until Ctrl-C, printing the commands to try.
#
#   scripts/run.sh            # PORT=8787 by default
#   scripts/run.sh --once     # the same, then stops the Worker and exits (used by the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
ONCE=0
if [ "${1:-}" = "--once" ]; then ONCE=1; fi
./scripts/setup.sh

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
show() { printf '\033[1m$ %s\033[0m\n' "$*"; }

PORT=${PORT:-8787}
TOKEN=${CHECK_TOKEN:-local-demo-token}
D=target/edge
BIN=target/release/edge-authz
mkdir -p "$D"

say "building the command line and the Worker"
cargo build --release --quiet
./scripts/build-worker.sh

# The origin's key pair: kept across runs, so the persisted state stays valid.
if [ ! -f "$D/keys/origin.key" ]; then
  "$BIN" keygen --out-dir "$D/keys" > /dev/null
fi
PUB=$(cat "$D/keys/origin.pub")

say "starting the Worker: wrangler dev on 127.0.0.1:$PORT (log: $D/wrangler.log)"
WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true \
  setsid node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" --persist-to "$D/state" \
  --var "ORIGIN_PUBLIC_KEYS:$PUB" --var "CHECK_TOKEN:$TOKEN" --log-level warn \
  > "$D/wrangler.log" 2>&1 < /dev/null &
WRANGLER=$!
# Stops wrangler and its workerd (its own process group) and waits until they are gone.
stop() {
  kill -- -"$WRANGLER" 2>/dev/null || kill "$WRANGLER" 2>/dev/null || true
  for _ in $(seq 1 50); do
    if ! kill -0 -- -"$WRANGLER" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  kill -9 -- -"$WRANGLER" 2>/dev/null || true
}
trap stop EXIT INT TERM
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 120); do
  if curl -fsS "$URL/health" > /dev/null 2>&1; then break; fi
  if ! kill -0 "$WRANGLER" 2>/dev/null; then
    cat "$D/wrangler.log" >&2
    echo "error: wrangler dev stopped" >&2
    exit 1
  fi
  sleep 0.5
done
curl -fsS "$URL/health" > /dev/null

say "publishing the example model (examples/acme.json) as a signed snapshot"
# The next epoch after what the Worker holds (it keeps its state in $D/state across runs).
HELD=$(curl -fsS -H "authorization: Bearer $TOKEN" "$URL/v1/acme/status" |
  sed -n 's/.*"epoch":\([0-9][0-9]*\).*/\1/p' | tail -1)
EPOCH=$(( ${HELD:-0} + 1 ))
"$BIN" compile examples/acme.json --epoch "$EPOCH" --secret-key "$D/keys/origin.key" -o "$D/acme.snapshot"
show "curl -X PUT $URL/v1/acme/snapshot -H 'content-type: application/msgpack' --data-binary @$D/acme.snapshot"
curl -sS -X PUT "$URL/v1/acme/snapshot" -H 'content-type: application/msgpack' \
  --data-binary "@$D/acme.snapshot"
echo

CHECKS=(
  '{"subject":"user:alice","action":"read","resource":"doc:roadmap"}'
  '{"subject":"user:alice","action":"export","resource":"doc:roadmap"}'
  '{"subject":"user:mallory","action":"read","resource":"doc:roadmap"}'
  '{"subject":"user:bob","action":"read","resource":"doc:roadmap"}'
)
say "checks"
for body in "${CHECKS[@]}"; do
  show "curl -X POST $URL/v1/acme/check -H 'authorization: Bearer $TOKEN' -H 'content-type: application/json' -d '$body'"
  curl -sS -X POST "$URL/v1/acme/check" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d "$body"
  echo
done
say "a batch, a listing, the status, and a check without the token"
show "curl -X POST $URL/v1/acme/check-many -H 'authorization: Bearer $TOKEN' -H 'content-type: application/json' -d '{\"requests\":[[\"user:alice\",\"write\",\"workspace:eng\"],[\"group:eng\",\"read\",\"org:acme\"]]}'"
curl -sS -X POST "$URL/v1/acme/check-many" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' \
  -d '{"requests":[["user:alice","write","workspace:eng"],["group:eng","read","org:acme"]]}'
echo
show "curl '$URL/v1/acme/subjects?resource=doc:roadmap&action=read' -H 'authorization: Bearer $TOKEN'"
curl -sS "$URL/v1/acme/subjects?resource=doc:roadmap&action=read" -H "authorization: Bearer $TOKEN"
echo
show "curl $URL/v1/acme/status -H 'authorization: Bearer $TOKEN'"
curl -sS "$URL/v1/acme/status" -H "authorization: Bearer $TOKEN"
echo
show "curl -i -X POST $URL/v1/acme/check -H 'content-type: application/json' -d '${CHECKS[0]}'"
curl -sS -i -X POST "$URL/v1/acme/check" -H 'content-type: application/json' -d "${CHECKS[0]}" |
  grep -iE '^HTTP|^www-authenticate|^\{' || true
echo

if [ "$ONCE" = 1 ]; then
  say "stopping the Worker (--once)"
  exit 0
fi
say "the Worker runs at $URL (token: $TOKEN); Ctrl-C stops it"
echo "Revoke something: edit a copy of examples/acme.json, then (EPOCH=$EPOCH is held now)"
echo "  $BIN diff examples/acme.json NEW.json --base-epoch $EPOCH --epoch $((EPOCH + 1)) --secret-key $D/keys/origin.key -o $D/next.delta"
echo "  $BIN watermark --tenant acme --watermark $((EPOCH + 1)) --delta $D/next.delta --secret-key $D/keys/origin.key -o $D/next.watermark"
echo "  curl -X POST $URL/v1/acme/watermark -H 'content-type: application/msgpack' --data-binary @$D/next.watermark"
wait "$WRANGLER"

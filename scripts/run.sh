#!/usr/bin/env bash
# The main job: sets up (scripts/setup.sh), builds the command line and the Worker, starts the
# Worker locally with `wrangler dev` on 127.0.0.1 (offline, state under target/edge/), publishes
# the example model to it with `edge-authz publish`, runs a few `curl` checks against it, and
# points to the admin preview page the Worker serves under /admin (scripts/build-www.sh). Then it
# starts the origin service (`edge-authz serve`, 127.0.0.1:8788) on the same journal, provisions a
# user and a group through SCIM, grants the group a role through the change API, deprovisions the
# user through SCIM and shows the denied check. It keeps the Worker and the service running until
# Ctrl-C (the service's heartbeats keep the edge fresh), printing the commands to try.
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
SERVE_PORT=${SERVE_PORT:-8788}
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
# WRANGLER_DISABLE_REQUEST_BODY_DRAINING: `wrangler dev` otherwise wraps the Worker in a middleware
# that reads every request body to its end before the answer goes out, so a body claimed far past
# a limit would hang until it arrived instead of being answered 413 at once, as it is deployed.
WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true \
  WRANGLER_DISABLE_REQUEST_BODY_DRAINING=true \
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

say "publishing the example model through the origin's publisher (journal: $D/publish)"
# The publisher's journal numbers the epochs; a new journal starts above whatever the Worker
# already holds (its state persists in $D/state across runs). The same model again is a no-op.
show "$BIN publish examples/acme.json --edge $URL --secret-key $D/keys/origin.key --state $D/publish"
"$BIN" publish examples/acme.json --edge "$URL" --secret-key "$D/keys/origin.key" --state "$D/publish"
EPOCH=$("$BIN" publish --status --json --state "$D/publish" --tenant acme |
  sed -n 's/.*"epoch":\([0-9][0-9]*\),"epochs".*/\1/p')
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

say "a body claimed far past the limit is answered at once, before it is sent"
show "curl -X PUT $URL/v1/acme/snapshot -H 'content-type: application/msgpack' -H 'content-length: 1000000000' --max-time 5"
# `wrangler dev` puts a proxy in front of the Worker that answers 503 itself ("restarted
# mid-request") when a loaded machine makes its hop to workerd fail; that answer has no
# x-request-id, which every answer of the Worker carries, and is tried again (up to three times).
for attempt in 1 2 3; do
  code=$(curl -sS -X PUT "$URL/v1/acme/snapshot" -H 'content-type: application/msgpack' \
    -H 'content-length: 1000000000' --max-time 5 -D "$D/probe.headers" -o /dev/null \
    -w '%{http_code}') || code="none"
  if [ "$code" != "none" ] && ! grep -qi '^x-request-id:' "$D/probe.headers" && [ "$attempt" -lt 3 ]; then
    echo "(wrangler's proxy answered $code, not the Worker; trying again)"
    sleep 1
    continue
  fi
  break
done
if [ "$code" = "none" ]; then echo "no answer within 5 s"; else echo "answered $code"; fi

show "$BIN publish --status --state $D/publish"
"$BIN" publish --status --state "$D/publish"

say "the origin as a service: edge-authz serve on 127.0.0.1:$SERVE_PORT, the same journal (log: $D/serve.log)"
# The writers' token: made once, kept with the keys.
if [ ! -f "$D/keys/writers.tokens" ]; then
  echo "$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')" > "$D/keys/writers.tokens"
fi
WRITER=$(cut -d' ' -f1 "$D/keys/writers.tokens")
show "$BIN serve --state $D/publish --secret-key $D/keys/origin.key --edge $URL --token-file $D/keys/writers.tokens --listen 127.0.0.1:$SERVE_PORT"
setsid "$BIN" serve --state "$D/publish" --secret-key "$D/keys/origin.key" --edge "$URL" \
  --token-file "$D/keys/writers.tokens" --listen "127.0.0.1:$SERVE_PORT" > "$D/serve.log" 2>&1 < /dev/null &
SERVE=$!
stop_serve() {
  kill "$SERVE" 2>/dev/null || true
  wait "$SERVE" 2>/dev/null || true
}
trap 'stop_serve; stop' EXIT INT TERM
ORIGIN="http://127.0.0.1:$SERVE_PORT"
for _ in $(seq 1 100); do
  if curl -fsS "$ORIGIN/healthz" > /dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVE" 2>/dev/null; then
    cat "$D/serve.log" >&2
    echo "error: edge-authz serve stopped" >&2
    exit 1
  fi
  sleep 0.1
done
# A run of its own: SCIM names are unique, and the Worker's state persists across runs.
RUN=$(date +%s)
scim() {
  curl -sS -X "$1" "$ORIGIN/scim/v2/acme/$2" -H "authorization: Bearer $WRITER" \
    -H 'content-type: application/scim+json' ${3:+-d "$3"} "${@:4}"
}
check_dana() {
  curl -sS -X POST "$URL/v1/acme/check" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' \
    -d "{\"subject\":\"user:dana-$RUN\",\"action\":\"read\",\"resource\":\"doc:roadmap\",\"context\":{\"at_least_epoch\":$1}}"
  echo
}
say "an identity provider provisions dana-$RUN and the group support-$RUN (SCIM)"
show "curl -X POST $ORIGIN/scim/v2/acme/Users -H 'authorization: Bearer \$WRITER' -d '{\"schemas\":[...User],\"userName\":\"dana-$RUN\",\"active\":true}'"
USER_JSON=$(scim POST Users "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"dana-$RUN\",\"active\":true}")
echo "$USER_JSON"
USER_ID=$(echo "$USER_JSON" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
show "curl -X POST $ORIGIN/scim/v2/acme/Groups -d '{\"displayName\":\"support-$RUN\",\"members\":[{\"value\":\"$USER_ID\"}]}'"
scim POST Groups "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"displayName\":\"support-$RUN\",\"members\":[{\"value\":\"$USER_ID\"}]}"
echo
say "the application grants group:support-$RUN viewer on org:acme (the change API); the answer's epoch is a consistency token"
show "curl -X POST $ORIGIN/v1/acme/changes -H 'authorization: Bearer \$WRITER' -d '{\"op\":\"add_assignment\",\"principal\":\"group:support-$RUN\",\"role\":\"viewer\",\"resource\":\"org:acme\"}'"
GRANT=$(curl -sS -X POST "$ORIGIN/v1/acme/changes" -H "authorization: Bearer $WRITER" \
  -H 'content-type: application/json' \
  -d "{\"op\":\"add_assignment\",\"principal\":\"group:support-$RUN\",\"role\":\"viewer\",\"resource\":\"org:acme\"}")
echo "$GRANT"
GRANT_EPOCH=$(echo "$GRANT" | sed -n 's/.*"epoch":\([0-9]*\).*/\1/p')
show "curl -X POST $URL/v1/acme/check -d '{\"subject\":\"user:dana-$RUN\",\"action\":\"read\",\"resource\":\"doc:roadmap\",\"context\":{\"at_least_epoch\":$GRANT_EPOCH}}'"
check_dana "$GRANT_EPOCH"
say "the identity provider deprovisions dana-$RUN (SCIM active: false): answered once the edge enforces it"
show "curl -X PATCH $ORIGIN/scim/v2/acme/Users/$USER_ID -d '{\"schemas\":[...PatchOp],\"Operations\":[{\"op\":\"replace\",\"path\":\"active\",\"value\":false}]}'"
scim PATCH "Users/$USER_ID" '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}' \
  -o /dev/null -w 'SCIM answered %{http_code}\n'
show "curl -X POST $URL/v1/acme/check -d '{\"subject\":\"user:dana-$RUN\",\"action\":\"read\",\"resource\":\"doc:roadmap\"}'"
check_dana "$GRANT_EPOCH"

say "the admin preview page, served by the Worker under /admin"
show "curl -sS -o /dev/null -w '%{http_code} %{content_type}\\n' $URL/admin/"
curl -sS -o /dev/null -w '%{http_code} %{content_type}\n' "$URL/admin/"
ADMIN="$URL/admin/?tenant=acme"
echo "Open $ADMIN in a browser: 'Bundled example' previews the model in the page; 'Connect' with the"
echo "token $TOKEN shows what this Worker answers from its signed snapshot."

if [ "$ONCE" = 1 ]; then
  say "stopping the origin service and the Worker (--once)"
  exit 0
fi
# From here on the origin service keeps the Worker fresh (heartbeats keep its high tier
# answering) and takes changes.
say "the Worker runs at $URL (token: $TOKEN), the origin service at $ORIGIN (writer token in $D/keys/writers.tokens); Ctrl-C stops both"
echo "The admin page: $ADMIN"
echo "Revoke something through the change API, and check again:"
echo "  curl -X POST $ORIGIN/v1/acme/changes -H \"authorization: Bearer \$(cat $D/keys/writers.tokens)\" \\"
echo "    -H 'content-type: application/json' -d '{\"op\":\"remove_membership\",\"member\":\"user:alice\",\"group\":\"group:eng\"}'"
echo "  curl $ORIGIN/metrics -H \"authorization: Bearer \$(cat $D/keys/writers.tokens)\""
echo "  tail -f $D/serve.log"
wait "$WRANGLER"

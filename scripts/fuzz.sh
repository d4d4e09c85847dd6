#!/usr/bin/env bash
# The fuzz targets of fuzz/ (cargo fuzz, libFuzzer with AddressSanitizer), one per decoder and
# parser: snapshot, delta, watermark, model_json, request_line, worker_body, list_query,
# sync_answer, conditions, token.
#
#   scripts/fuzz.sh run [SECONDS] [TARGET...]   # each target for SECONDS (default 60), all by default
#   scripts/fuzz.sh replay                      # every seed and regression case once, no fuzzing
#   scripts/fuzz.sh seeds                       # rewrite the seed corpora in tests/fuzz/seeds/
#
# `run` starts each target from its seeds (tests/fuzz/seeds/TARGET) plus the corpus it grew
# before (target/fuzz/corpus/TARGET), replays the regression cases (tests/fuzz/regressions/TARGET:
# every crash found, kept once fixed), and prints one line per target: executions, coverage
# (libFuzzer's `cov` and `ft`), corpus size, and crashes (their inputs in
# target/fuzz/artifacts/TARGET). It exits 1 if any target crashed. cargo fuzz needs nightly
# flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them (these machines have no nightly).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(snapshot delta watermark model_json request_line worker_body list_query sync_answer conditions token)
export RUSTC_BOOTSTRAP=1

ensure_cargo_fuzz() {
  if ! cargo fuzz --version >/dev/null 2>&1; then ./scripts/setup.sh; fi
}

build() {
  ensure_cargo_fuzz
  (cd fuzz && cargo fuzz build -O >/dev/null 2>&1) || (cd fuzz && cargo fuzz build -O)
}

bin() { echo "fuzz/target/x86_64-unknown-linux-gnu/release/$1"; }

# Every file under the given folders, run once through the target (no fuzzing).
replay_into() {
  local t=$1
  shift
  local files=()
  for d in "$@"; do
    if [ -d "$d" ]; then
      while IFS= read -r f; do files+=("$f"); done < <(find "$d" -type f | sort)
    fi
  done
  if [ "${#files[@]}" -gt 0 ]; then
    "$(bin "$t")" -runs=1 "${files[@]}" > "target/fuzz/$t.replay.log" 2>&1 || {
      tail -n 40 "target/fuzz/$t.replay.log" >&2
      echo "error: $t: a seed or regression case fails (target/fuzz/$t.replay.log)" >&2
      return 1
    }
  fi
  echo "$t: ${#files[@]} seeds and regression cases replayed"
}

case "${1:-run}" in
seeds)
  # The seeds are signed with the fuzz targets' fixed key (fuzz/fuzz_targets/common.rs: the
  # seed [7; 32]), so that the targets' as-given mode reaches past the signature.
  cargo build --release --quiet
  BIN=target/release/edge-authz
  S=tests/fuzz/seeds
  W=$(mktemp -d)
  trap 'rm -rf "$W"' EXIT
  rm -rf "$S"
  mkdir -p "$S"/{snapshot,delta,watermark,model_json,request_line,worker_body,list_query,sync_answer,conditions,token}
  python3 -c 'import base64; print(base64.b64encode(bytes([7] * 32)).decode())' > "$W/key"
  T=1700000000000
  # Models: the example, edits of it (each a kind of change), the conformance suite's models,
  # and a small generated workload.
  cp examples/acme.json "$W/m0.json"
  edit() { node -e "const m = require('./examples/acme.json'); $2; console.log(JSON.stringify(m))" > "$W/$1.json"; }
  edit m1 "m.memberships = m.memberships.filter((x) => x.member !== 'user:alice')"
  edit m2 "m.assignments.push({principal: 'user:bob', role: 'editor', resource: 'doc:roadmap', expires_at: 1800000000000})"
  edit m3 "m.roles.viewer = ['read', 'write']; m.suspended = []"
  edit m4 "m.resources.push({id: 'doc:new', parent: 'org:acme'}); m.resources[2].parent = 'org:acme'"
  edit m5 "m.actions.share = {tier: 'high'}; m.roles.admin.push('share'); m.freshness.high = 1000"
  "$BIN" workload --users 30 --groups 10 --assignments 40 --big-group 5 --docs-per-project 1 > "$W/m6.json"
  for m in "$W"/m*.json; do cp "$m" "$S/model_json/$(basename "$m")"; done
  for m in tests/conformance/models/*.json; do cp "$m" "$S/model_json/conformance-$(basename "$m")"; done
  # Messages, each twice: as given (first byte 0) and to be re-signed (first byte 1).
  both() {
    local kind=$1 name=$2 file=$3
    { printf '\x00'; cat "$file"; } > "$S/$kind/$name-0"
    { printf '\x01'; cat "$file"; } > "$S/$kind/$name-1"
  }
  for i in 0 3 5 6; do
    "$BIN" compile "$W/m$i.json" --epoch 2 --secret-key "$W/key" --issued-at $T -o "$W/s$i" > /dev/null
    both snapshot "m$i" "$W/s$i"
  done
  for i in 1 2 3 4 5; do
    "$BIN" diff "$W/m0.json" "$W/m$i.json" --base-epoch 1 --epoch 2 --secret-key "$W/key" --issued-at $T -o "$W/d$i" > /dev/null
    both delta "m0-m$i" "$W/d$i"
  done
  "$BIN" watermark --tenant acme --watermark 1 --secret-key "$W/key" --issued-at $T -o "$W/w1" > /dev/null
  both watermark heartbeat "$W/w1"
  "$BIN" watermark --tenant acme --watermark 2 --delta "$W/d1" --secret-key "$W/key" --issued-at $T -o "$W/w2" > /dev/null
  both watermark carrying-delta "$W/w2"
  "$BIN" watermark --tenant acme --watermark 5 --secret-key "$W/key" --issued-at $T -o "$W/w5" > /dev/null
  both watermark ahead "$W/w5"
  # Request lines and Worker bodies.
  printf '%s' '["user:alice","read","doc:roadmap"]' > "$S/request_line/array"
  printf '%s' '{"subject":"user:alice","action":"export","resource":"doc:roadmap","context":{"now":1700000000000}}' > "$S/request_line/object"
  printf '%s' '{"subject":"user:mallory","action":"read","resource":"org:acme","context":{}}' > "$S/request_line/suspended"
  printf '%s' '["group:eng","write","workspace:eng"]' > "$S/request_line/group"
  printf '%s' '{"subject":"user:alice","action":"read","resource":"doc:roadmap"}' > "$S/worker_body/check"
  printf '%s' '{"subject":"user:alice","action":"read","resource":"doc:roadmap","context":{"now":1800000000000}}' > "$S/worker_body/check-context"
  printf '%s' '{"requests":[["user:alice","read","doc:roadmap"],["user:mallory","read","org:acme"],["group:eng","export","workspace:eng"]]}' > "$S/worker_body/check-many"
  printf '%s' '{"requests":[["user:alice","export","doc:roadmap"]],"context":{"now":1700000000000}}' > "$S/worker_body/check-many-context"
  printf '%s' 'n1700000000000' > "$S/list_query/now"
  printf '%s\n%s' 'x' 'c{"now":1800000000000}' > "$S/list_query/context"
  printf '%s\n%s' 'n5' 'c{"now":5}' > "$S/list_query/both"
  printf '%s\n%s' 'x' 'c{"then":1}' > "$S/list_query/bad-context"
  # Push answers (`a`) and feed answers (`f`, MessagePack: the head, the messages, `more`): the
  # snapshot, then a heartbeat and a watermark carrying a delta.
  printf '%s' 'a{"epoch":3}' > "$S/sync_answer/snapshot-answer"
  printf '%s' 'a{"epoch":3,"applied":true}' > "$S/sync_answer/delta-answer"
  printf '%s' 'a{"watermark":5,"epoch":null}' > "$S/sync_answer/watermark-answer"
  printf '%s' 'a{"watermark":5,"epoch":4,"delta":{"applied":false,"error":{"code":"epoch_gap","message":"m"}}}' \
    > "$S/sync_answer/skipped-answer"
  feed() { # epoch watermark files...
    python3 -c 'import sys, struct
def s(t): return bytes([0xa0 | len(t)]) + t.encode()
def u(n): return b"\xc0" if n is None else b"\xcf" + struct.pack(">Q", n)
out = sys.stdout.buffer
out.write(b"f\x83" + s("head") + b"\x83" + s("epoch") + u(int(sys.argv[1])) + s("watermark")
          + u(int(sys.argv[2])) + s("confirmedAt") + u(None) + s("messages"))
files = sys.argv[3:]
out.write(bytes([0x90 | len(files)]))
for p in files:
    b = open(p, "rb").read()
    out.write(b"\xc6" + struct.pack(">I", len(b)) + b)
out.write(s("more") + b"\xc2")' "$@"; }
  feed 2 0 "$W/s0" > "$S/sync_answer/feed-snapshot"
  feed 2 1 "$W/s0" "$W/w1" > "$S/sync_answer/feed-heartbeat"
  feed 2 2 "$W/s3" "$W/w2" > "$S/sync_answer/feed-carried"
  # Conditions (docs/model.md's example: each kind and operator) and contexts, on two lines.
  cond() { printf '%s\n%s' "$2" "$3" > "$S/conditions/$1"; }
  cond every-kind '{"mfa_recent":{"attr":"mfa_age_s","op":"<=","value":900,"step_up":true},"office":{"attr":"ip","op":"in_cidr","value":["10.0.0.0/8","2001:db8::/32"]},"low_risk":{"attr":"risk_score","op":"<","value":50},"managed":{"attr":"device","op":"in","value":["managed","compliant"]},"has_mfa":{"attr":"amr","op":"contains","value":"mfa","step_up":true},"workday":{"time":{"days":["mon","tue","wed","thu","fri"],"from":"08:00","to":"18:00","utc_offset_minutes":60}},"finance_ok":{"all":["office","low_risk"]},"unflagged":{"not":"flagged"},"flagged":{"attr":"flagged","op":"==","value":true}}' \
    '{"ip":"10.1.2.3","risk_score":10,"mfa_age_s":60,"device":"managed","amr":["pwd","mfa"],"flagged":false}'
  cond empty-context '{"a":{"attr":"x","op":"!=","value":"y"},"b":{"any":["a","c"]},"c":{"attr":"n","op":"not_in","value":[1,2]}}' '{}'
  cond night '{"night":{"time":{"days":["fri"],"from":"22:00","to":"02:00","utc_offset_minutes":-300}}}' '{"now":1700000000000}'
  cond cycle '{"a":{"not":"b"},"b":{"all":["a"]}}' '{"x":1}'
  cond bad-context '{"a":{"attr":"x","op":">=","value":1.5}}' '{"x":null,"Y":[1]}'
  # Tokens: every shared token case (tests/tokens/cases.json, made by the jose library).
  node -e "const all = require('./tests/tokens/cases.json'); const fs = require('fs');
    all.cases.forEach((c, i) => fs.writeFileSync('$S/token/' + String(i).padStart(2, '0'), c.token))"
  find "$S" -type f | wc -l | xargs printf '%s seed files in tests/fuzz/seeds\n'
  ;;
replay)
  build
  mkdir -p target/fuzz
  for t in "${TARGETS[@]}"; do
    replay_into "$t" "tests/fuzz/seeds/$t" "tests/fuzz/regressions/$t"
  done
  ;;
run)
  SECONDS_EACH=${2:-60}
  shift $(( $# > 1 ? 2 : $# ))
  SELECTED=("$@")
  if [ "${#SELECTED[@]}" -eq 0 ]; then SELECTED=("${TARGETS[@]}"); fi
  build
  mkdir -p target/fuzz
  failed=0
  for t in "${SELECTED[@]}"; do
    replay_into "$t" "tests/fuzz/seeds/$t" "tests/fuzz/regressions/$t" || { failed=1; continue; }
    corpus=target/fuzz/corpus/$t
    artifacts=target/fuzz/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    log=target/fuzz/$t.log
    set +e
    "$(bin "$t")" "$corpus" "tests/fuzz/seeds/$t" -max_total_time="$SECONDS_EACH" -max_len=65536 \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" > "$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<< "$last")
    crashes=$(find "$artifacts" -type f | wc -l)
    printf '%-13s %6ss  executions %10s  cov %5s  ft %6s  corpus %-12s  crashes %s\n' \
      "$t" "$SECONDS_EACH" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
      tail -n 60 "$log" >&2
      echo "error: $t crashed (exit $rc): inputs in $artifacts, log in $log" >&2
      failed=1
    fi
  done
  exit "$failed"
  ;;
*)
  echo "usage: scripts/fuzz.sh run [SECONDS] [TARGET...] | replay | seeds" >&2
  exit 1
  ;;
esac

// The conformance suite (tests/conformance/*.json) through the Worker in workerd: every step over
// HTTP, checks in batches through `POST /v1/{tenant}/check-many` (consecutive checks with the same
// context go in one batch), lists through `GET resources` / `GET subjects` with the context as
// the `context` query parameter, pushes through `PUT snapshot` / `POST delta` / `POST watermark`,
// and `GET status`. Same comparison rules as conformance.test.mjs. The Worker confirms with its
// Durable Object on every request here (CONFIRM_REUSE_MS_* = 0), so its answers must equal the
// evaluator's exactly. A step's `clock` is set as the host's clock of the Worker (its isolates
// and its Durable Object: tests/js/clocked-worker.mjs) for that step; a push arrives at the time
// it was issued.
// The Worker runs with ALLOW_CONTEXT_NOW=true so that the context reaches it as the files give it.
//
// Not run through the Worker: 11-preview.json, whose evaluator is an unsigned preview; a Worker
// only ever holds signed state (docs/decisions.md, "Previews"), and a test below asserts it refuses
// to be anything else. One mapping: the Worker answers a snapshot push of the epoch already held
// with 409 (docs/http.md, "Push errors"); when the content is the same (`already_applied`), the
// harness reads it as the package's idempotent `{epoch}`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { subsetMismatch } from './subset.mjs';
import { REPO_DIR } from './pkg.mjs';
import { MSGPACK, pkg, startEdge } from './edge.mjs';

const DIR = path.join(REPO_DIR, 'tests/conformance');
const NOT_FOR_WORKERS = new Set(['11-preview.json']);
const KEY = pkg.generateKeyPair();
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

const kindOf = (step) =>
  ['snapshot', 'preview', 'watermark', 'delta', 'check', 'list_resources', 'list_subjects', 'status'].find(
    (k) => k in step,
  );

async function runFile(edge, file) {
  const doc = JSON.parse(readFileSync(path.join(DIR, file), 'utf8'));
  const models = {};
  let tenant;
  for (const [name, m] of Object.entries(doc.models ?? {})) {
    models[name] = typeof m === 'string' ? JSON.parse(readFileSync(path.join(DIR, m), 'utf8')) : m;
    tenant ??= models[name].tenant;
  }
  tenant ??= 'acme';
  const base = `/v1/${tenant}`;
  const secretKey = KEY.secretKey;
  const push = async (kind, bytes) => {
    const r = await edge.fetch(`${base}/${kind}`, {
      method: kind === 'snapshot' ? 'PUT' : 'POST',
      headers: MSGPACK,
      body: bytes,
    });
    return r.status === 200 ? { ok: r.json } : { err: r.json?.error?.code ?? `http ${r.status}`, status: r.status };
  };
  const statusNow = async () => (await edge.fetch(`${base}/status`)).json;
  const failures = [];
  let cases = 0;
  const steps = doc.steps;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const kind = kindOf(step);
    const where = `${file} step ${i} ${JSON.stringify(step)}`;
    if (kind === 'check') {
      // A batch: this check and the following ones with the same context.
      const batch = [i];
      while (
        i + 1 < steps.length &&
        kindOf(steps[i + 1]) === 'check' &&
        isDeepStrictEqual(steps[i + 1].context, step.context) &&
        steps[i + 1].clock === step.clock
      ) {
        batch.push(++i);
      }
      await edge.setClock(step.clock ?? null);
      const body = { requests: batch.map((j) => steps[j].check) };
      if ('context' in step) body.context = step.context;
      const r = await edge.fetch(`${base}/check-many`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (r.status !== 200) {
        failures.push(`${where}: check-many answered ${r.status} ${r.body}`);
        continue;
      }
      batch.forEach((j, n) => {
        if (steps[j].expect === undefined) return;
        cases += 1;
        const m = subsetMismatch(steps[j].expect, r.json.decisions[n]);
        if (m) failures.push(`${file} step ${j} ${JSON.stringify(steps[j])}: ${m}`);
      });
      continue;
    }
    // A push arrives at the time it was issued; a listing at its step's clock.
    await edge.setClock(kind.startsWith('list_') ? (step.clock ?? null) : (step.issued_at ?? null));
    const before = await statusNow();
    let got;
    let err;
    if (kind === 'snapshot') {
      const bytes = pkg.compileSnapshot(models[step.snapshot], { epoch: step.epoch, issuedAt: step.issued_at, secretKey });
      const r = await push('snapshot', bytes);
      if (r.err === 'already_applied') got = { epoch: step.epoch };
      else ({ ok: got, err } = r);
    } else if (kind === 'watermark') {
      let delta;
      if ('delta' in step) {
        const [a, b] = step.delta;
        delta = pkg.diffModels(models[a], models[b], {
          baseEpoch: step.base_epoch,
          epoch: step.watermark,
          issuedAt: step.issued_at,
          secretKey,
        }).delta;
      }
      const bytes = pkg.signWatermark({ tenant, watermark: step.watermark, issuedAt: step.issued_at, secretKey, delta });
      const r = await push('watermark', bytes);
      err = r.err;
      if (r.ok) {
        const d = r.ok.delta;
        got = {
          watermark: r.ok.watermark,
          epoch: r.ok.epoch,
          delta: d === undefined ? null : d.applied ? 'applied' : (d.error?.code ?? 'already_applied'),
        };
      }
    } else if (kind === 'delta') {
      const [a, b] = step.delta;
      const { delta, revokes } = pkg.diffModels(models[a], models[b], {
        baseEpoch: step.base_epoch,
        epoch: step.epoch,
        issuedAt: step.issued_at,
        secretKey,
      });
      const r = await push('delta', delta);
      err = r.err;
      if (r.ok) got = { ...r.ok, revokes };
    } else if (kind === 'list_resources' || kind === 'list_subjects') {
      const [who, action] = step[kind];
      const q = new URLSearchParams(kind === 'list_resources' ? { subject: who, action } : { resource: who, action });
      if (typeof step.type === 'string') q.set('type', step.type);
      if ('context' in step) q.set('context', JSON.stringify(step.context));
      const r = await edge.fetch(`${base}/${kind === 'list_resources' ? 'resources' : 'subjects'}?${q}`);
      if (r.status === 200) got = r.json[kind === 'list_resources' ? 'resources' : 'subjects'];
      else err = r.json?.error?.code ?? `http ${r.status}`;
    } else if (kind === 'status') {
      got = await statusNow();
    } else {
      throw new Error(`${where}: step kind ${kind} has no HTTP form`);
    }
    const counts = step.expect !== undefined || step.expect_error !== undefined;
    if (counts) cases += 1;
    if (err !== undefined && step.expect_error !== undefined) {
      if (err !== step.expect_error) failures.push(`${where}: expected error ${step.expect_error}, got ${err}`);
      const after = await statusNow();
      const pick = (s) => [s.epoch, s.watermark, s.confirmedAt, s.digest];
      if (!isDeepStrictEqual(pick(after), pick(before))) failures.push(`${where}: a rejected step changed the status`);
    } else if (err !== undefined) {
      failures.push(`${where}: unexpected error ${err}`);
    } else if (step.expect_error !== undefined) {
      failures.push(`${where}: expected error ${step.expect_error}, got ${JSON.stringify(got)}`);
    } else if (step.expect !== undefined) {
      const m = subsetMismatch(step.expect, got);
      if (m) failures.push(`${where}: ${m}`);
    }
  }
  return { cases, failures };
}

let total = 0;
let expected = 0;
for (const file of files) {
  const doc = JSON.parse(readFileSync(path.join(DIR, file), 'utf8'));
  if (NOT_FOR_WORKERS.has(file)) continue;
  expected += doc.steps.filter((st) => 'expect' in st || 'expect_error' in st).length;
  test(`${file} through the Worker`, async () => {
    // A fresh runtime per file: a fresh Durable Object and fresh isolates.
    const edge = await startEdge({
      vars: { ORIGIN_PUBLIC_KEYS: KEY.publicKey, CONFIRM_REUSE_MS_STANDARD: '0', CONFIRM_REUSE_MS_LOW: '0', ALLOW_CONTEXT_NOW: 'true' },
      clocked: true,
    });
    try {
      const { cases, failures } = await runFile(edge, file);
      total += cases;
      assert.ok(cases > 0, `${file}: no cases`);
      assert.equal(failures.length, 0, `${failures.length} failures:\n${failures.join('\n')}`);
    } finally {
      await edge.dispose();
    }
  });
}

test('every case of the Worker-applicable files ran', (t) => {
  t.diagnostic(`conformance through the Worker: ${files.length - NOT_FOR_WORKERS.size} files, ${total} cases`);
  assert.equal(total, expected);
  assert.ok(total >= 400, `only ${total} cases`);
});

test('the file left out is about preview evaluators, which a Worker never is', async () => {
  for (const f of NOT_FOR_WORKERS) {
    const doc = JSON.parse(readFileSync(path.join(DIR, f), 'utf8'));
    assert.ok(doc.steps.some((s) => 'preview' in s), `${f} has no preview step: run it`);
  }
  for (const f of files.filter((x) => !NOT_FOR_WORKERS.has(x))) {
    const doc = JSON.parse(readFileSync(path.join(DIR, f), 'utf8'));
    assert.ok(!doc.steps.some((s) => 'preview' in s), `${f} has a preview step`);
  }
});

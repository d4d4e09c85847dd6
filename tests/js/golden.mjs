// The golden files of format version 1 (tests/golden; what they pin and how they are made in its
// README) for the JavaScript suites: `loadGolden()` reads golden.json, the committed messages
// (each checked against its recorded SHA-256 as it is read) and models; `replay(host, golden)`
// loads the messages in order into a host of evaluator-hosts.mjs and asserts, after each one, the
// recorded outcome, status and decisions (each request alone through `check`, and the requests
// of one clock and `now` together through `checkMany`).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_DIR } from './pkg.mjs';
import { unpack } from './msgpack.mjs';

export const GOLDEN_DIR = path.join(REPO_DIR, 'tests/golden');

export const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

function readChecked(entry) {
  const bytes = readFileSync(path.join(GOLDEN_DIR, entry.file));
  assert.equal(sha256(bytes), entry.sha256, `tests/golden/${entry.file} is not the recorded file (its SHA-256 differs)`);
  return bytes;
}

export function loadGolden() {
  const manifest = JSON.parse(readFileSync(path.join(GOLDEN_DIR, 'golden.json'), 'utf8'));
  assert.equal(manifest.format_version, 1, 'golden.json pins format version 1');
  const models = Object.fromEntries(manifest.models.map((e) => [e.file, JSON.parse(readChecked(e).toString('utf8'))]));
  // `bytes`: golden.json's length, the file's bytes here.
  const messages = manifest.messages.map((e) => {
    const bytes = new Uint8Array(readChecked(e));
    assert.equal(bytes.length, e.bytes, `tests/golden/${e.file}: its length`);
    return { ...e, bytes };
  });
  return {
    manifest,
    models,
    messages,
    tenant: manifest.tenant,
    publicKey: manifest.key.public_key,
    // The package's secret key format: base64 of the 32-byte Ed25519 seed.
    secretKey: Buffer.alloc(32, manifest.key.seed_byte).toString('base64'),
  };
}

/** A decision as golden.json records it: `grant` is null when there is none. */
export const asDecision = (d) => ({ ...JSON.parse(JSON.stringify(d)), grant: d?.grant ?? null });

/** Consecutive requests with the same clock and `now`. */
function batches(requests) {
  const out = [];
  for (const r of requests) {
    const last = out.at(-1);
    if (last && last[0].check.clock === r.check.clock && last[0].check.now === r.check.now) last.push(r);
    else out.push([r]);
  }
  return out;
}

/** Loads one message into `host` by its kind. */
function load(host, bytes) {
  const kind = unpack(bytes).kind;
  if (kind === 'snapshot') return host.loadSnapshot(bytes);
  if (kind === 'delta') return host.applyDelta(bytes);
  return host.applyWatermark(bytes);
}

/** The recorded fields of a status (golden.json leaves out what is not part of the format). */
const pick = (status, like) => Object.fromEntries(Object.keys(like).map((k) => [k, status[k] ?? null]));

/** Feeds `golden`'s messages in order to `host`, asserting everything golden.json records. */
export async function replay(host, golden) {
  const { manifest, messages } = golden;
  assert.equal(manifest.stages.length, messages.length + 1, 'a stage before each message and after the last');
  let checked = 0;
  for (const [k, stage] of manifest.stages.entries()) {
    const after = k === 0 ? 'nothing loaded' : messages[k - 1].file;
    if (k > 0) {
      const m = messages[k - 1];
      assert.equal(stage.after, m.file);
      await host.setClock(m.issued_at);
      const outcome = await load(host, m.bytes);
      assert.deepEqual(JSON.parse(JSON.stringify(outcome)), m.outcome, `${host.name}: the outcome of loading ${m.file}`);
    }
    assert.deepEqual(pick(await host.status(), stage.status), stage.status, `${host.name}: the status after ${after}`);
    for (const batch of batches(stage.requests)) {
      const { clock, now } = batch[0].check;
      await host.setClock(clock);
      const context = now === null ? undefined : { now };
      const what = (c) => `${host.name}, after ${after}: ${c.subject} ${c.action} ${c.resource} at clock ${clock}, now ${now}`;
      for (const r of batch) {
        const c = r.check;
        assert.deepEqual(asDecision(await host.check(c.subject, c.action, c.resource, context)), r.decision, `${what(c)} (check)`);
        checked += 1;
      }
      const many = await host.checkMany(batch.map(({ check: c }) => [c.subject, c.action, c.resource]), context);
      assert.equal(many.length, batch.length);
      batch.forEach((r, n) => assert.deepEqual(asDecision(many[n]), r.decision, `${what(r.check)} (checkMany)`));
    }
  }
  await host.setClock(null);
  return checked;
}

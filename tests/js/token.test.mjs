// Token checks through the npm package (docs/javascript.md, `checkToken`): the shared cases of
// tests/tokens/cases.json (tokens signed by the `jose` library; the command line and the Worker
// answer the same cases) at their clock, a fresh set made now, a signature verified once per
// token and key but the state deciding every time (a revoked session, a removed key), concurrent
// checks that cannot swap verdicts, and the package loaded by `require` as well as `import`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { importPackage, requirePackage, REPO_DIR } from './pkg.mjs';
import { makeCases } from '../tokens/make.mjs';

const api = await importPackage();
const FIXTURE = JSON.parse(readFileSync(`${REPO_DIR}/tests/tokens/cases.json`, 'utf8'));

// A signed evaluator of `model` at epoch 1, its clock fixed at `clock`.
function edge(pkg, model, clock, keys = pkg.generateKeyPair()) {
  const ev = new pkg.Evaluator({ tenant: 'acme', publicKeys: [keys.publicKey], clock: () => clock });
  ev.loadSnapshot(pkg.compileSnapshot(model, { epoch: 1, secretKey: keys.secretKey, issuedAt: clock }));
  return { ev, keys };
}

async function answersEveryCase(pkg, all) {
  const { ev } = edge(pkg, all.model, all.clock);
  for (const c of all.cases) {
    const d = await ev.checkToken(c.token, c.action, c.resource, c.context);
    assert.equal(d.reason, c.expect.reason, `${c.name}: ${JSON.stringify(d)}`);
    assert.equal(d.allowed, c.expect.allowed, c.name);
    assert.equal(d.subject, c.expect.subject, c.name);
    assert.equal(d.epoch, 1, c.name);
    if (d.reason.startsWith('token_') || d.reason === 'session_revoked') {
      assert.equal(typeof d.tokenError, 'string', c.name);
    } else {
      assert.equal(d.tokenError, undefined, c.name);
    }
  }
  ev.free();
}

test('the shared token cases get their answers (import)', () => answersEveryCase(api, FIXTURE));

test('the shared token cases get their answers (require)', () => answersEveryCase(requirePackage(), FIXTURE));

test('a fresh set of tokens made now gets its answers on the real clock', async () => {
  const now = Date.now();
  const all = await makeCases(now);
  const keys = api.generateKeyPair();
  const ev = new api.Evaluator({ tenant: 'acme', publicKeys: [keys.publicKey] });
  ev.loadSnapshot(api.compileSnapshot(all.model, { epoch: 1, secretKey: keys.secretKey, issuedAt: now }));
  for (const c of all.cases) {
    const d = await ev.checkToken(c.token, c.action, c.resource, c.context);
    assert.equal(d.reason, c.expect.reason, `${c.name}: ${JSON.stringify(d)}`);
    assert.equal(d.subject, c.expect.subject, c.name);
  }
  ev.free();
});

// Counts the host's WebCrypto verifications while `body` runs.
async function countingVerify(body) {
  const subtle = globalThis.crypto.subtle;
  const verify = subtle.verify;
  let n = 0;
  subtle.verify = function (...args) {
    n++;
    return verify.apply(this, args);
  };
  try {
    await body(() => n);
  } finally {
    subtle.verify = verify;
  }
}

const named = (name) => FIXTURE.cases.find((c) => c.name === name);

test('a signature is verified once; a revocation and a removed key still refuse the same token', async () => {
  await countingVerify(async (verified) => {
    const { ev, keys } = edge(api, FIXTURE.model, FIXTURE.clock);
    const c = named('EdDSA valid');
    assert.equal((await ev.checkToken(c.token, 'read', 'doc:roadmap')).reason, 'granted');
    assert.equal(verified(), 1);
    for (let i = 0; i < 20; i++) assert.equal((await ev.checkToken(c.token, 'write', 'doc:roadmap')).reason, 'granted');
    assert.equal(verified(), 1, 'the verdict is reused');
    // The session of the token is revoked by a delta: refused at once, without verifying again.
    const sid = JSON.parse(Buffer.from(c.token.split('.')[1], 'base64url')).sid;
    const revoked = structuredClone(FIXTURE.model);
    revoked.sessions.revoked.push({ sid, until: FIXTURE.clock + 3_600_000 });
    const d1 = api.diffModels(FIXTURE.model, revoked, { baseEpoch: 1, epoch: 2, secretKey: keys.secretKey, issuedAt: FIXTURE.clock });
    assert.equal(d1.revokes, true);
    ev.applyDelta(d1.delta);
    const d = await ev.checkToken(c.token, 'read', 'doc:roadmap');
    assert.deepEqual([d.reason, d.tokenError, d.epoch], ['session_revoked', 'session_revoked', 2]);
    assert.equal(verified(), 1);
    // Another token of the same key: the key is removed by the next delta; the verdict cached
    // for it does not keep it alive.
    const other = named('EdDSA valid write');
    assert.equal((await ev.checkToken(other.token, 'read', 'doc:roadmap')).reason, 'granted');
    const noKey = structuredClone(revoked);
    noKey.issuers[0].jwks.keys = noKey.issuers[0].jwks.keys.filter((k) => k.kid !== 'ed1');
    const d2 = api.diffModels(revoked, noKey, { baseEpoch: 2, epoch: 3, secretKey: keys.secretKey, issuedAt: FIXTURE.clock });
    assert.equal(d2.revokes, true, 'a removed key is a revocation');
    ev.applyDelta(d2.delta);
    const gone = await ev.checkToken(other.token, 'read', 'doc:roadmap');
    assert.deepEqual([gone.reason, gone.tokenError], ['token_invalid', 'key']);
    ev.free();
  });
});

test('concurrent token checks cannot swap verdicts', async () => {
  const { ev } = edge(api, FIXTURE.model, FIXTURE.clock);
  // Good and forged tokens, interleaved, each checked many times at once.
  const picks = ['RS256 valid', 'RS256 signed by another key', 'ES256 valid', 'ES256 signed by another key', 'EdDSA valid', 'EdDSA signed by another key'].map(named);
  const runs = [];
  for (let i = 0; i < 30; i++) for (const c of picks) runs.push(ev.checkToken(c.token, c.action, c.resource).then((d) => [c, d]));
  for (const [c, d] of await Promise.all(runs)) assert.equal(d.reason, c.expect.reason, c.name);
  ev.free();
});

test('gates 1 to 5 come before the token, and bad arguments answer without throwing', async () => {
  const keys = api.generateKeyPair();
  let clock = FIXTURE.clock;
  const ev = new api.Evaluator({ tenant: 'acme', publicKeys: [keys.publicKey], clock: () => clock });
  const c = named('RS256 valid');
  assert.equal((await ev.checkToken(c.token, 'read', 'doc:roadmap')).reason, 'no_snapshot');
  ev.loadSnapshot(api.compileSnapshot(FIXTURE.model, { epoch: 1, secretKey: keys.secretKey, issuedAt: clock }));
  clock += 10_000;
  // Past the high tier's bound: freshness refuses before the token is read, even a garbage one.
  assert.equal((await ev.checkToken('garbage', 'export', 'workspace:eng')).reason, 'freshness_exceeded');
  assert.equal((await ev.checkToken(c.token, 'read', 'doc:roadmap')).reason, 'granted');
  for (const bad of [undefined, 42, {}, 'a.b', 'x'.repeat(100_000), '\ud800.a.b']) {
    const d = await ev.checkToken(bad, 'read', 'doc:roadmap');
    assert.deepEqual([d.reason, d.tokenError], ['token_invalid', 'malformed'], String(bad).slice(0, 20));
  }
  assert.equal((await ev.checkToken(c.token, 'Read!', 'doc:roadmap')).reason, 'invalid_request');
  assert.equal((await ev.checkToken(c.token, 'read', 42)).reason, 'invalid_request');
  assert.equal((await ev.checkToken(c.token, 'read', 'doc:roadmap', { 'Bad Key': 1 })).reason, 'invalid_request');
  ev.free();
  await assert.rejects(ev.checkToken(c.token, 'read', 'doc:roadmap'), { code: 'freed' });
});

test('mapped claims replace the caller\'s attributes of the same names', async () => {
  const { ev } = edge(api, FIXTURE.model, FIXTURE.clock);
  const c = named('EdDSA export without auth_time');
  // The caller says it authenticated a second ago; the issuer maps that attribute, so the
  // token (which has no auth_time) decides: a step-up is needed.
  const d = await ev.checkToken(c.token, 'export', 'workspace:eng', { mfa_age_s: 1 });
  assert.equal(d.reason, 'step_up_required');
  assert.deepEqual(d.missing, ['mfa_age_s']);
  const recent = named('EdDSA export with recent auth_time');
  assert.equal((await ev.checkToken(recent.token, 'export', 'workspace:eng', { mfa_age_s: 100_000 })).reason, 'granted');
  ev.free();
});

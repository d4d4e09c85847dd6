// Tokens and sessions end to end: the publisher (`edge-authz publish`) keeps two Workers in
// workerd (Miniflare, 127.0.0.1) fresh with a model that declares token issuers; tokens made now
// by the `jose` library (tests/tokens/make.mjs) are checked at `POST /v1/{tenant}/authorize`.
// - Every shared case gets its answer at both Workers (the npm package and the command line
//   answer the same cases: token.test.mjs, crates/cli/tests/it/tokens.rs).
// - Revocation races: with checks racing on a session at both Workers, `revoke_session`,
//   `revoke_family` and `sign_out` are each published through `--stdin`; once `publish` returns
//   (every edge acknowledged), 10,000 checks of that session find it refused everywhere.
// - A Replica (the npm package, in this process) following one of the Workers: once the
//   publisher reports each of the three revocations acknowledged, 0 of 10,000 racing token checks
//   of a high-tier action are allowed, and a low-tier one only within its reuse window.
// - Bad bodies get a clear error and change nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JSON_TYPE, pkg, startEdge, tempDir } from './edge.mjs';
import { freePort, originOnDisk, startPublisher, useOriginAndEdges } from './publisher.mjs';
import { makeCases } from '../tokens/make.mjs';

function authorize(edge, body) {
  return edge.fetch('/v1/acme/authorize', { method: 'POST', headers: JSON_TYPE, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function decide(edge, token, action = 'read', resource = 'doc:roadmap') {
  const r = await authorize(edge, { token, action, resource });
  assert.equal(r.status, 200, r.body);
  return r.json;
}

// Runs `n` checks of `token` spread over `edges`, `width` at a time; the decisions.
async function many(edges, token, n, width = 16) {
  const out = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out.push(await decide(edges[i % edges.length], token));
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return out;
}

describe('tokens at two Workers kept fresh by the publisher', () => {
  const ctx = useOriginAndEdges(2);
  let all;

  before(async () => {
    all = await makeCases(Date.now());
    const r = await ctx.origin.publish(ctx.all, [ctx.origin.write(all.model)]);
    assert.equal(r.code, 0, r.stderr);
  });

  test('every shared case is answered at both Workers as the cases say', async () => {
    for (const edge of ctx.all) {
      for (const c of all.cases) {
        const body = JSON.stringify({ token: c.token, action: c.action, resource: c.resource, context: c.context });
        const r = await authorize(edge, body);
        if (body.length > 16_384) {
          // Past the Worker's body limit for a check (MAX_CHECK_BYTES): refused before it is read.
          assert.equal(c.expect.reason, 'token_invalid', c.name);
          assert.deepEqual([r.status, r.json?.error?.code], [413, 'too_large'], `${c.name}: ${r.body}`);
          continue;
        }
        assert.equal(r.status, 200, `${c.name}: ${r.body}`);
        assert.equal(r.json.reason, c.expect.reason, `${c.name}: ${r.body}`);
        assert.equal(r.json.allowed, c.expect.allowed, c.name);
        assert.equal(r.json.subject, c.expect.subject, c.name);
      }
    }
  });

  // Each revocation: a fresh token, granted at both Workers; checks race while the change is
  // published; after `publish` returns, none of 10,000 checks is allowed.
  const races = [
    ['revoke_session', { sid: 'race-session' }, (t) => ({ op: 'revoke_session', sid: 'race-session', until: t + 3_600_000 }), 'session_revoked'],
    ['revoke_family', { fam: 'race-family' }, (t) => ({ op: 'revoke_family', family: 'race-family', until: t + 3_600_000 }), 'family_revoked'],
    ['sign_out', { sub: 'bob' }, (t) => ({ op: 'sign_out', subject: 'user:bob', at: t }), 'signed_out'],
  ];
  for (const [name, claims, op, detail] of races) {
    test(`${name}: acknowledged means refused at both Workers, 0 allowed in 10,000 checks`, async () => {
      const token = await all.sign(claims);
      for (const edge of ctx.all) assert.equal((await decide(edge, token)).reason, 'granted');
      let racing = true;
      const during = [];
      const race = (async () => {
        while (racing) during.push(...(await many(ctx.all, token, 32, 8)));
      })();
      const r = await ctx.origin.publish(ctx.all, ['--stdin', '--tenant', 'acme'], {
        input: `${JSON.stringify(op(Date.now()))}\n`,
      });
      racing = false;
      await race;
      assert.equal(r.code, 0, r.stderr);
      const issued = r.events.find((e) => e.event === 'issued');
      assert.equal(issued?.revokes, true, r.stdout);
      // Patched into the kept epoch, not compiled from the whole model.
      assert.equal(issued?.patched, true, r.stdout);
      assert.ok(during.length > 0, 'checks raced with the publish');
      const after = await many(ctx.all, token, 10_000);
      const allowed = after.filter((d) => d.allowed);
      assert.equal(allowed.length, 0, `${allowed.length} allowed after the publish returned`);
      for (const d of after) assert.deepEqual([d.reason, d.tokenError], ['session_revoked', detail]);
    });
  }

  test('bad bodies get a clear error and change nothing', async () => {
    const [edge] = ctx.all;
    const before = await edge.fetch('/v1/acme/status');
    for (const [body, code] of [
      ['{', 'invalid_json'],
      [{ action: 'read', resource: 'doc:roadmap' }, 'invalid_body'],
      [{ token: 42, action: 'read', resource: 'doc:roadmap' }, 'invalid_body'],
      [{ token: 'a.b.c', action: 'read', resource: 'doc:roadmap', subject: 'user:alice' }, 'invalid_body'],
    ]) {
      const r = await authorize(edge, body);
      assert.equal(r.status, 400, r.body);
      assert.equal(r.json.error.code, code, r.body);
    }
    const r = await edge.fetch('/v1/acme/authorize', { method: 'GET' });
    assert.equal(r.status, 405);
    const garbage = await decide(edge, 'not a token');
    assert.deepEqual([garbage.reason, garbage.tokenError, garbage.allowed], ['token_invalid', 'malformed', false]);
    const after = await edge.fetch('/v1/acme/status');
    assert.equal(after.json.epoch, before.json.epoch);
    assert.equal(after.json.digest, before.json.digest);
  });
});

describe('a Replica following a Worker: checkToken after a session revocation is acknowledged', () => {
  const FEED = 'feed-token';
  let origin;
  let edge;
  let pub;
  let all;
  let rep;

  before(async () => {
    all = await makeCases(Date.now());
    origin = await originOnDisk();
    const port = await freePort();
    edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: origin.pub, FEED_TOKEN: FEED }, port, persist: tempDir('edge-authz-tokens-') });
    edge.url = `http://127.0.0.1:${port}`;
    pub = startPublisher(origin, [edge], ['--stdin', '--tenant', 'acme', '--heartbeat', '300']);
    pub.child.stdin.write(`${JSON.stringify(all.model)}\n`);
    await pub.until((e) => e.event === 'caught_up' && e.epoch === 1);
    rep = new pkg.Replica({ tenant: 'acme', publicKeys: [origin.pub], feed: edge.url, token: FEED, reuseMs: { standard: 500, low: 2000 } });
    await rep.ready();
  });
  after(async () => {
    rep?.close();
    await pub?.stop();
    await edge?.dispose();
  });

  // Each revocation in turn (epochs 2, 3, 4), each on a token of its own.
  const kinds = [
    ['revoke_session', { sid: 'replica-race' }, (t) => ({ op: 'revoke_session', sid: 'replica-race', until: t + 3_600_000 }), 'session_revoked'],
    ['revoke_family', { fam: 'replica-family' }, (t) => ({ op: 'revoke_family', family: 'replica-family', until: t + 3_600_000 }), 'family_revoked'],
    ['sign_out', { sub: 'alice' }, (t) => ({ op: 'sign_out', subject: 'user:alice', at: t }), 'signed_out'],
  ];
  kinds.forEach(([name, claims, op, detail], k) => {
    test(`${name}: 0 allowed in 10,000 high-tier token checks after the acknowledgement; low within its window`, async () => {
      const epoch = k + 2;
      const now = Math.floor(Date.now() / 1000);
      const token = await all.sign({ ...claims, auth_time: now - 30, amr: ['pwd', 'mfa'] });
      assert.equal((await rep.checkToken(token, 'export', 'workspace:eng')).reason, 'granted');
      assert.equal((await rep.checkToken(token, 'read', 'doc:roadmap')).reason, 'granted');
      const seen = [];
      let stop = false;
      const racer = async (i) => {
        for (let n = i; !stop; n++) {
          const [action, resource] = n % 2 ? ['export', 'workspace:eng'] : ['read', 'doc:roadmap'];
          const started = Date.now();
          seen.push({ action, started, d: await rep.checkToken(token, action, resource) });
        }
      };
      const racers = Array.from({ length: 8 }, (_, i) => racer(i));
      await new Promise((r) => setTimeout(r, 200));
      pub.child.stdin.write(`${JSON.stringify(op(Date.now()))}\n`);
      const issued = await pub.until((e) => e.event === 'issued' && e.epoch === epoch);
      assert.equal(issued.revokes, true);
      const ack = await pub.until((e) => e.event === 'revocation_acknowledged' && e.epoch === epoch);
      const next = await rep.checkToken(token, 'export', 'workspace:eng');
      assert.deepEqual([next.allowed, next.reason, next.tokenError], [false, 'session_revoked', detail], JSON.stringify(next));
      const until = Date.now() + 2500;
      while (Date.now() < until || seen.filter((x) => x.started > ack.at).length < 10_000) {
        await new Promise((r) => setTimeout(r, 50));
      }
      stop = true;
      await Promise.all(racers);
      const after = seen.filter((x) => x.started > ack.at);
      assert.ok(after.length >= 10_000, `${after.length} checks after the acknowledgement`);
      const highAllowed = after.filter((x) => x.action === 'export' && x.d.allowed);
      assert.equal(highAllowed.length, 0, `${highAllowed.length} high-tier checks allowed after the acknowledgement`);
      const lowLate = after.filter((x) => x.action === 'read' && x.d.allowed && x.started > ack.at + 2000);
      assert.equal(lowLate.length, 0, 'a low-tier check allowed past its reuse window');
      assert.ok(seen.some((x) => x.started < ack.at && x.d.allowed), 'checks were allowed before the revocation');
    });
  });
});

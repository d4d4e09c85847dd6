// `edge-authz serve` under faults, races and hostile input, against two Workers in workerd
// (Miniflare) on 127.0.0.1: the service killed -9 at each step of a change and restarted on the
// same journal (the retried request answered once, with one epoch, never reissued); 10,000
// checks racing a revocation (none allowed once its 200 is received); 20 concurrent writers
// (one epoch each, consecutive); bad input of every kind (a stable code, nothing changed); the
// listening address; clients that hold connections or claim huge bodies (no request thread held,
// the process not brought down); the token file's errors.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { base, BOB, CAROL, decide, edges, edgeStatus, freePort, originOnDisk, run, withoutBob } from './publisher.mjs';
import { newToken, ok, rawHttp, startServe, withToken } from './serve.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const STEPS = ['before_journal', 'after_journal', 'mid_push', 'before_ack', 'before_answer'];
// The steps at which the journal already holds the epoch (and the Idempotency-Key with it).
const COMMITTED = new Set(['after_journal', 'mid_push', 'before_ack', 'before_answer']);
// The steps inside the job: a restart finds it open and reports it interrupted.
const OPEN_JOB = new Set(['after_journal', 'mid_push', 'before_ack']);

const REVOCATION = {
  kind: 'revocation',
  revokes: true,
  op: [{ op: 'remove_membership', member: 'user:bob', group: 'group:eng' }],
  model: base(withoutBob),
  decisions: [[BOB, false], [CAROL, false]],
};
const GRANT = {
  kind: 'grant',
  revokes: false,
  op: { op: 'add_membership', member: 'user:carol', group: 'group:eng' },
  model: base((m) => m.memberships.push({ member: 'user:carol', group: 'group:eng' })),
  decisions: [[BOB, true], [CAROL, true]],
};

const sorted = (memberships) => memberships.map((x) => `${x.member} ${x.group}`).sort();

/** Polls every edge's status until stopped (at most `max` times): what each held, in order. */
function sampleEdges(all, everyMs = 20, max = 3_000) {
  const samples = all.map(() => []);
  let stopped = false;
  const loops = all.map(async (e, i) => {
    for (let n = 0; !stopped && n < max; n++) {
      const r = await e.c.status();
      if (r.status === 200) {
        samples[i].push({ epoch: r.json.epoch, watermark: r.json.watermark, digest: r.json.digest, at: Date.now() });
      }
      await sleep(everyMs);
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return samples;
    },
  };
}

/** No edge's epoch or watermark ever went back, and no epoch number was seen with two digests. */
function assertEdgesMonotone(samples, all) {
  const digestOf = new Map();
  samples.forEach((list, i) => {
    assert.ok(list.length > 0, `${all[i].url}: no status sampled`);
    for (let k = 1; k < list.length; k++) {
      const [a, b] = [list[k - 1], list[k]];
      assert.ok((b.epoch ?? 0) >= (a.epoch ?? 0), `${all[i].url}: epoch went back ${a.epoch} -> ${b.epoch}`);
      assert.ok(b.watermark >= a.watermark, `${all[i].url}: watermark went back ${a.watermark} -> ${b.watermark}`);
    }
    for (const s of list) {
      if (s.epoch == null) continue;
      const seen = digestOf.get(s.epoch);
      assert.ok(seen === undefined || seen === s.digest, `epoch ${s.epoch} seen with two digests: ${seen} and ${s.digest}`);
      digestOf.set(s.epoch, s.digest);
    }
  });
  return digestOf;
}

/** Waits for `paused at STEP (pid N)` on the service's standard error; returns N. */
async function untilPaused(svc, step, ms = 20_000) {
  const t0 = Date.now();
  for (;;) {
    const m = new RegExp(`paused at ${step} \\(pid (\\d+)\\)`).exec(svc.stderr());
    if (m) return Number(m[1]);
    if (Date.now() - t0 > ms) throw new Error(`no "paused at ${step}" in ${ms} ms:\n${svc.stderr()}`);
    await sleep(10);
  }
}

/**
 * A fresh journal with the base model and two fresh edges; the service paused at `step` while it
 * makes `change`, killed -9 there by its PID, restarted on the same journal and port, the same
 * request retried with the same Idempotency-Key.
 */
async function crashAt(step, change) {
  const origin = await originOnDisk();
  const all = await edges(origin.pub, 2);
  const procs = [];
  let sampler;
  try {
    const setup = await startServe(origin, all);
    procs.push(setup);
    const e0 = ok(await setup.putModel(base())).epoch;
    await setup.stop();
    sampler = sampleEdges(all);

    const paused = await startServe(origin, all, { env: { EDGE_AUTHZ_PUBLISH_PAUSE: step } });
    procs.push(paused);
    const key = newToken();
    const inflight = paused.changes(change.op, { key }).then((answer) => ({ answer }), (error) => ({ error }));
    const pid = await untilPaused(paused, step);
    assert.equal(pid, paused.child.pid);
    // Reads do not queue behind the paused job: the journal holds the epoch once committed.
    const during = ok(await paused.request('GET', '/v1/acme/status'));
    assert.equal(during.epoch, COMMITTED.has(step) ? e0 + 1 : e0, `journal while paused at ${step}`);
    process.kill(pid, 'SIGKILL');
    assert.equal((await paused.closed).signal, 'SIGKILL');
    const lost = await inflight;
    assert.ok(lost.error, `answered before the kill: ${lost.answer?.status} ${lost.answer?.text}`);

    // Where the edges were left: never ahead of the journal.
    const heads = await Promise.all(all.map(edgeStatus));
    const expected = {
      before_journal: [e0, e0],
      after_journal: [e0, e0],
      mid_push: [e0 + 1, e0],
      before_ack: [e0 + 1, e0 + 1],
      before_answer: [e0 + 1, e0 + 1],
    }[step];
    if (change.revokes) {
      assert.deepEqual(heads.map((h) => h.watermark), expected.map((e) => (e > e0 ? e : 0)), `watermarks after ${step}`);
    } else {
      assert.deepEqual(heads.map((h) => h.epoch), expected, `epochs after ${step}`);
    }

    const again = await startServe(origin, all, { port: paused.port, tokens: [paused.token] });
    procs.push(again);
    const svc = withToken(again, paused.token);
    const retry = await svc.changes(change.op, { key });
    assert.equal(retry.status, 200, retry.text);
    assert.deepEqual(retry.json, { epoch: e0 + 1, revokes: change.revokes, enforced: true });
    // Committed before the kill: the first answer, replayed; else a fresh epoch (the same number:
    // the killed one never left the process).
    assert.equal(retry.headers.get('idempotent-replayed'), COMMITTED.has(step) ? 'true' : null);
    const replay = await svc.changes(change.op, { key });
    assert.deepEqual(ok(replay), retry.json);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');

    // The journal holds the change once, at that epoch.
    const st = ok(await svc.request('GET', '/v1/acme/status'));
    assert.equal(st.epoch, retry.json.epoch);
    assert.equal(st.watermark, change.revokes ? retry.json.epoch : 0);
    assert.deepEqual(st.epochs, { initial: 1, [change.kind]: 1 });
    assert.equal(st.jobs.open.length, 0);
    const interrupted = again.events.filter((e) => e.event === 'interrupted');
    assert.deepEqual(interrupted.map((e) => e.epoch), OPEN_JOB.has(step) ? [e0 + 1] : [], JSON.stringify(again.events));
    const m = ok(await svc.request('GET', '/v1/acme/model'));
    assert.equal(m.epoch, retry.json.epoch);
    assert.equal(m.digest, st.digest);
    assert.deepEqual(sorted(m.model.memberships), sorted(change.model.memberships));

    // Both edges hold it and answer by it.
    for (const e of all) {
      const s = await edgeStatus(e);
      assert.equal(s.epoch, st.epoch, `${e.url} epoch`);
      assert.equal(s.digest, st.digest, `${e.url} digest`);
      for (const [req, allowed] of change.decisions) {
        assert.equal((await decide(e, ...req)).allowed, allowed, `${e.url} ${req}`);
      }
    }
    const digests = assertEdgesMonotone(await sampler.stop(), all);
    sampler = undefined;
    assert.equal(digests.get(st.epoch), st.digest);
  } finally {
    await sampler?.stop();
    for (const p of procs) await p.stop();
    await Promise.all(all.map((e) => e.dispose()));
  }
}

describe('serve: killed -9 at each step of a change, restarted, the request retried', () => {
  for (const step of STEPS) {
    test(`a revocation, killed at ${step}`, () => crashAt(step, REVOCATION));
  }
  for (const step of STEPS) {
    test(`a grant, killed at ${step}`, () => crashAt(step, GRANT));
  }
});

describe('serve: racing checks and concurrent writers', () => {
  const ctx = {};
  before(async () => {
    ctx.origin = await originOnDisk();
    ctx.all = await edges(ctx.origin.pub, 2);
    ctx.svc = await startServe(ctx.origin, ctx.all);
    ctx.e0 = ok(await ctx.svc.putModel(base())).epoch;
  });
  after(async () => {
    await ctx.svc?.stop();
    await Promise.all((ctx.all ?? []).map((e) => e.dispose()));
  });

  test('10,000 checks racing a revocation: none allowed at either edge once its 200 is received', async () => {
    const { svc, all } = ctx;
    const TOTAL = 10_000;
    const LOOPS = 8;
    const answers = [];
    let started = 0;
    const loop = async (i) => {
      const edge = i % all.length;
      while (started < TOTAL) {
        started++;
        const t = performance.now();
        const r = await all[edge].c.check(...BOB);
        answers.push({ edge, t, status: r.status, allowed: r.json?.allowed, reason: r.json?.reason, epoch: r.json?.epoch });
      }
    };
    const loops = Array.from({ length: LOOPS }, (_, i) => loop(i));
    // Some checks before the revocation is even posted.
    for (let n = 0; answers.length < 1_000 && n < 3_000; n++) await sleep(5);
    const posted = performance.now();
    const res = await fetch(`${svc.url}/v1/acme/changes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json', 'idempotency-key': newToken() },
      body: JSON.stringify({ op: 'remove_membership', member: 'user:bob', group: 'group:eng' }),
    });
    const answered = performance.now();
    const rev = await res.json();
    assert.equal(res.status, 200, JSON.stringify(rev));
    assert.deepEqual(rev, { epoch: ctx.e0 + 1, revokes: true, enforced: true });
    await Promise.all(loops);

    assert.equal(answers.length, TOTAL);
    for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a));
    const beforePost = answers.filter((a) => a.t < posted);
    assert.ok(beforePost.some((a) => a.allowed), 'bob was allowed before the revocation');
    const late = answers.filter((a) => a.t > answered);
    for (const edge of all.keys()) {
      const mine = late.filter((a) => a.edge === edge);
      assert.ok(mine.length >= 1_000, `only ${mine.length} checks at edge ${edge} after the 200`);
    }
    const allowed = late.filter((a) => a.allowed !== false);
    assert.deepEqual(allowed, [], `${allowed.length} of ${late.length} checks started after the 200 were not denied`);
    for (const a of late) {
      assert.equal(a.reason, 'no_grant');
      assert.ok(a.epoch >= rev.epoch, JSON.stringify(a));
    }
    const inFlight = answers.filter((a) => a.t >= posted && a.t <= answered);
    console.log(`# ${TOTAL} checks: ${beforePost.length} before the POST (${beforePost.filter((a) => a.allowed).length} allowed), `
      + `${inFlight.length} during it (${inFlight.filter((a) => a.allowed).length} allowed), ${late.length} after its 200 `
      + `(0 allowed); the revocation answered in ${Math.round(answered - posted)} ms`);
  });

  test('20 concurrent writers: one epoch each, consecutive, none twice; replays change nothing', async () => {
    const { svc, all } = ctx;
    const st0 = ok(await svc.request('GET', '/v1/acme/status'));
    const ops = Array.from({ length: 20 }, (_, i) => ({ op: 'add_membership', member: `user:w${i}`, group: 'group:eng' }));
    const keys = ops.map(() => newToken());
    const answers = await Promise.all(ops.map((op, i) => svc.changes(op, { key: keys[i] })));
    for (const r of answers) assert.equal(r.status, 200, r.text);
    const epochs = answers.map((r) => r.json.epoch);
    assert.equal(new Set(epochs).size, 20, `epochs issued twice: ${epochs}`);
    assert.deepEqual([...epochs].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => st0.epoch + 1 + i));
    for (const r of answers) assert.equal(r.json.revokes, false);

    const st = ok(await svc.request('GET', '/v1/acme/status'));
    assert.equal(st.epoch, st0.epoch + 20);
    assert.equal(st.epochs.grant, (st0.epochs.grant ?? 0) + 20);
    const m = ok(await svc.request('GET', '/v1/acme/model'));
    const members = new Set(m.model.memberships.filter((x) => x.group === 'group:eng').map((x) => x.member));
    for (const op of ops) assert.ok(members.has(op.member), op.member);

    // Each writer's grant is read at its epoch at both edges.
    for (const [i, op] of ops.entries()) {
      for (const e of all) {
        const r = await e.c.check(op.member, 'read', 'doc:roadmap', { at_least_epoch: epochs[i] });
        assert.equal(r.status, 200, r.body);
        assert.equal(r.json.allowed, true, `${op.member} at ${e.url}: ${r.body}`);
      }
    }

    // The same 20 again, concurrently, with their keys: the first answers, no new epoch.
    const replays = await Promise.all(ops.map((op, i) => svc.changes(op, { key: keys[i] })));
    replays.forEach((r, i) => {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.epoch, epochs[i]);
      assert.equal(r.headers.get('idempotent-replayed'), 'true');
    });
    // Two writers racing the same grant without keys: one applies it, the other finds it done.
    const twin = { op: 'add_membership', member: 'user:twin', group: 'group:eng' };
    const race = await Promise.all([svc.changes(twin), svc.changes(twin)]);
    assert.deepEqual(race.map((r) => r.status).sort(), [200, 422], race.map((r) => r.text).join('\n'));
    assert.equal(race.find((r) => r.status === 422).json.error.code, 'change_not_applicable');
    assert.equal(ok(await svc.request('GET', '/v1/acme/status')).epoch, st0.epoch + 21);
  });
});

describe('serve: bad input of every kind, each refused with a stable code, nothing changed', () => {
  const ctx = {};
  const MAX_BODY = 16_384;
  const MAX_MODEL = 65_536;
  before(async () => {
    ctx.origin = await originOnDisk();
    ctx.all = await edges(ctx.origin.pub, 2);
    ctx.tokens = { admin: newToken(), other: newToken(), scim: newToken(), acmeScim: newToken(), metrics: newToken(), acme: newToken() };
    const t = ctx.tokens;
    const svc = await startServe(ctx.origin, ctx.all, {
      args: ['--max-body', String(MAX_BODY), '--max-model', String(MAX_MODEL)],
      tokens: [
        '# the writers',
        t.admin,
        `${t.other} tenant=other`,
        `${t.scim} api=scim`,
        `${t.acmeScim} tenant=acme api=scim`,
        `${t.metrics} api=metrics`,
        `${t.acme} tenant=acme api=changes`,
      ],
    });
    ctx.raw = svc;
    ctx.svc = withToken(svc, t.admin);
    ok(await ctx.svc.putModel(base()));
    ok(await ctx.svc.changes({ op: 'add_membership', member: 'user:carol', group: 'group:eng' }));
  });
  after(async () => {
    await ctx.raw?.stop();
    await Promise.all((ctx.all ?? []).map((e) => e.dispose()));
  });

  /** Everything a refused request must leave as it was. */
  async function snapshot() {
    const { svc, origin, all } = ctx;
    const st = ok(await svc.request('GET', '/v1/acme/status'));
    return {
      model: ok(await svc.request('GET', '/v1/acme/model')),
      epoch: st.epoch,
      watermark: st.watermark,
      epochs: st.epochs,
      files: readdirSync(origin.state).sort(),
      dir: readdirSync(origin.dir).filter((f) => !f.startsWith('tokens-')).sort(),
      edges: await Promise.all(all.map(async (e) => {
        const s = await edgeStatus(e);
        return [s.epoch, s.watermark, s.digest];
      })),
    };
  }

  /** Runs `cases` ([label, request thunk, status, code]) and checks nothing changed. */
  async function refused(cases) {
    const before = await snapshot();
    for (const [label, send, status, code] of cases) {
      const r = await send();
      assert.equal(r.status, status, `${label}: ${r.text ?? r.body}`);
      assert.equal(r.json?.error?.code, code, `${label}: ${r.text ?? r.body}`);
    }
    assert.deepEqual(await snapshot(), before);
  }

  const GRANT_DAVE = { op: 'add_membership', member: 'user:dave', group: 'group:eng' };

  test('malformed JSON, values that are not operations, unknown operations and fields', async () => {
    const { svc } = ctx;
    const post = (body) => () => svc.request('POST', '/v1/acme/changes', { body });
    await refused([
      ['truncated', post('{"op": "add_membership", "member": "user:dave", "group": "gro'), 400, 'malformed_json'],
      ['empty', post(''), 400, 'malformed_json'],
      ['not UTF-8', post(new Uint8Array([0x7b, 0x22, 0x6f, 0x70, 0x22, 0x3a, 0xff, 0xfe, 0x7d])), 400, 'malformed_json'],
      ['trailing bytes', post(`${JSON.stringify(GRANT_DAVE)} x`), 400, 'malformed_json'],
      ['two values', post(`${JSON.stringify(GRANT_DAVE)}${JSON.stringify(GRANT_DAVE)}`), 400, 'malformed_json'],
      ['8,000 nested arrays', post('['.repeat(8_000) + ']'.repeat(8_000)), 400, 'malformed_json'],
      ['a number', post('42'), 400, 'invalid_operation'],
      ['null', post('null'), 400, 'invalid_operation'],
      ['a string', post('"add_membership"'), 400, 'invalid_operation'],
      ['true', post('true'), 400, 'invalid_operation'],
      ['an object without op', post('{}'), 400, 'invalid_operation'],
      ['an unknown op', post({ op: 'grant_everything', member: 'user:dave' }), 400, 'invalid_operation'],
      ['an op in another case', post({ ...GRANT_DAVE, op: 'Add_Membership' }), 400, 'invalid_operation'],
      ['an unknown field', post({ ...GRANT_DAVE, admin: true }), 400, 'invalid_operation'],
      ['a missing field', post({ op: 'add_membership', member: 'user:dave' }), 400, 'invalid_operation'],
      ['a field of the wrong type', post({ ...GRANT_DAVE, member: 7 }), 400, 'invalid_operation'],
      ['an array of numbers', post('[1, 2]'), 400, 'invalid_operation'],
      ['a good op then a bad one', post([GRANT_DAVE, { op: 'frobnicate' }]), 400, 'invalid_operation'],
      ['a good op then a field too many', post([GRANT_DAVE, { op: 'suspend', subject: 'user:x', until: 1 }]), 400, 'invalid_operation'],
      ['a whole model', post(base()), 400, 'invalid_operation'],
      ['a good op then one that does not apply', post([GRANT_DAVE, { op: 'remove_membership', member: 'user:nobody', group: 'group:eng' }]), 422, 'change_not_applicable'],
      ['a good op then one that does not compile', post([GRANT_DAVE, { op: 'add_assignment', principal: 'user:dave', role: 'nope', resource: 'doc:roadmap' }]), 422, 'invalid_model'],
      ['text/plain', () => svc.request('POST', '/v1/acme/changes', { body: JSON.stringify(GRANT_DAVE), type: 'text/plain' }), 415, 'unsupported_media_type'],
      ['no content type', () => svc.request('POST', '/v1/acme/changes', { body: JSON.stringify(GRANT_DAVE), type: '' }), 415, 'unsupported_media_type'],
    ]);
  });

  test('bodies over --max-body and --max-model: 413, the limit itself read', async () => {
    const { svc } = ctx;
    const padded = (v, n) => {
      const s = JSON.stringify(v);
      return s + ' '.repeat(n - s.length);
    };
    await refused([
      ['one byte over --max-body', () => svc.request('POST', '/v1/acme/changes', { body: padded(GRANT_DAVE, MAX_BODY + 1) }), 413, 'too_large'],
      // Declared far past the limit (more than the 8 MiB the service reads and drops past it):
      // refused from the head, so a client would be cut off mid-upload; sent raw, in part.
      ['16 MiB declared', () => rawHttp(ctx.raw.port, [
        'POST /v1/acme/changes HTTP/1.1', 'host: 127.0.0.1', `authorization: Bearer ${ctx.tokens.admin}`,
        'content-type: application/json', `content-length: ${16 << 20}`, '', 'x'.repeat(4096),
      ].join('\r\n')), 413, 'too_large'],
      // Past the limit by less than that: read and dropped, so fetch (still sending) gets it.
      ['4 MiB', () => svc.request('POST', '/v1/acme/changes', { body: 'x'.repeat(4 << 20) }), 413, 'too_large'],
      // At the limit the body is read (and this one is not an operation).
      ['exactly --max-body', () => svc.request('POST', '/v1/acme/changes', { body: padded({ op: 'frobnicate' }, MAX_BODY) }), 400, 'invalid_operation'],
      ['one byte over --max-model', () => svc.request('PUT', '/v1/acme/model', { body: padded(base(), MAX_MODEL + 1) }), 413, 'too_large'],
      ['chunked, over --max-body', () => rawHttp(ctx.raw.port, [
        'POST /v1/acme/changes HTTP/1.1', 'host: 127.0.0.1', `authorization: Bearer ${ctx.tokens.admin}`,
        'content-type: application/json', 'transfer-encoding: chunked', 'connection: close', '', '',
      ].join('\r\n') + [4096, 4096, 4096, 4096, 1].map((n) => `${n.toString(16)}\r\n${' '.repeat(n)}\r\n`).join('') + '0\r\n\r\n'), 413, 'too_large'],
    ]);
  });

  test('a body claimed at 1 GB: 413 at once, before any of it is sent', async () => {
    const { raw, tokens } = ctx;
    const before = await snapshot();
    for (const [method, p] of [['POST', '/v1/acme/changes'], ['PUT', '/v1/acme/model']]) {
      const t0 = Date.now();
      const r = await rawHttp(raw.port, [
        `${method} ${p} HTTP/1.1`, 'host: 127.0.0.1', `authorization: Bearer ${tokens.admin}`,
        'content-type: application/json', 'content-length: 1000000000', '', '{"op": ',
      ].join('\r\n'), { timeoutMs: 3_000 });
      assert.equal(r.status, 413, `${method} ${p}: ${r.head}`);
      assert.equal(r.json?.error?.code, 'too_large');
      assert.ok(r.ms < 1_000, `${method} ${p}: answered after ${r.ms} ms`);
      assert.ok(Date.now() - t0 < 3_000);
    }
    assert.deepEqual(await snapshot(), before);
  });

  test('tokens: none, wrong, another tenant\'s, another API\'s', async () => {
    const { svc, tokens } = ctx;
    const as = (token, method = 'POST', p = '/v1/acme/changes', body = GRANT_DAVE) =>
      () => svc.request(method, p, { body: method === 'GET' ? undefined : body, token });
    const bearer = (value) => () => svc.request('POST', '/v1/acme/changes', { body: GRANT_DAVE, token: null, headers: { authorization: value } });
    const cases = [
      ['no token', as(null), 401, 'unauthorized'],
      ['an unknown token', as(newToken()), 401, 'unauthorized'],
      ['the token with a byte more', as(`${tokens.admin}x`), 401, 'unauthorized'],
      ['the token less a byte', as(tokens.admin.slice(0, -1)), 401, 'unauthorized'],
      ['the token in upper case', as(tokens.admin.toUpperCase()), 401, 'unauthorized'],
      ['Basic', bearer(`Basic ${Buffer.from(`acme:${tokens.admin}`).toString('base64')}`), 401, 'unauthorized'],
      ['the bare token', bearer(tokens.admin), 401, 'unauthorized'],
      ['Bearer and nothing', bearer('Bearer '), 401, 'unauthorized'],
      ['the token in the query', () => svc.request('POST', `/v1/acme/changes?access_token=${tokens.admin}`, { body: GRANT_DAVE, token: null }), 401, 'unauthorized'],
    ];
    for (const [label, token] of [['tenant=other', tokens.other], ['api=scim', tokens.scim],
      ['tenant=acme api=scim', tokens.acmeScim], ['api=metrics', tokens.metrics]]) {
      cases.push(
        [`${label}: POST changes`, as(token), 403, 'forbidden'],
        [`${label}: PUT model`, as(token, 'PUT', '/v1/acme/model', base(withoutBob)), 403, 'forbidden'],
        [`${label}: GET model`, as(token, 'GET', '/v1/acme/model'), 403, 'forbidden'],
        [`${label}: GET status`, as(token, 'GET', '/v1/acme/status'), 403, 'forbidden'],
      );
    }
    // A token for acme's changes only: refused for another tenant.
    cases.push(['tenant=acme on other', as(tokens.acme, 'PUT', '/v1/other/model', { ...base(), tenant: 'other' }), 403, 'forbidden']);
    await refused(cases);
    const r = await svc.request('POST', '/v1/acme/changes', { body: GRANT_DAVE, token: null });
    assert.match(r.headers.get('www-authenticate'), /^Bearer realm=/);
    // The right ones still work (read-only here): acme's own token reads acme.
    assert.equal((await svc.request('GET', '/v1/acme/status', { token: tokens.acme })).status, 200);
  });

  test('odd tenant names: 400 invalid_tenant, nothing created anywhere', async () => {
    const { svc, raw, tokens } = ctx;
    const names = ['ACME', 'Acme', 'a'.repeat(65), '..%2Facme', '..%2F..%2F..%2Ftmp%2Fx', '%61cme',
      'ac.me', 'acme%00', 'ac%20me', 'ac+me', 'acme%2Fmodel', 'ac%C3%A9me', '-'.repeat(65)];
    const cases = [];
    for (const name of names) {
      cases.push(
        [`POST /v1/${name}/changes`, () => svc.request('POST', `/v1/${name}/changes`, { body: GRANT_DAVE }), 400, 'invalid_tenant'],
        [`PUT /v1/${name}/model`, () => svc.request('PUT', `/v1/${name}/model`, { body: { ...base(), tenant: decodeURIComponent(name) } }), 400, 'invalid_tenant'],
        [`GET /v1/${name}/status`, () => svc.request('GET', `/v1/${name}/status`), 400, 'invalid_tenant'],
      );
    }
    // An empty tenant, and paths fetch would normalize, sent as they are.
    const rawGet = (p) => () => rawHttp(raw.port, `GET ${p} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${tokens.admin}\r\nconnection: close\r\n\r\n`);
    cases.push(
      ['an empty tenant', rawGet('/v1//status'), 400, 'invalid_tenant'],
      ['/v1/../acme/status', rawGet('/v1/../acme/status'), 404, 'not_found'],
      ['/v1/acme/../other/status', rawGet('/v1/acme/../other/status'), 404, 'not_found'],
      ['/v1/./status', rawGet('/v1/./status'), 400, 'invalid_tenant'],
      ['/v1/%2e%2e/status', rawGet('/v1/%2e%2e/status'), 400, 'invalid_tenant'],
      ['/v1/../status', rawGet('/v1/../status'), 400, 'invalid_tenant'],
      // 64 characters is a name: it has no journal, and asking creates none.
      ['64 characters, status', () => svc.request('GET', `/v1/${'a'.repeat(64)}/status`), 404, 'unknown_tenant'],
      ['64 characters, changes', () => svc.request('POST', `/v1/${'a'.repeat(64)}/changes`, { body: GRANT_DAVE }), 404, 'unknown_tenant'],
      ['a tenant with no journal, model', () => svc.request('GET', '/v1/other/model'), 404, 'unknown_tenant'],
    );
    await refused(cases);
  });

  test('Idempotency-Key: too long, spaces, empty, a tab', async () => {
    const { svc } = ctx;
    const keyed = (key, method = 'POST') => () => method === 'POST'
      ? svc.request('POST', '/v1/acme/changes', { body: GRANT_DAVE, headers: { 'idempotency-key': key } })
      : svc.request('PUT', '/v1/acme/model', { body: base(withoutBob), headers: { 'idempotency-key': key } });
    await refused([
      ['256 characters', keyed('k'.repeat(256)), 400, 'invalid_idempotency_key'],
      ['4,096 characters', keyed('k'.repeat(4_096)), 400, 'invalid_idempotency_key'],
      ['a space', keyed('order 17'), 400, 'invalid_idempotency_key'],
      ['a tab', keyed('order\t17'), 400, 'invalid_idempotency_key'],
      ['empty', keyed(''), 400, 'invalid_idempotency_key'],
      ['too long, on PUT model', keyed('k'.repeat(256), 'PUT'), 400, 'invalid_idempotency_key'],
      ['a space, on PUT model', keyed('a b', 'PUT'), 400, 'invalid_idempotency_key'],
      // 255 visible characters is a key: taken (and this change does not apply).
      ['255 characters', () => svc.request('POST', '/v1/acme/changes', {
        body: { op: 'remove_membership', member: 'user:nobody', group: 'group:eng' },
        headers: { 'idempotency-key': '~'.repeat(255) },
      }), 422, 'change_not_applicable'],
    ]);
  });

  test('PUT model: not compiling 422 invalid_model, another tenant\'s 422 tenant_mismatch', async () => {
    const { svc } = ctx;
    const put = (body) => () => svc.request('PUT', '/v1/acme/model', { body });
    await refused([
      ['an undeclared role', put(base((m) => m.assignments.push({ principal: 'user:x', role: 'nope', resource: 'doc:roadmap' }))), 422, 'invalid_model'],
      ['an undeclared parent', put(base((m) => m.resources.push({ id: 'doc:x', parent: 'folder:none' }))), 422, 'invalid_model'],
      ['a cycle of groups', put(base((m) => m.memberships.push({ member: 'group:eng', group: 'group:eng' }))), 422, 'invalid_model'],
      ['version 2', put({ ...base(), version: 2 }), 422, 'invalid_model'],
      ['no version', put({ tenant: 'acme' }), 422, 'invalid_model'],
      ['an array', put('[]'), 422, 'invalid_model'],
      ['null', put('null'), 422, 'invalid_model'],
      ['an unknown top-level field', put({ ...base(), owner: 'mallory' }), 422, 'invalid_model'],
      ['another tenant\'s', put({ ...base(), tenant: 'other' }), 422, 'tenant_mismatch'],
      ['another tenant\'s, revoking', put({ ...base(withoutBob), tenant: 'other' }), 422, 'tenant_mismatch'],
      ['truncated', put(JSON.stringify(base()).slice(0, 100)), 400, 'malformed_json'],
      ['not UTF-8', put(new Uint8Array([0x7b, 0xc3, 0x28, 0x7d])), 400, 'malformed_json'],
      ['text/plain', () => svc.request('PUT', '/v1/acme/model', { body: JSON.stringify(base(withoutBob)), type: 'text/plain' }), 415, 'unsupported_media_type'],
    ]);
  });

  test('listens only on the address given', async () => {
    const { raw } = ctx;
    const here = await rawHttp(raw.port, 'GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.equal(here.status, 200, here.head);
    const elsewhere = ['127.0.0.2', '127.1.2.3'];
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) elsewhere.push(a.address);
    }
    for (const host of elsewhere) {
      const r = await rawHttp(raw.port, 'GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', { host, timeoutMs: 2_000 });
      assert.equal(r.status, undefined, `${host}:${raw.port} answered: ${r.head}`);
      assert.equal(r.error, 'ECONNREFUSED', `${host}:${raw.port}: ${JSON.stringify(r)}`);
    }
  });
});

describe('serve: the request threads and the process under held connections and claimed bodies', () => {
  // These services have no journal: no request below reaches an edge.
  const ctx = {};
  before(async () => {
    ctx.origin = await originOnDisk();
    ctx.edge = [{ url: `http://127.0.0.1:${await freePort()}` }];
  });

  const claim = (p, length, token) => [
    `POST ${p} HTTP/1.1`, 'host: 127.0.0.1', ...(token ? [`authorization: Bearer ${token}`] : []),
    'content-type: application/json', `content-length: ${length}`, '', '{',
  ].join('\r\n');

  test('senders that stall after claiming a huge body hold no request thread', async () => {
    const svc = await startServe(ctx.origin, ctx.edge, { args: ['--threads', '4'] });
    try {
      // Twice --threads senders, each answered 413 and then silent with the socket open.
      const stalled = [];
      for (let i = 0; i < 8; i++) {
        stalled.push(rawHttp(svc.port, claim('/v1/acme/changes', 1_000_000_000, svc.token), { timeoutMs: 4_000, hold: true }));
        await sleep(20);
      }
      const t0 = Date.now();
      const health = await rawHttp(svc.port, 'GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', { timeoutMs: 2_000 });
      const answers = await Promise.all(stalled);
      assert.equal(health.status, 200, `healthz while 8 senders stall: no answer in ${Date.now() - t0} ms`);
      assert.deepEqual(answers.map((a) => a.status), Array(8).fill(413));
    } finally {
      await svc.stop();
    }
  });

  test('bursts of 32 clients keeping their connections open: every one answered at once', async () => {
    // A fresh service each time (its connection threads at their minimum), up to 6 bursts.
    for (let attempt = 0; attempt < 6; attempt++) {
      const svc = await startServe(ctx.origin, ctx.edge);
      try {
        const burst = await Promise.all(Array.from({ length: 32 }, () =>
          rawHttp(svc.port, 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n', { hold: true, timeoutMs: 1_500 })));
        const unanswered = burst.filter((r) => r.status !== 200).length;
        assert.equal(unanswered, 0, `burst ${attempt + 1}: ${unanswered} of 32 clients had no answer in 1.5 s`);
      } finally {
        await svc.stop();
      }
    }
  });

  test('a claimed Content-Length of 10^14 bytes, on any route, does not bring the service down', async () => {
    const svc = await startServe(ctx.origin, ctx.edge);
    try {
      for (const [p, token] of [['/healthz', null], ['/v1/acme/changes', null], ['/v1/acme/changes', svc.token]]) {
        const r = await rawHttp(svc.port, claim(p, '100000000000000', token), { timeoutMs: 1_000 });
        assert.ok([405, 401, 413].includes(r.status), `${p}: ${r.head}`);
        await sleep(200);
        const exited = await Promise.race([svc.closed, sleep(100).then(() => null)]);
        assert.equal(exited, null, `the service exited after ${p} (${JSON.stringify(exited)}):\n${svc.stderr().slice(-600)}`);
        const health = await rawHttp(svc.port, 'GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', { timeoutMs: 2_000 });
        assert.equal(health.status, 200, `after ${p}: ${JSON.stringify(health)}`);
      }
    } finally {
      await svc.stop();
    }
  });
});

describe('serve: the token file', () => {
  const ctx = { n: 0 };
  before(async () => {
    ctx.origin = await originOnDisk();
  });

  async function serveWith(lines) {
    const { origin } = ctx;
    const dir = path.join(origin.dir, `bad-${++ctx.n}`);
    mkdirSync(dir);
    const file = path.join(dir, 'tokens');
    writeFileSync(file, lines.join('\n') + '\n');
    const port = await freePort();
    const r = await run(['serve', '--listen', `127.0.0.1:${port}`, '--state', origin.state, '--secret-key', origin.secretKey,
      '--token-file', file, '--edge', `http://127.0.0.1:${await freePort()}`], { timeoutMs: 10_000 });
    // It never listened.
    const probe = await rawHttp(port, 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n', { timeoutMs: 1_000 });
    assert.equal(probe.error, 'ECONNREFUSED');
    return r;
  }

  test('a short token: exit 1, the line named, the token in no output', async () => {
    const good = newToken();
    for (const short of ['s3cr3t-short', 'abcdefghijklmno']) {
      const r = await serveWith([good, `${short} tenant=acme`]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /line 2: a token is at least 16 visible ASCII characters/);
      for (const t of [short, good]) {
        assert.ok(!r.stderr.includes(t) && !r.stdout.includes(t), `the output shows a token: ${r.stderr}`);
      }
    }
  });

  test('a line with two tokens (or a misspelt option): exit 1, no token in the message', async () => {
    const [first, second] = [newToken(), newToken()];
    const r = await serveWith([`${first} ${second}`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /line 1/);
    for (const t of [first, second]) {
      assert.ok(!r.stderr.includes(t) && !r.stdout.includes(t), `the output shows a token: ${r.stderr}`);
    }
  });
});

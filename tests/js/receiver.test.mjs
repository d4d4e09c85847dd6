// The push receiver (createPushReceiver) and the Express and Fastify examples
// (examples/node/*.mjs), run from a fresh install of the packed package: the release publisher
// pushes to the Node services and to the built Worker in workerd alike, and every hostile push
// gets the same status and answer from each, leaving the state as it was.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { freshInstall } from './fresh.mjs';
import { EXAMPLE, client, model, origin as signer, startEdge } from './edge.mjs';
import { base, BOB, CAROL, freePort, originOnDisk, sleep, withoutBob } from './publisher.mjs';
import { REPO_DIR } from './pkg.mjs';

const PUSH = 'push-token';

/** The examples and the package as a consumer has them (one module instance for both). */
async function consumer() {
  const { consumer: dir } = freshInstall();
  for (const f of ['express.mjs', 'fastify.mjs']) copyFileSync(path.join(REPO_DIR, 'examples/node', f), path.join(dir, f));
  for (const dep of ['express', 'fastify']) {
    try {
      symlinkSync(path.join(REPO_DIR, 'node_modules', dep), path.join(dir, 'node_modules', dep));
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
  }
  const load = (f) => import(pathToFileURL(path.join(dir, f)).href);
  return { dir, pkg: await load('node_modules/edge-authz/src/node.mjs'), express: await load('express.mjs'), fastify: await load('fastify.mjs') };
}

/** A Node service of an example on 127.0.0.1, its evaluator receiving pushes. */
async function service(kind, mod, pkg, pub) {
  const ev = new pkg.Evaluator({ tenant: 'acme', publicKeys: [pub] });
  const receiver = pkg.createPushReceiver({ evaluator: ev, pushToken: PUSH });
  const app = mod.createApp(ev, { receiver });
  let url;
  let close;
  if (kind === 'fastify') {
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    close = () => app.close();
  } else {
    const server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${server.address().port}`;
    close = () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  }
  return { kind, url, ev, close };
}

/** Answers as `{status, json}`. */
async function send(url, p, init = {}) {
  const r = await fetch(`${url}${p}`, init).catch((e) => {
    throw new Error(`${init.method ?? 'GET'} ${url}${p}: ${e.message} (${e.cause?.code ?? e.cause?.message})`);
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json, allow: r.headers.get('allow') };
}

describe('the push receiver in Express and Fastify, against the Worker', () => {
  let c;
  let origin;
  let worker;
  let services;
  let all;
  before(async () => {
    c = await consumer();
    origin = await originOnDisk();
    const port = await freePort();
    worker = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: origin.pub, PUSH_TOKEN: PUSH }, port });
    worker.url = `http://127.0.0.1:${port}`;
    worker.kind = 'worker';
    services = [await service('express', c.express, c.pkg, origin.pub), await service('fastify', c.fastify, c.pkg, origin.pub)];
    all = [worker, ...services];
  });
  after(async () => {
    for (const s of services ?? []) await s.close();
    await worker?.dispose();
  });

  const publish = (file) => origin.publish(all, [file], { env: { EDGE_AUTHZ_PUSH_TOKEN: PUSH } });

  /** The decision each service's route gives `[subject, action, resource]`, and the Worker's. */
  async function decisions(req) {
    const out = {};
    for (const s of services) {
      const [subject, action, resource] = req;
      assert.equal(action, 'read');
      const r = await send(s.url, `/docs/${resource.split(':')[1]}`, { headers: { 'x-user': subject } });
      out[s.kind] = r.status === 200 ? 'allowed' : `${r.status} ${r.json.reason ?? r.json.error}`;
    }
    return out;
  }

  test('publish --edge: snapshot, revocation (a watermark carrying its delta), grant: acknowledged alike, and the routes authorize by it', async () => {
    const first = await publish(origin.write(base()));
    assert.equal(first.code, 0, first.stderr);
    for (const e of all) assert.ok(first.events.some((x) => x.event === 'caught_up' && x.edge === e.url), `${e.kind}: ${first.stdout}`);
    assert.deepEqual(await decisions(BOB), { express: 'allowed', fastify: 'allowed' });
    assert.deepEqual(await decisions(CAROL), { express: '403 no_grant', fastify: '403 no_grant' });

    const rev = await publish(origin.write(base(withoutBob)));
    assert.equal(rev.code, 0, rev.stderr);
    const issued = rev.events.find((e) => e.event === 'issued');
    assert.equal(issued.kind, 'revocation');
    const ack = rev.events.find((e) => e.event === 'revocation_acknowledged');
    assert.deepEqual(ack.edges.sort(), all.map((e) => e.url).sort());
    for (const e of all) {
      const pushed = rev.events.filter((x) => x.event === 'pushed' && x.edge === e.url);
      assert.deepEqual(pushed.map((x) => [x.kind, x.edgeEpoch, x.edgeWatermark]), [['watermark', issued.epoch, issued.epoch]], e.kind);
    }
    assert.deepEqual(await decisions(BOB), { express: '403 no_grant', fastify: '403 no_grant' });

    const grant = await publish(origin.write(base((m) => {
      withoutBob(m);
      m.memberships.push({ member: 'user:carol', group: 'group:eng' });
    })));
    assert.equal(grant.code, 0, grant.stderr);
    const g = grant.events.find((e) => e.event === 'issued');
    assert.equal(g.kind, 'grant');
    for (const e of all) {
      assert.deepEqual(grant.events.filter((x) => x.event === 'pushed' && x.edge === e.url).map((x) => x.kind), ['delta'], e.kind);
    }
    assert.deepEqual(await decisions(CAROL), { express: 'allowed', fastify: 'allowed' });
    const report = await origin.status();
    assert.equal(report.edges.length, 3);
    for (const e of report.edges) assert.equal(e.lag, 0, JSON.stringify(e));
    for (const s of services) {
      const st = s.ev.status();
      assert.equal(st.epoch, g.epoch);
      assert.equal(st.digest, report.digest);
    }
  });

  test('every refused push gets the Worker\'s status and answer, and changes nothing', async () => {
    const { pkg } = c;
    const held = services[0].ev.status();
    const epoch = held.epoch;
    const secret = readFileSync(origin.secretKey, 'utf8').trim();
    const stray = pkg.generateKeyPair();
    const m0 = base((m) => {
      withoutBob(m);
      m.memberships.push({ member: 'user:carol', group: 'group:eng' });
    });
    const m1 = model((m) => m.memberships.push({ member: 'user:dave', group: 'group:eng' }));
    const old = pkg.compileSnapshot(EXAMPLE, { epoch: 1, secretKey: secret });
    const same = pkg.compileSnapshot(m0, { epoch, secretKey: secret });
    const conflict = pkg.compileSnapshot(m1, { epoch, secretKey: secret });
    const delta = pkg.diffModels(m0, m1, { baseEpoch: epoch, epoch: epoch + 1, secretKey: secret }).delta;
    const gap = pkg.diffModels(m0, m1, { baseEpoch: epoch + 5, epoch: epoch + 6, secretKey: secret }).delta;
    const forged = Uint8Array.from(delta);
    forged[forged.length - 1] ^= 1;
    const stranger = pkg.diffModels(m0, m1, { baseEpoch: epoch, epoch: epoch + 1, secretKey: stray.secretKey }).delta;
    const otherTenant = pkg.compileSnapshot({ ...EXAMPLE, tenant: 'other' }, { epoch: epoch + 1, secretKey: secret });
    const msgpack = { 'content-type': 'application/msgpack', authorization: `Bearer ${PUSH}` };
    const cases = [
      ['rollback', 'PUT', '/v1/acme/snapshot', msgpack, old],
      ['the held epoch again, same content', 'PUT', '/v1/acme/snapshot', msgpack, same],
      ['the held epoch again, other content', 'PUT', '/v1/acme/snapshot', msgpack, conflict],
      ['a forged signature', 'POST', '/v1/acme/delta', msgpack, forged],
      ['an unknown key', 'POST', '/v1/acme/delta', msgpack, stranger],
      ['another tenant\'s snapshot', 'PUT', '/v1/acme/snapshot', msgpack, otherTenant],
      ['a delta on the snapshot route', 'PUT', '/v1/acme/snapshot', msgpack, delta],
      ['a gap', 'POST', '/v1/acme/delta', msgpack, gap],
      ['not a message', 'POST', '/v1/acme/watermark', msgpack, new TextEncoder().encode('hello, edge')],
      ['an empty body', 'POST', '/v1/acme/delta', msgpack, new Uint8Array()],
      ['no token', 'POST', '/v1/acme/delta', { 'content-type': 'application/msgpack' }, delta],
      ['a wrong token', 'POST', '/v1/acme/delta', { ...msgpack, authorization: 'Bearer nope' }, delta],
      ['another media type', 'POST', '/v1/acme/delta', { ...msgpack, 'content-type': 'application/json' }, delta],
      ['over the size limit', 'POST', '/v1/acme/delta', msgpack, new Uint8Array((8 << 20) + 1)],
      ['another method', 'GET', '/v1/acme/delta', {}, undefined],
      ['a malformed tenant', 'POST', '/v1/ACME!/delta', msgpack, delta],
      // Fastify's router answers a malformed escape itself (400), before any hook runs.
      ['a malformed escape in the tenant', 'POST', '/v1/ac%E0%A4me/delta', msgpack, delta, ['express']],
    ];
    for (const [what, method, p, headers, body, only] of cases) {
      const answers = {};
      for (const e of all) {
        // A server that answers 413 before reading the body closes the connection on a client
        // still sending it; the kernel may then reset the socket before the answer is read (it
        // did, with workerd, about once in ten runs). A reset is not an answer: send again.
        for (let attempt = 1; ; attempt += 1) {
          try {
            answers[e.kind] = await send(e.url, p, { method, headers, body });
            break;
          } catch (err) {
            const reset = /ECONNRESET|EPIPE/.test(err.message) && body?.length > (8 << 20);
            if (!reset || attempt === 5) throw new Error(`${what}, ${e.kind}: ${err.message}`);
          }
        }
      }
      const w = answers.worker;
      assert.ok(w.status >= 400, `${what}: the Worker answered ${w.status} ${JSON.stringify(w.json)}`);
      for (const s of services.filter((x) => !only || only.includes(x.kind))) {
        assert.deepEqual(answers[s.kind], w, `${what}: ${s.kind} answered otherwise than the Worker`);
        assert.deepEqual(s.ev.status(), held, `${what}: ${s.kind}'s state changed`);
      }
    }
    // The good delta applies alike; its replay is the Worker's no-op answer.
    const good = {};
    for (const e of all) good[e.kind] = await send(e.url, '/v1/acme/delta', { method: 'POST', headers: msgpack, body: delta });
    for (const s of services) assert.deepEqual(good[s.kind], good.worker, s.kind);
    assert.deepEqual(good.worker.json, { epoch: epoch + 1, applied: true });
    const again = {};
    for (const e of all) again[e.kind] = await send(e.url, '/v1/acme/delta', { method: 'POST', headers: msgpack, body: delta });
    for (const s of services) assert.deepEqual(again[s.kind], again.worker, s.kind);
    assert.deepEqual(again.worker.json, { epoch: epoch + 1, applied: false });
  });

  test('a service serves one tenant; other paths go on to the app; the middleware answers 403 with the reason and 503 when the edge cannot answer now', async () => {
    for (const s of services) {
      const other = await send(s.url, '/v1/other/delta', { method: 'POST', headers: { 'content-type': 'application/msgpack', authorization: `Bearer ${PUSH}` }, body: new Uint8Array([1]) });
      assert.equal(other.status, 404, s.kind);
      assert.equal(other.json.error.code, 'unknown_tenant');
      const d = await send(s.url, '/docs/roadmap', { headers: { 'x-user': 'user:dave' } });
      assert.equal(d.status, 200, `${s.kind}: ${JSON.stringify(d.json)}`);
      assert.equal(d.json.decision.reason, 'granted');
      const denied = await send(s.url, '/docs/roadmap/export', { method: 'POST', headers: { 'x-user': 'user:dave' } });
      assert.deepEqual([denied.status, denied.json.reason], [403, 'no_grant'], s.kind);
      const epoch = s.ev.status().epoch;
      const pending = await send(s.url, '/docs/roadmap', { headers: { 'x-user': 'user:dave', 'x-edge-epoch': String(epoch + 1) } });
      assert.deepEqual([pending.status, pending.json.reason], [503, 'pending'], s.kind);
    }
    // A fresh service that holds nothing yet: 503 no_snapshot, never a 403.
    const idle = await service('express', c.express, c.pkg, origin.pub);
    try {
      const d = await send(idle.url, '/docs/roadmap', { headers: { 'x-user': 'user:dave' } });
      assert.deepEqual([d.status, d.json.reason], [503, 'no_snapshot']);
    } finally {
      await idle.close();
    }
  });
});

/**
 * An example run as its own process (`node FILE` in the consumer's folder, as its header says),
 * on a free port of 127.0.0.1 with `env`: `{url, output, stop}` once it answers HTTP; `stop`
 * kills it by its PID.
 */
async function runExample(dir, file, env) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(dir, file)], {
    cwd: dir,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b) => (output += b));
  child.stderr.on('data', (b) => (output += b));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM');
    await exited;
  };
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${file} exited with ${child.exitCode}: ${output}`);
    try {
      await fetch(`${url}/`);
      break;
    } catch {
      if (i > 200) {
        await stop();
        throw new Error(`${file} did not listen on ${url} within 20 s: ${output}`);
      }
      await sleep(100);
    }
  }
  return { url, stop, output: () => output };
}

describe('the examples run as their headers say', () => {
  const FEED = 'feed-token';
  const o = signer();
  const ALICE = { 'x-user': 'user:alice' };
  let dir;
  let worker;
  const running = [];
  before(async () => {
    ({ dir } = await consumer());
    worker = await startEdge({
      vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, FEED_TOKEN: FEED },
      port: await freePort(),
    });
    assert.equal((await client(worker).push('snapshot', o.snapshot(EXAMPLE, 1))).status, 200);
  });
  after(async () => {
    for (const r of running) await r.stop();
    await worker?.dispose();
  });

  test('express.mjs follows the Worker with a Replica: 200, 403 after a revocation, 503 pending, 503 when the feed is gone', async () => {
    const app = await runExample(dir, 'express.mjs', {
      EDGE_FEED: worker.url,
      FEED_TOKEN: FEED,
      ORIGIN_PUBLIC_KEYS: o.keys.publicKey,
    });
    running.push(app);
    const read = await send(app.url, '/docs/roadmap', { headers: ALICE });
    assert.equal(read.status, 200, JSON.stringify(read.json));
    assert.equal(read.json.decision.epoch, 1);
    const exported = await send(app.url, '/docs/roadmap/export', { method: 'POST', headers: ALICE });
    assert.equal(exported.status, 200, JSON.stringify(exported.json));
    const pending = await send(app.url, '/docs/roadmap', { headers: { ...ALICE, 'x-edge-epoch': '2' } });
    assert.deepEqual([pending.status, pending.json.reason], [503, 'pending']);

    // The revocation (alice's assignment and membership), a watermark carrying its delta.
    const next = model((m) => {
      m.assignments = m.assignments.filter((x) => x.principal !== 'user:alice');
      m.memberships = m.memberships.filter((x) => x.member !== 'user:alice');
    });
    const ack = await client(worker).push('watermark', o.watermark(2, o.delta(EXAMPLE, next, 1, 2).delta));
    assert.equal(ack.status, 200, ack.body);
    const denied = await send(app.url, '/docs/roadmap/export', { method: 'POST', headers: ALICE });
    assert.deepEqual([denied.status, denied.json.reason, denied.json.epoch], [403, 'no_grant', 2]);
    const mine = await send(app.url, '/docs/roadmap', { headers: { ...ALICE, 'x-edge-epoch': '2' } });
    assert.deepEqual([mine.status, mine.json.reason], [403, 'no_grant'], 'the epoch the caller needs, now held');

    // The Worker gone: a `high` action cannot be confirmed (503, never a 200 or a 403).
    await worker.dispose();
    const cut = await send(app.url, '/docs/roadmap/export', { method: 'POST', headers: ALICE });
    assert.deepEqual([cut.status, cut.json.error], [503, 'authority_unavailable']);
    await app.stop();
  });

  test('fastify.mjs receives the origin\'s pushes: 503 until the snapshot, then decisions from it', async () => {
    const app = await runExample(dir, 'fastify.mjs', { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, PUSH_TOKEN: PUSH });
    running.push(app);
    const idle = await send(app.url, '/docs/roadmap', { headers: ALICE });
    assert.deepEqual([idle.status, idle.json.reason], [503, 'no_snapshot']);
    const push = (op, body, method = 'POST') =>
      send(app.url, `/v1/acme/${op}`, { method, headers: { 'content-type': 'application/msgpack', authorization: `Bearer ${PUSH}` }, body });
    const loaded = await push('snapshot', o.snapshot(EXAMPLE, 1), 'PUT');
    assert.equal(loaded.status, 200, JSON.stringify(loaded.json));
    assert.equal((await send(app.url, '/docs/roadmap', { headers: ALICE })).status, 200);
    const denied = await send(app.url, '/docs/roadmap/export', { method: 'POST', headers: { 'x-user': 'user:bob' } });
    assert.deepEqual([denied.status, denied.json.reason], [403, 'no_grant']);
    const wrong = await send(app.url, '/v1/acme/delta', { method: 'POST', headers: { 'content-type': 'application/msgpack', authorization: 'Bearer nope' }, body: new Uint8Array([1]) });
    assert.equal(wrong.status, 401);
    await app.stop();
  });
});

// Helpers for the publisher's suites: the release command line (`edge-authz publish`) run as a
// child process against Workers in workerd (Miniflare) listening on 127.0.0.1.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { after, before } from 'node:test';
import net from 'node:net';
import path from 'node:path';
import { REPO_DIR } from './pkg.mjs';
import { client, model, startEdge, tempDir } from './edge.mjs';

export const BIN = path.join(REPO_DIR, 'target/release/edge-authz');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1 (for an edge that must come back on the same URL). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Runs the command line; resolves {code, events (parsed JSON lines), stdout, stderr}. */
export function run(args, { input, env = {}, onStderr, timeoutMs = 60_000 } = {}) {
  assert.ok(existsSync(BIN), `${BIN} is missing: cargo build --release`);
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`edge-authz ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // One JSON object a line (--json); other output (pretty JSON, text) is not an event.
      const events = stdout.split('\n').flatMap((l) => {
        try {
          const v = JSON.parse(l);
          return v && typeof v === 'object' && v.event ? [v] : [];
        } catch {
          return [];
        }
      });
      resolve({ code, signal, events, stdout, stderr, pid: child.pid });
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/** A long-running publisher: its events as they come. */
export function startPublisher(origin, all, args) {
  const child = spawn(BIN, ['publish', '--json', '--state', origin.state, '--secret-key', origin.secretKey,
    ...all.flatMap((e) => ['--edge', e.url]), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const events = [];
  let rest = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    rest += d;
    const lines = rest.split('\n');
    rest = lines.pop();
    for (const l of lines) if (l.startsWith('{')) events.push({ ...JSON.parse(l), at: Date.now() });
  });
  child.stderr.on('data', (d) => (stderr += d));
  const closed = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return {
    child,
    events,
    closed,
    stderr: () => stderr,
    async until(pred, ms = 15_000) {
      const t0 = Date.now();
      for (;;) {
        const hit = events.find(pred);
        if (hit) return hit;
        if (Date.now() - t0 > ms) throw new Error(`no such event in ${ms} ms: ${JSON.stringify(events)}\n${stderr}`);
        await sleep(10);
      }
    },
    async stop() {
      child.kill('SIGKILL');
      await closed;
    },
  };
}

/**
 * A fake edge on 127.0.0.1: `answer(method, path, body)` gives `{status, body}` (an object is
 * sent as JSON). `requests` lists what it was sent; `close()` stops it.
 */
export async function fakeEdge(answer) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method, path: req.url, bytes: body.length });
      const { status = 200, body: out } = answer(req.method, req.url, body);
      const text = typeof out === 'string' ? out : JSON.stringify(out);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** An origin: a key pair on disk, a journal folder, and `publish` bound to some edges. */
export async function originOnDisk() {
  const dir = tempDir('edge-authz-origin-');
  const keys = await run(['keygen', '--out-dir', dir]);
  assert.equal(keys.code, 0, keys.stderr);
  const pub = JSON.parse(keys.stdout).publicKey;
  const state = path.join(dir, 'journal');
  let n = 0;
  const write = (m) => {
    const file = path.join(dir, `model-${n++}.json`);
    writeFileSync(file, JSON.stringify(m));
    return file;
  };
  return {
    dir,
    pub,
    state,
    secretKey: path.join(dir, 'origin.key'),
    write,
    publish(edges, extra = [], opts = {}) {
      return run(
        ['publish', '--json', '--state', state, '--secret-key', path.join(dir, 'origin.key'),
          ...edges.flatMap((e) => ['--edge', e.url]), ...extra],
        opts,
      );
    },
    async status(tenant = 'acme') {
      const r = await run(['publish', '--status', '--json', '--state', state, '--tenant', tenant]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    },
  };
}

/** `n` Workers, each its own Durable Object state, listening on 127.0.0.1. */
export async function edges(pub, n = 2, { persist = false, vars = {} } = {}) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const port = await freePort();
    const dir = persist ? tempDir('edge-authz-edge-') : undefined;
    const e = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: pub, ...vars }, port, persist: dir });
    e.port = port;
    e.c = client(e);
    out.push(e);
  }
  return out;
}

/** The example model with user:bob in group:eng (he reads through group:staff's viewer role). */
export function base(edit = () => {}) {
  return model((m) => {
    m.memberships.push({ member: 'user:bob', group: 'group:eng' });
    edit(m);
  });
}

/** The decision at an edge, as JSON. */
export async function decide(edge, subject, action, resource) {
  const r = await edge.c.check(subject, action, resource);
  assert.equal(r.status, 200, r.body);
  return r.json;
}

export async function edgeStatus(edge) {
  const r = await edge.c.status();
  assert.equal(r.status, 200, r.body);
  return r.json;
}

/** Every edge holds the journal's epoch and digest, and answers as `expect` says. */
export async function agree(origin, all, expect) {
  const st = await origin.status();
  for (const e of all) {
    const s = await edgeStatus(e);
    assert.equal(s.epoch, st.epoch, `${e.url} epoch`);
    assert.equal(s.digest, st.digest, `${e.url} digest`);
    assert.equal(s.stale, false);
    for (const [req, allowed] of expect) {
      assert.equal((await decide(e, ...req)).allowed, allowed, `${e.url} ${req}`);
    }
  }
  return st;
}

export const BOB = ['user:bob', 'read', 'doc:roadmap'];
export const CAROL = ['user:carol', 'read', 'doc:roadmap'];
export const withoutBob = (m) => {
  m.memberships = m.memberships.filter((x) => x.member !== 'user:bob');
};

/** In a `describe`: an origin and `n` edges for its tests (`ctx.origin`, `ctx.all`), disposed after. */
export function useOriginAndEdges(n = 2, opts = {}) {
  const ctx = {};
  before(async () => {
    ctx.origin = await originOnDisk();
    ctx.all = await edges(ctx.origin.pub, n, opts);
  });
  after(async () => Promise.all((ctx.all ?? []).map((e) => e.dispose())));
  return ctx;
}

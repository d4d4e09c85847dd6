// Helpers for the publisher's suites: the release command line (`edge-authz publish`) run as a
// child process against Workers in workerd (Miniflare) listening on 127.0.0.1.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { after, before } from 'node:test';
import net from 'node:net';
import path from 'node:path';
import { REPO_DIR } from './pkg.mjs';
import { client, model, startEdge, tempDir } from './edge.mjs';

export const BIN = path.join(REPO_DIR, 'target/release/edge-authz');

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

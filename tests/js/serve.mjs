// Helpers for the origin service's suites: `edge-authz serve` (the release command line) as a
// child process on 127.0.0.1, in front of Workers in workerd (tests/js/publisher.mjs `edges`).
// - `startServe(origin, all, {args, env, tokens})`: the service with a token file (by default
//   one token for everything: `svc.token`); `{url, child, request, changes, stop, kill,
//   stderr, events}`. `request(method, path, {body, headers, token})` answers `{status,
//   headers, text, json}`; `changes(ops, {key})` posts to /v1/acme/changes.
// - `stop()` ends it with SIGTERM and waits; `kill()` with SIGKILL (the crash tests).
// - `withToken(svc, token)`: `svc`'s `request`, `changes` and `putModel` with another default
//   token (a service started with `tokens`, whose `svc.token` is in no file).
// - `rawHttp(port, bytes, {host, timeoutMs, hold})`: one request written as given on a `net`
//   socket (paths fetch would normalize, bodies it would not send); `{status, head, body, json,
//   ms, error, timedOut}`, `ms` the time to the answer's first byte. With `hold`, the socket
//   stays open after the answer, until the server closes it or the timeout.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { BIN, freePort } from './publisher.mjs';

export const newToken = () => randomBytes(24).toString('base64url');

export async function startServe(origin, all, { args = [], env = {}, tokens, port } = {}) {
  const token = newToken();
  const lines = tokens ?? [token];
  const tokenFile = path.join(origin.dir, `tokens-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  writeFileSync(tokenFile, lines.join('\n') + '\n');
  port ??= await freePort();
  const child = spawn(BIN, ['serve', '--json', '--listen', `127.0.0.1:${port}`, '--state', origin.state,
    '--secret-key', origin.secretKey, '--token-file', tokenFile,
    ...all.flatMap((e) => ['--edge', e.url]), ...args],
  { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let rest = '';
  const events = [];
  child.stdout.on('data', (d) => {
    rest += d;
    const ls = rest.split('\n');
    rest = ls.pop();
    for (const l of ls) if (l.startsWith('{')) events.push({ ...JSON.parse(l), at: Date.now() });
  });
  const closed = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${stderr}`)), 20_000);
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited ${code}:\n${stderr}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  async function request(method, p, { body, headers = {}, token: tok = token, type = 'application/json' } = {}) {
    const h = { ...headers };
    if (tok !== null) h.authorization = `Bearer ${tok}`;
    if (body !== undefined) h['content-type'] ??= type;
    const res = await fetch(url + p, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }
  return {
    url,
    port,
    token,
    tokenFile,
    child,
    events,
    stderr: () => stderr,
    request,
    changes: (ops, { key, tenant = 'acme', token: tok } = {}) =>
      request('POST', `/v1/${tenant}/changes`, { body: ops, headers: key ? { 'idempotency-key': key } : {}, token: tok }),
    putModel: (m, { tenant = 'acme' } = {}) => request('PUT', `/v1/${tenant}/model`, { body: m }),
    async stop() {
      child.kill('SIGTERM');
      await closed;
    },
    async kill() {
      child.kill('SIGKILL');
      await closed;
    },
    closed,
  };
}

export function ok(r, status = 200) {
  assert.equal(r.status, status, r.text);
  return r.json;
}

/** `svc` answering with `token` as the default bearer token. */
export function withToken(svc, token) {
  const request = (method, p, opts = {}) => svc.request(method, p, { token, ...opts });
  return {
    ...svc,
    token,
    request,
    changes: (ops, { key, tenant = 'acme', token: tok = token } = {}) =>
      request('POST', `/v1/${tenant}/changes`, { body: ops, headers: key ? { 'idempotency-key': key } : {}, token: tok }),
    putModel: (m, { tenant = 'acme' } = {}) => request('PUT', `/v1/${tenant}/model`, { body: m }),
  };
}

/**
 * One request written as given (a string or bytes) on a socket to `host:port`; resolves when the
 * server closes the connection, a whole answer (by its content-length) has come, or after
 * `timeoutMs` (with `hold`, only on close or the timeout). The socket is always destroyed.
 */
export function rawHttp(port, bytes, { host = '127.0.0.1', timeoutMs = 5_000, hold = false } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(port, host);
    let buf = Buffer.alloc(0);
    let first;
    let done = false;
    const finish = (extra = {}) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const text = buf.toString('latin1');
      const at = text.indexOf('\r\n\r\n');
      const head = at >= 0 ? text.slice(0, at) : text;
      const body = at >= 0 ? buf.subarray(at + 4).toString('utf8') : '';
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      let json;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      resolve({ status: m ? Number(m[1]) : undefined, head, body, json, ms: first, ...extra });
    };
    const timer = setTimeout(() => finish({ timedOut: true }), timeoutMs);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d) => {
      first ??= Date.now() - t0;
      buf = Buffer.concat([buf, d]);
      const text = buf.toString('latin1');
      const at = text.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, at >= 0 ? at : undefined));
      if (!hold && at >= 0 && len && buf.length >= at + 4 + Number(len[1])) finish();
    });
    sock.on('error', (e) => finish({ error: e.code ?? String(e) }));
    sock.on('close', () => finish());
  });
}

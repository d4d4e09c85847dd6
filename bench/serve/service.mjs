// `edge-authz serve` for bench/serve.mjs: the release binary as a child process on 127.0.0.1, its
// PID kept so that every way out (the end, an error, the time limit, a signal, `process.exit`)
// stops it by that PID; its `--json` events read back with their arrival time (performance.now());
// an HTTP/1.1 keep-alive client for its API that times each call.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/** The PIDs of every service started here and not yet seen exiting. */
const running = new Map(); // pid -> child

/** SIGKILL by PID to every service still running (synchronous: safe in an 'exit' handler). */
export function killServices() {
  for (const pid of running.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  running.clear();
}

export const newToken = () => randomBytes(24).toString('base64url');

/**
 * Starts `bin serve` with a fresh token file in `dir`; resolves once it prints "listening on".
 * `{url, pid, token, events, request, changes, putModel, waitEvent, stop, stderr}`.
 */
export async function startService(bin, { dir, state, secretKey, edges, port, args = [], startMs = 20_000 }) {
  const token = newToken();
  const tokenFile = path.join(dir, `writers-${process.pid}.tokens`);
  fs.writeFileSync(tokenFile, `# bench/serve.mjs\n${token}\n`, { mode: 0o600 });
  const argv = ['serve', '--json', '--listen', `127.0.0.1:${port}`, '--state', state, '--secret-key', secretKey,
    '--token-file', tokenFile, ...edges.flatMap((u) => ['--edge', u]), ...args];
  const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid) running.set(pid, child);
  const events = [];
  const waiters = new Set();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  let stderr = '';
  let rest = '';
  let exit = null;
  child.stdout.on('data', (d) => {
    const at = performance.now();
    rest += d.toString('utf8');
    const ls = rest.split('\n');
    rest = ls.pop();
    for (const l of ls) {
      if (!l.startsWith('{')) continue;
      try {
        const v = JSON.parse(l);
        if (v && v.event) events.push({ ...v, at });
      } catch {
        // not an event
      }
    }
    notify();
  });
  child.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19));
    notify();
  });
  const closed = new Promise((resolve) => child.on('close', (code, signal) => {
    running.delete(pid);
    exit = { code, signal };
    notify();
    resolve(exit);
  }));
  child.on('error', (e) => {
    exit ??= { code: null, signal: null, error: e.message };
    notify();
  });
  await new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    const check = () => {
      if (stderr.includes('listening on')) {
        done();
        resolve();
      } else if (exit) {
        done();
        reject(new Error(`edge-authz serve exited ${JSON.stringify(exit)} at start:\n${stderr}`));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`edge-authz serve did not start within ${startMs} ms:\n${stderr}`));
    }, startMs);
    waiters.add(check);
    check();
  });

  const url = `http://127.0.0.1:${port}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

  /** One call: {status, json, text, headers, ms (request written → whole answer read), t0, t1}. */
  function request(method, p, { body, headers = {}, timeoutMs = 60_000 } = {}) {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      const h = { authorization: `Bearer ${token}`, ...headers };
      if (data) {
        h['content-type'] ??= 'application/json';
        h['content-length'] = String(data.length);
      }
      const t0 = performance.now();
      const req = http.request(url + p, { method, headers: h, agent }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const t1 = performance.now();
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json, ms: t1 - t0, t0, t1 });
        });
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${p}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** The first event at index >= `from` passing `pred`; rejects after `timeoutMs` or on exit. */
  function waitEvent(pred, { from = 0, timeoutMs = 10_000, what = 'an event' } = {}) {
    return new Promise((resolve, reject) => {
      let i = from;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      const check = () => {
        for (; i < events.length; i++) {
          if (pred(events[i])) {
            done();
            resolve({ ev: events[i], index: i });
            return;
          }
        }
        if (exit) {
          done();
          reject(new Error(`edge-authz serve exited (${JSON.stringify(exit)}) before ${what}\n${stderr.slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`edge-authz serve: no ${what} within ${timeoutMs} ms\n${stderr.slice(-2000)}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  }

  return {
    url,
    pid,
    argv,
    token,
    events,
    request,
    waitEvent,
    changes: (tenant, ops, opts) => request('POST', `/v1/${tenant}/changes`, { body: ops, ...opts }),
    putModel: (tenant, m, opts) => request('PUT', `/v1/${tenant}/model`, { body: m, ...opts }),
    stderr: () => stderr,
    get exit() {
      return exit;
    },
    /** SIGTERM by PID, then SIGKILL by PID if it has not exited within `graceMs`. */
    async stop(graceMs = 5_000) {
      agent.destroy();
      if (exit) return exit;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
      let timer;
      const killed = new Promise((resolve) => {
        timer = setTimeout(() => {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
          resolve(closed);
        }, graceMs);
      });
      const r = await Promise.race([closed, killed]);
      clearTimeout(timer);
      return r;
    },
  };
}

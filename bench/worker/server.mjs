// `wrangler dev` under the benchmark's control: on 127.0.0.1 only, on a free port, persisted to a
// temporary directory, spawned directly (not through npx) in its own process group so that the
// whole tree (wrangler's Node process, esbuild, the workerd processes) is stopped by one signal to
// the group. Its output is drained (a full pipe would stall it) and the last lines are kept for
// error messages.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function getOnce(port, p, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

const live = new Set();

/** Stops every server still running (used on signals and fatal errors). */
export function stopAll() {
  for (const s of live) s.kill();
}

/**
 * Starts `wrangler dev` in `repo` and waits until GET /health answers 200.
 * vars: {NAME: value} passed as --var NAME:value. Resolves {port, url, pid, dir, kill(), stop(), tail()}.
 */
export async function startWrangler({ repo, vars = {}, logLevel = 'warn', startTimeoutMs = 120_000, log = () => {} }) {
  const bin = path.join(repo, 'node_modules', '.bin', 'wrangler');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run npm ci`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-authz-bench-worker-'));
  const port = await freePort();
  const args = ['dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', dir,
    '--log-level', logLevel, '--show-interactive-dev-session=false'];
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
  const child = spawn(bin, args, {
    cwd: repo,
    detached: true, // its own process group: kill(-pid) stops wrangler, esbuild and workerd together
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_HIDE_BANNER: 'true',
      CI: '1', // no interactive hotkeys
      NO_COLOR: '1',
    },
  });
  const lines = [];
  let rest = '';
  const keep = (chunk) => {
    rest += chunk.toString();
    const parts = rest.split('\n');
    rest = parts.pop();
    for (const l of parts) {
      lines.push(l);
      if (lines.length > 60) lines.shift();
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exitP = new Promise((resolve) => child.on('exit', (code, sig) => { exited = { code, sig }; resolve(exited); }));

  let killed = false;
  const server = {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    dir,
    tail: () => [...lines, ...(rest ? [rest] : [])].join('\n'),
    /** SIGTERM to the process group, synchronously (safe in signal and exit handlers). */
    kill(signal = 'SIGTERM') {
      if (exited && killed) return;
      killed = true;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    },
    /** Stops the group, waits (bounded) for wrangler to exit, SIGKILLs what is left, removes the state. */
    async stop() {
      server.kill('SIGTERM');
      await Promise.race([exitP, sleep(5000)]);
      try {
        process.kill(-child.pid, 'SIGKILL'); // whatever of the group is still there
      } catch {
        // the group is gone
      }
      live.delete(server);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(server);

  const t0 = Date.now();
  for (;;) {
    if (exited) {
      live.delete(server);
      throw new Error(`wrangler dev exited (${exited.code ?? exited.sig}) before answering:\n${server.tail()}`);
    }
    if (Date.now() - t0 > startTimeoutMs) {
      await server.stop();
      throw new Error(`wrangler dev did not answer GET /health within ${startTimeoutMs / 1000} s:\n${server.tail()}`);
    }
    const r = await getOnce(port, '/health', 1000);
    if (r && r.status === 200) break;
    await sleep(100);
  }
  log(`wrangler dev (pid ${child.pid}) answers on ${server.url} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return server;
}

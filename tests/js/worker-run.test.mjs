// The README's main-job command, `scripts/run.sh`, in its `--once` form: it starts the Worker
// with `wrangler dev` on 127.0.0.1, publishes the example model with `edge-authz publish`, runs its curl
// checks, checks that the admin page is served under /admin, and stops the Worker. Asserts the
// printed answers and that no wrangler or workerd of that run is left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { REPO_DIR } from './pkg.mjs';

async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

test('scripts/run.sh --once serves the example model from a local Worker', { timeout: 600_000 }, async () => {
  const port = await freePort();
  const servePort = await freePort();
  const run = spawnSync('bash', ['scripts/run.sh', '--once'], {
    cwd: REPO_DIR,
    env: { ...process.env, PORT: String(port), SERVE_PORT: String(servePort) },
    encoding: 'utf8',
    timeout: 590_000,
  });
  const out = run.stdout + run.stderr;
  assert.equal(run.status, 0, out.slice(-3000));
  const lines = out.split('\n');
  const json = lines.filter((l) => l.startsWith('{"')).map((l) => JSON.parse(l));
  // `edge-authz publish` printed the epoch it issued (or, on a rerun, that nothing changed), and
  // its status report shows the Worker at that epoch.
  const published = out.match(/^(issued|unchanged)\s.*\bepoch=(\d+)/m);
  assert.ok(published, out.slice(-3000));
  const epoch = { epoch: Number(published[2]) };
  assert.ok(epoch.epoch >= 1);
  assert.match(out, new RegExp(`^tenant acme: epoch ${epoch.epoch}, `, 'm'));
  assert.match(out, new RegExp(`http://127\\.0\\.0\\.1:${port}  epoch ${epoch.epoch}  lag 0 .* ok$`, 'm'));
  // A body claimed far past the limit (1 GB, none of it sent) is answered 413 at once.
  assert.match(out, /^answered 413$/m, out.slice(-3000));
  const decisions = json.filter((j) => 'allowed' in j);
  assert.deepEqual(
    decisions.map((d) => [d.allowed, d.reason, d.tier]),
    [
      [true, 'granted', 'low'],
      [true, 'granted', 'high'],
      [false, 'suspended', 'low'],
      [false, 'no_grant', 'low'],
      // The origin service: dana, provisioned by SCIM into a group the change API granted
      // viewer, reads at the grant's epoch; deprovisioned by SCIM, she is refused at once.
      [true, 'granted', 'low'],
      [false, 'suspended', 'low'],
    ],
  );
  assert.match(out, /^SCIM answered 200$/m);
  const grant = json.find((j) => 'revokes' in j);
  assert.equal(grant.revokes, false);
  assert.equal(decisions[4].epoch >= grant.epoch, true);
  assert.ok(decisions.slice(0, 4).every((d) => d.epoch === epoch.epoch));
  const batch = json.find((j) => 'decisions' in j);
  assert.deepEqual(batch.decisions.map((d) => d.allowed), [true, true]);
  assert.deepEqual(json.find((j) => 'subjects' in j), { subjects: ['user:alice'] });
  assert.equal(json.find((j) => 'counts' in j).epoch, epoch.epoch);
  assert.match(out, /HTTP\/1\.1 401/);
  // The admin page, served by the Worker under /admin (crates/worker/entry.mjs).
  assert.match(out, /^200 text\/html/m);
  assert.match(out, new RegExp(`Open http://127\\.0\\.0\\.1:${port}/admin/\\?tenant=acme in a browser`));
  assert.equal(json.find((j) => 'error' in j).error.code, 'unauthorized');
  // Nothing of this run still listens on the port.
  const left = spawnSync('bash', ['-c', `pgrep -af -- "--port ${port}|127.0.0.1:${servePort}" | grep -v pgrep || true`], { encoding: 'utf8' });
  assert.equal(left.stdout.trim(), '', `left running:\n${left.stdout}`);
  execFileSync('true');
});

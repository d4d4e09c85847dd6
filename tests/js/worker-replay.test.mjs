// `edge-authz replay` on decisions recorded from the real Worker in workerd (Miniflare): the
// Worker's decision log lines (with their digest and context) written to a .jsonl and decided again
// against a changed model: the flips are the ones the change makes, and against the model the
// Worker held, none ("same state" by the digest). The package's `onDecision` entries, from a
// Replica following the same Worker, have the Worker's shape and replay alike.
// Needs the Worker (scripts/build-worker.sh), the package (scripts/build-pkg.sh) and the command
// line (`cargo build -p edge-authz-cli`, or the release build: the newer of the two is run).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_DIR } from './pkg.mjs';
import { WHAT_IF, client, model, origin, pkg, startEdge, tempDir } from './edge.mjs';
import { freePort, sleep } from './publisher.mjs';

const CHECK = 'check-token';
// The command line: EDGE_AUTHZ_BIN, else the newer of the debug and release builds.
const BIN =
  process.env.EDGE_AUTHZ_BIN ??
  ['target/debug/edge-authz', 'target/release/edge-authz']
    .map((p) => path.join(REPO_DIR, p))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];

// The example model with carol a viewer from the office (a condition on the request's `ip`).
const BEFORE = model((m) => {
  m.conditions = { office: { attr: 'ip', op: 'in_cidr', value: ['10.0.0.0/8'] } };
  m.assignments.push({ principal: 'user:carol', role: 'viewer', resource: 'org:acme', when: 'office' });
});
// The change: alice loses her admin role, bob becomes a viewer of the roadmap, the office moves.
const AFTER = model((m) => {
  m.conditions = { office: { attr: 'ip', op: 'in_cidr', value: ['192.168.0.0/16'] } };
  m.assignments = m.assignments.filter((a) => a.principal !== 'user:alice');
  m.assignments.push({ principal: 'user:carol', role: 'viewer', resource: 'org:acme', when: 'office' });
  m.assignments.push({ principal: 'user:bob', role: 'viewer', resource: 'doc:roadmap' });
});
// After alice's admin assignment expires (examples/acme.json: 4070908800000).
const EXPIRED = 4_070_908_800_001;

function replay(dir, modelFile, log, more = []) {
  assert.ok(BIN, 'no edge-authz binary: cargo build -p edge-authz-cli');
  const r = spawnSync(BIN, ['replay', '--model', modelFile, '--log', log, '--json', '--digest', ...more], { cwd: dir, encoding: 'utf8' });
  let report;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    assert.fail(`replay printed no report (exit ${r.status}): ${r.stdout}\n${r.stderr}`);
  }
  return { code: r.status, report, stderr: r.stderr };
}

/** The requests made at every host, and the flips the change makes to them. */
async function decideAll(c) {
  // allowed -> denied by the change: alice's export (her admin role) and carol from the office.
  await c.check('user:alice', 'export', 'doc:roadmap');
  await c.check('user:carol', 'read', 'doc:roadmap', { ip: '10.1.2.3' });
  // denied -> allowed: bob's read.
  await c.check('user:bob', 'read', 'doc:roadmap');
  // unchanged: alice reads through group:staff; mallory is suspended; carol from elsewhere; alice's
  // export at a time after her assignment expired (denied before and after).
  await c.checkMany([
    ['user:alice', 'read', 'doc:roadmap'],
    ['user:mallory', 'read', 'doc:roadmap'],
  ]);
  await c.check('user:carol', 'read', 'doc:roadmap', { ip: '172.16.0.1' });
  await c.check('user:alice', 'export', 'doc:roadmap', { now: EXPIRED });
  // not replayable: a malformed id.
  await c.check('user:alice', 'read', 'not an id');
}

// Of decideAll's 8 decisions, 7 are replayed (not the malformed id's), 3 of them flip.
const EXPECTED = {
  flipped: 3,
  revoked: { export: 1, read: 1 },
  revokedReasons: { no_grant: 1, condition_failed: 1 },
  granted: { read: 1 },
};

function assertFlips(report, replayed) {
  assert.equal(report.replayed, replayed, JSON.stringify(report));
  assert.equal(report.flipped, EXPECTED.flipped);
  assert.equal(report.unchanged, replayed - EXPECTED.flipped);
  const counts = (g) => Object.fromEntries(Object.entries(g).map(([k, v]) => [k, v.count]));
  assert.deepEqual(counts(report.revoked.byAction), EXPECTED.revoked);
  assert.deepEqual(counts(report.revoked.byReason), EXPECTED.revokedReasons);
  assert.deepEqual(counts(report.granted.byAction), EXPECTED.granted);
  assert.deepEqual(counts(report.granted.byReason), { no_grant: 1 });
  const carol = report.revoked.byReason.condition_failed.examples[0];
  assert.deepEqual([carol.subject, carol.context], ['user:carol', { ip: '10.1.2.3' }]);
  assert.equal(report.revoked.byAction.export.examples[0].subject, 'user:alice');
  assert.equal(report.granted.byAction.read.examples[0].subject, 'user:bob');
}

describe('replaying decisions recorded by the Worker', () => {
  let edge;
  let o;
  let c;
  let dir;
  before(async () => {
    o = origin();
    dir = tempDir('edge-authz-replay-');
    writeFileSync(path.join(dir, 'before.json'), JSON.stringify(BEFORE));
    writeFileSync(path.join(dir, 'after.json'), JSON.stringify(AFTER));
    edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey, CHECK_TOKEN: CHECK }, port: await freePort() });
    c = client(edge, { token: CHECK });
    assert.equal((await c.push('snapshot', o.snapshot(BEFORE, 1))).status, 200);
  });
  after(() => edge?.dispose());

  test('the flips of a change, and none against the state the Worker held', async () => {
    await decideAll(c);
    // Not replayable either: a token check, and another tenant's decision (nothing loaded there).
    const authorize = await edge.fetch('/v1/acme/authorize', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${CHECK}` },
      body: JSON.stringify({ token: 'not.a.token', action: 'read', resource: 'doc:roadmap' }),
    });
    assert.equal(authorize.json.reason, 'token_invalid');
    await client(edge, { tenant: 'globex', token: CHECK }).check('user:alice', 'read', 'doc:roadmap');
    await sleep(300);
    const lines = edge.logs.filter((l) => l.event === 'decision');
    assert.equal(lines.length, 10, JSON.stringify(lines));
    const digest = (await c.status()).json.digest;
    for (const l of lines.filter((x) => x.tenant === 'acme')) {
      assert.equal(l.digest, digest);
      assert.ok(Object.hasOwn(l, 'requestId') && Object.hasOwn(l, 'latencyMs'));
    }
    // What a log collector keeps: the lines, with others among them.
    const log = path.join(dir, 'worker.jsonl');
    writeFileSync(
      log,
      ['{"event":"sync","tenant":"acme"}', ...lines.map((l) => JSON.stringify(l)), 'edge-authz: tenant acme: a warning'].join('\n') + '\n',
    );

    const changed = replay(dir, 'after.json', log);
    assert.equal(changed.code, 2, changed.stderr);
    assert.equal(changed.report.decisions, 9);
    assertFlips(changed.report, 7);
    assert.deepEqual(changed.report.notReplayable, { invalid_request: 1, token_check: 1 });
    assert.deepEqual(changed.report.skipped, { notDecisions: 1, otherTenant: 1 });
    assert.equal(changed.report.malformed, 1);
    assert.equal(changed.report.malformedLines[0].line, lines.length + 2);
    assert.equal(changed.report.digest.other, 7);

    // Against the model the Worker held: its digest is the model's, and nothing flips.
    const same = replay(dir, 'before.json', log);
    assert.equal(same.code, 0, JSON.stringify(same.report));
    assert.equal(same.report.flipped, 0);
    assert.equal(same.report.digest.model, digest);
    assert.equal(same.report.digest.sameState, true);
    assert.equal(same.report.digest.same, 7);
  });

  test("a Replica's onDecision entries have the Worker's shape and replay alike", async () => {
    const entries = [];
    const rep = new pkg.Replica({
      tenant: 'acme',
      publicKeys: [o.keys.publicKey],
      feed: edge.url,
      token: CHECK,
      follow: false,
      onDecision: (e) => entries.push(e),
    });
    try {
      await rep.ready();
      await decideAll(rep);
      // tryCheck logs what it answers.
      assert.equal(rep.tryCheck('user:alice', 'read', 'doc:roadmap').allowed, true);
    } finally {
      rep.close();
    }
    assert.equal(entries.length, 9);
    const worker = edge.logs.find((l) => l.tenant === 'acme' && l.index === undefined && !l.context && !l.token);
    const shape = (x) =>
      Object.keys(x)
        .filter((k) => !['requestId', 'latencyMs', 'index'].includes(k))
        .sort();
    assert.deepEqual(shape(entries[0]), shape(worker));
    assert.equal(entries[0].digest, worker.digest);
    const log = path.join(dir, 'replica.jsonl');
    writeFileSync(log, entries.map((e) => JSON.stringify(e)).join('\n'));
    const changed = replay(dir, 'after.json', log);
    assert.equal(changed.code, 2);
    assertFlips(changed.report, 8);
    assert.deepEqual(changed.report.notReplayable, { invalid_request: 1 });
    assert.equal(replay(dir, 'before.json', log).report.digest.sameState, true);
  });
});

// `edge-authz publish` under faults and at size: killed at each step and run again, heartbeats
// while it runs and fail-closed when it stops (--watch), a stream of changes (--stdin), and the
// 5,000 x 5,000 group. Against two Workers in workerd (Miniflare) on 127.0.0.1.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { agree, base, BOB, CAROL, decide, edgeStatus, edges, originOnDisk, startPublisher, useOriginAndEdges, withoutBob } from './publisher.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


describe('publish: killed at each step, run again, converges', () => {
  for (const step of ['after_journal', 'mid_push', 'before_ack']) {
    test(`killed at ${step}`, async () => {
      const origin = await originOnDisk();
      const all = await edges(origin.pub, 2);
      try {
        const first = await origin.publish(all, [origin.write(base())]);
        assert.equal(first.code, 0, first.stderr);
        const e0 = first.events.find((e) => e.event === 'issued').epoch;
        const revoke = origin.write(base(withoutBob));
        let second;
        const crashed = await origin.publish(all, [revoke], {
          env: { EDGE_AUTHZ_PUBLISH_PAUSE: step },
          onStderr(text, child) {
            if (second || !/paused at/.test(text)) return;
            // While it holds the lock, a second publisher for the tenant is refused.
            second = origin.publish(all, [revoke]).finally(() => child.kill('SIGKILL'));
          },
        });
        assert.equal(crashed.signal, 'SIGKILL', crashed.stderr);
        assert.match(crashed.stderr, new RegExp(`paused at ${step}`));
        const refused = await second;
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /another publisher holds the lock for tenant `acme`/);

        // Where the edges were left: never ahead of the journal.
        const heads = await Promise.all(all.map(edgeStatus));
        if (step === 'after_journal') assert.deepEqual(heads.map((h) => h.epoch), [e0, e0]);
        if (step === 'before_ack') assert.deepEqual(heads.map((h) => h.epoch), [e0 + 1, e0 + 1]);
        if (step === 'mid_push') {
          assert.equal(heads[0].watermark, e0 + 1, 'the first edge got the watermark');
          assert.equal(heads[1].watermark, 0, 'the second edge got nothing');
        }
        const journal = await origin.status();
        assert.equal(journal.epoch, e0 + 1);
        assert.equal(journal.jobs.open.length, 1);
        assert.equal(journal.jobs.open[0].epoch, e0 + 1);

        // Run again. After a crash right after the journal write, with a newer model still: the
        // journaled epoch goes out first, then the next one; no epoch number is issued twice.
        const next = step === 'after_journal'
          ? origin.write(base((m) => {
            withoutBob(m);
            m.memberships.push({ member: 'user:carol', group: 'group:eng' });
          }))
          : revoke;
        const rerun = await origin.publish(all, [next]);
        assert.equal(rerun.code, 0, rerun.stderr);
        const interrupted = rerun.events.find((e) => e.event === 'interrupted');
        assert.equal(interrupted.epoch, e0 + 1);
        const st = await agree(origin, all, [[BOB, false], [CAROL, step === 'after_journal']]);
        if (step === 'after_journal') {
          assert.equal(st.epoch, e0 + 2);
          assert.deepEqual(st.epochs, { initial: 1, revocation: 1, grant: 1 });
        } else {
          assert.equal(st.epoch, e0 + 1);
          assert.ok(rerun.events.some((e) => e.event === 'unchanged'), rerun.stdout);
          assert.deepEqual(st.epochs, { initial: 1, revocation: 1 });
        }
        assert.equal(st.jobs.interrupted, 1);
        assert.equal(st.jobs.open.length, 0);
        for (const e of all) assert.equal((await edgeStatus(e)).watermark, e0 + 1);
      } finally {
        await Promise.all(all.map((e) => e.dispose()));
      }
    });
  }
});

describe('publish --watch: follows the file, heartbeats keep edges answering, silence fails closed', () => {
  const ctx = useOriginAndEdges(2);

  test('watch, edit, heartbeat, stop', async () => {
    const { origin, all } = ctx;
    const EXPORT = ['user:alice', 'export', 'doc:roadmap']; // high tier
    const fresh = (m) => (m.freshness = { low: 60_000, standard: 60_000, high: 1_200 });
    const file = origin.write(base(fresh));
    const p = startPublisher(origin, all, [file, '--watch', '--poll', '50']);
    try {
      await p.until((e) => e.event === 'caught_up' && e.edge === all[1].url);
      await p.until((e) => e.event === 'caught_up' && e.edge === all[0].url);
      // Past the high tier's bound: heartbeats (every 400 ms, a third of it) keep it answering.
      await sleep(2_000);
      for (const e of all) {
        const d = await decide(e, ...EXPORT);
        assert.equal(d.allowed, true, JSON.stringify(d));
        assert.ok(Date.now() - (await edgeStatus(e)).confirmedAt < 1_200);
      }
      // A revocation written to the file reaches both edges.
      const t0 = Date.now();
      writeFileSync(file, JSON.stringify(base((m) => {
        fresh(m);
        withoutBob(m);
      })));
      const ack = await p.until((e) => e.event === 'revocation_acknowledged');
      for (const e of all) assert.equal((await decide(e, ...BOB)).allowed, false);
      console.log(`# --watch: file written to revocation acknowledged by 2 edges: ${ack.at - t0} ms (publisher's own measure ${ack.ms} ms)`);
      // A broken file is reported and changes nothing.
      writeFileSync(file, '{"version": 1, "tenant": ');
      await p.until((e) => e.event === 'rejected');
      assert.equal((await origin.status()).epoch, ack.epoch);
    } finally {
      await p.stop();
    }
    // The origin is silent: high-tier checks fail closed once the bound passes; low still answers.
    await sleep(1_500);
    for (const e of all) {
      const d = await decide(e, ...EXPORT);
      assert.equal(d.allowed, false);
      assert.equal(d.reason, 'freshness_exceeded');
      assert.equal((await decide(e, 'user:alice', 'read', 'doc:roadmap')).allowed, true);
    }
  });
});

describe('publish --stdin: a stream of changes', () => {
  const ctx = useOriginAndEdges(2);

  test('models, operations, arrays; bad lines rejected without an epoch', async () => {
    const { origin, all } = ctx;
    const lines = [
      JSON.stringify(base()),
      JSON.stringify({ op: 'remove_membership', member: 'user:bob', group: 'group:eng' }),
      'not json',
      JSON.stringify({ op: 'remove_membership', member: 'user:nobody', group: 'group:eng' }),
      JSON.stringify({ op: 'frobnicate' }),
      JSON.stringify([
        { op: 'add_membership', member: 'user:carol', group: 'group:eng' },
        { op: 'add_resource', id: 'doc:plan', parent: 'workspace:eng' },
      ]),
      JSON.stringify({ op: 'add_assignment', principal: 'user:dan', role: 'viewer', resource: 'nope:x' }),
      JSON.stringify({ op: 'suspend', subject: 'user:carol' }),
      JSON.stringify({ op: 'set_role', role: 'auditor', actions: ['read'] }),
    ];
    const r = await origin.publish(all, ['--stdin', '--tenant', 'acme'], { input: lines.join('\n') + '\n' });
    assert.equal(r.code, 0, r.stderr);
    const issued = r.events.filter((e) => e.event === 'issued');
    assert.deepEqual(issued.map((e) => e.kind), ['initial', 'revocation', 'grant', 'revocation', 'grant']);
    // Memberships, resources and suspensions are patched into the kept epoch; a model and a
    // role are compiled whole.
    assert.deepEqual(issued.map((e) => e.patched), [false, true, true, true, false]);
    const rejected = r.events.filter((e) => e.event === 'rejected').map((e) => e.error);
    assert.equal(rejected.length, 4, JSON.stringify(rejected));
    assert.match(rejected[0], /not JSON/);
    assert.match(rejected[1], /does not exist/);
    assert.match(rejected[2], /not an operation/);
    assert.match(rejected[3], /undeclared_resource|nope:x/);
    await agree(origin, all, [
      [BOB, false],
      [CAROL, false], // suspended
      [['user:alice', 'read', 'doc:plan'], true],
    ]);
  });
});

describe('publish: the 5,000 x 5,000 group', () => {
  const ctx = useOriginAndEdges(2);

  test('remove a member, remove the biggest assignment, add 1,000 members: deltas, not pairs', async () => {
    const { origin, all } = ctx;
    const N = 5_000;
    const m = {
      version: 1,
      tenant: 'acme',
      actions: { read: { tier: 'low' }, write: { tier: 'standard' } },
      roles: { viewer: ['read'], editor: ['read', 'write'] },
      resources: [{ id: 'org:big' }],
      memberships: [],
      assignments: [{ principal: 'group:big', role: 'editor', resource: 'org:big' }],
    };
    for (let w = 0; w < 50; w++) m.resources.push({ id: `workspace:w${w}`, parent: 'org:big' });
    for (let d = 0; d < N; d++) m.resources.push({ id: `doc:d${d}`, parent: `workspace:w${d % 50}` });
    for (let u = 0; u < N; u++) m.memberships.push({ member: `user:u${u}`, group: 'group:big' });
    for (let d = 0; d < N - 1; d++) m.assignments.push({ principal: 'group:big', role: 'viewer', resource: `doc:d${d}` });
    const first = await origin.publish(all, [origin.write(m)]);
    assert.equal(first.code, 0, first.stderr);
    const snap = first.events.find((e) => e.event === 'issued');
    assert.equal((await decide(all[0], 'user:u7', 'write', 'doc:d4999')).allowed, true);

    const changes = [
      { op: 'remove_membership', member: 'user:u7', group: 'group:big' },
      { op: 'remove_assignment', principal: 'group:big', role: 'editor', resource: 'org:big' },
      Array.from({ length: 1_000 }, (_, i) => ({ op: 'add_membership', member: `user:n${i}`, group: 'group:big' })),
    ];
    const r = await origin.publish(all, ['--stdin', '--tenant', 'acme'], {
      input: changes.map((c) => JSON.stringify(c)).join('\n') + '\n',
    });
    assert.equal(r.code, 0, r.stderr);
    const issued = r.events.filter((e) => e.event === 'issued');
    assert.deepEqual(issued.map((e) => e.kind), ['revocation', 'revocation', 'grant']);
    assert.deepEqual(issued.map((e) => e.patched), [true, true, true]);
    assert.ok(issued[0].deltaBytes < 1024, `one membership: ${issued[0].deltaBytes} bytes`);
    assert.ok(issued[1].deltaBytes < 1024, `one assignment: ${issued[1].deltaBytes} bytes`);
    assert.ok(issued[2].deltaBytes < 40 * 1024, `1,000 memberships: ${issued[2].deltaBytes} bytes`);
    // Every edge got deltas (watermarks carrying them), never the snapshot.
    const pushed = r.events.filter((e) => e.event === 'pushed').map((e) => e.kind);
    assert.ok(!pushed.includes('snapshot'), JSON.stringify(pushed));
    const acks = r.events.filter((e) => e.event === 'revocation_acknowledged').map((e) => e.ms);
    console.log(`# 5,000 x 5,000: snapshot ${snap.snapshotBytes} B; deltas ${issued.map((e) => e.deltaBytes).join(' / ')} B; revocations acknowledged by 2 edges in ${acks.join(' / ')} ms`);
    const st = await agree(origin, all, [
      [['user:u7', 'read', 'doc:d1'], false],
      [['user:u8', 'write', 'doc:d1'], false],
      [['user:u8', 'read', 'doc:d1'], true],
      [['user:n999', 'read', 'doc:d2'], true],
    ]);
    assert.equal(st.propagation.lastRun.revocation.count, 4);
    assert.equal(st.propagation.lastRun.grant.count, 2);
  });
});

describe('publish --stdin: a revocation waiting on a down edge', () => {
  const ctx = useOriginAndEdges(2);

  test('the edges that are up keep their heartbeats while it waits', async () => {
    const { origin, all } = ctx;
    const [up, down] = all;
    const EXPORT = ['user:alice', 'export', 'doc:roadmap'];
    const fresh = (m) => (m.freshness = { low: 60_000, standard: 60_000, high: 1_200 });
    const first = await origin.publish(all, [origin.write(base(fresh))]);
    assert.equal(first.code, 0, first.stderr);
    await down.dispose();
    const p = startPublisher(origin, all, ['--stdin', '--tenant', 'acme', '--ack-timeout', '3000']);
    try {
      p.child.stdin.write(`${JSON.stringify({ op: 'remove_membership', member: 'user:bob', group: 'group:eng' })}\n`);
      const issued = await p.until((e) => e.event === 'issued' && e.kind === 'revocation');
      // `issued` comes before the pushes: wait for the edge that is up to take it.
      await p.until((e) => e.event === 'caught_up' && e.edge === up.url && e.epoch === issued.epoch);
      assert.equal((await decide(up, ...BOB)).allowed, false);
      // Twice the high tier's bound into the wait: the edge that is up still answers it.
      await sleep(2_400);
      assert.ok(!p.events.some((e) => e.event === 'revocation_unacknowledged'), 'still waiting');
      const d = await decide(up, ...EXPORT);
      assert.equal(d.allowed, true, JSON.stringify(d));
      const unack = await p.until((e) => e.event === 'revocation_unacknowledged');
      assert.deepEqual(unack.missing.map((m) => m.edge), [down.url]);
      p.child.stdin.end();
      const { code } = await p.closed;
      assert.equal(code, 3, p.stderr());
    } finally {
      await p.stop();
    }
  });
});

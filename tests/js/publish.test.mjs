// `edge-authz publish` end to end: the release command line against two Workers in workerd
// (Miniflare, each its own Durable Object state) on 127.0.0.1.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { agree, base, BOB, CAROL, decide, edgeStatus, edges, originOnDisk, run, useOriginAndEdges, withoutBob } from './publisher.mjs';


const kinds = (events, edge) => events.filter((e) => e.event === 'pushed' && e.edge === edge.url).map((e) => e.kind);


describe('publish: a revocation is enforced at every edge before publish returns; grants follow', () => {
  const ctx = useOriginAndEdges(2);

  test('initial, revocation, grant, unchanged', async () => {
    const { origin, all } = ctx;
    const first = await origin.publish(all, [origin.write(base())]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(first.events.find((e) => e.event === 'issued').kind, 'initial');
    await agree(origin, all, [[BOB, true], [CAROL, false]]);

    // Remove bob from group:eng: publish returns only when both edges hold the watermark.
    const rev = await origin.publish(all, [origin.write(base(withoutBob))]);
    assert.equal(rev.code, 0, rev.stderr);
    const issued = rev.events.find((e) => e.event === 'issued');
    assert.equal(issued.kind, 'revocation');
    assert.ok(issued.deltaBytes < 1024, `a single membership's delta is ${issued.deltaBytes} bytes`);
    const ack = rev.events.find((e) => e.event === 'revocation_acknowledged');
    assert.ok(ack, rev.stdout);
    assert.deepEqual(ack.edges.sort(), all.map((e) => e.url).sort());
    // The very next check at each edge is denied.
    for (const e of all) {
      const d = await decide(e, ...BOB);
      assert.equal(d.allowed, false, `${e.url}: ${JSON.stringify(d)}`);
      assert.equal(d.reason, 'no_grant');
      assert.equal(d.epoch, issued.epoch);
      assert.equal(d.watermark, issued.epoch);
    }
    // The watermark carried the delta (no snapshot needed for an edge one step behind): one push
    // each, the publisher starting from what the journal says the edge holds.
    for (const e of all) {
      const pushed = rev.events.filter((x) => x.event === 'pushed' && x.edge === e.url);
      assert.deepEqual(pushed.map((x) => [x.kind, x.heartbeat, x.edgeEpoch, x.edgeWatermark]),
        [['watermark', false, issued.epoch, issued.epoch]], rev.stdout);
    }

    // Add carol: a grant, a delta, no watermark.
    const t0 = Date.now();
    const grant = await origin.publish(all, [origin.write(base((m) => {
      withoutBob(m);
      m.memberships.push({ member: 'user:carol', group: 'group:eng' });
    }))]);
    assert.equal(grant.code, 0, grant.stderr);
    const g = grant.events.find((e) => e.event === 'issued');
    assert.equal(g.kind, 'grant');
    assert.equal(g.watermarkBytes, null);
    for (const e of all) assert.deepEqual(kinds(grant.events, e), ['delta']);
    // It appears at both edges within the bound (the pushing isolate confirms at once).
    for (const e of all) {
      let d;
      while (!(d = await decide(e, ...CAROL)).allowed && Date.now() - t0 < 10_000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(d.allowed, true, `${e.url}: carol after ${Date.now() - t0} ms`);
    }
    const st = await agree(origin, all, [[BOB, false], [CAROL, true]]);
    assert.equal(st.watermark, issued.epoch);

    // The same model again: no new epoch.
    const same = await origin.publish(all, [origin.write(base((m) => {
      withoutBob(m);
      m.memberships.push({ member: 'user:carol', group: 'group:eng' });
    }))]);
    assert.equal(same.code, 0, same.stderr);
    assert.ok(same.events.some((e) => e.event === 'unchanged' && e.epoch === g.epoch), same.stdout);
    assert.equal((await origin.status()).epoch, g.epoch);

    // The journal's report: each edge at lag 0, propagation figures for both kinds.
    const report = await origin.status();
    assert.equal(report.edges.length, 2);
    for (const e of report.edges) {
      assert.equal(e.lag, 0);
      assert.equal(e.lastError, null);
      assert.equal(e.unappliedEpochs, 0);
    }
    assert.equal(report.propagation.all.revocation.count, 2);
    assert.equal(report.propagation.all.grant.count, 2);
    assert.ok(report.propagation.all.revocation.p99Ms >= report.propagation.all.revocation.p50Ms);
    assert.deepEqual(report.epochs, { initial: 1, revocation: 1, grant: 1 });
    const text = await run(['publish', '--status', '--state', origin.state, '--tenant', 'acme']);
    assert.match(text.stdout, /all runs: revocations n=2 p50 \d+ ms, p99 \d+ ms/);
    assert.match(text.stdout, /lag 0 .* ok/);
  });

  test('bad input changes nothing: an invalid model, another tenant, a wrong key at an edge', async () => {
    const { origin, all } = ctx;
    const before = await origin.status();
    const invalid = await origin.publish(all, [origin.write(base((m) => {
      m.assignments.push({ principal: 'user:x', role: 'nope', resource: 'org:acme' });
    }))]);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /undeclared_role|nope/);
    const other = await origin.publish(all, ['--tenant', 'acme', origin.write(base((m) => (m.tenant = 'globex')))]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /tenant_mismatch/);
    const noEdge = await run(['publish', '--state', origin.state, '--secret-key', origin.secretKey, origin.write(base())]);
    assert.equal(noEdge.code, 1);
    assert.match(noEdge.stderr, /--edge/);
    // An edge that trusts another key refuses every message: reported with its code, retried
    // later, and the journal does not move.
    const [stranger] = await edges((await originOnDisk()).pub, 1);
    try {
      const r = await origin.publish([all[0], stranger], ['--tenant', 'acme']);
      assert.equal(r.code, 0, r.stderr);
      const err = r.events.find((e) => e.event === 'edge_error');
      assert.equal(err.edge, stranger.url);
      assert.equal(err.code, 'unknown_key');
      assert.deepEqual(r.events.find((e) => e.event === 'done').pending, [stranger.url]);
      assert.match(r.stderr, /not caught up yet/);
      assert.equal((await stranger.c.status()).json.epoch, null);
    } finally {
      await stranger.dispose();
    }
    const after = await origin.status();
    assert.equal(after.epoch, before.epoch);
    assert.equal(after.digest, before.digest);
  });
});

describe('publish: an edge that is down', () => {
  const ctx = useOriginAndEdges(2, { persist: true });

  test('the revocation is reported unacknowledged; the returning edge catches up (snapshot) before answering', async () => {
    const { origin, all } = ctx;
    const [up, down] = all;
    const fresh = (m) => (m.freshness = { low: 1500, standard: 1500, high: 1500 });
    const first = await origin.publish(all, [origin.write(base(fresh))]);
    assert.equal(first.code, 0, first.stderr);
    await agree(origin, all, [[BOB, true]]);

    await down.dispose();
    // Remove bob (a revocation), then 17 grants, while `down` is away: more links than an edge
    // replays, so it must get the snapshot.
    const lines = [JSON.stringify({ op: 'remove_membership', member: 'user:bob', group: 'group:eng' })];
    for (let i = 0; i < 17; i++) {
      lines.push(JSON.stringify({ op: 'add_membership', member: `user:u${i}`, group: 'group:eng' }));
    }
    const t0 = Date.now();
    const rev = await origin.publish(all, ['--stdin', '--tenant', 'acme', '--ack-timeout', '800'], {
      input: lines.join('\n') + '\n',
    });
    assert.equal(rev.code, 3, `exit code 3 when a revocation is not acknowledged\n${rev.stderr}`);
    assert.match(rev.stderr, new RegExp(`NOT acknowledged by 1 of 2 edges: ${down.url}`));
    const unack = rev.events.find((e) => e.event === 'revocation_unacknowledged');
    assert.deepEqual(unack.missing.map((m) => m.edge), [down.url]);
    assert.deepEqual(unack.acknowledged, [up.url]);
    assert.ok(!rev.events.some((e) => e.event === 'revocation_acknowledged'));
    // The edge that is up already denies.
    assert.equal((await decide(up, ...BOB)).allowed, false);
    const st = await origin.status();
    assert.equal(st.epoch, first.events.find((e) => e.event === 'issued').epoch + 18);
    const lagging = st.edges.find((e) => e.url === down.url);
    assert.equal(lagging.lag, 18);
    assert.equal(lagging.enforcesWatermark, false);
    assert.ok(lagging.lastError, 'the down edge has its error on record');
    assert.equal(st.edges.find((e) => e.url === up.url).lag, 0);

    // `down` returns with its old state. Past its freshness bound since it last heard from the
    // origin, it answers nothing from that state.
    await new Promise((r) => setTimeout(r, Math.max(0, 1700 - (Date.now() - t0))));
    await down.restart();
    const d = await decide(down, ...BOB);
    assert.equal(d.allowed, false, JSON.stringify(d));
    assert.equal(d.reason, 'freshness_exceeded');

    // The publisher (a rerun: it converges from the journal) catches it up with the snapshot.
    const again = await origin.publish(all, ['--tenant', 'acme']);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(kinds(again.events, down).includes('snapshot'), again.stdout);
    assert.ok(!kinds(again.events, up).includes('snapshot'));
    await agree(origin, all, [[BOB, false], [['user:u16', 'read', 'doc:roadmap'], true]]);
    const report = await origin.status();
    assert.ok(report.edges.every((e) => e.lag === 0 && e.lastError === null), JSON.stringify(report.edges));
  });
});

// What the publisher believes, and when: an edge is caught up only when its answers say so (a bare
// `200 {}` is not an acknowledgement), an edge whose watermark ran ahead of the journal is reported
// as such and recovered on request (`--recover-watermark`), a new journal never wraps past the
// last epoch, `--watch` sees every change of content, whatever the file's time and size, and
// Workers whose pushes need `PUSH_TOKEN` take them only with `--push-token-file` (or
// EDGE_AUTHZ_PUSH_TOKEN), the token never printed.
// Against Workers in workerd (Miniflare) and small fake edges, all on 127.0.0.1.
import assert from 'node:assert/strict';
import { readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  agree, base, BOB, CAROL, decide, fakeEdge, originOnDisk, run, startPublisher, useOriginAndEdges, withoutBob,
} from './publisher.mjs';

const withCarol = (m) => m.memberships.push({ member: 'user:carol', group: 'group:eng' });

describe('publish: only an answer that says where the edge stands acknowledges a push', () => {
  test('an edge answering 200 {} to a snapshot is not caught up', async () => {
    const origin = await originOnDisk();
    // It answers the probe properly (no snapshot yet), then `{}` to everything else.
    const fake = await fakeEdge((method, p) =>
      p.endsWith('/watermark') ? { body: { watermark: 0, epoch: null } } : { body: {} });
    try {
      const r = await origin.publish([fake], [origin.write(base())]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(fake.requests.some((q) => q.method === 'PUT' && q.path === '/v1/acme/snapshot'), JSON.stringify(fake.requests));
      const err = r.events.find((e) => e.event === 'edge_error');
      assert.equal(err?.code, 'bad_answer', r.stdout);
      assert.equal(r.events.some((e) => e.event === 'caught_up'), false, r.stdout);
      assert.deepEqual(r.events.find((e) => e.event === 'done').pending, [fake.url]);
      const st = await origin.status();
      const [edge] = st.edges;
      assert.equal(edge.state, 'failing');
      assert.equal(edge.epoch, null);
      assert.equal(edge.lag, st.epoch);
      assert.match(edge.lastError, /bad_answer/);
      // A second run, from the journal: still not caught up.
      const again = await run(['publish', '--json', '--state', origin.state, '--secret-key', origin.secretKey,
        '--edge', fake.url, '--tenant', 'acme']);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(again.events.find((e) => e.event === 'done').pending, [fake.url]);
    } finally {
      await fake.close();
    }
  });

  test('a snapshot answered with another epoch, a watermark answered below the one pushed', async () => {
    const origin = await originOnDisk();
    const fake = await fakeEdge((method, p) =>
      p.endsWith('/watermark') ? { body: { watermark: 0, epoch: null } } : { body: { epoch: 999 } });
    try {
      const r = await origin.publish([fake], [origin.write(base())]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.events.find((e) => e.event === 'edge_error')?.code, 'bad_answer', r.stdout);
      assert.equal((await origin.status()).edges[0].state, 'failing');
    } finally {
      await fake.close();
    }
  });
});

describe('publish: a new journal starts above the edges, or says why it cannot', () => {
  for (const [name, epoch] of [['u64::MAX', '18446744073709551615'], ['the largest epoch', '9007199254740991']]) {
    test(`an edge at ${name}: epoch_exhausted, nothing issued`, async () => {
      const origin = await originOnDisk();
      // The raw number: JavaScript's JSON would round 2^64 - 1.
      const fake = await fakeEdge(() => ({ body: `{"watermark": 0, "epoch": ${epoch}}` }));
      try {
        const r = await origin.publish([fake], [origin.write(base())]);
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, /epoch_exhausted/);
        assert.match(r.stderr, new RegExp(`${fake.url.replace(/\./g, '\\.')} holds epoch or watermark ${epoch}`));
        assert.equal((await origin.status()).epoch, null);
      } finally {
        await fake.close();
      }
    });
  }
});

describe('publish: an edge whose watermark ran ahead of the journal', () => {
  const ctx = useOriginAndEdges(2);

  test('is reported, not caught up; --recover-watermark reissues the model at its watermark', async () => {
    const { origin, all } = ctx;
    const [ahead, fine] = all;
    const first = await origin.publish(all, [origin.write(base())]);
    assert.equal(first.code, 0, first.stderr);
    const e0 = first.events.find((e) => e.event === 'issued').epoch;
    const W = e0 + 1000;

    // The signing tool refuses it when it is given the journal.
    const out = path.join(origin.dir, 'w.bin');
    const sign = (extra) => run(['watermark', '--tenant', 'acme', '--watermark', String(W), '--secret-key',
      origin.secretKey, '-o', out, ...extra]);
    const refused = await sign(['--state', origin.state]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /watermark_ahead/);
    // Without it, it cannot know: the watermark is signed and reaches one edge.
    const signed = await sign([]);
    assert.equal(signed.code, 0, signed.stderr);
    const pushed = await ahead.c.push('watermark', readFileSync(out));
    assert.equal(pushed.status, 200, pushed.body);
    assert.equal((await decide(ahead, ...BOB)).reason, 'stale_snapshot');

    // The publisher reports it apart, never as caught up, and goes on with the other edge.
    const grant = await origin.publish(all, [origin.write(base(withCarol))]);
    assert.equal(grant.code, 0, grant.stderr);
    const err = grant.events.find((e) => e.event === 'edge_error' && e.edge === ahead.url);
    assert.equal(err?.code, 'watermark_ahead', grant.stdout);
    assert.match(err.error, /--recover-watermark/);
    assert.equal(grant.events.some((e) => e.event === 'caught_up' && e.edge === ahead.url), false, grant.stdout);
    assert.ok(grant.events.some((e) => e.event === 'caught_up' && e.edge === fine.url), grant.stdout);
    assert.deepEqual(grant.events.find((e) => e.event === 'done').pending, [ahead.url]);
    assert.equal((await decide(fine, ...CAROL)).allowed, true);
    let st = await origin.status();
    const state = (url) => st.edges.find((e) => e.url === url).state;
    assert.equal(state(ahead.url), 'watermark_ahead');
    assert.equal(state(fine.url), 'caught_up');
    const text = await run(['publish', '--status', '--state', origin.state, '--tenant', 'acme']);
    assert.match(text.stdout, /watermark_ahead/);

    // Recovery: the latest model at epoch W, then numbering goes on from there.
    const rec = await origin.publish(all, ['--tenant', 'acme', '--recover-watermark']);
    assert.equal(rec.code, 0, rec.stderr);
    const issued = rec.events.find((e) => e.event === 'issued');
    assert.equal(issued.kind, 'recovery');
    assert.equal(issued.epoch, W);
    assert.equal(issued.edge, ahead.url);
    st = await agree(origin, all, [[BOB, true], [CAROL, true]]);
    assert.equal(st.epoch, W);
    assert.equal(st.epochs.recovery, 1);
    for (const e of st.edges) assert.equal(e.state, 'caught_up');

    const rev = await origin.publish(all, [origin.write(base((m) => {
      withCarol(m);
      withoutBob(m);
    }))]);
    assert.equal(rev.code, 0, rev.stderr);
    assert.equal(rev.events.find((e) => e.event === 'issued').epoch, W + 1);
    assert.ok(rev.events.some((e) => e.event === 'revocation_acknowledged'), rev.stdout);
    await agree(origin, all, [[BOB, false], [CAROL, true]]);

    // Nothing left to recover.
    const none = await origin.publish(all, ['--tenant', 'acme', '--recover-watermark']);
    assert.equal(none.code, 0, none.stderr);
    assert.ok(none.events.some((e) => e.event === 'recovery' && e.needed === false), none.stdout);
    assert.equal((await origin.status()).epoch, W + 1);
  });
});

describe('publish --watch: a change of content is a change, whatever its time and size', () => {
  const ctx = useOriginAndEdges(1);

  test('a same-size revocation written with the old modification time is published', async () => {
    const { origin, all } = ctx;
    const file = origin.write(base());
    // A whole second, which every file system and utimes keep exactly.
    const mtime = Math.floor(Date.now() / 1000) - 60;
    utimesSync(file, mtime, mtime);
    const p = startPublisher(origin, all, [file, '--watch', '--poll', '50']);
    try {
      await p.until((e) => e.event === 'caught_up');
      assert.equal((await decide(all[0], ...BOB)).allowed, true);
      const before = statSync(file);
      // user:bob leaves group:eng, user:bot (the same length) joins: a revocation for bob.
      const text = readFileSync(file, 'utf8');
      const revoked = text.replace('"user:bob"', '"user:bot"');
      assert.notEqual(revoked, text);
      assert.equal(revoked.length, text.length);
      writeFileSync(file, revoked);
      utimesSync(file, mtime, mtime);
      const after = statSync(file);
      assert.equal(after.size, before.size);
      assert.equal(after.mtimeMs, before.mtimeMs);
      assert.equal(after.mtimeMs, mtime * 1000);
      const ack = await p.until((e) => e.event === 'revocation_acknowledged', 10_000);
      assert.equal((await decide(all[0], ...BOB)).allowed, false);
      assert.equal((await origin.status()).epoch, ack.epoch);
    } finally {
      await p.stop();
    }
  });
});

describe('publish --push-token-file: Workers whose push endpoints need PUSH_TOKEN', () => {
  const TOKEN = 'push-secret-4b1d0c9e';
  const ctx = useOriginAndEdges(2, { vars: { PUSH_TOKEN: TOKEN } });
  // No token from the test's own environment unless a step gives one.
  const noEnv = { env: { EDGE_AUTHZ_PUSH_TOKEN: '' } };
  const secret = (r) => {
    assert.equal(r.stdout.includes(TOKEN), false, 'the token is printed on stdout');
    assert.equal(r.stderr.includes(TOKEN), false, 'the token is printed on stderr');
  };

  test('without the token: unauthorized, not caught up; with it: caught up at the published epoch', async () => {
    const { origin, all } = ctx;
    const tokenFile = path.join(origin.dir, 'push.token');

    // No token: each edge answers 401, reported as its error with the way out, nothing caught up.
    const bare = await origin.publish(all, [origin.write(base())], noEnv);
    assert.equal(bare.code, 0, bare.stderr);
    secret(bare);
    for (const e of all) {
      const errs = bare.events.filter((x) => x.event === 'edge_error' && x.edge === e.url);
      assert.equal(errs.length, 1, bare.stdout);
      assert.equal(errs[0].code, 'unauthorized');
      assert.match(errs[0].error, /--push-token-file/);
      assert.equal(bare.events.some((x) => x.event === 'caught_up' && x.edge === e.url), false, bare.stdout);
      assert.equal((await decide(e, ...BOB)).reason, 'no_snapshot');
    }
    assert.deepEqual(bare.events.find((x) => x.event === 'done').pending.sort(), all.map((e) => e.url).sort());
    assert.match(bare.stderr, /unauthorized/);
    let st = await origin.status();
    for (const e of st.edges) {
      assert.equal(e.state, 'failing');
      assert.match(e.lastError, /unauthorized/);
    }

    // A wrong token: unauthorized too, saying the token sent was refused.
    writeFileSync(tokenFile, 'not-the-token\n');
    const wrong = await origin.publish(all, ['--tenant', 'acme', '--push-token-file', tokenFile], noEnv);
    assert.equal(wrong.code, 0, wrong.stderr);
    secret(wrong);
    const werr = wrong.events.filter((x) => x.event === 'edge_error');
    assert.equal(werr.length, 2, wrong.stdout);
    for (const e of werr) {
      assert.equal(e.code, 'unauthorized');
      assert.match(e.error, /refused the push token/);
    }
    assert.equal(wrong.events.some((x) => x.event === 'caught_up'), false, wrong.stdout);

    // A revocation without the token waits out its ack timeout, retried slowly, not in a loop.
    const rev = await origin.publish(all, [origin.write(base(withoutBob)), '--ack-timeout', '2500'], noEnv);
    assert.equal(rev.code, 3, rev.stdout);
    secret(rev);
    assert.ok(rev.events.some((x) => x.event === 'revocation_unacknowledged'), rev.stdout);
    st = await origin.status();
    for (const e of st.edges) {
      assert.equal(e.state, 'failing');
      // The first try and retries after 1 s and 2 s: a few, never a hot loop.
      assert.ok(e.failures >= 1 && e.failures <= 4, JSON.stringify(e));
    }

    // An empty or unreadable token file: a usage error before anything is pushed.
    writeFileSync(tokenFile, '  \n');
    const empty = await origin.publish(all, ['--tenant', 'acme', '--push-token-file', tokenFile], noEnv);
    assert.equal(empty.code, 1, empty.stdout);
    assert.match(empty.stderr, /--push-token-file: .*is empty/);
    assert.equal(empty.events.some((x) => x.event === 'pushed'), false, empty.stdout);
    unlinkSync(tokenFile);
    const missing = await origin.publish(all, ['--tenant', 'acme', '--push-token-file', tokenFile], noEnv);
    assert.equal(missing.code, 1, missing.stdout);
    assert.match(missing.stderr, /--push-token-file: cannot read/);

    // The token (a line with its newline, padded): every edge caught up at the journal's epoch,
    // and checks answer from it.
    writeFileSync(tokenFile, `  ${TOKEN}  \n`);
    const good = await origin.publish(all, ['--tenant', 'acme', '--push-token-file', tokenFile], noEnv);
    assert.equal(good.code, 0, good.stderr);
    secret(good);
    assert.equal(good.events.some((x) => x.event === 'edge_error'), false, good.stdout);
    for (const e of all) assert.ok(good.events.some((x) => x.event === 'caught_up' && x.edge === e.url), good.stdout);
    assert.deepEqual(good.events.find((x) => x.event === 'done').pending, []);
    st = await agree(origin, all, [[BOB, false], [CAROL, false]]);
    for (const e of all) assert.equal((await decide(e, ...BOB)).epoch, st.epoch);
    for (const e of st.edges) assert.equal(e.state, 'caught_up');

    // EDGE_AUTHZ_PUSH_TOKEN when no file is given; the file wins over it.
    const byEnv = await origin.publish(all, [origin.write(base(withCarol))], { env: { EDGE_AUTHZ_PUSH_TOKEN: TOKEN } });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    secret(byEnv);
    assert.equal(byEnv.events.some((x) => x.event === 'edge_error'), false, byEnv.stdout);
    st = await agree(origin, all, [[BOB, true], [CAROL, true]]);
    const fileWins = await origin.publish(all, [origin.write(base()), '--push-token-file', tokenFile],
      { env: { EDGE_AUTHZ_PUSH_TOKEN: 'not-the-token' } });
    assert.equal(fileWins.code, 0, fileWins.stderr);
    assert.ok(fileWins.events.some((x) => x.event === 'revocation_acknowledged'), fileWins.stdout);
    st = await agree(origin, all, [[BOB, true], [CAROL, false]]);
    for (const e of all) assert.equal((await decide(e, ...CAROL)).epoch, st.epoch);
  });
});

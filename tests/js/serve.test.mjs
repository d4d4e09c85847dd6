// `edge-authz serve`, the origin as a service, against two Workers in workerd: the change API
// (epochs as consistency tokens, revocations answered once enforced), the model and status
// routes, idempotency keys, tokens, limits and the metrics.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { base, BOB, decide, edges, freePort, originOnDisk } from './publisher.mjs';
import { newToken, ok, startServe } from './serve.mjs';

describe('serve: the change API against two edges', () => {
  const ctx = {};
  before(async () => {
    ctx.origin = await originOnDisk();
    ctx.all = await edges(ctx.origin.pub, 2);
    ctx.svc = await startServe(ctx.origin, ctx.all);
  });
  after(async () => {
    await ctx.svc?.stop();
    await Promise.all((ctx.all ?? []).map((e) => e.dispose()));
  });

  test('a model, a grant read at its epoch at both edges, a revocation enforced when answered', async () => {
    const { svc, all } = ctx;
    // No journal yet: the model and status are 404, a change has nothing to apply to.
    assert.equal((await svc.request('GET', '/v1/acme/model')).status, 404);
    assert.equal(ok(await svc.changes({ op: 'suspend', subject: 'user:x' }), 404).error.code, 'unknown_tenant');

    const first = ok(await svc.putModel(base()));
    assert.ok(first.epoch >= 1);
    assert.equal(first.revokes, false);
    const got = ok(await svc.request('GET', '/v1/acme/model'));
    assert.equal(got.epoch, first.epoch);
    assert.deepEqual(got.model.memberships, base().memberships);

    // A grant: answered once committed, with its epoch; a check that names the epoch is granted
    // at both edges.
    const grant = ok(await svc.changes({ op: 'add_membership', member: 'user:dave', group: 'group:eng' }));
    assert.equal(grant.epoch, first.epoch + 1);
    assert.equal(grant.revokes, false);
    for (const e of all) {
      const r = await e.c.check('user:dave', 'read', 'doc:roadmap', { at_least_epoch: grant.epoch });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json.allowed, true, JSON.stringify(r.json));
      assert.ok(r.json.epoch >= grant.epoch);
    }

    // A revocation: its 200 says every edge enforces it; the next check at each is denied.
    const rev = ok(await svc.changes([{ op: 'remove_membership', member: 'user:bob', group: 'group:eng' }]));
    assert.deepEqual([rev.epoch, rev.revokes, rev.enforced], [grant.epoch + 1, true, true]);
    for (const e of all) assert.equal((await decide(e, ...BOB)).allowed, false);

    // Both changes were patched into the kept epoch (the model was compiled whole).
    const issued = (epoch) => svc.events.find((e) => e.event === 'issued' && e.epoch === epoch);
    assert.deepEqual([first, grant, rev].map((r) => issued(r.epoch)?.patched), [false, true, true]);

    // The status is the journal's report.
    const st = ok(await svc.request('GET', '/v1/acme/status'));
    assert.equal(st.epoch, rev.epoch);
    assert.equal(st.watermark, rev.epoch);
    assert.equal(st.edges.length, 2);
  });

  test('an Idempotency-Key returns the first answer and issues no new epoch', async () => {
    const { svc } = ctx;
    const key = newToken();
    const op = { op: 'add_membership', member: 'user:erin', group: 'group:eng' };
    const a = ok(await svc.changes(op, { key }));
    const b = await svc.changes(op, { key });
    assert.deepEqual(ok(b), a);
    assert.equal(b.headers.get('idempotent-replayed'), 'true');
    // Without the key, the same operation no longer applies (erin is a member): 422.
    assert.equal(ok(await svc.changes(op), 422).error.code, 'change_not_applicable');
    // The key with another body: refused.
    const other = await svc.changes({ op: 'add_membership', member: 'user:zed', group: 'group:eng' }, { key });
    assert.equal(ok(other, 422).error.code, 'idempotency_key_reused');
    const st = ok(await svc.request('GET', '/v1/acme/status'));
    assert.equal(st.epoch, a.epoch);
  });

  test('changes that do not apply or compile are 422 and change nothing', async () => {
    const { svc } = ctx;
    const before = ok(await svc.request('GET', '/v1/acme/model'));
    const cases = [
      [{ op: 'remove_membership', member: 'user:nobody', group: 'group:eng' }, 422, 'change_not_applicable'],
      [{ op: 'add_assignment', principal: 'user:a', role: 'nope', resource: 'doc:roadmap' }, 422, 'invalid_model'],
      [[{ op: 'add_membership', member: 'user:f', group: 'group:eng' },
        { op: 'add_resource', id: 'doc:x', parent: 'folder:none' }], 422, 'invalid_model'],
      [{ op: 'frobnicate' }, 400, 'invalid_operation'],
      [{ op: 'add_membership', member: 'user:f', group: 'group:eng', extra: 1 }, 400, 'invalid_operation'],
      [before.model, 400, 'invalid_operation'],
      ['{"op": ', 400, 'malformed_json'],
    ];
    for (const [body, status, code] of cases) {
      const r = await svc.changes(body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.json.error.code, code, r.text);
    }
    const wrongTenant = await svc.putModel({ ...before.model, tenant: 'other' });
    assert.equal(ok(wrongTenant, 422).error.code, 'tenant_mismatch');
    const after = ok(await svc.request('GET', '/v1/acme/model'));
    assert.deepEqual(after, before);
  });

  test('tokens, methods, media types and sizes', async () => {
    const { svc } = ctx;
    const op = { op: 'suspend', subject: 'user:mallory2' };
    let r = await svc.changes(op, { token: null });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate'), /^Bearer/);
    assert.equal((await svc.changes(op, { token: newToken() })).status, 401);
    assert.equal((await svc.request('DELETE', '/v1/acme/changes')).status, 405);
    assert.equal((await svc.request('GET', '/v1/acme/changes')).headers.get('allow'), 'POST');
    r = await svc.request('POST', '/v1/acme/changes', { body: JSON.stringify(op), type: 'text/plain' });
    assert.equal(ok(r, 415).error.code, 'unsupported_media_type');
    r = await svc.request('POST', '/v1/acme/changes', { body: 'x'.repeat((1 << 20) + 1) });
    assert.equal(ok(r, 413).error.code, 'too_large');
    assert.equal(ok(await svc.request('GET', '/v1/Bad!/status'), 400).error.code, 'invalid_tenant');
    assert.equal(ok(await svc.request('GET', '/v2/acme/status'), 404).error.code, 'not_found');
    assert.equal(ok(await svc.request('GET', '/healthz', { token: null })).ok, true);
  });

  test('SCIM over HTTP: bad bodies and tokens are SCIM errors and change nothing', async () => {
    const { svc } = ctx;
    const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
    const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
    const scim = (method, p, body, opts = {}) =>
      svc.request(method, `/scim/v2/acme${p}`, { body, type: 'application/scim+json', ...opts });
    const model = ok(await svc.request('GET', '/v1/acme/model'));
    const cases = [
      ['POST', '/Users', '{"schemas": [', 400, 'invalidSyntax'],
      ['POST', '/Users', { schemas: [USER], userName: 'x1', favouriteColour: 'blue' }, 400, 'invalidSyntax'],
      ['POST', '/Users', { schemas: [USER] }, 400, undefined],
      ['POST', '/Users', { schemas: [USER], userName: 'x'.repeat(2 << 20) }, 413, undefined],
      ['GET', '/Users/nope', undefined, 404, undefined],
      ['GET', '/Users?filter=userName%20co%20%22a%22', undefined, 400, 'invalidFilter'],
      ['PATCH', '/Users/nope', { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [] }, 404, undefined],
      ['GET', '/Nothing', undefined, 404, undefined],
    ];
    for (const [method, p, body, status, scimType] of cases) {
      const r = await scim(method, p, typeof body === 'object' ? JSON.stringify(body) : body);
      assert.equal(r.status, status, `${method} ${p}: ${r.text.slice(0, 300)}`);
      assert.match(r.headers.get('content-type'), /^application\/scim\+json/);
      assert.deepEqual(r.json.schemas, [ERROR], r.text.slice(0, 300));
      assert.equal(r.json.status, String(status));
      if (scimType) assert.equal(r.json.scimType, scimType, r.text);
    }
    // Methods a route does not take: 405 with Allow, a body or not; .search is not served.
    let r = await svc.request('POST', '/scim/v2/acme/Schemas');
    assert.equal(r.status, 405, r.text);
    assert.equal(r.headers.get('allow'), 'GET');
    assert.deepEqual(r.json.schemas, [ERROR]);
    assert.equal((await scim('DELETE', '/Users')).headers.get('allow'), 'GET, POST');
    assert.equal((await scim('POST', '/Users/.search', '{}')).status, 501);
    // Tokens: none, unknown.
    assert.equal((await scim('GET', '/Users', undefined, { token: null })).status, 401);
    assert.equal((await scim('GET', '/Users', undefined, { token: newToken() })).status, 401);
    // The journal is locked by the running service: a second one on the same state refuses to
    // start, naming the lock (and nothing is left running).
    const second = await startServe(ctx.origin, ctx.all).then(async (s) => {
      await s.stop();
      return undefined;
    }, (e) => e);
    assert.ok(second instanceof Error && /locked/.test(second.message), String(second));
    assert.deepEqual(ok(await svc.request('GET', '/v1/acme/model')), model);
  });

  test('metrics in the Prometheus text format', async () => {
    const { svc } = ctx;
    assert.equal((await svc.request('GET', '/metrics', { token: null })).status, 401);
    const r = await svc.request('GET', '/metrics');
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const st = ok(await svc.request('GET', '/v1/acme/status'));
    assert.match(r.text, new RegExp(`^edge_authz_epoch\\{tenant="acme"\\} ${st.epoch}$`, 'm'));
    assert.match(r.text, /^edge_authz_propagation_seconds_count\{tenant="acme",direction="revocation"\} [1-9]/m);
    assert.match(r.text, /^edge_authz_propagation_seconds_bucket\{tenant="acme",direction="grant",le="\+Inf"\} [1-9]/m);
    assert.match(r.text, /^edge_authz_edge_lag_epochs\{tenant="acme",edge="http:\/\/127\.0\.0\.1:\d+"\} 0$/m);
    assert.match(r.text, /^edge_authz_requests_total\{api="changes",tenant="acme",method="POST",status="422"\} [1-9]/m);
    assert.match(r.text, /^# TYPE edge_authz_propagation_seconds histogram$/m);
  });
});

describe('serve: an edge that does not acknowledge', () => {
  const ctx = {};
  before(async () => {
    ctx.origin = await originOnDisk();
    ctx.all = await edges(ctx.origin.pub, 1);
    // A second edge where nothing listens: it never acknowledges anything.
    ctx.dead = { url: `http://127.0.0.1:${await freePort()}` };
    ctx.svc = await startServe(ctx.origin, [...ctx.all, ctx.dead], { args: ['--ack-timeout', '600'] });
  });
  after(async () => {
    await ctx.svc?.stop();
    await Promise.all((ctx.all ?? []).map((e) => e.dispose()));
  });

  test('a revocation is 202 enforced: false past the ack timeout, a SCIM deprovisioning 503, a grant 200', async () => {
    const { svc, all, dead } = ctx;
    const first = ok(await svc.putModel(base()));
    // A grant is answered at once; not every edge has it.
    const grant = ok(await svc.changes({ op: 'add_membership', member: 'user:dave', group: 'group:eng' }));
    assert.deepEqual([grant.revokes, grant.enforced], [false, false]);
    assert.ok(grant.epoch > first.epoch);

    const key = newToken();
    const t0 = Date.now();
    const rev = await svc.changes({ op: 'remove_membership', member: 'user:bob', group: 'group:eng' }, { key });
    assert.equal(rev.status, 202, rev.text);
    assert.deepEqual([rev.json.revokes, rev.json.enforced, rev.json.epoch], [true, false, grant.epoch + 1]);
    assert.ok(Date.now() - t0 >= 500, `answered after ${Date.now() - t0} ms`);
    // The edge that acknowledged denies; the status names the one that did not.
    assert.equal((await decide(all[0], ...BOB)).allowed, false);
    const st = ok(await svc.request('GET', '/v1/acme/status'));
    assert.equal(st.epoch, rev.json.epoch);
    assert.notEqual(st.edges.find((e) => e.url === dead.url).state, 'caught_up');
    // Its retry waits again, and says the same: nothing new is issued.
    const again = await svc.changes({ op: 'remove_membership', member: 'user:bob', group: 'group:eng' }, { key });
    assert.equal(again.status, 202);
    assert.deepEqual(again.json, rev.json);
    assert.equal(ok(await svc.request('GET', '/v1/acme/status')).epoch, rev.json.epoch);

    // SCIM: a user is provisioned (a grant-like write: at once), then deactivated: 503 with
    // Retry-After, the change committed and enforced at the live edge.
    const scim = (method, p, body) =>
      svc.request(method, `/scim/v2/acme${p}`, { body: JSON.stringify(body), type: 'application/scim+json' });
    const user = await scim('POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'erin' });
    assert.equal(user.status, 201, user.text);
    const off = await scim('PATCH', `/Users/${user.json.id}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    assert.equal(off.status, 503, off.text);
    assert.equal(off.headers.get('retry-after'), '1');
    assert.match(off.json.detail, /committed but not yet enforced/);
    const r = await all[0].c.check('user:erin', 'read', 'doc:roadmap');
    assert.equal(r.json.reason, 'suspended', r.body);
    const model = ok(await svc.request('GET', '/v1/acme/model'));
    assert.ok(model.model.suspended.includes('user:erin'));
  });
});

// The admin page's token inspector (docs/admin.md, "Tokens"), in headless Chromium, served by the
// Worker in Miniflare under /admin: a model with token issuers and sessions (tests/tokens/make.mjs,
// its tokens made now by jose) loaded in the page; its issuers and sessions in the status area;
// tokens pasted, read in the page and checked by the page's evaluator (this Chromium's WebCrypto:
// RS256, ES256, Ed25519), every cell against the package's answers in Node; session gates,
// malformed tokens, a Worker connection (decoded, never sent); and no request, storage, address
// or attribute that carries a token. Also, in Node, the page's reading (www/lib/jws.js) against
// the package's `token_error` for every shared case. Screenshots in target/admin-screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ASSETS, origin, startEdge, tempDir } from './edge.mjs';
import { launchChromium, openPage } from './hosts.mjs';
import { REPO_DIR, requirePackage } from './pkg.mjs';
import { ISSUER, makeCases } from '../tokens/make.mjs';
import { identityOf, inspectToken, readToken } from '../../www/lib/jws.js';

const pkg = requirePackage();
const SHOTS = path.join(REPO_DIR, 'target/admin-screenshots');
const CHECK_TOKEN = 'admin-tokens-check-token';

let edge;
let browser;
let made; // {model, cases}: made at the real clock, so that the tokens are valid now
let file;
const tokens = new Set(); // every token pasted into a page, looked for in what leaves it

before(async () => {
  assert.ok(existsSync(path.join(ASSETS, 'admin/index.html')), 'build/assets/admin is missing: run scripts/build-www.sh');
  made = await makeCases(Date.now());
  // Every tier's bound ten minutes: a slow machine never makes the Worker refuse as stale.
  made.model.freshness = { low: 600_000, standard: 600_000, high: 600_000 };
  const signer = origin('acme');
  edge = await startEdge({ port: 0, vars: { ORIGIN_PUBLIC_KEYS: signer.keys.publicKey, CHECK_TOKEN } });
  const put = await fetch(`${edge.url}/v1/acme/snapshot`, {
    method: 'PUT',
    headers: { 'content-type': 'application/msgpack' },
    body: signer.snapshot(made.model, 1),
  });
  assert.equal(put.status, 200, await put.text());
  file = path.join(tempDir('edge-authz-admin-tokens-'), 'tokens.json');
  writeFileSync(file, JSON.stringify(made.model));
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await edge?.dispose();
});

const tokenOf = (name) => {
  const c = made.cases.find((x) => x.name === name);
  assert.ok(c, `no case ${name}`);
  return c.token;
};

/** The page, ready; every request it makes recorded (URL, headers, body). */
async function adminPage() {
  const { page, problems } = await openPage(browser);
  page.setDefaultTimeout(30_000);
  await page.setViewportSize({ width: 1280, height: 900 });
  const requests = [];
  page.on('request', (r) => requests.push({ url: r.url(), headers: JSON.stringify(r.headers()), body: r.postData() ?? '' }));
  await page.goto(`${edge.url}/admin/?tenant=acme`);
  await page.waitForSelector('body[data-ready="yes"]');
  return { page, problems, requests };
}

async function loadModel(page) {
  await page.setInputFiles('#model-file', file);
  await page.waitForSelector('body[data-loaded="preview"]');
}

/** Pastes `token` into the inspector (after clearing it) and waits for `until`. */
async function paste(page, token, until = '#token-verdict') {
  tokens.add(token);
  await page.click('[data-view="token"]');
  await page.click('#token-clear');
  await page.fill('#token-input', token);
  await page.waitForSelector(`#token-out ${until}`);
}

/** The token table the page drew: {resource: {action: {allowed, reason, tokenError}}}. */
const cells = (page) =>
  page.$$eval('#token-may tbody tr', (trs) => Object.fromEntries(trs.map((tr) => [tr.dataset.resource, Object.fromEntries(
    [...tr.querySelectorAll('td')].map((td) => [td.dataset.action, { allowed: td.dataset.allowed === 'true', reason: td.dataset.reason, tokenError: td.dataset.tokenError }]))])));

/** What the package answers in Node for the same cells. */
async function expected(ev, token, resources, context) {
  const out = {};
  for (const r of resources) {
    out[r] = {};
    for (const a of ['read', 'write', 'export']) {
      const d = await ev.checkToken(token, a, r, context);
      out[r][a] = { allowed: d.allowed, reason: d.reason, tokenError: d.tokenError ?? '' };
    }
  }
  return out;
}

const RESOURCES = ['org:acme', 'workspace:eng', 'doc:roadmap'];

/** The inspector in the viewport (a full-page screenshot draws the sticky table heads apart). */
async function shot(page, name) {
  await page.$eval('#view-token', (el) => el.scrollIntoView());
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Asserts that nothing the page sent or kept holds a token pasted into it. */
async function assertNotLeaked(page, requests) {
  assert.ok(requests.length > 0, 'the page made no request at all: the recording is broken');
  // Each token, and each of its parts long enough not to occur by chance.
  const needles = [...tokens].flatMap((t) => [t, ...t.trim().split('.')]).filter((n) => n.length >= 16);
  for (const r of requests) {
    for (const n of needles) {
      assert.ok(!r.url.includes(n) && !r.headers.includes(n) && !r.body.includes(n), `a request carries a token: ${r.url}`);
    }
  }
  const kept = await page.evaluate(() => JSON.stringify({
    local: { ...localStorage },
    session: { ...sessionStorage },
    cookie: document.cookie,
    href: location.href,
    html: document.documentElement.outerHTML,
  }));
  for (const n of needles) assert.ok(!kept.includes(n), 'the page keeps a token in storage, its address or an attribute');
}

test('the page reads tokens as the evaluator does: every shared case, and hostile texts', async () => {
  const ev = pkg.Evaluator.preview(made.model);
  const identity = identityOf(made.model);
  const b64 = (s) => Buffer.from(s).toString('base64url');
  const sig = b64('x'.repeat(64));
  const header = b64('{"alg":"EdDSA","kid":"ed1"}');
  const payload = { iss: ISSUER, sub: 'alice', aud: 'https://api.acme.example', exp: Math.floor(Date.now() / 1000) + 600 };
  const hostile = [
    `${header}.${b64(JSON.stringify(payload).replace('"sub"', '"sub":"x","sub"'))}.${sig}`, // a claim twice
    `${header}.${b64(JSON.stringify(payload).replace('"iss"', '"\\u0069ss"'))}.${sig}`, // a name with an escape
    `${header}.${b64(`\ufeff${JSON.stringify(payload)}`)}.${sig}`, // a byte order mark
    `${header}.${b64(JSON.stringify({ ...payload, sub: 'x' }).replace('"x"', '"\\ud800"'))}.${sig}`, // a lone surrogate
    `${header}.${b64('[1]')}.${sig}`, // not an object
    `${header}.${b64(JSON.stringify(payload))}.${sig}=`, // padding
    `${header}.${b64(JSON.stringify(payload))}.${sig}.x`, // four parts
  ];
  const all = [...made.cases.map((c) => [c.name, c.token, c.action, c.resource, c.context]), ...hostile.map((t, i) => [`hostile ${i}`, t, 'read', 'doc:roadmap'])];
  for (const [name, token, action, resource, context] of all) {
    const d = await ev.checkToken(token, action, resource, context);
    let fault;
    let subject = null;
    try {
      const x = inspectToken(identity, readToken(token), Date.now());
      fault = x.fault;
      subject = x.subject;
    } catch (e) {
      assert.equal(e.code, 'malformed_token', name);
      fault = 'malformed';
    }
    // The page cannot verify a signature: where the evaluator finds a bad one, the page sees none.
    assert.equal(fault, d.tokenError === 'signature' ? null : d.tokenError ?? null, `${name}: ${JSON.stringify(d)}`);
    if (d.subject !== undefined) assert.equal(subject, d.subject, name);
  }
  ev.free();
});

test('a model with issuers and sessions: shown in the status area, tokens read and checked in the page', async () => {
  const { page, problems, requests } = await adminPage();
  await loadModel(page);
  // The issuers and sessions, from the model (the evaluator's status does not count them).
  assert.equal(await page.textContent('[data-field="issuers"]'), `2: ${ISSUER}, https://other.example/`);
  assert.equal(await page.textContent('[data-field="sessions"]'), '1 revoked session, 1 revoked family, 1 subject signed out (not_before)');
  const issuers = await page.$$eval('#issuers tbody tr', (trs) => trs.map((tr) => ({
    issuer: tr.dataset.issuer,
    keys: [...tr.querySelectorAll('.key')].map((k) => `${k.dataset.kid} ${k.dataset.alg}`),
    claims: [...tr.querySelectorAll('.claims [data-attr]')].map((c) => `${c.dataset.attr}=${c.dataset.claim}`),
    text: tr.textContent,
  })));
  assert.deepEqual(issuers.map((i) => [i.issuer, i.keys, i.claims]), [
    [ISSUER, ['rsa1 RS256', 'ec1 ES256', 'ed1 EdDSA'], ['amr=amr', 'mfa_age_s=@auth_age_s']],
    ['https://other.example/', ['other1 EdDSA'], []],
  ]);
  assert.match(issuers[0].text, /RSA 2048/);
  assert.match(issuers[0].text, /user:\{sub\}/);
  assert.match(issuers[0].text, /0 s$/);
  const sessions = await page.$$eval('#sessions tbody tr', (trs) => trs.map((tr) => ({ ...tr.dataset })));
  assert.deepEqual(sessions, [
    { kind: 'revoked', sid: 'sess-revoked' },
    { kind: 'family', family: 'fam-stolen', claim: 'fam' },
    { kind: 'not_before', subject: 'user:bob' },
  ]);
  const ev = pkg.Evaluator.preview(made.model);

  // A valid EdDSA token: its header, claims, issuer, key, subject and attributes; granted read.
  const valid = tokenOf('EdDSA valid');
  await paste(page, valid);
  assert.equal(await page.textContent('#token-header tr[data-member="alg"] td'), 'EdDSA');
  assert.equal(await page.textContent('#token-header tr[data-member="kid"] td'), 'ed1');
  assert.equal(await page.textContent('#token-header tr[data-member="typ"] td'), 'JWT');
  assert.equal(await page.textContent('#token-claims tr[data-claim="sub"] td:last-child'), 'alice');
  assert.equal(await page.textContent('#token-claims tr[data-claim="iss"] td:last-child'), ISSUER);
  const exp = JSON.parse(Buffer.from(valid.split('.')[1], 'base64url')).exp;
  assert.equal(await page.getAttribute('#token-claims tr[data-claim="exp"] time', 'datetime'), new Date(exp * 1000).toISOString());
  assert.match(await page.textContent('#token-claims tr[data-claim="exp"]'), /in (59|60) min/);
  assert.equal(await page.getAttribute('#token-issuer', 'data-issuer'), ISSUER);
  assert.equal(await page.getAttribute('#token-key', 'data-kid'), 'ed1');
  assert.equal(await page.getAttribute('#token-key', 'data-alg'), 'EdDSA');
  assert.equal(await page.getAttribute('#token-subject', 'data-subject'), 'user:alice');
  assert.equal(await page.textContent('#token-attrs li[data-attr="amr"] .value'), '["pwd"]');
  assert.equal(await page.getAttribute('#token-attrs li[data-attr="mfa_age_s"]', 'data-given'), 'false');
  assert.equal(await page.getAttribute('#token-session', 'data-gate'), '');
  assert.equal(await page.getAttribute('#token-expect', 'data-fault'), '');
  assert.equal(await page.getAttribute('#token-verdict', 'data-subject'), 'user:alice');
  assert.equal(await page.getAttribute('#token-verdict', 'data-token-error'), '');
  let shown = await cells(page);
  assert.deepEqual(Object.keys(shown), RESOURCES);
  assert.deepEqual(shown['doc:roadmap'].read, { allowed: true, reason: 'granted', tokenError: '' });
  assert.deepEqual(shown, await expected(ev, valid, RESOURCES));
  // A cell explains itself: the token's subject and the grant's path.
  await page.click('#token-may tr[data-resource="doc:roadmap"] td[data-action="read"]');
  assert.match(await page.textContent('.token-may .explain .token-line'), /subject from the token: user:alice/);
  assert.equal(JSON.parse(await page.textContent('.token-may .explain pre.decision')).subject, 'user:alice');
  await shot(page, 'token');

  // RS256 and ES256 through this Chromium's WebCrypto too, on one resource picked.
  await page.fill('#token-resource', 'doc:roadmap');
  await page.dispatchEvent('#token-resource', 'change');
  for (const [name, kid] of [['RS256 valid write', 'rsa1'], ['ES256 valid', 'ec1']]) {
    await paste(page, tokenOf(name));
    assert.equal(await page.getAttribute('#token-key', 'data-kid'), kid, name);
    shown = await cells(page);
    assert.deepEqual(Object.keys(shown), ['doc:roadmap'], name);
    assert.deepEqual(shown, await expected(ev, tokenOf(name), ['doc:roadmap']), name);
    assert.equal(shown['doc:roadmap'].write.reason, 'granted', name);
  }

  // The mapped claims replace the request context's: a context's mfa_age_s does not count for a
  // token whose issuer maps it and that has no auth_time; a recent auth_time does.
  await page.fill('#attrs', JSON.stringify({ mfa_age_s: 10 }));
  await page.dispatchEvent('#attrs', 'change');
  await page.fill('#token-resource', 'workspace:eng');
  await page.dispatchEvent('#token-resource', 'change');
  await paste(page, tokenOf('EdDSA export without auth_time'));
  shown = await cells(page);
  assert.equal(shown['workspace:eng'].export.reason, 'step_up_required');
  assert.deepEqual(shown, await expected(ev, tokenOf('EdDSA export without auth_time'), ['workspace:eng'], { mfa_age_s: 10 }));
  await paste(page, tokenOf('EdDSA export with recent auth_time'));
  // auth_time was a minute before the tokens were made: the age counts from then.
  const age = Number(await page.textContent('#token-attrs li[data-attr="mfa_age_s"] .value'));
  assert.ok(age >= 60 && age < 900, `mfa_age_s ${age}`);
  assert.equal((await cells(page))['workspace:eng'].export.reason, 'granted');
  await page.fill('#attrs', '');
  await page.dispatchEvent('#attrs', 'change');
  await page.fill('#token-resource', '');
  await page.dispatchEvent('#token-resource', 'change');

  // The session gates: a revoked session, a revoked family, a subject signed out.
  for (const [name, gate] of [['EdDSA revoked session', 'session_revoked'], ['ES256 revoked family', 'family_revoked'], ['RS256 bob issued before not_before', 'signed_out']]) {
    await paste(page, tokenOf(name));
    assert.equal(await page.getAttribute('#token-session', 'data-gate'), gate, name);
    assert.equal(await page.getAttribute('#token-expect', 'data-fault'), gate, name);
    assert.equal(await page.getAttribute('#token-verdict', 'data-token-error'), gate, name);
    assert.equal(await page.getAttribute('#token-verdict', 'data-reason'), 'session_revoked', name);
    shown = await cells(page);
    assert.deepEqual(shown, await expected(ev, tokenOf(name), RESOURCES), name);
    for (const r of RESOURCES) for (const a of ['read', 'write', 'export']) assert.equal(shown[r][a].reason, 'session_revoked', `${name} ${a} ${r}`);
  }
  await shot(page, 'token-session-revoked');

  // Refused before the sessions: another issuer, an unknown key, a bad signature, expired.
  for (const [name, fault] of [['EdDSA wrong issuer', 'issuer'], ['ES256 unknown kid', 'key'], ['EdDSA signed by another key', 'signature'], ['RS256 expired', 'expired']]) {
    await paste(page, tokenOf(name));
    assert.equal(await page.getAttribute('#token-verdict', 'data-token-error'), fault, name);
    assert.equal(await page.getAttribute('#token-expect', 'data-fault'), fault === 'signature' ? '' : fault, name);
  }

  // Malformed: garbage, a cut payload, a character outside base64url, alg none. A clear message,
  // the evaluator's token_invalid (malformed or algorithm), nothing thrown.
  for (const [text, message, fault] of [
    ['garbage', /not a compact JWS: 1 part separated by dots, not three/, 'malformed'],
    [tokenOf('truncated payload'), /the payload is not JSON/, 'malformed'],
    [tokenOf('bad base64url in payload'), /the payload is not base64url: character \d+ is "\*"/, 'malformed'],
    ['eyJhbGciOiJub25lIn0.e30.', null, 'algorithm'],
  ]) {
    await paste(page, text);
    if (message) {
      assert.match(await page.textContent('#token-out .token-problem'), /^Not a token an edge reads: /);
      assert.match(await page.textContent('#token-out .token-problem'), message);
      assert.equal(await page.getAttribute('#token-out', 'data-state'), 'malformed');
    } else {
      assert.equal(await page.getAttribute('#token-expect', 'data-fault'), 'algorithm');
    }
    assert.equal(await page.getAttribute('#token-verdict', 'data-token-error'), fault, text);
    assert.equal(await page.getAttribute('#token-verdict', 'data-reason'), 'token_invalid', text);
  }
  await shot(page, 'token-malformed');
  assert.equal(await page.$('#message.error'), null, 'a malformed token is no page error');

  // Clear empties the inspector; a token with a Bearer prefix and spaces is read all the same.
  await page.click('#token-clear');
  assert.equal(await page.textContent('#token-out'), '');
  await paste(page, `  Bearer ${valid}\n`);
  assert.equal(await page.getAttribute('#token-verdict', 'data-subject'), 'user:alice');

  await assertNotLeaked(page, requests);
  ev.free();
  await page.close();
  assert.deepEqual(problems, []);
});

test('connected to a Worker: the token is decoded in the page and never sent', async () => {
  const { page, problems, requests } = await adminPage();
  await page.fill('#worker-token', CHECK_TOKEN);
  await page.click('#connect');
  await page.waitForSelector('body[data-loaded="worker"]');
  assert.match(await page.textContent('[data-field="issuers"]'), /a Worker's status does not list its issuers or sessions/);
  assert.equal(await page.isHidden('#identity'), true);
  await paste(page, tokenOf('EdDSA valid'), '#token-not-sent');
  assert.equal(await page.textContent('#token-claims tr[data-claim="sub"] td:last-child'), 'alice');
  assert.equal(await page.textContent('#token-header tr[data-member="kid"] td'), 'ed1');
  assert.equal(await page.$('#token-verdict'), null);
  assert.equal(await page.$('#token-issuer'), null);
  await paste(page, 'not.a.token', '.token-problem');
  // The page did talk to the Worker (with its CHECK_TOKEN), and never with a pasted token.
  assert.ok(requests.some((r) => r.url.includes('/v1/acme/status') && r.headers.includes(CHECK_TOKEN)));
  await assertNotLeaked(page, requests);
  await page.close();
  assert.deepEqual(problems, []);
});

// Every code example of the package's README (pkg/README.md), run in its own host against the
// installed package (fresh.mjs). The examples are taken from the README text at run time, so the
// README cannot drift from what is tested:
// - "Node.js (CommonJS)" and "Node.js (ESM)": each block is written verbatim into the consumer
//   folder as .cjs / .mjs and run by node; a preloaded recorder (`--require`) keeps what each
//   `console.log` printed, which must equal the value its `// ...` comment claims (the leading
//   JavaScript literal of the comment; the rest of the comment is prose).
// - "Browsers": the html block is the body of index.html in a folder next to the consumer's
//   node_modules, with model.json the model of the CommonJS example; headless Chromium opens it
//   and the page's body must be the decision, with no console errors or failed requests (the
//   server and the browser from hosts.mjs).
// - The serving examples run against a live origin: the project's Worker in workerd on
//   127.0.0.1 and the release publisher (`publish --stdin`, heartbeats every 300 ms) pushing the
//   CommonJS example's model with short freshness bounds (low 3 s, standard 2 s, high 1 s) to the
//   Worker and to the "receiving the origin's pushes" example, run as a server (stopped by PID).
//   "following the origin's Worker" runs as the Node blocks do, with the Worker's URL, feed token
//   and key in its environment; "Cloudflare Workers" is bundled as wrangler bundles a Worker
//   (hosts.mjs's bundleWorker) and run in Miniflare with those as vars. Each is asked again after
//   waiting past a freshness bound: the heartbeats keep every answer the same.
// - "Errors": a fragment (`edge` and `deltaFromTheFuture` are not defined); it is run unchanged
//   between a prelude that defines them and a check of what it caught and of the evaluator.
// Any other fenced block in the README fails the first test: an example nobody runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { Miniflare } from 'miniflare';
import { freshInstall } from './fresh.mjs';
import { bundleWorker, launchChromium, openPage, serveStatic } from './hosts.mjs';
import { PKG_DIR } from './pkg.mjs';

const README_PATH = path.join(PKG_DIR, 'README.md');
const README = readFileSync(README_PATH, 'utf8');

// ---------------------------------------------------------------------------------------------
// The README's sections and their fenced blocks.

/** `[{heading, blocks: [{lang, code, line}]}]`, one entry per `## ` section (the intro is ''). */
function sections(text) {
  const out = [{ heading: '', blocks: [] }];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const h = /^## (.*)$/.exec(lines[i]);
    if (h) {
      out.push({ heading: h[1].trim(), blocks: [] });
      continue;
    }
    const fence = /^(`{3,})([\w-]*)\s*$/.exec(lines[i]);
    if (fence) {
      const start = i + 1;
      let end = start;
      while (end < lines.length && lines[end].trimEnd() !== fence[1]) end++;
      assert.ok(end < lines.length, `pkg/README.md:${i + 1}: unclosed code fence`);
      out.at(-1).blocks.push({ lang: fence[2], code: lines.slice(start, end).join('\n') + '\n', line: i + 1 });
      i = end;
    }
  }
  return out;
}

const SECTIONS = sections(README);

// Where each example lives: a heading prefix and the fence's language.
const EXAMPLES = {
  cjs: { heading: 'Node.js (CommonJS)', lang: 'js' },
  esm: { heading: 'Node.js (ESM)', lang: 'js' },
  browser: { heading: 'Browsers', lang: 'html' },
  worker: { heading: 'Cloudflare Workers', lang: 'js' },
  replica: { heading: 'Node.js: following', lang: 'js' },
  receiver: { heading: 'Node.js: receiving', lang: 'js' },
  errors: { heading: 'Errors', lang: 'js' },
};

/** The one block of `lang` in the section whose heading starts with `heading`. */
function example(name) {
  const { heading, lang } = EXAMPLES[name];
  const found = SECTIONS.filter((s) => s.heading.startsWith(heading));
  assert.equal(found.length, 1, `pkg/README.md: one section "${heading}..." (found ${found.length})`);
  const blocks = found[0].blocks.filter((b) => b.lang === lang);
  assert.equal(blocks.length, 1, `pkg/README.md, "${found[0].heading}": one \`\`\`${lang} block`);
  return blocks[0];
}

/**
 * A JavaScript expression's value, evaluated with nothing in scope (and cloned out of the vm's
 * realm, so that deepStrictEqual sees plain objects and arrays); throws if it is not one.
 */
function literal(source) {
  return structuredClone(vm.runInNewContext(`(${source}\n)`, Object.create(null), { timeout: 1000 }));
}

/**
 * The values the block's `// ...` comments claim its `console.log` calls print, in order: the
 * comment on the call's line, continued by `//` lines right below it. The claim is the longest
 * leading part of the comment that is a JavaScript expression with a value ('no_grant' in
 * `'no_grant', at epoch 2`); the rest is returned as prose.
 */
function claims(block) {
  const lines = block.code.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const log = /console\.log\((.*)\);\s*(?:\/\/ ?(.*))?$/.exec(lines[i]);
    if (!log) continue;
    const comment = log[2] === undefined ? [] : [log[2]];
    for (let j = i + 1; j < lines.length && /^\s*\/\//.test(lines[j]); j++) {
      comment.push(lines[j].replace(/^\s*\/\/ ?/, ''));
    }
    const text = comment.join('\n').trim();
    const where = `pkg/README.md:${block.line + 1 + i}`;
    assert.ok(text !== '', `${where}: console.log(${log[1]}) without a comment saying what it prints`);
    let claim;
    for (let n = text.length; n > 0 && claim === undefined; n--) {
      try {
        claim = { value: literal(text.slice(0, n)), prose: text.slice(n).replace(/^[\s,:;]+/, '') };
      } catch {
        // not an expression yet (or not one with a value): shorter
      }
    }
    assert.ok(claim, `${where}: the comment "${text}" does not start with a value`);
    out.push({ where, printed: log[1], ...claim });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Node: a block run by node in the consumer folder, its console.log arguments recorded.

// Preloaded with --require (before CommonJS and ESM alike): records console.log's arguments as
// JSON (one array per call) into the file named by README_RECORD, and still prints them.
const RECORDER = `'use strict';
const { writeFileSync } = require('node:fs');
const calls = [];
const log = console.log;
console.log = function (...args) {
  calls.push(JSON.parse(JSON.stringify(args)));
  return log.apply(this, args);
};
process.on('exit', () => writeFileSync(process.env.README_RECORD, JSON.stringify(calls)));
`;

/** Runs `code` as `file` in the consumer folder: `{calls, stdout, stderr}` (asserts exit 0). */
function runNode(file, code, env = {}) {
  const { consumer } = freshInstall();
  writeFileSync(path.join(consumer, 'readme-record.cjs'), RECORDER);
  writeFileSync(path.join(consumer, file), code);
  const record = path.join(consumer, `${file}.calls.json`);
  const r = spawnSync(process.execPath, ['--require', './readme-record.cjs', file], {
    cwd: consumer,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, ...env, README_RECORD: record, NODE_OPTIONS: '' },
  });
  assert.equal(r.status, 0, `node ${file} exited with ${r.status} ${r.signal ?? ''}\n${r.stderr}`);
  assert.equal(r.stderr, '', `node ${file} wrote to stderr`);
  return { calls: JSON.parse(readFileSync(record, 'utf8')), stdout: r.stdout, stderr: r.stderr };
}

/** Each console.log printed one value, the one its comment claims. */
function assertClaims(block, calls) {
  const expected = claims(block);
  assert.equal(calls.length, expected.length, `console.log calls: ${JSON.stringify(calls)}`);
  expected.forEach((c, i) => {
    assert.equal(calls[i].length, 1, `${c.where}: one value printed`);
    assert.deepEqual(calls[i][0], c.value, `${c.where}: console.log(${c.printed}) printed what the comment says`);
  });
  return expected;
}

/** The CommonJS example's `const model = {...};`, as a value. */
function readmeModel() {
  const m = /^const model = (\{[\s\S]*?^\});$/m.exec(example('cjs').code);
  assert.ok(m, 'pkg/README.md: the CommonJS example defines `const model = {...};`');
  return literal(m[1]);
}

// ---------------------------------------------------------------------------------------------
// Servers and browsers, started once, stopped in after().

let server;
let browser;
let mf;

after(async () => {
  await browser?.close();
  await server?.close();
  await mf?.dispose();
});

before(() => {
  freshInstall();
});

// ---------------------------------------------------------------------------------------------

test('every code block of pkg/README.md is one of the examples run here', () => {
  const tested = new Set(Object.keys(EXAMPLES).map(example));
  const untested = SECTIONS.flatMap((s) =>
    s.blocks.filter((b) => !tested.has(b)).map((b) => `pkg/README.md:${b.line} (${s.heading || 'intro'}, ${b.lang})`),
  );
  assert.deepEqual(untested, [], 'code blocks no test runs');
});

test('README "Node.js (CommonJS)": require, sign, load, check, as its comments say', () => {
  const block = example('cjs');
  const { calls } = runNode('readme-commonjs.cjs', block.code);
  const expected = assertClaims(block, calls);
  // The comments' key facts, spelled out (the claims were parsed from the README).
  assert.equal(expected.length, 2);
  assert.equal(calls[0][0].reason, 'granted');
  assert.deepEqual(calls[0][0].grant.path, ['user:alice', 'group:eng']);
  assert.equal(calls[1][0], 'no_grant');
});

test('README "Node.js (ESM)": a revocation on a watermark, and a lagging edge refusing', () => {
  const block = example('esm');
  // After the README's code, unchanged: what the comments say without printing it
  // ("'no_grant', at epoch 2"; the lagging edge still holds epoch 1 under watermark 2).
  const trailer = `
process.stdout.write('\\n#readme-trailer ' + JSON.stringify({
  edge: edge.check('user:alice', 'read', 'doc:plan'),
  lagging: lagging.check('user:alice', 'read', 'doc:plan'),
}) + '\\n');
`;
  const { calls, stdout } = runNode('readme-esm.mjs', block.code + trailer);
  const expected = assertClaims(block, calls);
  assert.deepEqual(
    expected.map((c) => c.value),
    [true, 'no_grant', 'stale_snapshot'],
  );
  const extra = JSON.parse(/^#readme-trailer (.*)$/m.exec(stdout)[1]);
  const epoch = /at epoch (\d+)/.exec(expected[1].prose);
  assert.ok(epoch, `the comment on the revoked check names its epoch: "${expected[1].prose}"`);
  assert.deepEqual(
    extra.edge,
    { allowed: false, reason: 'no_grant', epoch: Number(epoch[1]), watermark: 2, tier: 'low' },
    `${expected[1].where}: the revoked check, "${expected[1].prose}"`,
  );
  assert.deepEqual(
    extra.lagging,
    { allowed: false, reason: 'stale_snapshot', epoch: 1, watermark: 2, tier: 'low' },
    `${expected[2].where}: the lagging edge holds epoch 1 under watermark 2`,
  );
});

test('README "Errors": the fragment, wrapped, catches epoch_gap and leaves the evaluator as it was', () => {
  const block = example('errors');
  // A fragment: `edge` and `deltaFromTheFuture` come from the README's surrounding prose. The
  // prelude defines them (an evaluator at epoch 1; a delta from epoch 2 to 3) and records what
  // applyDelta threw, since the fragment's branch only holds a comment.
  const prelude = `import { Evaluator, generateKeyPair, compileSnapshot, diffModels } from 'edge-authz';
const model = ${JSON.stringify(readmeModel())};
const { publicKey, secretKey } = generateKeyPair();
const real = new Evaluator({ tenant: 'acme', publicKeys: [publicKey] });
real.loadSnapshot(compileSnapshot(model, { epoch: 1, secretKey }));
const later = { ...model, memberships: [] };
const { delta: deltaFromTheFuture } = diffModels(model, later, { baseEpoch: 2, epoch: 3, secretKey });
const before = real.status();
const thrown = [];
const edge = {
  applyDelta(bytes) {
    try {
      return real.applyDelta(bytes);
    } catch (e) {
      thrown.push(e);
      throw e;
    }
  },
};
// ---- pkg/README.md, "Errors", unchanged ----
`;
  const trailer = `// ---- end of the README's fragment ----
const after = real.status();
process.stdout.write(JSON.stringify({
  thrown: thrown.map((e) => ({ isError: e instanceof Error, code: e.code, message: e.message })),
  same: JSON.stringify(before) === JSON.stringify(after),
  epoch: after.epoch,
  check: real.check('user:alice', 'read', 'doc:plan').reason,
}));
`;
  const { stdout } = runNode('readme-errors.mjs', prelude + block.code + trailer);
  const out = JSON.parse(stdout);
  assert.equal(out.thrown.length, 1, 'applyDelta threw once, and the fragment caught it');
  assert.equal(out.thrown[0].isError, true);
  // The fragment's branch is for epoch_gap: the error it catches must have that code.
  const branch = /e\.code === '(\w+)'/.exec(block.code);
  assert.ok(branch, 'the fragment tests e.code');
  assert.equal(out.thrown[0].code, branch[1], out.thrown[0].message);
  assert.equal(out.same, true, 'a call that throws leaves the evaluator exactly as it was');
  assert.equal(out.epoch, 1);
  assert.equal(out.check, 'granted');
});

test('README "Browsers": the html block as a page in Chromium shows the decision', async () => {
  const block = example('browser');
  const { root, consumer } = freshInstall();
  // A site folder: index.html (the block, as the body), model.json, the consumer's node_modules.
  const site = path.join(root, 'readme-site');
  mkdirSync(site);
  symlinkSync(path.join(consumer, 'node_modules'), path.join(site, 'node_modules'), 'dir');
  writeFileSync(
    path.join(site, 'index.html'),
    `<!doctype html>
<html>
<head><meta charset="utf-8"><title>pkg/README.md, Browsers</title><link rel="icon" href="data:,"></head>
<body>
${block.code}</body>
</html>
`,
  );
  const model = readmeModel();
  writeFileSync(path.join(site, 'model.json'), JSON.stringify(model));

  server = await serveStatic(site);
  const { base, served } = server;
  browser = await launchChromium();
  const { page, problems } = await openPage(browser);
  await page.goto(`${base}/`);
  // The block replaces the body's content (its own scripts included) with the decision.
  try {
    await page.waitForFunction(() => document.body.querySelector('script') === null, null, { timeout: 20_000 });
  } catch (e) {
    assert.fail(`the page never wrote its answer: ${e.message}\n${problems.join('\n')}`);
  }
  const text = await page.evaluate(() => document.body.textContent);
  await page.close();
  assert.deepEqual(problems, []);
  assert.deepEqual(JSON.parse(text), {
    allowed: true,
    reason: 'granted',
    epoch: 0, // a preview: epoch 0, no watermark (README, API table)
    watermark: 0,
    tier: 'low',
    grant: { principal: 'group:eng', role: 'viewer', resource: 'org:acme', path: ['user:alice', 'group:eng'] },
  });
  assert.ok(served.some(([p]) => p === '/model.json'), JSON.stringify(served));
  assert.ok(
    served.some(([p, t]) => p === '/node_modules/edge-authz/dist/edge_authz_bg.wasm' && t === 'application/wasm'),
    JSON.stringify(served),
  );
  assert.deepEqual(served.filter(([, t]) => t === 404), []);
});

// ---------------------------------------------------------------------------------------------
// The live origin of the serving examples, made once.

const FRESHNESS = { low: 3000, standard: 2000, high: 1000 };
const PAST_A_BOUND_MS = FRESHNESS.low + 500;
const FEED_TOKEN = 'readme-feed-token';
const PUSH_TOKEN = 'readme-push-token';
let live;

async function liveOrigin() {
  if (live) return live;
  const { startEdge } = await import('./edge.mjs');
  const { freePort, originOnDisk, startPublisher } = await import('./publisher.mjs');
  const origin = await originOnDisk();
  const port = await freePort();
  const worker = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: origin.pub, FEED_TOKEN }, port });
  worker.url = `http://127.0.0.1:${port}`;
  // The receiving example, as a server of its own.
  const { consumer } = freshInstall();
  const file = path.join(consumer, 'readme-receiver.mjs');
  writeFileSync(file, example('receiver').code);
  const rport = await freePort();
  const server = spawn(process.execPath, [file], {
    cwd: consumer,
    env: { ...process.env, PORT: String(rport), ORIGIN_PUBLIC_KEYS: origin.pub, PUSH_TOKEN, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  server.stderr.on('data', (d) => (stderr += d));
  const receiver = { url: `http://127.0.0.1:${rport}`, server, stderr: () => stderr };
  for (let i = 0; ; i++) {
    const up = await fetch(`${receiver.url}/docs/plan`).then(() => true, () => false);
    if (up) break;
    assert.ok(i < 100 && server.exitCode === null, `the receiving example did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // The publisher takes the push token from its environment (which it inherits).
  process.env.EDGE_AUTHZ_PUSH_TOKEN = PUSH_TOKEN;
  const pub = startPublisher(origin, [worker, receiver], ['--stdin', '--tenant', 'acme', '--heartbeat', '300']);
  delete process.env.EDGE_AUTHZ_PUSH_TOKEN;
  pub.child.stdin.write(`${JSON.stringify({ ...readmeModel(), freshness: FRESHNESS })}\n`);
  for (const e of [worker, receiver]) await pub.until((x) => x.event === 'caught_up' && x.edge === e.url);
  live = { origin, worker, receiver, pub };
  return live;
}

after(async () => {
  if (!live) return;
  await live.pub.stop();
  live.receiver.server.kill('SIGKILL');
  await live.worker.dispose();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('README "Node.js: following the origin\'s Worker": a Replica, as its comments say, now and past a freshness bound', async () => {
  const block = example('replica');
  const { origin, worker } = await liveOrigin();
  const env = { ORIGIN_PUBLIC_KEYS: origin.pub, EDGE_URL: worker.url, FEED_TOKEN };
  for (const when of ['now', 'past a bound']) {
    if (when !== 'now') await sleep(PAST_A_BOUND_MS);
    const { calls } = runNode('readme-replica.mjs', block.code, env);
    const expected = assertClaims(block, calls);
    assert.deepEqual(expected.map((c) => c.value), ['granted', 'no_grant', 1], when);
  }
});

test('README "Node.js: receiving the origin\'s pushes": publish --edge reaches the server, which answers by it past a freshness bound', async () => {
  // Past the low bound, still granted: the publisher's heartbeats reach the server.
  const { receiver } = await liveOrigin();
  const ask = async (user) => {
    const r = await fetch(`${receiver.url}/docs/plan`, { headers: { 'x-user': user } });
    return { status: r.status, d: await r.json() };
  };
  for (const when of ['now', 'past a bound']) {
    if (when !== 'now') await sleep(PAST_A_BOUND_MS);
    const a = await ask('user:alice');
    assert.deepEqual([a.status, a.d.reason, a.d.epoch], [200, 'granted', 1], `${when}: ${JSON.stringify(a.d)}`);
    const b = await ask('user:bob');
    assert.deepEqual([b.status, b.d.reason], [403, 'no_grant'], when);
  }
  // A push without the token is refused as the Worker refuses it.
  const r = await fetch(`${receiver.url}/v1/acme/delta`, { method: 'POST', headers: { 'content-type': 'application/msgpack' }, body: new Uint8Array(4) });
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error.code, 'unauthorized');
  assert.equal(receiver.stderr(), '');
});

test('README "Cloudflare Workers": a Worker of yours, bundled as wrangler does, follows the project\'s Worker, now and past a freshness bound', async () => {
  const block = example('worker');
  const { consumer } = freshInstall();
  const { origin, worker } = await liveOrigin();
  const entry = path.join(consumer, 'readme-worker.mjs');
  writeFileSync(entry, block.code);
  const outdir = path.join(consumer, 'readme-worker-dist');
  const { outfile, wasm: collected } = await bundleWorker({ entry, consumer, outdir });
  assert.equal(collected.length, 1, JSON.stringify(collected));
  assert.equal(collected[0].source, path.join(consumer, 'node_modules/edge-authz/dist/edge_authz_bg.wasm'));
  assert.match(readFileSync(outfile, 'utf8'), /src\/workerd\.mjs/, 'the workerd entry');
  mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    modules: [
      { type: 'ESModule', path: outfile },
      { type: 'CompiledWasm', path: path.join(outdir, collected[0].name) },
    ],
    modulesRoot: outdir,
    compatibilityDate: '2026-04-01',
    bindings: { ORIGIN_PUBLIC_KEYS: origin.pub, EDGE_URL: worker.url, FEED_TOKEN },
  });
  await mf.ready;
  const ask = async (subject, action, resource) => {
    const res = await mf.dispatchFetch('http://edge.test/', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ subject, action, resource }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return JSON.parse(text);
  };
  for (const when of ['now', 'past a bound']) {
    if (when !== 'now') await sleep(PAST_A_BOUND_MS);
    assert.deepEqual(await ask('user:alice', 'read', 'doc:plan'), {
      allowed: true,
      reason: 'granted',
      epoch: 1,
      watermark: 0,
      tier: 'low',
      grant: { principal: 'group:eng', role: 'viewer', resource: 'org:acme', path: ['user:alice', 'group:eng'] },
    }, when);
    assert.deepEqual(await ask('user:alice', 'export', 'doc:plan'), {
      allowed: false,
      reason: 'no_grant',
      epoch: 1,
      watermark: 0,
      tier: 'high',
    }, when);
  }
  // The project's Worker out of reach: a high decision is refused (503), never answered stale.
  await live.worker.dispose();
  const res = await mf.dispatchFetch('http://edge.test/', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subject: 'user:alice', action: 'export', resource: 'doc:plan' }),
  });
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), { error: 'authority_unavailable' });
});

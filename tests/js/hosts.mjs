// The hosts the package is run in, shared by browser.test.mjs, workerd.test.mjs and
// readme.test.mjs:
// - `serveStatic(root)`: a tiny static file server over http on 127.0.0.1 (a free port) for a
//   folder, recording what it served; the caller closes it in an `after` hook.
// - `launchChromium()`: headless /usr/bin/chromium driven by playwright-core, nothing to the
//   network; `openPage(browser)`: a page whose console errors, page errors and failed requests
//   are recorded.
// - `bundleWorker({entry, consumer, outdir})`: a Worker bundled the way wrangler bundles one:
//   esbuild with the conditions ['workerd', 'worker', 'browser'] (so `edge-authz` resolves to its
//   workerd entry), ESM output, target es2024, and every imported `.wasm` left external, renamed
//   `./<sha1>-<name>.wasm` and collected as a CompiledWasm module (wrangler's default rule), which
//   workerd hands to the importer as a `WebAssembly.Module`.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

// ---------------------------------------------------------------------------------------------
// A static file server.

/** Content types by extension; anything else is application/octet-stream. */
export const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.ts': 'text/plain; charset=utf-8',
};

/**
 * Serves the folder `root` (`/` is `/index.html`) on 127.0.0.1, a free port: 403 for a path
 * outside it, 404 for a missing file. `{base, served, close}`: `base` is `http://127.0.0.1:<port>`,
 * `served` lists `[pathname, content type]` for each file sent and `[pathname, 404]` for each
 * one missing, `close()` stops the server.
 */
export async function serveStatic(root) {
  const served = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const file = path.join(root, decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname));
    if (!file.startsWith(root + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
      served.push([url.pathname, type]);
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    } catch {
      served.push([url.pathname, 404]);
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    served,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// ---------------------------------------------------------------------------------------------
// Chromium.

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Headless Chromium (/usr/bin/chromium) through playwright-core; the caller closes it. */
export function launchChromium() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/**
 * A new page of `browser`, watched: `{page, problems}`, `problems` recording each console error
 * or warning, uncaught page error and failed request, as text; the caller closes the page.
 */
export async function openPage(browser) {
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  return { page, problems };
}

// ---------------------------------------------------------------------------------------------
// Workers, bundled as wrangler does.

/** Wrangler's module collector, for .wasm: external, content-hashed, collected as CompiledWasm. */
export function wasmModules(outdir, collected) {
  return {
    name: 'wasm-modules',
    setup(b) {
      b.onResolve({ filter: /\.wasm(\?module)?$/ }, (args) => {
        const file = path.resolve(args.resolveDir, args.path.replace(/\?module$/, ''));
        const hash = createHash('sha1').update(readFileSync(file)).digest('hex');
        const name = `${hash}-${path.basename(file)}`;
        copyFileSync(file, path.join(outdir, name));
        collected.push({ name, source: file });
        return { path: `./${name}`, external: true };
      });
    },
  };
}

/**
 * Bundles the Worker `entry` (resolving from the folder `consumer`) into `outdir`/index.js, as
 * wrangler does. `{outfile, wasm}`: `wasm` lists the `.wasm` modules the bundle imports,
 * `{name, source}` each: `name` the file in `outdir` (a CompiledWasm module), `source` the file it
 * was copied from.
 */
export async function bundleWorker({ entry, consumer, outdir }) {
  mkdirSync(outdir, { recursive: true });
  const outfile = path.join(outdir, 'index.js');
  const wasm = [];
  await build({
    entryPoints: [entry],
    absWorkingDir: consumer,
    bundle: true,
    format: 'esm',
    target: 'es2024',
    conditions: ['workerd', 'worker', 'browser'],
    outfile,
    logLevel: 'error',
    plugins: [wasmModules(outdir, wasm)],
  });
  return { outfile, wasm };
}

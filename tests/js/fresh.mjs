// A fresh consumer of the package, made once per process: `npm pack` of pkg/ into a temporary
// folder, then `npm init -y` and `npm install <tarball>` (offline: the package has no
// dependencies) in another. Shared by package.test.mjs, browser.test.mjs, workerd.test.mjs and readme.test.mjs;
// the temporary folder is removed when the process exits (or by `removeFresh()`).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PKG_DIR } from './pkg.mjs';

const FIXTURES = new URL('./fixtures/', import.meta.url);

function npm(args, cwd) {
  return execFileSync('npm', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
      npm_config_loglevel: 'error',
    },
  });
}

let fresh;

/**
 * `{root, tarball, packed, consumer}`: `packed` is `npm pack --json`'s record (with `files`);
 * `consumer` has node_modules/edge-authz installed from the tarball, and the round trip
 * fixture (roundtrip.mjs) copied in.
 */
export function freshInstall() {
  if (fresh) return fresh;
  const root = mkdtempSync(path.join(tmpdir(), 'edge-authz-fresh-'));
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  const packDir = path.join(root, 'pack');
  mkdirSync(packDir);
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', packDir], PKG_DIR));
  const tarball = path.join(packDir, packed.filename);
  const consumer = path.join(root, 'consumer');
  mkdirSync(consumer);
  npm(['init', '-y'], consumer);
  npm(['install', '--offline', '--no-package-lock', tarball], consumer);
  copyFileSync(new URL('roundtrip.mjs', FIXTURES), path.join(consumer, 'roundtrip.mjs'));
  fresh = { root, tarball, packed, consumer };
  return fresh;
}

export function removeFresh() {
  if (fresh) rmSync(fresh.root, { recursive: true, force: true });
  fresh = undefined;
}

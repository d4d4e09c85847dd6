// Small helpers the benchmarks that drive processes share: what a report says about the files and
// tools it measured, a promise with a deadline, and the benchmark workload's model.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** `p`, or a rejection after `ms`. */
export function withTimeout(p, ms) {
  let t;
  return Promise.race([p, new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** A file's path (relative to the repository), size and modification time; null if it is missing. */
export function fileInfo(f) {
  try {
    const s = fs.statSync(f);
    return { path: path.relative(repo, f), bytes: s.size, mtime: s.mtime.toISOString() };
  } catch {
    return null;
  }
}

/** The installed version of an npm package of the repository; null if it is not installed. */
export function readVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(repo, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/**
 * The model of `edge-authz workload` (the release build, built first if missing): the default
 * workload with `users` users, or with `quick` a small one. `{model, spec}` (`spec`: its options).
 */
export function workloadModel(users, quick) {
  const bin = path.join(repo, 'target/release/edge-authz');
  if (!fs.existsSync(bin)) execFileSync('cargo', ['build', '--release', '--quiet'], { cwd: repo, stdio: 'inherit' });
  const spec = quick
    ? ['--users', String(users), '--groups', '60', '--assignments', '1500', '--big-group', '300', '--docs-per-project', '3']
    : ['--users', String(users)];
  const model = JSON.parse(execFileSync(bin, ['workload', ...spec], { maxBuffer: 1 << 28 }).toString());
  return { model, spec };
}

// Small helpers the benchmarks that drive processes share: what a report says about the files and
// tools it measured, and a promise with a deadline.
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

// Timing, memory and size helpers.
import fs from 'node:fs';
import zlib from 'node:zlib';

export const hr = () => process.hrtime.bigint();
export const ms = (a, b) => Number(b - a) / 1e6;

export function gc() {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
}

/**
 * Memory held by the process's JavaScript and native side: heapUsed + external. `external` already
 * includes `arrayBuffers` (Node's documentation, and measured: a WebAssembly.Memory of 64 MiB shows
 * up as +64 MiB in `external` and +0 in `arrayBuffers`), so adding arrayBuffers would count buffers
 * twice; wasm linear memory is in `external` only.
 */
export function mem() {
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, total: m.heapUsed + m.external };
}
export function memDelta(a, b) {
  const out = {};
  for (const k of Object.keys(a)) out[k] = b[k] - a[k];
  return out;
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Cost of one `process.hrtime.bigint()` pair, in ns (median of many). */
export function timerOverheadNs(n = 20000) {
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = process.hrtime.bigint();
    const b = process.hrtime.bigint();
    d[i] = Number(b - a);
  }
  d.sort();
  return percentile(d, 50);
}

export function fileSizes(files) {
  let bytes = 0;
  const bufs = [];
  for (const f of files) {
    const b = fs.readFileSync(f);
    bytes += b.length;
    bufs.push(b);
  }
  const all = Buffer.concat(bufs);
  const gz = zlib.gzipSync(all, { level: 9 }).length;
  return { files: files.length, bytes, gzip: gz };
}

// The wasm the package ships, gzipped at level 9, stays under 250 KB (256,000 bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync, constants } from 'node:zlib';
import { PKG_DIR } from './pkg.mjs';

const LIMIT = 256_000;

test('pkg/dist/edge_authz_bg.wasm gzipped is under 250 KB', (t) => {
  const wasm = readFileSync(path.join(PKG_DIR, 'dist/edge_authz_bg.wasm'));
  const gz = gzipSync(wasm, { level: constants.Z_BEST_COMPRESSION }).length;
  t.diagnostic(`wasm: ${wasm.length} bytes raw, ${gz} bytes gzipped (level 9), limit ${LIMIT}`);
  assert.ok(WebAssembly.validate(wasm), 'a valid wasm module');
  assert.ok(gz < LIMIT, `${gz} bytes gzipped, limit ${LIMIT}`);
});

// Node.js entry (CommonJS, built into dist/node.cjs by scripts/build-pkg.sh): the wasm is read
// from disk next to this file and instantiated synchronously. The ESM entry (node.mjs) re-exports
// this module, so one Node process holds one instance whichever way the package is loaded.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initSync } from '../dist/edge_authz.js';
import { setWasm } from './internal.js';

setWasm(initSync({ module: readFileSync(join(__dirname, 'edge_authz_bg.wasm')) }));

export * from './api.js';
export * from './replica.js';
export * from './receiver.js';

// Cloudflare Workers (workerd) entry: Workers import a .wasm file as a compiled
// WebAssembly.Module (wrangler's default rule), which is instantiated synchronously.
import wasmModule from '../dist/edge_authz_bg.wasm';
import { initSync } from '../dist/edge_authz.js';
import { setWasm } from './internal.js';

setWasm(initSync({ module: wasmModule }));

export { init } from './ready.js';
export * from './api.js';
export * from './replica.js';
export * from './receiver.js';

// Vercel's Edge runtime and Next.js Edge middleware and routes (`edge-light` condition): code may
// not compile WebAssembly from bytes there, so the wasm is imported as a compiled module
// (`?module`, as those bundlers take it) and instantiated synchronously.
import wasmModule from '../dist/edge_authz_bg.wasm?module';
import { initSync } from '../dist/edge_authz.js';
import { setWasm } from './internal.js';

setWasm(initSync({ module: wasmModule }));

export { init } from './ready.js';
export * from './api.js';
export * from './replica.js';
export * from './receiver.js';

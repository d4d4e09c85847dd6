// Browser (and default) entry: fetches and compiles the wasm next to the glue with top-level
// await, so the module is ready to use once imported.
import init from '../dist/edge_authz.js';
import { setWasm } from './internal.js';

setWasm(await init({ module_or_path: new URL('../dist/edge_authz_bg.wasm', import.meta.url) }));

export * from './api.js';
export * from './replica.js';
export * from './receiver.js';

// Browser (and default) entry: fetches and compiles the wasm next to the glue with top-level
// await, so the module is ready to use once imported. The same module instance as init.mjs
// (`init()` here resolves at once).
import { init } from './init.mjs';

await init();

export * from './init.mjs';

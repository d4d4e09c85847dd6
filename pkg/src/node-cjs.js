// Node.js entry (CommonJS, built into dist/node.cjs by scripts/build-pkg.sh): the wasm is
// embedded in the built file (esbuild's binary loader) and instantiated synchronously at load, so
// the file works wherever it is copied or bundled (a Lambda bundle, a Next.js server chunk, Jest's
// jsdom environment) with nothing to read from disk. The ESM entry (node.mjs) re-exports this
// module, so one Node process holds one instance whichever way the package is loaded.
import wasmBytes from '../dist/edge_authz_bg.wasm';
import { initSync } from '../dist/edge_authz.js';
import { host, setWasm } from './internal.js';

setWasm(initSync({ module: wasmBytes }));
// Node 18 has no global WebCrypto; required only there, when a key pair is made.
host.nodeCrypto = () => require('node:crypto').webcrypto;

export { init } from './ready.js';
export * from './api.js';
export * from './replica.js';
export * from './receiver.js';

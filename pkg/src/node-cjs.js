// Node.js entry (CommonJS, built into dist/node.cjs by scripts/build-pkg.sh): the wasm is
// embedded in the built file (base64, esbuild's base64 loader) and instantiated synchronously at load, so
// the file works wherever it is copied or bundled (a Lambda bundle, a Next.js server chunk, Jest's
// jsdom environment) with nothing to read from disk. The ESM entry (node.mjs) re-exports this
// module, so one Node process holds one instance whichever way the package is loaded.
import wasmBase64 from '../dist/edge_authz_bg.wasm';
import { initSync } from '../dist/edge_authz.js';
import { host, setWasm } from './internal.js';

// The fastest decoder the host has: the standard one where it exists, Node's Buffer, else atob
// (Jest's jsdom environment).
function decode(b64) {
  if (typeof Uint8Array.fromBase64 === 'function') return Uint8Array.fromBase64(b64);
  if (typeof Buffer === 'function') return Buffer.from(b64, 'base64');
  const text = atob(b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

setWasm(initSync({ module: decode(wasmBase64) }));
// Node 18 has no global WebCrypto; required only there, when a key pair is made.
host.nodeCrypto = () => require('node:crypto').webcrypto;

export { init } from './ready.js';
export * from './api.js';
export * from './replica.js';
export * from './receiver.js';

// TextDecoder and TextEncoder for the CommonJS build (scripts/build-pkg.sh injects these in place
// of the globals that wasm-bindgen's glue names): the host's own where it has them, else Node's
// (Jest's jsdom environment has neither global), without touching the host's globals.
const codec = typeof globalThis.TextDecoder === 'function' && typeof globalThis.TextEncoder === 'function'
  ? globalThis
  : require('node:util');

export const TextDecoder = codec.TextDecoder;
export const TextEncoder = codec.TextEncoder;

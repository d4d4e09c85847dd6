// The instantiated wasm module's exports, set once by the host's entry point (node.cjs, web.mjs,
// workerd.mjs) before the API is used. Not part of the public API.
export const host = { wasm: null };

export function setWasm(exports) {
  host.wasm = exports;
}

// The instantiated wasm module's exports, set once by the host's entry point (node.cjs, web.mjs,
// workerd.mjs) before the API is used. Not part of the public API.
export const host = { wasm: null };

export function setWasm(exports) {
  host.wasm = exports;
}

// The hooks through which the package's Replica (replica.js) and push receiver (receiver.js)
// drive an Evaluator (api.js). Symbols that no entry point exports: not part of the public API.
export const PROBE = Symbol('edge-authz probe');
export const PROBE_MANY = Symbol('edge-authz probe many');
export const RAW = Symbol('edge-authz raw');
export const CHANGED = Symbol('edge-authz changed');
export const NOW = Symbol('edge-authz now');
export const COPY_CONTEXT = Symbol('edge-authz copy context');
export const READ_REQUESTS = Symbol('edge-authz read requests');
// What a probe answers when the replica must sync with its authority before it decides.
export const NEEDS = Symbol('edge-authz needs confirmation');

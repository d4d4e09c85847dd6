// The instantiated wasm module's exports, set once by the host's entry point (node.cjs, web.mjs,
// workerd.mjs, or `init()` of init.mjs) before the API is used; `nodeCrypto`, set by the Node
// entry, gives Node's WebCrypto where it is not global (Node 18). Not part of the public API.
export const host = { wasm: null, nodeCrypto: null };

export function setWasm(exports) {
  host.wasm = exports;
}

// Every call into the wasm starts here: before the module is loaded (the `edge-authz/init` entry
// before `init()` resolved), `not_initialized` rather than a TypeError from deep in the glue.
export function needWasm() {
  if (host.wasm === null) {
    const e = new Error(
      'edge-authz: the WebAssembly module is not loaded yet; call `await init()` (from this entry) before using the package',
    );
    e.code = 'not_initialized';
    throw e;
  }
}

// The hooks through which the package's Replica (replica.js) and push receiver (receiver.js)
// drive an Evaluator (api.js). Symbols that no entry point exports: not part of the public API.
export const PROBE = Symbol('edge-authz probe');
export const PROBE_MANY = Symbol('edge-authz probe many');
export const PROBE_TOKEN = Symbol('edge-authz probe token');
export const RAW = Symbol('edge-authz raw');
export const CHANGED = Symbol('edge-authz changed');
export const NOW = Symbol('edge-authz now');
export const COPY_CONTEXT = Symbol('edge-authz copy context');
export const READ_REQUESTS = Symbol('edge-authz read requests');
export const DECIDED_AT = Symbol('edge-authz decided at');
export const LOG = Symbol('edge-authz log');
// What a probe answers when the replica must sync with its authority before it decides.
export const NEEDS = Symbol('edge-authz needs confirmation');

// `init()` of the entries that load the wasm synchronously at import (Node, workerd): the
// package is ready already; `input` is not needed and is ignored.
export function init(input) { // eslint-disable-line no-unused-vars
  return Promise.resolve();
}

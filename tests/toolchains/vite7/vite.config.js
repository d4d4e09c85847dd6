// Vite 7 and later build the package as it is; the dev server must serve it as it is
// (pre-bundled, the wasm's URL next to the glue is lost).
export default {
  optimizeDeps: { exclude: ['edge-authz'] },
};

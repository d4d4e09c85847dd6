// Vite 7 builds the package as it is; its dev server must serve it as it is
// (pre-bundled, the wasm's URL next to the glue is lost).
export default {
  optimizeDeps: { exclude: ['edge-authz'] },
};

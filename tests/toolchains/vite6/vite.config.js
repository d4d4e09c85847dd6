// Vite 5 and 6: the package's browser entry loads its wasm with top-level await, which these
// versions' default build target predates; and the dev server must serve the package as it is
// (pre-bundled, the wasm's URL next to the glue is lost).
export default {
  build: { target: 'es2022' },
  optimizeDeps: { exclude: ['edge-authz'] },
};

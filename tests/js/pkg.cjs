// Finds the package under test (pkg/ of this repository) by resolving its `exports` map the way
// Node resolves `require('edge-authz')` / `import 'edge-authz'` in a consumer: the "." entry,
// conditions tried in the map's order. The tests of the packed and installed tarball are
// package.test.mjs and browser.test.mjs; this lets the other suites run from the working tree.
'use strict';
const { readFileSync } = require('node:fs');
const path = require('node:path');

// EDGE_AUTHZ_PKG_DIR: test another build of the package (a copy of pkg/ with its dist/).
const PKG_DIR = path.resolve(process.env.EDGE_AUTHZ_PKG_DIR || path.join(__dirname, '../../pkg'));
const REPO_DIR = path.resolve(__dirname, '../..');

/** The file the `exports` map of the package in `dir` selects for `conditions`. */
function resolveExport(dir, conditions, subpath = '.') {
  const pj = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const pick = (target) => {
    if (typeof target === 'string') return target;
    if (target === null || typeof target !== 'object') return null;
    for (const [cond, sub] of Object.entries(target)) {
      if (cond === 'default' || conditions.includes(cond)) {
        const r = pick(sub);
        if (r !== null) return r;
      }
    }
    return null;
  };
  const target = pick(pj.exports[subpath]);
  if (target === null) throw new Error(`${dir}: no export of ${subpath} for ${conditions}`);
  return path.join(dir, target);
}

/** `require('edge-authz')` under Node. */
function requirePackage() {
  return require(resolveExport(PKG_DIR, ['node', 'require']));
}

/** The catalogue tests/it/hostile.rs writes (`cargo test --test it hostile`). */
const CATALOGUE = path.join(REPO_DIR, 'target/tmp/hostile-catalogue.json');

module.exports = { PKG_DIR, REPO_DIR, CATALOGUE, resolveExport, requirePackage };

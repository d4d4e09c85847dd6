// Loads the package under test (/work/main/pkg) by resolving its `exports` map the way Node
// resolves `import 'edge-authz'` / `require('edge-authz')` in a consumer: the "." entry with the
// `node` condition, then `import` or `require`. The tests of an installed tarball are in
// package.test.mjs; this lets the other suites run straight from the working tree.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const PKG_DIR = fileURLToPath(new URL('../../pkg/', import.meta.url));
export const REPO_DIR = fileURLToPath(new URL('../../', import.meta.url));

/** The file an `exports` map selects for `conditions` (first match in object order, as Node). */
export function resolveExport(dir, conditions, subpath = '.') {
  const pj = JSON.parse(readFileSync(new URL('package.json', `file://${dir}`), 'utf8'));
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
  if (target === null) throw new Error(`no export of ${subpath} for ${conditions}`);
  return fileURLToPath(new URL(target, `file://${dir}`));
}

/** The ESM entry (`import 'edge-authz'` under Node). */
export async function importPackage() {
  return import(resolveExport(PKG_DIR, ['node', 'import']));
}

/** The CommonJS entry (`require('edge-authz')` under Node). */
export function requirePackage() {
  return createRequire(import.meta.url)(resolveExport(PKG_DIR, ['node', 'require']));
}

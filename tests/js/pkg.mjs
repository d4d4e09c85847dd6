// ESM side of pkg.cjs: `import 'edge-authz'` under Node, resolved through the package's exports map.
import { pathToFileURL } from 'node:url';
import helper from './pkg.cjs';

export const { PKG_DIR, REPO_DIR, CATALOGUE, resolveExport, requirePackage } = helper;

export async function importPackage() {
  return import(pathToFileURL(resolveExport(PKG_DIR, ['node', 'import'])).href);
}

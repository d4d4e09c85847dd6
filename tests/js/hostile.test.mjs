// The hostile suite (hostile-suite.cjs) against the packed package (`npm pack`, installed into a
// fresh folder by fresh.mjs), loaded by `import` as a consumer would: the package's Node ESM entry.
import { test } from 'node:test';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import defineHostileTests from './hostile-suite.cjs';
import { freshInstall } from './fresh.mjs';
import { resolveExport } from './pkg.mjs';

const installed = path.join(freshInstall().consumer, 'node_modules', 'edge-authz');
const api = await import(pathToFileURL(resolveExport(installed, ['node', 'import'])).href);
defineHostileTests(api, test, 'import (packed)');

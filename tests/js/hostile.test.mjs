// The hostile suite (hostile-suite.cjs) with the package loaded by `import` (its Node ESM entry).
import { test } from 'node:test';
import defineHostileTests from './hostile-suite.cjs';
import { importPackage } from './pkg.mjs';

defineHostileTests(await importPackage(), test, 'import');

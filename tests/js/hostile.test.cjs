// The hostile suite (hostile-suite.cjs) against the packed package (`npm pack`, installed into a
// fresh folder by fresh.mjs), loaded by `require` from that folder as a consumer would: the
// package's CommonJS entry. (fresh.mjs is ESM, so the suite runs inside one async test.)
'use strict';
const { test } = require('node:test');
const { createRequire } = require('node:module');
const path = require('node:path');
const defineHostileTests = require('./hostile-suite.cjs');

test('the hostile suite through require of the packed package', async (t) => {
  const { freshInstall } = await import('./fresh.mjs');
  const consumer = freshInstall().consumer;
  const api = createRequire(path.join(consumer, 'index.js'))('edge-authz');
  const resolved = createRequire(path.join(consumer, 'index.js')).resolve('edge-authz');
  if (!resolved.startsWith(path.join(consumer, 'node_modules'))) {
    throw new Error(`require('edge-authz') resolved outside the fresh install: ${resolved}`);
  }
  const pending = [];
  defineHostileTests(api, (...args) => pending.push(t.test(...args)), 'require (packed)');
  await Promise.all(pending);
});

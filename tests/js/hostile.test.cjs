// The hostile suite (hostile-suite.cjs) with the package loaded by `require` (its CommonJS entry).
'use strict';
const { test } = require('node:test');
const defineHostileTests = require('./hostile-suite.cjs');
const { requirePackage } = require('./pkg.cjs');

defineHostileTests(requirePackage(), test, 'require');

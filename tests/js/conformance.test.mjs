// The conformance suite (tests/conformance/*.json) through the npm package's JavaScript API
// (pkg/dist, loaded through its exports map): conformance-runner.mjs with the package host of
// evaluator-hosts.mjs, a fresh `Evaluator` per file whose `clock` option is the step's clock.
// One test per file, failures reported by file and step; every file runs here.
import { conformanceSuite } from './conformance-runner.mjs';
import { packageHost } from './evaluator-hosts.mjs';

conformanceSuite({
  name: 'package',
  can: { preview: true },
  makeHost: packageHost,
  // The number of cases when this suite was written.
  casesAtLeast: 466,
});

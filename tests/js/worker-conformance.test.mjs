// The conformance suite (tests/conformance/*.json) through the built Worker in workerd:
// conformance-runner.mjs with the Worker host of evaluator-hosts.mjs, one fresh runtime (isolate
// and Durable Object) per file; every step over HTTP, at the step's clock set as the Worker's
// test clock (clocked-worker.mjs). Same steps, same meaning, same comparisons as the package's run
// (conformance.test.mjs).
//
// Left out: 11-preview.json, whose evaluator is an unsigned preview; a Worker only ever holds
// signed state, so it has no preview host. The runner asserts it is the only file that needs one.
import { conformanceSuite } from './conformance-runner.mjs';
import { workerHost } from './evaluator-hosts.mjs';

conformanceSuite({
  name: 'Worker',
  can: { preview: false },
  makeHost: workerHost,
  leftOut: ['11-preview.json'],
  // The number of cases when this suite was written.
  casesAtLeast: 441,
});

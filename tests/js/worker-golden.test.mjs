// The golden files of format version 1 (tests/golden, see its README) through the built Worker in
// workerd: the committed bytes pushed in order over HTTP (`PUT snapshot`, `POST delta`, `POST
// watermark`), each at its issued_at on the Worker's test clock (clocked-worker.mjs), then every
// recorded request at its recorded clock through `POST check` and, a clock and `now` at a time,
// `POST check-many`, with `context.now` where one is recorded (ALLOW_CONTEXT_NOW). Two isolates
// share the Durable Object and take the reads in turn, so that an isolate that did not relay a
// push answers from the authority's state too. Everything must be as golden.json records it
// (golden.mjs's `replay`, through the Worker host of evaluator-hosts.mjs).
import { test } from 'node:test';
import { workerHost } from './evaluator-hosts.mjs';
import { loadGolden, replay } from './golden.mjs';

const golden = loadGolden();

test('pushed the committed bytes in order, the Worker answers as golden.json records', async (t) => {
  const host = await workerHost({ tenant: golden.tenant, publicKeys: [golden.publicKey], isolates: 2 });
  try {
    const n = await replay(host, golden);
    t.diagnostic(`golden (Worker): ${golden.messages.length} messages, ${n} decisions`);
  } finally {
    await host.dispose();
  }
});

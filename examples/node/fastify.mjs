// A Fastify service that the origin pushes to (`edge-authz publish --edge http://this:3000`) and
// that authorizes its routes with edge-authz (docs/replicas.md, "Receiving pushes"). The push
// routes are taken in an `onRequest` hook, before Fastify reads any body; answers are the
// Worker's. A denied request gets 403 with the reason; one the edge cannot answer right now
// (`stale_snapshot`, `freshness_exceeded`, `pending`, `no_snapshot`) gets 503.
//
//   ORIGIN_PUBLIC_KEYS=... PUSH_TOKEN=... node fastify.mjs
import Fastify from 'fastify';
import { Evaluator, createPushReceiver } from 'edge-authz';

const RETRY = new Set(['no_snapshot', 'stale_snapshot', 'pending', 'freshness_exceeded']);

/** A `preHandler`: `action` on the resource `resourceOf(request)` by the request's subject. */
export function authorize(edge, action, resourceOf) {
  return async (request, reply) => {
    const subject = request.headers['x-user'] ?? ''; // in a real service: the verified session
    const epoch = Number(request.headers['x-edge-epoch']);
    const context = Number.isSafeInteger(epoch) && epoch >= 0 ? { at_least_epoch: epoch } : undefined;
    let d;
    try {
      d = await edge.check(subject, action, resourceOf(request), context);
    } catch (e) {
      return reply.code(503).send({ error: e.code });
    }
    if (!d.allowed) return reply.code(RETRY.has(d.reason) ? 503 : 403).send({ reason: d.reason, epoch: d.epoch });
    request.decision = d;
  };
}

/** The service: `edge` answers the checks; `receiver`, when given, takes the origin's pushes. */
export function createApp(edge, { receiver } = {}) {
  const app = Fastify();
  if (receiver) {
    app.addHook('onRequest', (request, reply, done) => {
      if (!receiver.handles(request.raw)) return done();
      reply.hijack();
      receiver(request.raw, reply.raw);
    });
  }
  const doc = (request) => `doc:${request.params.id}`;
  app.get('/docs/:id', { preHandler: authorize(edge, 'read', doc) }, async (request) => ({
    doc: request.params.id,
    decision: request.decision,
  }));
  app.post('/docs/:id/export', { preHandler: authorize(edge, 'export', doc) }, async (request) => ({
    exported: request.params.id,
  }));
  return app;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const edge = new Evaluator({ tenant: process.env.EDGE_TENANT ?? 'acme', publicKeys: process.env.ORIGIN_PUBLIC_KEYS.split(',') });
  const receiver = createPushReceiver({ evaluator: edge, pushToken: process.env.PUSH_TOKEN });
  await createApp(edge, { receiver }).listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
}

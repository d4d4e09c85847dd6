// An Express service that authorizes its routes with edge-authz (docs/replicas.md).
//
// The edge is a `Replica` following the project's Worker (run it with the Worker's URL and feed
// token), or an `Evaluator` that the origin pushes to through `createPushReceiver` (`edge-authz
// publish --edge http://this-service:3000`). Either way a denied request gets 403 with the
// reason, and a request the edge cannot answer right now gets 503: the state is older than a
// revocation (`stale_snapshot`), has not heard from the origin within the action's bound
// (`freshness_exceeded`), does not yet hold the epoch the caller needs (`pending`), or the
// confirmation a `high` action needs could not be had (`authority_unavailable`).
//
//   EDGE_FEED=http://127.0.0.1:8787 FEED_TOKEN=... ORIGIN_PUBLIC_KEYS=... node express.mjs
import express from 'express';
import { Replica } from 'edge-authz';

// Reasons that say "not now" rather than "no": answered 503, so that clients retry.
const RETRY = new Set(['no_snapshot', 'stale_snapshot', 'pending', 'freshness_exceeded']);

/** Middleware: `action` on the resource `resourceOf(req)` by the request's subject. A client that
 * has just made a change passes its epoch in `x-edge-epoch` (read your writes). */
export function authorize(edge, action, resourceOf) {
  return async (req, res, next) => {
    const subject = req.get('x-user') ?? ''; // in a real service: from the verified session
    const epoch = Number(req.get('x-edge-epoch'));
    const context = Number.isSafeInteger(epoch) && epoch >= 0 ? { at_least_epoch: epoch } : undefined;
    let d;
    try {
      d = await edge.check(subject, action, resourceOf(req), context);
    } catch (e) {
      return res.status(503).json({ error: e.code });
    }
    if (d.allowed) {
      res.locals.decision = d;
      return next();
    }
    return res.status(RETRY.has(d.reason) ? 503 : 403).json({ reason: d.reason, epoch: d.epoch });
  };
}

/** The service: `edge` answers the checks; `receiver` (a push receiver) goes first, before any
 * body parser, when the origin pushes to this service. */
export function createApp(edge, { receiver } = {}) {
  const app = express();
  if (receiver) app.use(receiver);
  const doc = (req) => `doc:${req.params.id}`;
  app.get('/docs/:id', authorize(edge, 'read', doc), (req, res) => {
    res.json({ doc: req.params.id, decision: res.locals.decision });
  });
  app.post('/docs/:id/export', authorize(edge, 'export', doc), (req, res) => {
    res.json({ exported: req.params.id });
  });
  return app;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const edge = new Replica({
    tenant: process.env.EDGE_TENANT ?? 'acme',
    publicKeys: process.env.ORIGIN_PUBLIC_KEYS.split(','),
    feed: process.env.EDGE_FEED,
    token: process.env.FEED_TOKEN,
  });
  await edge.ready();
  createApp(edge).listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
}

// The push receiver (docs/replicas.md, "Receiving pushes"): the Worker's three push routes for a
// Node service that the origin pushes to, as a handler of `node:http`'s request and response
// (usable as it is from Express, Koa or Fastify). It answers exactly as the Worker does: the same
// routes, limits, statuses and JSON, the push answers and refusals made by the same core code.
import { Evaluator } from './api.js';
import { coded, concat, fail, readOptions, stringArg } from './args.js';
import { NOW, RAW, CHANGED } from './internal.js';

// The Worker's body limits (docs/limits.md): a snapshot, and a delta or a watermark.
const MAX_SNAPSHOT_BYTES = 32 << 20;
const MAX_MESSAGE_BYTES = 8 << 20;
const ROUTES = {
  snapshot: { kind: 0, method: 'PUT', limit: 'snapshot' },
  delta: { kind: 1, method: 'POST', limit: 'message' },
  watermark: { kind: 2, method: 'POST', limit: 'message' },
};
const TENANT = /^[a-z0-9_-]{1,64}$/;

function sizeOption(v, name, dflt) {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > 64 << 20) {
    throw fail('invalid_argument', `\`${name}\` must be a whole number of bytes up to 64 MiB`);
  }
  return v;
}

// Constant-time equality of two strings' UTF-8 bytes (the length may show).
function sameToken(given, want) {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(want);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function refuse(res, status, code, message, headers) {
  send(res, status, { error: { code, message } }, headers);
}

// The path of a request, without its query.
function pathOf(req) {
  const url = typeof req.url === 'string' ? req.url : '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

// The route a path names: `{tenant, op}` for `/v1/{tenant}/{snapshot|delta|watermark}`, else null.
function routeOf(req) {
  const m = /^\/v1\/([^/]+)\/(snapshot|delta|watermark)$/.exec(pathOf(req));
  if (m === null) return null;
  let tenant;
  try {
    tenant = decodeURIComponent(m[1]);
  } catch {
    tenant = m[1]; // a malformed escape: not a tenant name (400 invalid_tenant)
  }
  return { tenant, op: m[2] };
}

// The body, at most `limit` bytes: by its `Content-Length` before anything is read, and by what
// arrived for one without. `null` once the refusal is sent.
async function bodyOf(req, res, limit) {
  const declared = Number(req.headers['content-length']);
  const tooLarge = (size) =>
    refuse(res, 413, 'too_large', `the body is ${size} bytes, over the limit of ${limit}`, { connection: 'close' });
  if (Number.isFinite(declared) && declared > limit) {
    tooLarge(declared);
    req.resume();
    return null;
  }
  // A body a framework already read whole (express.raw, say).
  if (req.body instanceof Uint8Array && req.readableEnded !== false) {
    if (req.body.length > limit) {
      tooLarge(req.body.length);
      return null;
    }
    return new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.length);
  }
  const chunks = [];
  let total = 0;
  try {
    for await (const chunk of req) {
      total += chunk.length;
      if (total > limit) {
        tooLarge(total);
        req.destroy();
        return null;
      }
      chunks.push(chunk);
    }
  } catch {
    refuse(res, 400, 'invalid_body', 'the body could not be read');
    return null;
  }
  return concat(chunks, total);
}

/** A handler `(req, res, next?)` for `node:http` that receives the origin's pushes into
 * `options.evaluator` (an `Evaluator`) on the Worker's routes `PUT /v1/{tenant}/snapshot`,
 * `POST /v1/{tenant}/delta` and `POST /v1/{tenant}/watermark`, answering as the Worker does.
 * Other paths go to `next` (or get the Worker's 404). `pushToken`: the bearer token pushes must
 * carry (the Worker's `PUSH_TOKEN`). */
export function createPushReceiver(options) {
  let ev;
  let token;
  let limits;
  try {
    const o = readOptions(options, ['evaluator', 'pushToken', 'maxSnapshotBytes', 'maxMessageBytes'], 'the options');
    if (!(o.evaluator instanceof Evaluator)) {
      throw fail('invalid_argument', '`evaluator` must be an Evaluator of this package');
    }
    ev = o.evaluator;
    token = o.pushToken === undefined || o.pushToken === null ? null : stringArg(o.pushToken, 'pushToken');
    limits = {
      snapshot: sizeOption(o.maxSnapshotBytes, 'maxSnapshotBytes', MAX_SNAPSHOT_BYTES),
      message: sizeOption(o.maxMessageBytes, 'maxMessageBytes', MAX_MESSAGE_BYTES),
    };
  } catch (e) {
    throw coded(e);
  }
  const tenant = JSON.parse(ev[RAW]().status()).tenant;

  async function receive(req, res, next) {
    const route = routeOf(req);
    if (route === null) {
      if (typeof next === 'function') return next();
      return refuse(res, 404, 'not_found', `no route for ${pathOf(req)}`);
    }
    const r = ROUTES[route.op];
    if (req.method !== r.method) {
      return refuse(res, 405, 'method_not_allowed', `this path takes ${r.method}`, { allow: r.method });
    }
    if (!TENANT.test(route.tenant)) {
      return refuse(res, 400, 'invalid_tenant', 'a tenant is 1 to 64 of a-z, 0-9, `_` and `-`');
    }
    if (route.tenant !== tenant) {
      return refuse(res, 404, 'unknown_tenant', 'this edge does not serve that tenant');
    }
    if (token !== null) {
      const given = /^bearer (.*)$/i.exec(String(req.headers.authorization ?? ''));
      if (given === null || !sameToken(given[1], token)) {
        return refuse(res, 401, 'unauthorized', 'this endpoint needs `Authorization: Bearer <PUSH_TOKEN>`', {
          'www-authenticate': 'Bearer',
        });
      }
    }
    const media = String(req.headers['content-type'] ?? '');
    if (media.split(';')[0].trim().toLowerCase() !== 'application/msgpack') {
      return refuse(res, 415, 'unsupported_media_type', `the body must be \`application/msgpack\`, not \`${media}\``);
    }
    const body = await bodyOf(req, res, limits[r.limit]);
    if (body === null) return undefined;
    let answer;
    try {
      const raw = ev[RAW]();
      try {
        answer = raw.push(r.kind, body, ev[NOW]());
      } finally {
        ev[CHANGED]();
      }
    } catch (e) {
      const err = coded(e);
      const status = err.code === 'freed' || err.code === 'invalid_clock' ? 503 : 500;
      return refuse(res, status, err.code, err.message);
    }
    res.writeHead(Number(answer[0]), {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(answer[1]),
    });
    res.end(answer[1]);
    return undefined;
  }

  const handler = (req, res, next) =>
    receive(req, res, next).catch((e) => {
      if (!res.headersSent) refuse(res, 500, 'internal', coded(e).message);
    });
  /** Whether this request is for one of the push routes (for frameworks that route first). */
  handler.handles = (req) => routeOf(req) !== null;
  return handler;
}

// The load client: Node's `http` with a keep-alive Agent, one request outstanding per connection
// (so a request's send time is when it is written, not when it waited in the Agent's queue), each
// request timed with process.hrtime.bigint() from just before `end()` (the body is written) to the
// end of the answer's body.
import http from 'node:http';

export const hr = () => process.hrtime.bigint();

export function makeClient({ port, connections, timeoutMs = 10_000 }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, scheduling: 'fifo' });
  /**
   * One request. body: Buffer or undefined. Resolves {status, text, t0, t1} (bigint ns) or
   * {error, t0, t1}; never rejects.
   */
  function send(method, path, body, headers = {}) {
    return new Promise((resolve) => {
      let t0 = 0n;
      let done = false;
      const finish = (v) => {
        if (!done) {
          done = true;
          resolve(v);
        }
      };
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method,
          path,
          agent,
          headers: body ? { ...headers, 'content-length': body.length } : headers,
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const t1 = hr();
            finish({ status: res.statusCode, text: chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8'), t0, t1 });
          });
          res.on('error', (e) => finish({ error: e.message, t0, t1: hr() }));
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (e) => finish({ error: e.message, t0, t1: hr() }));
      t0 = hr();
      req.end(body);
    });
  }
  return { send, close: () => agent.destroy(), connections };
}

/**
 * Runs `connections` loops, each sending the next request as soon as its previous one answered,
 * until `durationMs` has passed, `count` requests were started or `until()` is true (whichever
 * comes first).
 * next(i) -> {method, path, body, headers, client?} (`client`: another server's client for this
 * request); onAnswer(i, answer) is called for every answer.
 * Resolves {n, errors, non2xx, latNs: Float64Array, elapsedMs, firstError}.
 */
export async function runLoad(client, { connections = client.connections, durationMs = Infinity, count = Infinity, until, next, onAnswer }) {
  const lat = [];
  let started = 0;
  let errors = 0;
  let non2xx = 0;
  let firstError = null;
  const t0 = hr();
  const deadline = t0 + BigInt(Math.round(Math.min(durationMs, 3_600_000) * 1e6));
  const loop = async () => {
    while (started < count && hr() < deadline && !(until && until())) {
      const i = started++;
      const q = next(i);
      const a = await (q.client ?? client).send(q.method, q.path, q.body, q.headers);
      if (a.error) {
        errors++;
        firstError ??= a.error;
      } else {
        lat.push(Number(a.t1 - a.t0));
        if (a.status < 200 || a.status > 299) {
          non2xx++;
          firstError ??= `HTTP ${a.status}: ${a.text.slice(0, 300)}`;
        }
      }
      if (onAnswer) onAnswer(i, a);
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  const elapsedMs = Number(hr() - t0) / 1e6;
  const latNs = Float64Array.from(lat);
  latNs.sort();
  return { n: lat.length + errors, errors, non2xx, latNs, elapsedMs, firstError };
}

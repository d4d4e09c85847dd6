// Replica: an evaluator that follows an authority's feed (docs/replicas.md), in Node, browsers and
// workerd. This side does the I/O: it fetches the feed, shares round trips between concurrent
// checks, reconnects with backoff and keeps the follower's status. What to do with an answer, and
// whether a decision may reuse the last confirmation, is the core's (crates/core/src/sync.rs,
// through the wasm bindings): the same policy a Worker isolate follows with its Durable Object.
import { Evaluator } from './api.js';
import { coded, concat, describe, fail, readOptions, stringArg, stringsOf } from './args.js';
import {
  CHANGED,
  COPY_CONTEXT,
  DECIDED_AT,
  LOG,
  NEEDS,
  NOW,
  PROBE,
  PROBE_MANY,
  PROBE_TOKEN,
  RAW,
  READ_REQUESTS,
} from './internal.js';

// How long a `standard` and a `low` decision may reuse a confirmation by default (ms), as a
// Worker isolate does.
const REUSE_MS = { standard: 1000, low: 10000 };
// How long a follower's feed request waits for something newer (ms; the feed allows 30,000).
const WAIT_MS = 25000;
const MAX_WAIT_MS = 30000;
// How long a feed answer may take beyond its wait (ms).
const TIMEOUT_MS = 2000;
// Reconnection backoff after a failed exchange: from 100 ms, doubling, at most this (ms).
const MAX_BACKOFF_MS = 5000;
// After a failed exchange, checks that need a confirmation fail at once (high) or answer from
// what is held (standard, low) for this long (ms) rather than each waiting for the feed again.
const DOWN_MS = 1000;
// The most a feed answer may hold (bytes): the feed's 8 MiB and room for its framing.
const MAX_ANSWER_BYTES = (8 << 20) + 4096;
// Answers cut at the feed's size limit followed in one exchange, at most.
const MAX_CONTINUATIONS = 64;

function unavailable(message, cause) {
  return fail('authority_unavailable', message, cause);
}

function closed() {
  return fail('closed', 'the replica was closed');
}

// A whole number of ms from `min` to `max`, or the default when absent.
function msOption(v, name, dflt, min, max) {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw fail('invalid_argument', `\`${name}\` must be a whole number of ms from ${min} to ${max}`);
  }
  return v;
}

// The feed's URL for `tenant` under the Worker's base URL (http or https).
function feedUrl(base, tenant) {
  const text = stringArg(base, 'feed');
  let url;
  try {
    url = new URL(text);
  } catch {
    throw fail('invalid_argument', '`feed` must be the base URL of a Worker (http or https)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw fail('invalid_argument', '`feed` must be an http or https URL');
  }
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${path}/v1/${encodeURIComponent(tenant)}/feed`;
}

function fetchOption(f) {
  if (f === undefined || f === null) return (url, init) => globalThis.fetch(url, init);
  if (typeof f !== 'function') throw fail('invalid_argument', '`fetch` must be a function');
  return f;
}

// A response body, at most `cap` bytes (refused past it without holding more).
async function readCapped(resp, cap) {
  const declared = Number(resp.headers.get('content-length'));
  if (declared > cap) throw unavailable(`the feed answered ${declared} bytes, over ${cap}`);
  if (resp.body === null || typeof resp.body?.getReader !== 'function') {
    const b = new Uint8Array(await resp.arrayBuffer());
    if (b.length > cap) throw unavailable(`the feed answered ${b.length} bytes, over ${cap}`);
    return b;
  }
  const reader = resp.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > cap) {
      reader.cancel().catch(() => {});
      throw unavailable(`the feed answered more than ${cap} bytes`);
    }
    chunks.push(value);
  }
  return concat(chunks, total);
}

// The error of a feed answer that is not 200: the feed's own code when it says one; `unauthorized`
// for a token it refused (no retry helps), `authority_unavailable` otherwise.
async function answerError(resp) {
  let code = null;
  let message = '';
  try {
    const e = JSON.parse(await resp.text()).error;
    if (typeof e.code === 'string') code = e.code;
    if (typeof e.message === 'string') message = e.message;
  } catch {
    // not an error answer of the feed
  }
  const said = `the feed answered ${resp.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`;
  if (resp.status === 401 || resp.status === 403) return fail('unauthorized', said);
  const e = unavailable(said);
  if (code !== null) e.feedCode = code;
  return e;
}

/** An evaluator that follows an authority's feed, with a Worker isolate's guarantees. */
export class Replica {
  #ev;
  #tenant;
  #url;
  #token;
  #fetch;
  #timeoutMs;
  #waitMs;
  #follow;
  #closed = false;
  // The last exchange with the feed succeeded; `#failedAt`: when the last one failed (clock).
  #connected = false;
  #failedAt = null;
  #lastHeardAt = null;
  #lastError = null;
  // The confirmation in flight (started before any check now waiting), and the one queued to
  // start when it ends, which every check arriving meanwhile shares.
  #inflight = null;
  #queued = null;
  #ready;
  #readyDone = false;
  #settleReady;
  #abort = null;
  #wake = null;
  #exchanges = 0;
  // With `onDecision`: every decision this replica answers is handed to the evaluator's log, once,
  // after any confirmation (a decision made but then refused for want of one is not logged).
  #logging = false;

  // `ds`, logged when logging (`stamp`: what the evaluator said when they were made); returns `ds`.
  #logged(ds, fields, c, given, token, stamp) {
    if (this.#logging && stamp !== null) this.#ev[LOG](ds, fields, c, given, token, stamp);
    return ds;
  }

  constructor(options) {
    try {
      const o = readOptions(
        options,
        ['tenant', 'publicKeys', 'feed', 'token', 'fetch', 'reuseMs', 'clock', 'timeoutMs', 'waitMs', 'follow', 'onDecision'],
        'the options',
      );
      this.#tenant = stringArg(o.tenant, 'tenant');
      const publicKeys = stringsOf(o.publicKeys, '`publicKeys`');
      this.#url = feedUrl(o.feed, this.#tenant);
      this.#token = o.token === undefined || o.token === null ? null : stringArg(o.token, 'token');
      this.#fetch = fetchOption(o.fetch);
      const reuse = readOptions(o.reuseMs, ['low', 'standard'], '`reuseMs`');
      const day = 86400000;
      const low = msOption(reuse.low, 'reuseMs.low', REUSE_MS.low, 0, day);
      const standard = msOption(reuse.standard, 'reuseMs.standard', REUSE_MS.standard, 0, day);
      this.#timeoutMs = msOption(o.timeoutMs, 'timeoutMs', TIMEOUT_MS, 1, 600000);
      this.#waitMs = msOption(o.waitMs, 'waitMs', WAIT_MS, 0, MAX_WAIT_MS);
      if (o.follow !== undefined && typeof o.follow !== 'boolean') {
        throw fail('invalid_argument', '`follow` must be a boolean');
      }
      this.#follow = o.follow ?? true;
      const onDecision = o.onDecision;
      this.#ev = new Evaluator({ tenant: this.#tenant, publicKeys, clock: o.clock, onDecision });
      this.#ev[RAW]().set_reuse(standard, low);
      this.#logging = onDecision !== undefined && onDecision !== null;
    } catch (e) {
      throw coded(e);
    }
    this.#ready = new Promise((resolve, reject) => {
      this.#settleReady = (err) => {
        if (this.#readyDone) return;
        this.#readyDone = true;
        if (err) reject(err);
        else resolve();
      };
    });
    // A caller that never awaits `ready()` gets no unhandled rejection from it.
    this.#ready.catch(() => {});
    if (this.#follow) this.#followFeed();
  }

  /** Resolves once the first snapshot is loaded; rejects when the feed refuses the token, or
   * when the replica is closed first. Without `follow`, it asks the feed itself. */
  ready() {
    if (!this.#follow && !this.#readyDone && !this.#closed) {
      this.#confirm().catch((e) => {
        if (e?.code === 'unauthorized') this.#settleReady(e);
      });
    }
    return this.#ready;
  }

  /** Decides one request, confirming with the feed first when its tier (or the epoch its context
   * needs) calls for it. Rejects with `authority_unavailable` when a confirmation it needs cannot
   * be had and the tier may not answer from what is held. */
  check(subject, action, resource, context) {
    let c;
    let d;
    try {
      if (this.#closed) throw closed();
      c = context === undefined ? undefined : Evaluator[COPY_CONTEXT](context);
      d = this.#ev[PROBE](subject, action, resource, c);
    } catch (e) {
      return Promise.reject(coded(e));
    }
    if (this.#logging) return this.#checkLogged(subject, action, resource, context, c, d);
    if (d !== NEEDS) return Promise.resolve(d);
    return this.#confirmed(() => [this.#ev[PROBE](subject, action, resource, c, false)]).then((ds) => ds[0]);
  }

  // `check` with `onDecision`, from its first probe `d`.
  #checkLogged(subject, action, resource, context, c, d) {
    const fields = [subject, action, resource];
    const lc = context === null ? undefined : c;
    if (d !== NEEDS) return Promise.resolve(this.#logged([d], fields, lc, context, false, this.#ev[DECIDED_AT]())[0]);
    let stamp = null;
    const decide = () => {
      const ds = [this.#ev[PROBE](subject, action, resource, c, false)];
      stamp = this.#ev[DECIDED_AT]();
      return ds;
    };
    return this.#confirmed(decide).then((ds) => this.#logged(ds, fields, lc, context, false, stamp)[0]);
  }

  /** Decides a request by a token as `Evaluator.checkToken` does (its signature verified by the
   * host's WebCrypto), confirming with the feed first as `check` does. */
  checkToken(token, action, resource, context) {
    let c;
    try {
      if (this.#closed) throw closed();
      c = context === undefined ? undefined : Evaluator[COPY_CONTEXT](context);
    } catch (e) {
      return Promise.reject(coded(e));
    }
    const probe = (replica) => this.#ev[PROBE_TOKEN](token, action, resource, c, replica);
    const fields = [null, action, resource];
    const lc = context === null ? undefined : c;
    let stamp = null;
    const decided = (d) => {
      if (this.#logging) stamp = this.#ev[DECIDED_AT]();
      return d;
    };
    return probe(true).then(
      (d) => {
        const ds = d !== NEEDS ? Promise.resolve([decided(d)]) : this.#confirmed(() => probe(false).then((x) => [decided(x)]));
        return ds.then((x) => this.#logged(x, fields, lc, context, true, stamp)[0]);
      },
      (e) => {
        throw coded(e);
      },
    );
  }

  /** The decision `check` would give, synchronously, when it needs no confirmation with the feed
   * (its tier may reuse the last one, and the replica holds what the context needs); `undefined`
   * when it does (then `await check(...)`). For hot paths: no promise, no allocation beyond the
   * decision. */
  tryCheck(subject, action, resource, context) {
    try {
      if (this.#closed) throw closed();
      if (this.#logging) {
        const c = context === undefined || context === null ? undefined : Evaluator[COPY_CONTEXT](context);
        const d = this.#ev[PROBE](subject, action, resource, c);
        if (d === NEEDS) return undefined;
        return this.#logged([d], [subject, action, resource], c, context, false, this.#ev[DECIDED_AT]())[0];
      }
      const d = this.#ev[PROBE](subject, action, resource, context);
      return d === NEEDS ? undefined : d;
    } catch (e) {
      throw coded(e);
    }
  }

  /** Decides many requests `[subject, action, resource]` at one time, in order; confirmed at their
   * strictest tier. */
  checkMany(requests, context) {
    let c;
    let fields;
    let ds;
    try {
      if (this.#closed) throw closed();
      fields = Evaluator[READ_REQUESTS](requests);
      c = context === undefined ? undefined : Evaluator[COPY_CONTEXT](context);
      ds = this.#ev[PROBE_MANY](fields, c);
    } catch (e) {
      return Promise.reject(coded(e));
    }
    if (this.#logging) {
      const lc = context === null ? undefined : c;
      if (ds !== NEEDS) return Promise.resolve(this.#logged(ds, fields, lc, context, false, this.#ev[DECIDED_AT]()));
      let stamp = null;
      const decide = () => {
        const out = this.#ev[PROBE_MANY](fields, c, false);
        stamp = this.#ev[DECIDED_AT]();
        return out;
      };
      return this.#confirmed(decide).then((out) => this.#logged(out, fields, lc, context, false, stamp));
    }
    if (ds !== NEEDS) return Promise.resolve(ds);
    return this.#confirmed(() => this.#ev[PROBE_MANY](fields, c, false));
  }

  /** The evaluator's status, and the feed's: `connected` (the last exchange succeeded),
   * `lastHeardAt` (clock ms), `confirmedAgoMs`, the authority's head as last heard, `exchanges`
   * (feed round trips so far) and the last error. */
  status() {
    try {
      if (this.#closed) throw closed();
      const s = this.#ev.status();
      const raw = this.#ev[RAW]();
      const age = raw.confirmation_age(this.#ev[NOW]());
      s.feed = {
        url: this.#url,
        following: this.#follow,
        connected: this.#connected,
        lastHeardAt: this.#lastHeardAt,
        confirmedAgoMs: age < 0 ? null : age,
        authority: JSON.parse(raw.authority_head()),
        exchanges: this.#exchanges,
        error: this.#lastError === null ? null : { code: this.#lastError.code, message: this.#lastError.message },
      };
      return s;
    } catch (e) {
      throw coded(e);
    }
  }

  /** Stops following and releases the evaluator; later calls reject (or throw) with `closed`. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#connected = false;
    this.#abort?.abort();
    this.#wake?.();
    this.#settleReady(closed());
    this.#ev.free();
  }

  [Symbol.dispose]() {
    this.close();
  }

  // Decisions made by `decide` once a confirmation was had, or, when it could not be had, from
  // what is held when every decision's tier allows it (`standard`, `low`: the freshness gate still
  // bounds them) and the replica ever confirmed; else the error.
  async #confirmed(decide) {
    let err = null;
    const recent = this.#failedAt !== null && this.#now() - this.#failedAt < DOWN_MS;
    if (recent && this.#lastError !== null) {
      err = this.#lastError;
    } else {
      try {
        await this.#confirm();
      } catch (e) {
        err = e;
      }
    }
    if (this.#closed) throw closed();
    let ds;
    try {
      ds = await decide();
    } catch (e) {
      throw coded(e);
    }
    if (err !== null) {
      const never = this.#ev[RAW]().confirmation_age(this.#now()) < 0;
      if (never || ds.some((d) => d.tier !== 'standard' && d.tier !== 'low')) {
        throw coded(err.code === 'authority_unavailable' ? err : unavailable(err.message, err));
      }
    }
    return ds;
  }

  // One confirmation that starts after this call: the one queued behind the exchange in flight
  // (shared by every caller meanwhile), or a new one when none is in flight. A check never takes
  // an exchange that started before it arrived: that answer may predate a revocation the origin
  // saw acknowledged before the check.
  #confirm() {
    if (this.#queued !== null) return this.#queued;
    if (this.#inflight === null) return this.#start();
    const after = () => {
      this.#queued = null;
      return this.#start();
    };
    this.#queued = this.#inflight.then(after, after);
    return this.#queued;
  }

  #start() {
    const p = this.#exchange(0, null).finally(() => {
      if (this.#inflight === p) this.#inflight = null;
    });
    this.#inflight = p;
    return p;
  }

  #now() {
    return this.#ev[NOW]();
  }

  // The feed query of what the replica holds, waiting `wait` ms.
  #query(wait) {
    if (this.#closed) throw closed();
    return this.#ev[RAW]().feed_query(wait);
  }

  // Applies `f(raw)` to the evaluator and refreshes its caches.
  #apply(f) {
    if (this.#closed) throw closed();
    try {
      return f(this.#ev[RAW]());
    } finally {
      this.#ev[CHANGED]();
    }
  }

  // One exchange with the feed, waiting up to `wait` ms for something newer: what the replica
  // lacks is replayed (the rest of an answer cut at its size limit asked for in turn), or, when
  // what it holds does not lead to the authority's head, it starts again from the snapshot.
  async #exchange(wait, signal) {
    try {
      const started = this.#now();
      let r = 2;
      let i = 0;
      // Answers cut at their size limit (2) are followed by the rest, asked for from where the
      // replica then stands.
      const rest = async () => {
        for (; r === 2 && i <= MAX_CONTINUATIONS; i++) {
          const body = await this.#get(this.#query(i === 0 ? wait : 0), wait, signal);
          r = this.#apply((raw) => raw.feed(body, started));
        }
      };
      await rest();
      if (r === 1) {
        const body = await this.#get('', 0, signal);
        r = this.#apply((raw) => raw.restart(body, started));
        if (r === 1) throw unavailable("the feed's messages do not reach the authority's head");
        i = Math.max(i, 1); // no wait from here on
        await rest();
        if (r === 1) throw unavailable("the feed's messages do not reach the authority's head");
      }
      if (r === 3) throw unavailable('the feed answered something that is not a feed answer');
      if (r === 2) throw unavailable('the feed answers were cut at their size limit too many times');
      this.#connected = true;
      this.#failedAt = null;
      this.#lastError = null;
      this.#lastHeardAt = this.#now();
      if (this.#ev[RAW]().epoch() >= 0) this.#settleReady();
    } catch (e) {
      const err = coded(e);
      if (!this.#closed) {
        this.#connected = false;
        this.#failedAt = this.#now();
        this.#lastError = err;
      }
      throw err;
    }
  }

  // GET the feed with `query`; the body, at most MAX_ANSWER_BYTES, or a coded error. Aborted past
  // `wait` plus the timeout, or when `outer` aborts.
  async #get(query, wait, outer) {
    const ac = new AbortController();
    const stop = () => ac.abort();
    outer?.addEventListener('abort', stop);
    const limit = wait + this.#timeoutMs;
    const timer = setTimeout(stop, limit);
    this.#exchanges++;
    try {
      const headers = { accept: 'application/msgpack' };
      if (this.#token !== null) headers.authorization = `Bearer ${this.#token}`;
      const resp = await this.#fetch(query === '' ? this.#url : `${this.#url}?${query}`, {
        headers,
        signal: ac.signal,
      });
      if (resp.status !== 200) throw await answerError(resp);
      return await readCapped(resp, MAX_ANSWER_BYTES);
    } catch (e) {
      if (e?.code === 'unauthorized' || e?.code === 'authority_unavailable') throw e;
      if (ac.signal.aborted) throw unavailable(`the feed did not answer within ${limit} ms`, e);
      throw unavailable(`the feed could not be reached: ${describe(e)}`, e);
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', stop);
    }
  }

  // The follower: one waiting exchange after another, so that what the origin sends (revocations,
  // grants, heartbeats) is applied as it comes; after a failure, again with backoff.
  async #followFeed() {
    let backoff = 0;
    while (!this.#closed) {
      const ac = new AbortController();
      this.#abort = ac;
      const before = this.#query(0);
      try {
        await this.#exchange(this.#waitMs, ac.signal);
        backoff = 0;
        // An answer that moved nothing (a message this replica cannot take yet, say): not again
        // at once.
        if (!this.#closed && this.#query(0) === before) await this.#sleep(DOWN_MS);
      } catch (e) {
        if (this.#closed) break;
        if (e.code === 'unauthorized') this.#settleReady(e);
        backoff = Math.min(MAX_BACKOFF_MS, Math.max(100, backoff * 2));
        await this.#sleep(backoff * (0.5 + Math.random() / 2));
      }
    }
  }

  #sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wake = done;
    });
  }
}

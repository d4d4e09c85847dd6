// Where the page's answers come from. Both kinds answer the same questions, asynchronously:
// - `LocalSource`: a model compiled in the page into an unsigned preview evaluator (the npm
//   package's `Evaluator.preview`); it knows every name (a `Directory`), so it can list users and
//   resources and stage what-if changes.
// - `RemoteSource`: a Worker's read endpoints (`status`, `resources`, `subjects`, `check-many`)
//   with a bearer token; it answers from the Worker's signed snapshot, but knows no directory of
//   names: ids are typed. It has no `checkToken`: the page never sends a pasted token anywhere.
import { Directory } from './directory.js';

/** A request context: the page's attributes (docs/decisions.md, "Context") and, when the view
 * asks for one, its time; `undefined` when both are absent. */
export function contextOf(attrs, now) {
  const c = { ...(attrs ?? {}) };
  if (now !== undefined) c.now = now;
  return Object.keys(c).length ? c : undefined;
}

/** A Map id -> Set of actions, from `[action, ids]` lists. */
function byKey(lists) {
  const out = new Map();
  for (const [action, ids] of lists) {
    for (const id of ids) {
      if (!out.has(id)) out.set(id, new Set());
      out.get(id).add(action);
    }
  }
  return out;
}

export class LocalSource {
  /** @param api the npm package; @param model a model object; @param origin where it came from */
  constructor(api, model, origin) {
    this.api = api;
    this.model = model;
    this.origin = origin;
    this.evaluator = api.Evaluator.preview(model);
    this.directory = new Directory(model);
    this.kind = 'preview';
    /** The request attributes the page asks with (its context editor). */
    this.attrs = {};
  }

  async status() {
    return this.evaluator.status();
  }

  actions() {
    return this.directory.actions;
  }

  /** Map resource -> Set of actions `subject` may do on it at `now`. */
  async permissionsOf(subject, now) {
    const lists = this.actions().map((a) => [a.name, this.evaluator.listResources(subject, a.name, { context: contextOf(this.attrs, now) })]);
    return byKey(lists);
  }

  /** Map member -> Set of actions it may do on `resource` at `now`. */
  async accessTo(resource, now) {
    const lists = this.actions().map((a) => [a.name, this.evaluator.listSubjects(resource, a.name, { context: contextOf(this.attrs, now) })]);
    return byKey(lists);
  }

  async checkMany(requests, now) {
    return this.evaluator.checkMany(requests, contextOf(this.attrs, now));
  }

  /** A token's decisions (the package's `checkToken`) for `[action, resource]` pairs, one after
   * another: the first verifies its signature with WebCrypto, the others reuse the verdict. */
  async checkToken(token, pairs, now) {
    const out = [];
    for (const [action, resource] of pairs) {
      out.push(await this.evaluator.checkToken(token, action, resource, contextOf(this.attrs, now)));
    }
    return out;
  }

  free() {
    this.evaluator.free();
  }
}

// What a Worker answers when it will not list from what it holds (docs/decisions.md, "Listings":
// gates 3 to 5).
const REFUSALS = new Set(['stale_snapshot', 'pending', 'freshness_exceeded', 'unknown_action']);

export class RemoteSource {
  /** @param base the Worker's URL; @param tenant; @param token the CHECK_TOKEN, or '' */
  constructor(base, tenant, token, fetcher = globalThis.fetch.bind(globalThis)) {
    this.base = base.replace(/\/+$/, '');
    this.tenant = tenant;
    this.token = token;
    this.fetch = fetcher;
    this.kind = 'worker';
    this.directory = null;
    this.origin = `${this.base}/v1/${tenant}`;
    this.actionList = [];
    this.attrs = {};
  }

  async call(path, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let resp;
    try {
      resp = await this.fetch(`${this.base}/v1/${encodeURIComponent(this.tenant)}/${path}`, { ...init, headers });
    } catch (e) {
      // A browser says no more when the Worker does not allow this page's origin (CORS).
      const err = new Error(
        `the Worker at ${this.base} did not answer (${e.message}): is it running, and does its ` +
          `CORS_ORIGINS allow this page's origin${globalThis.location ? ` (${globalThis.location.origin})` : ''}?`,
      );
      err.code = 'unreachable';
      throw err;
    }
    const text = await resp.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      const err = new Error(`the Worker answered ${resp.status} with a body that is not JSON`);
      err.code = 'bad_answer';
      throw err;
    }
    if (!resp.ok) {
      const err = new Error(body?.error?.message ?? `the Worker answered ${resp.status}`);
      err.code = body?.error?.code ?? 'http_' + resp.status;
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  /** The Worker's status; remembers its actions (status.actions, name -> tier). */
  async status() {
    const s = await this.call('status');
    this.actionList = Object.entries(s.actions ?? {})
      .map(([name, tier]) => ({ name, tier }))
      .sort((a, b) => a.name.localeCompare(b.name));
    return s;
  }

  actions() {
    return this.actionList;
  }

  /** A listing: with attributes, the whole context as `context=` (its time inside it). */
  async list(kind, query, now) {
    const context = contextOf(this.attrs, now);
    const extra = context === undefined ? {} : Object.keys(this.attrs).length ? { context: JSON.stringify(context) } : { now: String(now) };
    const q = new URLSearchParams({ ...query, ...extra });
    return this.call(`${kind}?${q}`);
  }

  /** One listing per action. An action the Worker refuses to list (its tier's freshness bound
   * passed, a stale snapshot: it fails closed) lists nothing and is named in `refused`. */
  async listings(kind, query, now) {
    const refused = {};
    const lists = await Promise.all(
      this.actions().map(async (a) => {
        try {
          return [a.name, (await this.list(kind, { ...query, action: a.name }, now))[kind]];
        } catch (e) {
          if (!REFUSALS.has(e.code)) throw e;
          refused[a.name] = e.code;
          return [a.name, []];
        }
      }),
    );
    const out = byKey(lists);
    out.refused = refused;
    return out;
  }

  permissionsOf(subject, now) {
    return this.listings('resources', { subject }, now);
  }

  accessTo(resource, now) {
    return this.listings('subjects', { resource }, now);
  }

  /** Decisions for the requests, in batches of 500 (under the Worker's batch limit). */
  async checkMany(requests, now) {
    const out = [];
    for (let i = 0; i < requests.length; i += 500) {
      const context = contextOf(this.attrs, now);
      const batch = requests.slice(i, i + 500);
      const body = JSON.stringify(context === undefined ? { requests: batch } : { requests: batch, context });
      const answer = await this.call('check-many', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      out.push(...answer.decisions);
    }
    return out;
  }

  free() {}
}

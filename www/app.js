// The admin preview page: loads a model (or connects to a Worker) and wires the five views.
// No framework: the page is the npm package's browser build, these modules and one stylesheet.
// Served under a strict Content-Security-Policy (www/_headers, and index.html's <meta>): no inline
// script or style, so nothing here sets a `style` attribute or an inline handler (`h` sets styles
// through the CSSOM and handlers with addEventListener), and no import map: the package's browser
// entry is imported by its path in build/assets/admin.
import * as api from './pkg/src/web.mjs';
import { LocalSource, RemoteSource } from './lib/source.js';
import { CHANGE_KINDS, describe, impact, stageChanges } from './lib/whatif.js';
import {
  AUTH_AGE, DEFAULT_FAMILY_CLAIM, KNOWN_CLAIMS, TIME_CLAIMS, familyClaims, identityOf, inspectToken, normalizeToken, readToken,
} from './lib/jws.js';

const PAGE = 200; // table rows drawn at once
const SHOWN = 500; // what-if rows drawn per list

const $ = (id) => document.getElementById(id);

/** An element: `h('td', {class: 'x', dataset: {a: 1}}, 'text', child)`. Text is never HTML. */
function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') Object.assign(el.style, v); // an object: the CSSOM, which the CSP allows
    else if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const state = {
  source: null, // LocalSource | RemoteSource
  view: 'subject',
  staged: [], // what-if changes
  stagedModel: null,
  stagedEvaluator: null, // the staged model's preview, kept for impact
  lastSubjectMs: null,
  attrs: {}, // the request context's attributes (the context editor)
  tokenRun: 0, // the token inspector's latest run (an older one's answers are dropped)
};

function message(text, kind = 'error') {
  const m = $('message');
  if (!text) {
    m.hidden = true;
    m.textContent = '';
    return;
  }
  m.hidden = false;
  m.className = kind;
  m.textContent = text;
}

function errorText(e) {
  return e && e.code ? `[${e.code}] ${e.message}` : String(e?.message ?? e);
}

/** Runs an async step, showing its error instead of throwing (no console errors). */
async function guarded(f) {
  try {
    await f();
  } catch (e) {
    message(errorText(e));
  }
}

/** The time a view asks its source for: the "as of" time when one is set, else none (the source
 * decides at its own clock; a Worker refuses a request that names its time unless it allows
 * what-ifs, ALLOW_CONTEXT_NOW). */
function asked(now) {
  return $('asof').value ? now : undefined;
}

/** The "as of" time in Unix ms (now when empty). */
function asOf() {
  const v = $('asof').value;
  return v ? new Date(v).getTime() : Date.now();
}

const fmtTime = (ms) => (ms === null || ms === undefined ? '—' : `${new Date(ms).toISOString()} (${ms})`);

// -------------------------------------------------------------------------------------------
// Loading.

async function useSource(source, note) {
  state.source?.free();
  state.source = source;
  source.attrs = state.attrs;
  state.stagedEvaluator?.free();
  state.stagedEvaluator = null;
  state.staged = [];
  state.stagedModel = null;
  message(note, 'info');
  await showStatus();
  $('tabs').hidden = false;
  fillActions();
  for (const id of ['subject-out', 'resource-out']) {
    $(id).replaceChildren();
    delete $(id).dataset.subject;
    delete $(id).dataset.resource;
  }
  $('check-out').replaceChildren();
  $('token-resources').replaceChildren(
    ...(source.directory?.resources ?? []).slice(0, 1000).map((r) => h('option', { value: r })));
  stageFields();
  renderStaged();
  renderPicker('subject');
  renderPicker('resource');
  show(state.view);
  document.body.dataset.loaded = source.kind;
  // A token already pasted is read again against what was loaded.
  await inspectTokenView();
}

function loadModel(model, origin) {
  const source = new LocalSource(api, model, origin);
  const { warnings } = api.validateModel(model);
  return useSource(source, `Loaded ${origin}: an unsigned preview compiled in this page.` +
    (warnings.length ? ` Warnings: ${warnings.join('; ')}` : ''));
}

async function parseModel(text, origin) {
  let model;
  try {
    model = JSON.parse(text);
  } catch (e) {
    const err = new Error(`${origin} is not JSON: ${e.message}`);
    err.code = 'invalid_json';
    throw err;
  }
  return loadModel(model, origin);
}

async function fetchModel(url) {
  const resp = await fetch(url);
  if (!resp.ok) {
    const e = new Error(`${url} answered ${resp.status}`);
    e.code = 'fetch_failed';
    throw e;
  }
  await parseModel(await resp.text(), url);
}

async function showStatus() {
  const s = await state.source.status();
  const signed = !s.preview;
  const mode = $('mode');
  mode.textContent = signed ? 'signed snapshot' : 'unsigned preview';
  mode.className = `badge ${signed ? 'signed' : 'preview'}`;
  const now = Date.now();
  const fields = [
    ['source', state.source.origin],
    ['tenant', s.tenant],
    ['epoch', s.epoch ?? '—'],
    ['watermark', signed ? s.watermark : '— (a preview has none)'],
    ['confirmed', signed ? `${fmtTime(s.confirmedAt)}${s.confirmedAt ? `, ${Math.round((now - s.confirmedAt) / 1000)} s ago` : ''}` : '— (no freshness gate)'],
    ['stale', signed ? (s.stale ? 'yes: answers are refused until it catches up' : 'no') : '—'],
    ['freshness', s.freshness ? Object.entries(s.freshness).map(([t, ms]) => `${t} ${ms / 1000} s`).join(', ') : '—'],
    ['counts', Object.entries(s.counts ?? {}).map(([k, v]) => `${v} ${k}`).join(', ')],
  ];
  if (s.digest) fields.push(['digest', s.digest.slice(0, 16) + '…']);
  // A model in the page shows its conditions and what its actions require.
  const model = state.source.model;
  if (model?.conditions && Object.keys(model.conditions).length) {
    fields.push(['conditions', Object.entries(model.conditions).map(([n, c]) => `${n} ${JSON.stringify(c)}`).join('; ')]);
    const req = Object.entries(model.actions ?? {}).filter(([, a]) => a.requires?.length);
    if (req.length) fields.push(['requires', req.map(([n, a]) => `${n}: ${a.requires.join(', ')}`).join('; ')]);
  }
  // Token issuers and session revocations: a model in the page shows them; a Worker's status does
  // not list them (and its counts do not count them).
  const identity = model ? identityOf(model) : null;
  if (identity) {
    fields.push(['issuers', identity.issuers.length
      ? `${identity.issuers.length}: ${identity.issuers.map((i) => i.issuer).join(', ')}`
      : 'none: every token is refused (token_invalid)']);
    fields.push(['sessions', sessionCounts(identity)]);
  } else {
    fields.push(['issuers', '— (a Worker\'s status does not list its issuers or sessions)']);
  }
  // A Worker also says what its tenant's authority (the Durable Object) holds, or why it could
  // not be reached.
  if (s.authorityError) fields.push(['authority', `unreachable: [${s.authorityError.code}] ${s.authorityError.message}`]);
  else if (s.authority) fields.push(['authority', `epoch ${s.authority.epoch ?? "—"}, watermark ${s.authority.watermark}, confirmed ${fmtTime(s.authority.confirmedAt)}`]);
  $('status-fields').replaceChildren(
    ...fields.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { dataset: { field: k } }, v)]),
  );
  drawIdentity(identity, now);
  $('status').hidden = false;
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function sessionCounts(id) {
  const parts = [
    id.revoked.length ? plural(id.revoked.length, 'revoked session') : null,
    id.families.length ? plural(id.families.length, 'revoked family', 'revoked families') : null,
    id.notBefore.length ? `${plural(id.notBefore.length, 'subject')} signed out (not_before)` : null,
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'none revoked';
}

/** The model's issuers and session revocations, as tables under the status fields. */
function drawIdentity(id, now) {
  const out = $('identity');
  if (!id || !(id.issuers.length + id.revoked.length + id.families.length + id.notBefore.length)) {
    out.replaceChildren();
    out.hidden = true;
    return;
  }
  const head = (...cols) => h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c))));
  const until = (ms) => [fmtTime(ms), ms <= now
    ? h('span', { class: 'hint passed' }, ' · passed: the origin drops it when it next compiles; until then it still refuses')
    : null];
  const list = (items, draw) => (items.length ? items.map((x, i) => [i ? ', ' : '', draw(x)]) : '—');
  out.replaceChildren(
    id.issuers.length ? h('h3', {}, 'Token issuers') : null,
    id.issuers.length
      ? h('table', { id: 'issuers', class: 'identity' },
        head('issuer', 'audiences', 'keys', 'subject', 'mapped claims', 'leeway'),
        h('tbody', {}, id.issuers.map((i) =>
          h('tr', { dataset: { issuer: i.issuer } },
            h('td', {}, i.issuer),
            h('td', {}, list(i.audiences, (a) => h('code', {}, a))),
            h('td', { class: 'keys' }, list(i.keys, (k) =>
              h('span', { class: 'key', dataset: { kid: k.kid ?? '', alg: k.alg } },
                h('code', {}, k.kid ?? '(no kid)'), ` ${k.alg} (${k.detail})`))),
            h('td', {}, h('code', {}, i.subject)),
            h('td', { class: 'claims' }, list(i.claims, ([attr, claim]) =>
              h('span', { dataset: { attr, claim } }, h('code', {}, attr), ' ← ',
                claim === AUTH_AGE ? 'seconds since auth_time' : h('code', {}, claim)))),
            h('td', {}, `${i.leeway_s} s`)))))
      : null,
    id.revoked.length + id.families.length + id.notBefore.length ? h('h3', {}, 'Sessions') : null,
    id.revoked.length + id.families.length + id.notBefore.length
      ? h('table', { id: 'sessions', class: 'identity' },
        head('gate', 'entry', 'claim', 'refuses tokens'),
        h('tbody', {},
          id.revoked.map((e) => h('tr', { dataset: { kind: 'revoked', sid: e.sid } },
            h('td', {}, 'revoked session'), h('td', {}, h('code', {}, e.sid)), h('td', {}, h('code', {}, 'sid')),
            h('td', {}, 'with this sid; entry kept until ', until(e.until)))),
          id.families.map((e) => h('tr', { dataset: { kind: 'family', family: e.family, claim: e.claim } },
            h('td', {}, 'revoked family'), h('td', {}, h('code', {}, e.family)), h('td', {}, h('code', {}, e.claim)),
            h('td', {}, 'whose claim holds this family; entry kept until ', until(e.until)))),
          id.notBefore.map((e) => h('tr', { dataset: { kind: 'not_before', subject: e.subject } },
            h('td', {}, 'signed out'), h('td', {}, h('code', {}, e.subject)), h('td', {}, h('code', {}, 'iat')),
            h('td', {}, `of this subject issued before ${fmtTime(e.at)}`)))))
      : null,
  );
  out.hidden = false;
}

function fillActions() {
  const sel = $('check-action');
  sel.replaceChildren(...state.source.actions().map((a) => h('option', { value: a.name }, `${a.name} (${a.tier})`)));
}

// -------------------------------------------------------------------------------------------
// Pickers: a search over the directory (a model) or a typed id (a Worker).

function renderPicker(which) {
  const input = $(`${which}-search`);
  const list = $(`${which}-results`);
  const dir = state.source?.directory;
  const kind = which === 'subject' ? 'members' : 'resources';
  const text = input.value;
  let ids = dir ? dir.search(kind, text, 50) : [];
  if (which === 'subject' && dir && text.trim()) ids = ids.concat(dir.search('groups', text, 10));
  const typed = text.trim();
  if (typed && !ids.includes(typed) && typed.includes(':')) ids.unshift(typed);
  list.replaceChildren(
    ...ids.map((id) => h('li', {}, h('button', { type: 'button', dataset: { id }, onclick: () => pick(which, id) }, id))),
  );
  if (dir && !typed) {
    const total = dir[kind].length;
    if (total > ids.length) list.append(h('li', { class: 'hint' }, `${ids.length} of ${total}: type to search`));
  }
}

function pick(which, id) {
  $(`${which}-search`).value = id;
  $(`${which}-results`).replaceChildren();
  guarded(() => (which === 'subject' ? openSubject(id) : openResource(id)));
}

// -------------------------------------------------------------------------------------------
// The path of a decision: subject, groups, role, the resource it was assigned on, and the
// resources it was inherited through down to the one asked about.

function pathOf(decision, resource) {
  const g = decision.grant;
  if (!g) return null;
  const nodes = g.path.map((id, i) => ({ kind: i === 0 ? 'subject' : 'group', id }));
  nodes.push({ kind: 'role', id: g.role });
  const dir = state.source.directory;
  const chain = dir ? dir.ancestors(resource) : [resource];
  const at = chain.indexOf(g.resource);
  const down = at >= 0 ? chain.slice(0, at + 1).reverse() : [g.resource, resource];
  down.forEach((id, i) => nodes.push({ kind: i === 0 ? 'assigned' : 'inherited', id }));
  return nodes;
}

function drawPath(decision, resource) {
  const nodes = pathOf(decision, resource);
  if (!nodes) return h('p', { class: 'hint' }, 'no grant: nothing to draw');
  const labels = { subject: '', group: 'member of', role: 'holds role', assigned: 'on', inherited: 'which contains' };
  return h(
    'ol',
    { class: 'path', 'aria-label': 'grant path' },
    nodes.map((n, i) =>
      h('li', { class: `node ${n.kind}`, dataset: { kind: n.kind, id: n.id } },
        i > 0 ? h('span', { class: 'edge' }, labels[n.kind]) : null,
        h('span', { class: 'id' }, n.id)),
    ),
  );
}

function explain(decision, request) {
  const [subject, action, resource] = request;
  const d = decision;
  return h(
    'div',
    { class: 'explain', dataset: { allowed: String(d.allowed), reason: d.reason } },
    h('p', {},
      h('span', { class: `badge ${d.allowed ? 'allow' : 'deny'}` }, d.allowed ? 'allowed' : 'denied'),
      ' ', h('code', { class: 'reason' }, d.reason), ` ${subject} · ${action} · ${resource}`,
      d.tier ? ` · tier ${d.tier}` : '', ` · epoch ${d.epoch ?? '—'}`),
    d.subject || d.tokenError
      ? h('p', { class: 'token-line' },
        d.subject ? ['subject from the token: ', h('code', {}, d.subject)] : null,
        d.tokenError ? ['refused at the token gate: ', h('code', { class: 'token-error' }, d.tokenError)] : null)
      : null,
    d.grant
      ? h('p', {}, `grant: ${d.grant.principal} holds ${d.grant.role} on ${d.grant.resource}`,
        d.grant.when ? [' while ', h('code', { class: 'when' }, d.grant.when), ' holds'] : '')
      : null,
    d.conditions
      ? h('p', { class: 'conditions', dataset: { conditions: d.conditions.join(' '), missing: d.missing.join(' ') } },
        d.reason === 'step_up_required' ? 'a step-up would let this through: ' : 'refused by ',
        d.conditions.map((c, i) => [i ? ', ' : '', h('code', {}, c)]),
        d.missing.length ? [' · the context lacks ', d.missing.map((a, i) => [i ? ', ' : '', h('code', {}, a)])] : '')
      : null,
    drawPath(d, resource),
    h('pre', { class: 'decision' }, JSON.stringify(d, null, 2)),
  );
}

// -------------------------------------------------------------------------------------------
// A paged table of ids by actions, each cell a decision that explains itself when clicked.

/** A cell: the role that allows (`?` when it holds under a condition), `·` for no grant, `⇡` for
 * a step-up, `✕` for any other refusal (conditions failed, suspended, stale, ...). */
function cellText(d) {
  if (d.allowed) return `✓ ${d.grant.role}${d.grant.when ? ' ?' : ''}`;
  if (d.reason === 'step_up_required') return '⇡';
  return d.reason === 'no_grant' ? '·' : '✕';
}

function permissionTable({ rows, rowKey, request, out, title, emptyText, now }) {
  const actions = state.source.actions().map((a) => a.name);
  let page = 0;
  let filter = '';
  const body = h('tbody');
  const pager = h('div', { class: 'pager' });
  const detail = h('div', { class: 'detail' });
  const filterInput = h('input', {
    type: 'search',
    class: 'filter',
    placeholder: `filter ${rows.length} rows`,
    oninput: (e) => {
      filter = e.target.value.trim().toLowerCase();
      page = 0;
      guarded(draw);
    },
  });
  async function draw() {
    const visible = filter ? rows.filter((r) => r.toLowerCase().includes(filter)) : rows;
    const slice = visible.slice(page * PAGE, (page + 1) * PAGE);
    const requests = slice.flatMap((id) => actions.map((a) => request(id, a)));
    const decisions = await state.source.checkMany(requests, asked(now));
    const dir = state.source.directory;
    const trs = slice.map((id, i) => {
      const depth = rowKey === 'resource' && dir ? dir.depth.get(id) ?? 0 : 0;
      return h('tr', { dataset: { [rowKey]: id } },
        h('th', { scope: 'row', style: { paddingLeft: `${0.5 + depth}em` } }, id),
        actions.map((a, j) => {
          const d = decisions[i * actions.length + j];
          const req = request(id, a);
          return h('td', {
            class: d.allowed ? 'allow' : d.reason === 'no_grant' ? 'deny' : 'deny refused',
            dataset: { action: a, allowed: String(d.allowed), reason: d.reason },
            title: d.allowed
              ? `${d.grant.role} via ${d.grant.path.join(' → ')} on ${d.grant.resource}${d.grant.when ? ` while ${d.grant.when}` : ''}`
              : d.conditions ? `${d.reason}: ${d.conditions.join(', ')}` : d.reason,
            tabindex: 0,
            onclick: () => detail.replaceChildren(explain(d, req)),
            onkeydown: (e) => e.key === 'Enter' && detail.replaceChildren(explain(d, req)),
          }, cellText(d));
        }));
    });
    body.replaceChildren(...trs);
    const pages = Math.max(1, Math.ceil(visible.length / PAGE));
    pager.replaceChildren(
      h('button', { type: 'button', disabled: page === 0, onclick: () => { page--; guarded(draw); } }, '‹ previous'),
      ` rows ${visible.length ? page * PAGE + 1 : 0}–${page * PAGE + slice.length} of ${visible.length} · page ${page + 1} of ${pages} `,
      h('button', { type: 'button', disabled: page + 1 >= pages, onclick: () => { page++; guarded(draw); } }, 'next ›'),
    );
  }
  const table = h('table', { class: 'perm' },
    h('thead', {}, h('tr', {}, h('th', {}, rowKey), actions.map((a) => h('th', { scope: 'col' }, a)))),
    body);
  out.replaceChildren(
    h('h2', {}, title),
    rows.length ? h('div', {}, filterInput, pager, table, detail) : h('p', { class: 'hint empty' }, emptyText),
  );
  return rows.length ? draw() : Promise.resolve();
}

/** Says which actions the Worker refused to list (it fails closed past a tier's bound). */
function refusedNote(out, refused) {
  const entries = Object.entries(refused ?? {});
  if (!entries.length) return;
  out.insertBefore(
    h('p', { class: 'refused deny' }, 'The Worker refuses to answer for ',
      entries.map(([a, code], i) => [i ? ', ' : '', h('code', { dataset: { action: a, code } }, `${a} (${code})`)]),
      ': those cells are denials, as the edge would answer now.'),
    out.children[1] ?? null,
  );
}

async function openSubject(subject) {
  const started = performance.now();
  const now = asOf();
  const src = state.source;
  const perms = await src.permissionsOf(subject, asked(now));
  const dir = src.directory;
  const rows = [...perms.keys()];
  if (dir) rows.sort((a, b) => (dir.order.get(a) ?? 0) - (dir.order.get(b) ?? 0));
  else rows.sort();
  const out = $('subject-out');
  let note = null;
  if (rows.length === 0) {
    const a = src.actions()[0]?.name ?? 'read';
    const r = dir?.resources[0] ?? 'org:x';
    const [d] = await src.checkMany([[subject, a, r]], asked(now));
    // The reason that holds for every resource (a Worker's probe resource may not exist).
    const general = ['suspended', 'invalid_request', 'stale_snapshot', 'no_snapshot'].includes(d.reason);
    note = `${subject} may do nothing here (${general ? d.reason : 'no_grant'}).`;
  }
  await permissionTable({
    rows,
    rowKey: 'resource',
    request: (r, a) => [subject, a, r],
    out,
    title: `${subject}: ${rows.length} resources`,
    emptyText: note ?? '',
    now,
  });
  if (dir) {
    const groups = [];
    const seen = new Set();
    const stack = [...(dir.groupsOf.get(subject) ?? [])];
    while (stack.length) {
      const g = stack.pop();
      if (seen.has(g)) continue;
      seen.add(g);
      groups.push(g);
      stack.push(...(dir.groupsOf.get(g) ?? []));
    }
    out.insertBefore(
      h('p', { class: 'groups' }, `groups (direct and nested): ${groups.length ? groups.sort().join(', ') : 'none'}`,
        dir.suspended.has(subject) ? h('strong', { class: 'deny' }, ' · suspended') : null),
      out.children[1],
    );
  }
  refusedNote(out, perms.refused);
  state.lastSubjectMs = performance.now() - started;
  out.dataset.now = String(now);
  out.dataset.subject = subject;
  out.dataset.ms = state.lastSubjectMs.toFixed(1);
  $('ready').textContent = `subject view: ${state.lastSubjectMs.toFixed(0)} ms`;
}

async function openResource(resource) {
  const now = asOf();
  const src = state.source;
  const access = await src.accessTo(resource, asked(now));
  const rows = [...access.keys()].sort();
  const out = $('resource-out');
  await permissionTable({
    rows,
    rowKey: 'subject',
    request: (s, a) => [s, a, resource],
    out,
    title: `${resource}: ${rows.length} members may act on it`,
    emptyText: 'nobody may do anything here',
    now,
  });
  const dir = src.directory;
  if (dir) {
    const list = dir.assignmentsOn(resource);
    out.append(
      h('h3', {}, `assignments that apply here (${list.length}, on it or inherited)`),
      h('table', { class: 'assignments' },
        h('thead', {}, h('tr', {}, ['principal', 'role', 'actions', 'on', 'expires', 'members reached'].map((t) => h('th', {}, t)))),
        h('tbody', {}, list.slice(0, PAGE).map((a) =>
          h('tr', { class: a.expires_at !== undefined && a.expires_at <= now ? 'expired' : '' },
            h('td', {}, a.principal), h('td', {}, a.role), h('td', {}, (dir.roles.get(a.role) ?? []).join(', ')),
            h('td', {}, a.resource), h('td', {}, a.expires_at ? fmtTime(a.expires_at) : '—'),
            h('td', {}, String(dir.membersBelow(a.principal).length)))))),
    );
  }
  refusedNote(out, access.refused);
  out.dataset.now = String(now);
  out.dataset.resource = resource;
}

// -------------------------------------------------------------------------------------------
// The check tool.

async function runCheck(e) {
  e.preventDefault();
  const subject = $('check-subject').value.trim();
  const action = $('check-action').value;
  const resource = $('check-resource').value.trim();
  const t = $('check-time').value;
  const now = t ? new Date(t).getTime() : asOf();
  const [d] = await state.source.checkMany([[subject, action, resource]], t ? now : asked(now));
  const out = $('check-out');
  out.replaceChildren(h('p', { class: 'hint' }, `at ${fmtTime(now)}`), explain(d, [subject, action, resource]));
  out.dataset.now = String(now);
}

// -------------------------------------------------------------------------------------------
// The token inspector. A pasted token is read in this page (lib/jws.js) and checked by the page's
// preview evaluator (`checkToken`, its signature verified by this browser's WebCrypto). It is
// never sent: no request carries it (not even to a connected Worker, whose answers would need
// it), nothing stores it, and it goes in no URL and no attribute of the page: only the textarea
// and the running check hold it.

/** The resources the inspector asks about: the one typed, else the model's (tree order). */
function tokenResources() {
  const typed = $('token-resource').value.trim();
  if (typed) return [typed];
  return state.source?.directory ? state.source.directory.resources.slice(0, PAGE) : [];
}

/** A claim's value as text: strings as they are, the rest as JSON, long values cut. */
function shown(v) {
  const t = typeof v === 'string' ? v : JSON.stringify(v);
  return t.length > 300 ? `${t.slice(0, 300)}… (${t.length} characters)` : t;
}

/** "in 59 min", "3 min ago": how far `ms` is from `now`. */
function relative(ms, now) {
  const d = Math.abs(ms - now) / 1000;
  const span = d < 90 ? `${Math.round(d)} s` : d < 5400 ? `${Math.round(d / 60)} min` : d < 172800 ? `${Math.round(d / 3600)} h` : `${Math.round(d / 86400)} d`;
  return ms >= now ? `in ${span}` : `${span} ago`;
}

const CLAIM_LABELS = {
  iss: 'issuer', sub: 'subject claim', aud: 'audience', exp: 'expires', nbf: 'not before', iat: 'issued at',
  auth_time: 'authenticated at', sid: 'session id',
};

/** The header and the claims, as tables. */
function tokenParts(read, identity, clock) {
  const hdr = read.header;
  const claims = read.claims;
  const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
  const headRows = ['alg', 'kid', 'typ'].concat(Object.keys(hdr).filter((k) => !['alg', 'kid', 'typ'].includes(k)));
  const families = identity ? familyClaims(identity) : [DEFAULT_FAMILY_CLAIM];
  const named = KNOWN_CLAIMS.concat(families.filter((f) => !KNOWN_CLAIMS.includes(f)));
  const rows = named.concat(Object.keys(claims).filter((k) => !named.includes(k)));
  const value = (k) => {
    if (!own(claims, k)) return h('span', { class: 'hint' }, '—');
    const v = claims[k];
    if (!TIME_CLAIMS.has(k)) return h('code', {}, shown(v));
    if (typeof v !== 'number' || !Number.isFinite(v)) return [h('code', {}, shown(v)), ' not a time in seconds'];
    const ms = v * 1000;
    const date = Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : 'out of range';
    return [h('time', { datetime: date }, date), ` (${v}) · ${relative(ms, clock)}`];
  };
  return h('div', { class: 'token-parts' },
    h('table', { id: 'token-header', class: 'token' },
      h('caption', {}, 'header'),
      h('tbody', {}, headRows.map((k) => h('tr', { dataset: { member: k } },
        h('th', { scope: 'row' }, k), h('td', {}, own(hdr, k) ? h('code', {}, shown(hdr[k])) : h('span', { class: 'hint' }, '—')))))),
    h('table', { id: 'token-claims', class: 'token' },
      h('caption', {}, `claims · signature ${read.signatureBytes} bytes`),
      h('tbody', {}, rows.map((k) => h('tr', { dataset: { claim: k } },
        h('th', { scope: 'row' }, k),
        h('td', { class: 'hint' }, CLAIM_LABELS[k] ?? (families.includes(k) ? 'family (revocations read it)' : '')),
        h('td', {}, value(k)))))));
}

/** What the loaded model makes of the token: issuer, key, subject, attributes, sessions. */
function tokenReading(x) {
  const mark = (ok) => (ok === true ? '✓' : ok === false ? '✕' : '·');
  const attrs = x.attrs.map((a) => h('li', { dataset: { attr: a.attr, given: String(a.value !== undefined) } },
    h('code', {}, a.attr), ' = ',
    a.value !== undefined ? h('code', { class: 'value' }, JSON.stringify(a.value)) : h('span', { class: 'hint' }, 'absent'),
    ' ', h('span', { class: 'hint' }, a.claim === AUTH_AGE ? '(seconds since auth_time)' : `(claim ${a.claim})`)));
  return h('div', { class: 'token-reading' },
    h('h3', {}, 'What this model makes of it'),
    h('dl', { class: 'token-facts' },
      h('dt', {}, 'issuer'),
      h('dd', { id: 'token-issuer', dataset: { issuer: x.issuer?.issuer ?? '' } }, x.issuer ? x.issuer.issuer : 'not a declared issuer'),
      h('dt', {}, 'key'),
      h('dd', { id: 'token-key', dataset: { kid: x.key?.kid ?? '', alg: x.key?.alg ?? '' } },
        x.key ? `${x.key.kid ?? '(the only key)'} · ${x.key.alg} (${x.key.detail})` : x.issuer ? 'none of the issuer\'s keys' : '—'),
      h('dt', {}, 'subject'),
      h('dd', { id: 'token-subject', dataset: { subject: x.subject ?? '' } },
        x.subject ?? '—', x.issuer ? h('span', { class: 'hint' }, ` (template ${x.issuer.subject})`) : null),
      h('dt', {}, 'attributes'),
      h('dd', { id: 'token-attrs' }, x.attrs.length
        ? [h('ul', {}, attrs), h('span', { class: 'hint' }, 'they replace the request context\'s attributes of these names')]
        : h('span', { class: 'hint' }, x.issuer ? 'the issuer maps no claims' : '—')),
      h('dt', {}, 'sessions'),
      h('dd', { id: 'token-session', dataset: { gate: x.sessions.map((s) => s.kind).join(' ') } },
        x.sessions.length
          ? x.sessions.map((s, i) => [i ? '; ' : '', h('code', {}, s.kind), ` ${s.text}`])
          : x.subject ? 'no session gate refuses it' : 'no revoked session or family (not_before needs a subject)')),
    h('ol', { class: 'token-steps' }, x.steps.map((st) =>
      h('li', { class: st.ok === false ? 'deny' : st.ok ? 'allow' : 'hint', dataset: { gate: st.gate, ok: String(st.ok), fault: st.fault ?? '' } },
        mark(st.ok), ' ', st.text, st.fault ? [' ', h('code', {}, st.fault)] : null))),
    h('p', { id: 'token-expect', dataset: { fault: x.fault ?? '' } }, x.fault
      ? ['The page expects the evaluator to refuse it: ', h('code', {}, x.fault), '.']
      : 'The page sees nothing that refuses it; the evaluator verifies the signature.'));
}

/** Every (resource, action) decision for the token: a summary, then a table explained on click. */
function tokenMayDo(decisions, resources, actions) {
  const refused = decisions.find((d) => d.tokenError);
  const subject = decisions.find((d) => d.subject)?.subject;
  const allowed = decisions.filter((d) => d.allowed).length;
  const detail = h('div', { class: 'detail' });
  const summary = h('p', { id: 'token-verdict', dataset: { subject: subject ?? '', tokenError: refused?.tokenError ?? '', reason: refused?.reason ?? '' } },
    refused
      ? [h('span', { class: 'badge deny' }, 'refused'), ' at the token gate: ', h('code', {}, refused.reason),
        ', tokenError ', h('code', { class: 'token-error' }, refused.tokenError)]
      : subject
        ? [h('span', { class: 'badge allow' }, 'admitted'), ' as ', h('code', {}, subject), `: ${allowed} of ${decisions.length} allowed`]
        : ['no answer reached the token gate: ', h('code', {}, decisions[0]?.reason ?? '—')]);
  const text = (d) => (d.allowed ? `✓ ${d.grant.role}${d.grant.when ? ' ?' : ''}`
    : d.reason === 'no_grant' ? '·' : d.reason === 'step_up_required' ? '⇡' : `✕ ${d.reason}`);
  const table = h('table', { id: 'token-may', class: 'perm' },
    h('thead', {}, h('tr', {}, h('th', {}, 'resource'), actions.map((a) => h('th', { scope: 'col' }, a)))),
    h('tbody', {}, resources.map((r, i) => h('tr', { dataset: { resource: r } },
      h('th', { scope: 'row' }, r),
      actions.map((a, j) => {
        const d = decisions[i * actions.length + j];
        const open = () => detail.replaceChildren(explain(d, [d.subject ?? 'the token', a, r]));
        return h('td', {
          class: d.allowed ? 'allow' : d.reason === 'no_grant' ? 'deny' : 'deny refused',
          dataset: { action: a, allowed: String(d.allowed), reason: d.reason, tokenError: d.tokenError ?? '' },
          title: d.tokenError ? `${d.reason} (${d.tokenError})` : d.reason,
          tabindex: 0,
          onclick: open,
          onkeydown: (e) => e.key === 'Enter' && open(),
        }, text(d));
      })))));
  return h('div', { class: 'token-may' }, h('h3', {}, 'What it may do'), summary, table, detail);
}

/** Reads the pasted token and, with a model in the page, asks the evaluator what it may do. */
async function inspectTokenView() {
  const run = ++state.tokenRun;
  const out = $('token-out');
  const text = $('token-input').value;
  if (!normalizeToken(text)) {
    out.replaceChildren();
    delete out.dataset.state;
    return;
  }
  const src = state.source;
  const identity = src?.model ? identityOf(src.model) : null;
  const clock = Date.now();
  let read = null;
  const parts = [];
  try {
    read = readToken(text);
  } catch (e) {
    if (e.code !== 'malformed_token') throw e;
    parts.push(h('p', { class: 'token-problem', role: 'alert' }, h('strong', {}, 'Not a token an edge reads: '), `${e.message}.`));
  }
  if (read) {
    parts.push(tokenParts(read, identity, clock));
    parts.push(identity
      ? tokenReading(inspectToken(identity, read, clock))
      : h('p', { class: 'hint' }, 'The page does not hold this Worker\'s issuers and sessions (its status does not list them): ' +
        'it can only decode the token.'));
  }
  out.replaceChildren(...parts);
  out.dataset.state = read ? 'read' : 'malformed';
  if (typeof src?.checkToken !== 'function') {
    out.append(h('p', { class: 'hint', id: 'token-not-sent' }, 'What it may do is answered in the page only, and a Worker would ' +
      'need the token: load the model (a file, a URL or the example) to check it here. The token was not sent.'));
    return;
  }
  const actions = src.actions().map((a) => a.name);
  const resources = tokenResources();
  const now = asOf();
  let decisions;
  try {
    decisions = await src.checkToken(normalizeToken(text), resources.flatMap((r) => actions.map((a) => [a, r])), asked(now));
  } catch (e) {
    if (run !== state.tokenRun) return; // another run, or another model, took over
    throw e;
  }
  if (run !== state.tokenRun) return;
  out.append(tokenMayDo(decisions, resources, actions));
  out.dataset.now = String(now);
}

function clearToken() {
  state.tokenRun++;
  $('token-input').value = '';
  $('token-out').replaceChildren();
  delete $('token-out').dataset.state;
}

// -------------------------------------------------------------------------------------------
// What-if.

function stageFields() {
  const kind = $('stage-kind').value;
  const fields = CHANGE_KINDS[kind];
  const dir = state.source?.directory;
  const out = fields.map((f) => {
    const optional = f.endsWith('?');
    const name = f.replace('?', '');
    if (name === 'actions') {
      return h('fieldset', { id: 'stage-actions' }, h('legend', {}, 'actions'),
        (dir?.actions ?? []).map((a) => h('label', {}, h('input', { type: 'checkbox', value: a.name }), a.name)));
    }
    if (name === 'role') {
      return h('label', {}, 'role ', h('select', { name, onchange: syncRoleActions },
        [...(dir?.roles.keys() ?? [])].map((r) => h('option', { value: r }, r))));
    }
    if (name === 'expires_at') {
      return h('label', {}, 'expires (optional) ', h('input', { name, type: 'datetime-local', step: 1 }));
    }
    if (name === 'condition') {
      return h('label', {}, 'condition (JSON) ', h('input', { name, required: true, size: 50, autocomplete: 'off', spellcheck: 'false', placeholder: '{"attr": "ip", "op": "in_cidr", "value": "10.0.0.0/8"}' }));
    }
    if (name === 'when') {
      return h('label', {}, 'condition (empty: none) ', h('input', { name, autocomplete: 'off', placeholder: 'office' }));
    }
    return h('label', {}, `${name} `, h('input', { name, required: !optional, autocomplete: 'off', placeholder: name === 'parent' ? 'new parent' : '' }));
  });
  $('stage-fields').replaceChildren(...out);
  syncRoleActions();
}

function syncRoleActions() {
  const box = $('stage-actions');
  const role = document.querySelector('#stage-fields select[name=role]')?.value;
  if (!box || !role) return;
  const have = new Set(state.source.directory.roles.get(role) ?? []);
  for (const c of box.querySelectorAll('input')) c.checked = have.has(c.value);
}

function readStageForm() {
  const kind = $('stage-kind').value;
  const c = { kind };
  for (const el of $('stage-fields').querySelectorAll('input[name], select[name]')) {
    if (el.name === 'expires_at') {
      if (el.value) c.expires_at = new Date(el.value).getTime();
    } else {
      c[el.name] = el.value.trim();
    }
  }
  if (kind === 'set_role') {
    c.actions = [...$('stage-actions').querySelectorAll('input:checked')].map((x) => x.value);
  }
  return c;
}

async function stage(e) {
  e.preventDefault();
  const src = state.source;
  if (!(src instanceof LocalSource)) return;
  const c = readStageForm();
  const next = [...state.staged, c];
  setStaged(next); // throws (shown) when it does not apply, leaving the staged list as it was
  message(null);
  renderStaged();
}

function renderStaged() {
  const local = state.source instanceof LocalSource;
  $('whatif-unavailable').hidden = local;
  $('stage-form').hidden = !local;
  const list = $('staged');
  list.replaceChildren(
    ...state.staged.map((c, i) =>
      h('li', { dataset: { kind: c.kind } }, describe(c), ' ',
        h('button', { type: 'button', class: 'unstage', onclick: () => unstage(i) }, 'remove'))),
  );
  const any = state.staged.length > 0;
  for (const id of ['export', 'use-staged', 'clear-staged']) $(id).disabled = !any;
  if (!any) {
    $('impact').replaceChildren();
    return;
  }
  const now = asOf();
  $('impact').dataset.now = String(now);
  // The loaded model's evaluator and directory, and the staged model's evaluator from staging:
  // only diffModels compiles again.
  const r = impact(api, src().model, state.stagedModel, state.staged, now, {
    beforeEvaluator: src().evaluator,
    beforeDirectory: src().directory,
    afterEvaluator: state.stagedEvaluator,
    attrs: src().attrs,
  });
  const rowsOf = (rows, cls, side) =>
    h('table', { class: `diff ${cls}` },
      h('thead', {}, h('tr', {}, ['', 'subject', 'action', 'resource', side === 'before' ? 'was allowed by' : 'allowed by', 'after'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows.slice(0, SHOWN).map((x) => {
        const d = x[side];
        const other = side === 'before' ? x.after : x.before;
        return h('tr', { class: cls, dataset: { subject: x.subject, action: x.action, resource: x.resource } },
          h('td', { class: 'sign', 'aria-label': cls === 'revoke' ? 'revoked' : 'granted' }, cls === 'revoke' ? '−' : '+'),
          h('td', {}, x.subject), h('td', {}, x.action), h('td', {}, x.resource),
          h('td', {}, `${d.grant.role} on ${d.grant.resource} via ${d.grant.path.join(' → ')}`),
          h('td', {}, side === 'before' ? `denied (${other.reason})` : 'allowed'));
      })));
  const plural = (n, one) => `${n} ${one}${n === 1 ? '' : 's'}`;
  const parts = [
    h('p', { class: 'summary' },
      h('span', { class: 'count revoke', id: 'revocations-count', dataset: { n: r.revocations.length } }, plural(r.revocations.length, 'revocation')),
      ' · ',
      h('span', { class: 'count grant', id: 'grants-count', dataset: { n: r.grants.length } }, plural(r.grants.length, 'grant')),
      ` · the origin would publish a ${r.deltaBytes}-byte delta`,
      r.revokes ? h('strong', { id: 'revokes' }, ' as a revocation (the watermark rises: edges fail closed until they apply it)') : ' as a grant (asynchronous)',
      ` · ${r.examined} answers compared in ${r.ms.toFixed(0)} ms`),
    r.revocations.length ? h('h3', { class: 'revoke' }, 'revoked') : null,
    r.revocations.length ? rowsOf(r.revocations, 'revoke', 'before') : null,
    r.grants.length ? h('h3', { class: 'grant' }, 'granted') : null,
    r.grants.length ? rowsOf(r.grants, 'grant', 'after') : null,
    r.revocations.length + r.grants.length > 2 * SHOWN ? h('p', { class: 'hint' }, `the first ${SHOWN} of each are shown`) : null,
  ];
  $('impact').replaceChildren(...parts.filter(Boolean));
}

/** The loaded model's source (what-if always starts from it). */
const src = () => state.source;

/** Stages `changes` (all of them, from the loaded model), or throws and changes nothing. */
function setStaged(changes) {
  const staged = changes.length ? stageChanges(api, src().model, changes) : { model: null, evaluator: null };
  state.stagedEvaluator?.free();
  state.staged = changes;
  state.stagedModel = staged.model;
  state.stagedEvaluator = staged.evaluator;
}

function unstage(i) {
  guarded(async () => {
    setStaged(state.staged.filter((_, j) => j !== i));
    renderStaged();
  });
}

function exportStaged() {
  const blob = new Blob([JSON.stringify(state.stagedModel, null, 2) + '\n'], { type: 'application/json' });
  const a = h('a', { href: URL.createObjectURL(blob), download: `${state.stagedModel.tenant}.staged.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// -------------------------------------------------------------------------------------------
// Connecting to a Worker. The token goes to the page's own origin without a question; to another
// origin only once the administrator has confirmed that origin, shown in full (a `?worker=` link
// can point the page anywhere, and the page never connects by itself). A confirmation holds for
// the origin it named until the page is reloaded.

const confirmedOrigins = new Set();

/** Hosts a Worker may be reached on over plain http (on this machine), as the CSP's connect-src. */
const LOOPBACK = new Set(['127.0.0.1', 'localhost']);

function coded(code, text) {
  const e = new Error(text);
  e.code = code;
  return e;
}

/** The Worker's base URL as typed (empty: this page's origin) and its origin, or throws. */
function workerTarget() {
  const base = $('worker-url').value.trim() || location.origin;
  let url;
  try {
    url = new URL(base);
  } catch {
    throw coded('invalid_url', `\`${base}\` is not a URL (http://127.0.0.1:8787, https://…)`);
  }
  if (url.origin === location.origin) return { base, origin: url.origin };
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw coded('insecure_url', `${url.origin} is not https: a token would cross the network in clear ` +
      '(plain http only reaches a Worker on this machine)');
  }
  return { base, origin: url.origin };
}

/** Shows (under the Worker row) whether the typed Worker is on another origin than the page. */
function noteElsewhere() {
  let origin = null;
  try {
    origin = workerTarget().origin;
  } catch {
    // Said when connecting.
  }
  const elsewhere = origin !== null && origin !== location.origin;
  $('worker-elsewhere').hidden = !elsewhere;
  $('worker-elsewhere-origin').textContent = elsewhere ? origin : '';
}

function askCrossOrigin(origin) {
  message(null);
  $('cross-origin-target').textContent = origin;
  $('confirm-origin-target').textContent = origin;
  $('cross-origin-self').textContent = location.origin;
  $('cross-origin').dataset.origin = origin;
  $('cross-origin').hidden = false;
  $('cancel-origin').focus(); // Enter on the focused button declines
}

function closeCrossOrigin() {
  $('cross-origin').hidden = true;
  delete $('cross-origin').dataset.origin;
}

async function connect() {
  closeCrossOrigin();
  const { base, origin } = workerTarget();
  const token = $('worker-token').value;
  if (token && origin !== location.origin && !confirmedOrigins.has(origin)) {
    askCrossOrigin(origin);
    return;
  }
  const source = new RemoteSource(base, $('worker-tenant').value.trim(), token);
  await source.status(); // fails here, before anything is replaced, when it cannot connect
  await useSource(source, `Connected to ${source.origin}: answers come from the Worker's signed snapshot.`);
}

/** Confirms the origin the warning named, if the URL still points there, and connects. */
async function confirmCrossOrigin() {
  const asked = $('cross-origin').dataset.origin;
  closeCrossOrigin();
  if (!asked || workerTarget().origin !== asked) return;
  confirmedOrigins.add(asked);
  await connect();
}

// -------------------------------------------------------------------------------------------
// Views and start.

function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll('#tabs [role=tab]')) {
    b.setAttribute('aria-selected', String(b.dataset.view === view));
  }
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${view}`;
}

function wire() {
  $('load-example').onclick = () => guarded(() => fetchModel(new URL('./examples/acme.json', location.href).href));
  $('load-url').onclick = () => guarded(() => fetchModel($('model-url').value.trim()));
  $('model-file').onchange = (e) =>
    guarded(async () => {
      const f = e.target.files[0];
      if (f) await parseModel(await f.text(), f.name);
    });
  $('connect').onclick = () => guarded(connect);
  $('confirm-origin').onclick = () => guarded(confirmCrossOrigin);
  $('cancel-origin').onclick = () => {
    closeCrossOrigin();
    message('Not connected: the token was not sent.', 'info');
  };
  // Another URL voids a pending question: it named the origin typed before.
  $('worker-url').oninput = () => {
    closeCrossOrigin();
    noteElsewhere();
  };
  for (const b of document.querySelectorAll('#tabs [role=tab]')) b.onclick = () => show(b.dataset.view);
  for (const which of ['subject', 'resource']) {
    const input = $(`${which}-search`);
    input.oninput = () => renderPicker(which);
    input.onkeydown = (e) => {
      if (e.key !== 'Enter') return;
      const first = $(`${which}-results`).querySelector('button');
      const typed = input.value.trim();
      if (typed) pick(which, first && first.dataset.id === typed ? typed : first?.dataset.id ?? typed);
    };
  }
  $('check-form').onsubmit = (e) => guarded(() => runCheck(e));
  $('token-form').onsubmit = (e) => {
    e.preventDefault();
    guarded(inspectTokenView);
  };
  $('token-input').oninput = () => guarded(inspectTokenView);
  $('token-resource').onchange = () => guarded(inspectTokenView);
  $('token-clear').onclick = clearToken;
  $('stage-kind').onchange = stageFields;
  $('stage-form').onsubmit = (e) => guarded(() => stage(e));
  $('export').onclick = exportStaged;
  $('clear-staged').onclick = () => {
    setStaged([]);
    renderStaged();
  };
  $('use-staged').onclick = () => guarded(() => loadModel(state.stagedModel, 'the staged model'));
  // A new "as of" time, or a new request context, redraws what is open.
  $('attrs').onchange = () => guarded(() => { readAttrs(); return redraw(); });
  $('asof').onchange = () => guarded(redraw);
  stageFields();
}

/** The context editor's attributes (a JSON object), given to the source; an error otherwise. */
function readAttrs() {
  const text = $('attrs').value.trim();
  let attrs = {};
  if (text) {
    try {
      attrs = JSON.parse(text);
    } catch (e) {
      throw Object.assign(new Error(`the request context is not JSON: ${e.message}`), { code: 'invalid_json' });
    }
    if (attrs === null || typeof attrs !== 'object' || Array.isArray(attrs)) {
      throw Object.assign(new Error('the request context is a JSON object of attributes'), { code: 'invalid_context' });
    }
  }
  state.attrs = attrs;
  if (state.source) state.source.attrs = attrs;
  message(null);
}

/** Asks again for what is open (the subject's and the resource's tables, the what-if impact). */
async function redraw() {
  if (!state.source) return;
  const subject = $('subject-out').dataset.subject;
  const resource = $('resource-out').dataset.resource;
  if (subject) await openSubject(subject);
  if (resource) await openResource(resource);
  if (state.staged.length) renderStaged();
  if ($('token-out').dataset.state) await inspectTokenView();
}

async function start() {
  wire();
  const q = new URLSearchParams(location.search);
  $('worker-url').value = q.get('worker') ?? (location.pathname.startsWith('/admin') ? location.origin : '');
  $('worker-tenant').value = q.get('tenant') ?? '';
  noteElsewhere();
  if (q.get('model')) await guarded(() => fetchModel(q.get('model')));
  document.body.dataset.ready = 'yes';
}

start();

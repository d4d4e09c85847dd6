// The Worker's entry (wrangler.toml's `main`, copied to build/worker.mjs by
// scripts/build-worker.sh): the admin page under /admin from the Worker's own modules
// (build/admin.bin and build/admin.mjs, scripts/pack-admin.mjs), every other path to the API
// (build/index.js: the Rust Worker of this crate, built by worker-build). The Worker has no
// static-assets configuration: with one, every request, the API's too, would first pass through
// the platform's assets router (docs/worker.md, "The admin page").
import Api from './index.js';
import { FILES, HEADERS } from './admin.mjs';
import bytes from './admin.bin';

export { TenantAuthority } from './index.js';

const PAGE = new Map(FILES.map(([path, at, length, type, etag]) => [path, { at, length, type, etag }]));

// The response headers every answer under /admin carries (www/_headers).
function headers(more) {
  const h = new Headers(HEADERS);
  for (const [k, v] of more) h.set(k, v);
  return h;
}

function answer(status, text, more = []) {
  return new Response(text, { status, headers: headers([['content-type', 'text/plain; charset=utf-8'], ...more]) });
}

// Whether an If-None-Match header names `etag` (a list of tags, weak or strong, or `*`).
function fresh(ifNoneMatch, etag) {
  if (ifNoneMatch === null) return false;
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

function admin(request) {
  const url = new URL(request.url);
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return answer(405, 'method not allowed\n', [['allow', 'GET, HEAD']]);
  }
  // One address per page, as Cloudflare's static assets have it: the folder with its slash.
  if (url.pathname === '/admin' || url.pathname === '/admin/index.html') {
    return answer(307, '', [['location', `/admin/${url.search}`]]);
  }
  const file = PAGE.get(url.pathname);
  if (file === undefined) return answer(404, 'not found\n');
  const h = headers([
    ['content-type', file.type],
    ['etag', file.etag],
    // Revalidated on each use (a deploy changes the files at the same paths): 304 when unchanged.
    ['cache-control', 'public, max-age=0, must-revalidate'],
  ]);
  if (fresh(request.headers.get('if-none-match'), file.etag)) return new Response(null, { status: 304, headers: h });
  h.set('content-length', String(file.length));
  // A copy: a Response may take over the buffer it is given, and this one is the module's.
  const body = request.method === 'HEAD' ? null : bytes.slice(file.at, file.at + file.length);
  return new Response(body, { status: 200, headers: h });
}

// Whether `url` (absolute, as a Request has it) is /admin or under it: read without parsing the
// URL, since the API's requests pass here too.
function isAdmin(url) {
  const slash = url.indexOf('/', url.indexOf('//') + 2);
  if (slash < 0 || !url.startsWith('/admin', slash)) return false;
  const next = url.charCodeAt(slash + 6);
  // The end, '/', '?' or '#'.
  return Number.isNaN(next) || next === 47 || next === 63 || next === 35;
}

export default class Worker extends Api {
  fetch(request) {
    if (isAdmin(request.url)) return admin(request);
    return super.fetch(request);
  }
}

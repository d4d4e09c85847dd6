// The built Worker (build/worker.mjs, the entry wrangler.toml names) with a clock the test sets,
// for the suites that must decide at a chosen time of the host (edge.mjs: `startEdge({clocked:
// true})`, then `edge.setClock(ms)`). The Worker reads its clock through `Date.now`
// (js_sys::Date::now), in its isolates and in its Durable Object alike; this module, loaded in
// place of build/worker.mjs, answers `Date.now` from the test's value while one is set (null: the
// real clock again), and takes that value on a path of its own, `/__test/clock?ms=...`. Nothing
// else differs: the requests go to the built Worker. Never deployed: the Worker itself has no way
// to move its clock.
import Built, { TenantAuthority } from '../../build/worker.mjs';

export { TenantAuthority };

const realNow = Date.now.bind(Date);
let fixed = null;
Date.now = () => (fixed === null ? realNow() : fixed);

export default class ClockedWorker extends Built {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/__test/clock') {
      const ms = url.searchParams.get('ms');
      fixed = ms === null || ms === '' ? null : Number(ms);
      return new Response(JSON.stringify({ clock: Date.now() }), { headers: { 'content-type': 'application/json' } });
    }
    return super.fetch(request);
  }
}

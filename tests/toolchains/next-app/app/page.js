// A server component (rendered at request time, in Node.js) and a client component (in the
// browser), each running the package's round trip.
import * as api from 'edge-authz';
import { roundTrip } from '../roundtrip.mjs';
import ClientRoundTrip from './client-round-trip';

export const dynamic = 'force-dynamic';

export default function Page() {
  return (
    <main>
      <pre id="server">{JSON.stringify(roundTrip(api))}</pre>
      <ClientRoundTrip />
    </main>
  );
}

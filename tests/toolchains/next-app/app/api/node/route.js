// A route on the Node.js runtime.
import * as api from 'edge-authz';
import { roundTrip } from '../../../roundtrip.mjs';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export function GET() {
  return Response.json(roundTrip(api));
}

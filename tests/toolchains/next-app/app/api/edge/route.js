// A route on the Edge runtime (the package's `edge-light` entry).
import * as api from 'edge-authz';
import { roundTrip } from '../../../roundtrip.mjs';

export const runtime = 'edge';
export const dynamic = 'force-dynamic';

export function GET() {
  return Response.json(roundTrip(api));
}

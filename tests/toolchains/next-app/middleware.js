// Middleware, on the Edge runtime: answers /from-middleware itself.
import * as api from 'edge-authz';
import { roundTrip } from './roundtrip.mjs';

export const config = { matcher: '/from-middleware' };

export function middleware() {
  return Response.json(roundTrip(api));
}

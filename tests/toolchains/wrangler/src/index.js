// Answers every request with the package's round trip, run in the Worker.
import * as api from 'edge-authz';
import { roundTrip } from '../roundtrip.mjs';

export default {
  fetch() {
    return Response.json(roundTrip(api));
  },
};

// A Node service bundled into one file (as for AWS Lambda): `esbuild --bundle --platform=node`,
// ESM. Prints the round trip's results and a fresh key pair's lengths.
import * as api from 'edge-authz';
import { roundTrip } from './roundtrip.mjs';

const { publicKey, secretKey } = api.generateKeyPair();
console.log(JSON.stringify({ results: roundTrip(api), keys: [publicKey.length, secretKey.length] }));

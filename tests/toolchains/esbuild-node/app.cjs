// The same service as app.mjs, CommonJS: `esbuild --bundle --platform=node --format=cjs`.
const api = require('edge-authz');
const { roundTrip } = require('./roundtrip.mjs');

const { publicKey, secretKey } = api.generateKeyPair();
console.log(JSON.stringify({ results: roundTrip(api), keys: [publicKey.length, secretKey.length] }));

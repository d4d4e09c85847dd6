// Node 18 (the oldest the package claims): `require` and `import` of the package, a key pair
// from Node's own WebCrypto (not global on 18), the round trip, and an error's code.
const cjs = require('edge-authz');

(async () => {
  const esm = await import('edge-authz');
  const { roundTrip } = await import('./roundtrip.mjs');
  const keys = cjs.generateKeyPair();
  let code = null;
  try {
    new cjs.Evaluator({ tenant: 'acme', publicKeys: ['not a key'] });
  } catch (e) {
    code = e.code;
  }
  console.log(JSON.stringify({
    node: process.version,
    same: esm.Evaluator === cjs.Evaluator,
    results: roundTrip(esm),
    keys: [keys.publicKey.length, keys.secretKey.length],
    code,
  }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});

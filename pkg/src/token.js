// Token signatures verified by the host's WebCrypto (Node, browsers and workerd all have RS256,
// ES256 and Ed25519), so that the wasm carries no RSA or P-256 code of its own. The core picks
// the key and the bytes (crates/core/src/token.rs); this side only answers "does this signature
// verify with this key". Imported keys are kept per key (a bounded cache), as promises, so that
// concurrent checks import a key once.
import { fail } from './args.js';
import { host } from './internal.js';

const ALGORITHMS = {
  RS256: [{ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, { name: 'RSASSA-PKCS1-v1_5' }],
  ES256: [{ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' }],
  EdDSA: [{ name: 'Ed25519' }, { name: 'Ed25519' }],
};
const MAX_KEYS = 64;
const keys = new Map();

function subtle() {
  const s = (globalThis.crypto ?? host.nodeCrypto?.())?.subtle;
  if (typeof s?.verify !== 'function') {
    throw fail('no_webcrypto', 'this host has no WebCrypto (globalThis.crypto.subtle) to verify token signatures');
  }
  return s;
}

// The CryptoKey of a JWK (the JSON text the core gave), imported once.
function importKey(s, alg, jwkText) {
  const id = `${alg} ${jwkText}`;
  let k = keys.get(id);
  if (k === undefined) {
    const { kid, alg: _alg, ...jwk } = JSON.parse(jwkText);
    k = s.importKey('jwk', jwk, ALGORITHMS[alg][0], false, ['verify']);
    if (keys.size >= MAX_KEYS) keys.clear();
    keys.set(id, k);
    // A key that does not import is not kept: the next check tries again.
    k.catch(() => keys.delete(id));
  }
  return k;
}

// Whether `signature` is the key's signature of `message` by `alg`. Rejects (code
// `no_webcrypto` or `webcrypto_failed`) when the host cannot say: a refusal must come from a
// signature that does not verify, never from a host that lacks an algorithm.
export async function verifySignature(alg, jwkText, message, signature) {
  const s = subtle();
  if (ALGORITHMS[alg] === undefined) throw fail('webcrypto_failed', `no WebCrypto algorithm for ${alg}`);
  let key;
  try {
    key = await importKey(s, alg, jwkText);
  } catch (e) {
    throw fail('webcrypto_failed', `this host's WebCrypto cannot import a ${alg} key: ${e?.message ?? e}`, e);
  }
  try {
    return await s.verify(ALGORITHMS[alg][1], key, signature, message);
  } catch (e) {
    throw fail('webcrypto_failed', `this host's WebCrypto cannot verify ${alg}: ${e?.message ?? e}`, e);
  }
}

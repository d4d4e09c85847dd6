// Generates signed JWT test cases for the token gates of edge-authz, with the npm library `jose`.
//
//   node tests/tokens/make.mjs [--clock MS] [--out FILE]
//
// The clock is Unix milliseconds (default 1800000000000); the output is pretty-printed JSON on
// stdout, or in FILE. Keys are generated afresh on every run, so the tokens and the model's JWKs
// change from run to run; the names, order and expected answers of the cases do not.
//
// JS tests may import `makeCases(clock)` to generate a set at the real clock instead of reading
// tests/tokens/cases.json. See tests/tokens/README.md.

import { KeyObject, sign as nodeSign } from "node:crypto";
import { realpathSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";

export const DEFAULT_CLOCK = 1800000000000;

export const ISSUER = "https://idp.example.com/";
export const OTHER_ISSUER = "https://other.example/";
export const AUDIENCE = "https://api.acme.example";

const ALGS = [
  { alg: "RS256", kid: "rsa1", gen: ["RS256", { modulusLength: 2048 }] },
  { alg: "ES256", kid: "ec1", gen: ["ES256", {}] },
  { alg: "EdDSA", kid: "ed1", gen: ["EdDSA", { crv: "Ed25519" }] },
];

const b64u = (bytes) => Buffer.from(bytes).toString("base64url");
const b64uJson = (text) => b64u(Buffer.from(text, "utf8"));

async function keyPair(gen) {
  const [alg, options] = gen;
  return generateKeyPair(alg, { ...options, extractable: true });
}

async function publicJwk(publicKey, kid, alg) {
  const jwk = await exportJWK(publicKey);
  for (const k of ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"]) {
    if (k in jwk) throw new Error(`exported public JWK ${kid} holds private member ${k}`);
  }
  return { ...jwk, kid, alg };
}

// Signs with node:crypto (Ed25519 only), for headers jose refuses to produce.
function signEd25519ByHand(privateKey, headerJson, payloadPart) {
  const signingInput = `${b64uJson(headerJson)}.${payloadPart}`;
  const signature = nodeSign(null, Buffer.from(signingInput, "ascii"), KeyObject.from(privateKey));
  return `${signingInput}.${b64u(signature)}`;
}

export function buildModel(clock, jwks, otherJwks) {
  return {
    version: 1,
    tenant: "acme",
    actions: {
      read: { tier: "low" },
      write: { tier: "standard" },
      export: { tier: "high", requires: ["mfa_recent"] },
    },
    roles: { viewer: ["read"], editor: ["read", "write"], admin: ["read", "write", "export"] },
    resources: [
      { id: "org:acme" },
      { id: "workspace:eng", parent: "org:acme" },
      { id: "doc:roadmap", parent: "workspace:eng" },
    ],
    memberships: [
      { member: "user:alice", group: "group:eng" },
      { member: "group:eng", group: "group:staff" },
      { member: "user:bob", group: "group:eng" },
    ],
    assignments: [
      { principal: "group:staff", role: "viewer", resource: "org:acme" },
      { principal: "user:alice", role: "admin", resource: "workspace:eng" },
      { principal: "user:carol", role: "admin", resource: "workspace:eng" },
    ],
    suspended: ["user:mallory"],
    freshness: { low: 300000, standard: 30000, high: 5000 },
    conditions: {
      mfa_recent: { attr: "mfa_age_s", op: "<=", value: 900, step_up: true },
    },
    issuers: [
      {
        issuer: ISSUER,
        audiences: [AUDIENCE],
        jwks: { keys: jwks },
        subject: "user:{sub}",
        claims: { amr: "amr", mfa_age_s: "@auth_age_s" },
      },
      {
        issuer: OTHER_ISSUER,
        audiences: [AUDIENCE],
        jwks: { keys: otherJwks },
        subject: "user:{sub}",
      },
    ],
    sessions: {
      revoked: [{ sid: "sess-revoked", until: clock + 86400000 }],
      revoked_families: [{ family: "fam-stolen", claim: "fam", until: clock + 86400000 }],
      not_before: { "user:bob": clock - 600000 },
    },
  };
}

export async function makeCases(clock = DEFAULT_CLOCK) {
  if (!Number.isSafeInteger(clock) || clock < 1000000) {
    throw new RangeError(`clock must be Unix milliseconds as an integer, got ${clock}`);
  }
  const now = Math.floor(clock / 1000);
  let sidCounter = 0;
  const nextSid = () => `sess-${++sidCounter}`;

  // Key material: the issuer's three keys, an impostor of each algorithm (same kid, other key),
  // and the second issuer's Ed25519 key.
  const keys = {};
  const impostors = {};
  for (const a of ALGS) {
    keys[a.alg] = await keyPair(a.gen);
    impostors[a.alg] = await keyPair(a.gen);
  }
  const other = await keyPair(["EdDSA", { crv: "Ed25519" }]);

  const jwks = [];
  for (const a of ALGS) jwks.push(await publicJwk(keys[a.alg].publicKey, a.kid, a.alg));
  const otherJwks = [await publicJwk(other.publicKey, "other1", "EdDSA")];
  const model = buildModel(clock, jwks, otherJwks);

  // The claims of a valid token; `extra` adds or overrides (a value of undefined removes).
  const claims = (extra = {}) => {
    const c = {
      iss: ISSUER,
      sub: "alice",
      aud: AUDIENCE,
      iat: now - 60,
      exp: now + 3600,
      sid: nextSid(),
      amr: ["pwd"],
      ...extra,
    };
    for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
    return c;
  };

  const jwt = (payload, alg, kid, privateKey) =>
    new SignJWT(payload).setProtectedHeader({ alg, kid, typ: "JWT" }).sign(privateKey);

  const cases = [];
  const add = (name, alg, token, action, resource, expect, context) => {
    const c = { name, alg, token, action, resource };
    if (context !== undefined) c.context = context;
    c.expect = expect;
    cases.push(c);
  };
  const accepted = (reason, allowed, sub) => ({ reason, allowed, subject: `user:${sub}` });
  const refused = (reason) => ({ reason, allowed: false });

  for (const { alg, kid } of ALGS) {
    const key = keys[alg].privateKey;
    const sign = (payload, k = kid, pk = key) => jwt(payload, alg, k, pk);

    add(`${alg} valid`, alg, await sign(claims()), "read", "doc:roadmap",
      accepted("granted", true, "alice"));
    add(`${alg} valid write`, alg, await sign(claims()), "write", "doc:roadmap",
      accepted("granted", true, "alice"));
    add(`${alg} unknown user`, alg, await sign(claims({ sub: "dave" })), "read", "doc:roadmap",
      accepted("no_grant", false, "dave"));
    add(`${alg} expired`, alg, await sign(claims({ exp: now - 10 })), "read", "doc:roadmap",
      refused("token_expired"));
    add(`${alg} not yet valid`, alg, await sign(claims({ nbf: now + 600 })), "read", "doc:roadmap",
      refused("token_expired"));
    add(`${alg} wrong issuer`, alg, await sign(claims({ iss: "https://evil.example/" })), "read",
      "doc:roadmap", refused("token_invalid"));
    add(`${alg} wrong audience`, alg, await sign(claims({ aud: "https://api.evil.example" })), "read",
      "doc:roadmap", refused("token_invalid"));
    add(`${alg} unknown kid`, alg, await sign(claims(), `${kid}-unknown`), "read", "doc:roadmap",
      refused("token_invalid"));
    add(`${alg} signed by another key`, alg, await sign(claims(), kid, impostors[alg].privateKey),
      "read", "doc:roadmap", refused("token_invalid"));
    add(`${alg} revoked session`, alg, await sign(claims({ sid: "sess-revoked" })), "read",
      "doc:roadmap", refused("session_revoked"));
    add(`${alg} revoked family`, alg, await sign(claims({ fam: "fam-stolen" })), "read",
      "doc:roadmap", refused("session_revoked"));
    add(`${alg} bob issued before not_before`, alg,
      await sign(claims({ sub: "bob", iat: Math.floor((clock - 600000) / 1000) - 60 })), "read",
      "doc:roadmap", refused("session_revoked"));
    add(`${alg} bob issued after not_before`, alg, await sign(claims({ sub: "bob" })), "read",
      "doc:roadmap", accepted("granted", true, "bob"));
    add(`${alg} export with recent auth_time`, alg,
      await sign(claims({ amr: ["pwd", "mfa"], auth_time: now - 60 })), "export", "workspace:eng",
      accepted("granted", true, "alice"));
    add(`${alg} export without auth_time`, alg, await sign(claims()), "export", "workspace:eng",
      accepted("step_up_required", false, "alice"));
    add(`${alg} suspended user`, alg, await sign(claims({ sub: "mallory" })), "read", "doc:roadmap",
      accepted("suspended", false, "mallory"));
  }

  // Hostile tokens, once each.
  const ed = keys.EdDSA.privateKey;
  const payloadPart = (extra) => b64uJson(JSON.stringify(claims(extra)));

  add("alg none", null, `${b64uJson('{"alg":"none"}')}.${payloadPart()}.`, "read", "doc:roadmap",
    refused("token_invalid"));

  // Key confusion: HS256 keyed with the bytes of the RSA public key's SPKI PEM text (as jose's
  // exportSPKI writes it, no final newline), under kid rsa1. jose signs it: an HMAC key is bytes.
  const pem = await exportSPKI(keys.RS256.publicKey);
  add("HS256 keyed with the RSA public key", null,
    await jwt(claims(), "HS256", "rsa1", new TextEncoder().encode(pem)), "read", "doc:roadmap",
    refused("token_invalid"));

  // A valid EdDSA token whose payload part is cut to half its length (a multiple of 4 characters,
  // so it still decodes as base64url; the JSON and the signature are what break).
  {
    const [h, p, s] = (await jwt(claims(), "EdDSA", "ed1", ed)).split(".");
    const cut = Math.floor(p.length / 2 / 4) * 4;
    add("truncated payload", "EdDSA", `${h}.${p.slice(0, cut)}.${s}`, "read", "doc:roadmap",
      refused("token_invalid"));
  }

  // Validly signed, over 20,000 characters of claims.
  add("oversized token", "EdDSA", await jwt(claims({ pad: "x".repeat(20000) }), "EdDSA", "ed1", ed),
    "read", "doc:roadmap", refused("token_invalid"));

  // A '*' inserted in the middle of the payload part; the signature is valid over the signing
  // input as it stands, so only the base64url alphabet is wrong (a decoder that skipped the
  // character would read the original claims).
  {
    const p = payloadPart();
    const mid = Math.floor(p.length / 2);
    const starred = `${p.slice(0, mid)}*${p.slice(mid)}`;
    add("bad base64url in payload", "EdDSA",
      signEd25519ByHand(ed, JSON.stringify({ alg: "EdDSA", kid: "ed1", typ: "JWT" }), starred),
      "read", "doc:roadmap", refused("token_invalid"));
  }

  add("duplicate header member", "EdDSA",
    signEd25519ByHand(ed, '{"alg":"EdDSA","kid":"ed1","alg":"EdDSA"}', payloadPart()),
    "read", "doc:roadmap", refused("token_invalid"));

  add("crit header", "EdDSA",
    signEd25519ByHand(ed, '{"alg":"EdDSA","kid":"ed1","crit":["exp"]}', payloadPart()),
    "read", "doc:roadmap", refused("token_invalid"));

  add("second issuer valid", "EdDSA",
    await jwt(claims({ iss: OTHER_ISSUER }), "EdDSA", "other1", other.privateKey), "read",
    "doc:roadmap", accepted("granted", true, "alice"));

  add("second issuer signed with the first issuer's key", "EdDSA",
    await jwt(claims({ iss: OTHER_ISSUER }), "EdDSA", "ed1", ed), "read", "doc:roadmap",
    refused("token_invalid"));

  // For tests that need more tokens of the same issuer (JSON.stringify leaves it out):
  // `sign(extraClaims, alg = "EdDSA")` signs valid claims with the issuer's key of `alg`.
  const signer = (extra = {}, alg = "EdDSA") => {
    const a = ALGS.find((x) => x.alg === alg);
    return jwt(claims(extra), alg, a.kid, keys[alg].privateKey);
  };
  return { clock, model, cases, sign: signer };
}

function parseArgs(argv) {
  const opts = { clock: DEFAULT_CLOCK, out: null };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const take = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === "--clock") {
      const v = take();
      if (!/^[0-9]+$/.test(v)) throw new Error(`--clock takes Unix milliseconds, got ${v}`);
      opts.clock = Number(v);
    } else if (arg === "--out") {
      opts.out = take();
    } else if (arg === "-h" || arg === "--help") {
      opts.help = true;
    } else {
      throw new Error(`unknown argument ${arg}`);
    }
  }
  return opts;
}

function isMain() {
  if (!process.argv[1]) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`make.mjs: ${e.message}`);
    console.error("usage: node tests/tokens/make.mjs [--clock MS] [--out FILE]");
    process.exit(2);
  }
  if (opts.help) {
    console.log("usage: node tests/tokens/make.mjs [--clock MS] [--out FILE]");
    process.exit(0);
  }
  const text = `${JSON.stringify(await makeCases(opts.clock), null, 2)}\n`;
  if (opts.out) writeFileSync(opts.out, text);
  else process.stdout.write(text);
}

// Checks the token cases independently of edge-authz, with jose's own verifier.
//
//   node tests/tokens/check-fixture.mjs [FILE ...] [--fresh] [-v]
//
// Checks tests/tokens/cases.json when no FILE is named, and with --fresh also a set made by
// makeCases() at the current time. Exits 1 on the first set that fails.
//
// For each case, jose's jwtVerify is tried against every declared issuer (its JWKS through
// createLocalJWKSet, its `issuer` and `audiences`, algorithms RS256/ES256/EdDSA, currentDate the
// case set's clock, no clock tolerance). A case counts as accepted when one issuer accepts it and
// it breaks none of the two structural rules that jose does not apply:
//   - no member name twice in one object of the header or the claims (JSON.parse keeps the last);
//   - at most MAX_TOKEN_CHARS characters (jose has no size limit).
// Accepted must hold exactly for the cases whose expected reason is neither token_invalid nor
// token_expired. A case that only a structural rule rejects must have a valid signature (jose
// accepts it), so that rule is the one thing wrong with it.
// Beyond that: token_expired cases fail on exp or nbf, the expected subjects follow the issuer's
// subject template, the session gates of the model match the session_revoked cases, the export
// cases match their auth_time, and the model's JWKs hold public keys only.

import { readFileSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify } from "jose";
import { makeCases } from "./make.mjs";

export const MAX_TOKEN_CHARS = 8192;
const ALGORITHMS = ["RS256", "ES256", "EdDSA"];
const REFUSED_BY_TOKEN = new Set(["token_invalid", "token_expired"]);
const HERE = dirname(fileURLToPath(import.meta.url));

// --- a strict JSON reader that reports member names given twice in one object ---------------
function duplicateMembers(text) {
  let i = 0;
  const dups = [];
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const fail = (what) => {
    throw new SyntaxError(`${what} at ${i}`);
  };
  const string = () => {
    if (text[i] !== '"') fail("string expected");
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    if (i >= text.length) fail("unterminated string");
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const value = (path) => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const seen = new Set();
      ws();
      if (text[i] === "}") return i++;
      for (;;) {
        ws();
        const name = string();
        if (seen.has(name)) dups.push(`${path}.${name}`);
        seen.add(name);
        ws();
        if (text[i++] !== ":") fail("':' expected");
        value(`${path}.${name}`);
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") return i++;
        fail("',' or '}' expected");
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") return i++;
      for (let n = 0; ; n++) {
        value(`${path}[${n}]`);
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") return i++;
        fail("',' or ']' expected");
      }
    } else if (c === '"') {
      string();
    } else {
      const m = /^(?:true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)/.exec(
        text.slice(i, i + 400),
      );
      if (!m) fail("value expected");
      i += m[0].length;
    }
  };
  value("$");
  ws();
  if (i !== text.length) fail("trailing characters");
  return dups;
}

// The parts of a compact token, decoded strictly; undefined for a part that does not decode.
function decodeParts(token) {
  const parts = token.split(".");
  const json = (part) => {
    if (part === undefined || !/^[A-Za-z0-9_-]*$/.test(part) || part.length % 4 === 1) return;
    const text = Buffer.from(part, "base64url").toString("utf8");
    try {
      return { text, value: JSON.parse(text) };
    } catch {
      return undefined;
    }
  };
  return { count: parts.length, header: json(parts[0]), payload: json(parts[1]) };
}

async function joseVerdict(token, model, clock) {
  const attempts = [];
  for (const iss of model.issuers) {
    try {
      const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(iss.jwks), {
        issuer: iss.issuer,
        audience: iss.audiences,
        algorithms: ALGORITHMS,
        currentDate: new Date(clock),
        clockTolerance: 0,
      });
      return { accepted: true, issuer: iss, payload, protectedHeader, attempts };
    } catch (e) {
      attempts.push({ issuer: iss.issuer, code: e.code ?? e.name, claim: e.claim, message: e.message });
    }
  }
  return { accepted: false, attempts };
}

const isTimeFailure = (a) =>
  a.code === errors.JWTExpired.code || (a.code === errors.JWTClaimValidationFailed.code && a.claim === "nbf");

export async function checkSet(set, { label = "cases", verbose = false } = {}) {
  const problems = [];
  const bad = (name, msg) => problems.push(`${name}: ${msg}`);
  const { clock, model, cases } = set;
  if (!Number.isSafeInteger(clock)) bad("(set)", "clock is not an integer");

  // The model's keys.
  for (const iss of model.issuers) {
    const kids = new Set();
    for (const k of iss.jwks.keys) {
      for (const m of ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"]) {
        if (m in k) bad(`(model) ${iss.issuer} ${k.kid}`, `JWK holds private member ${m}`);
      }
      if (!k.kid || !k.alg) bad(`(model) ${iss.issuer}`, "a JWK without kid or alg");
      if (kids.has(k.kid)) bad(`(model) ${iss.issuer}`, `kid ${k.kid} twice`);
      kids.add(k.kid);
      if (!ALGORITHMS.includes(k.alg)) bad(`(model) ${iss.issuer} ${k.kid}`, `alg ${k.alg}`);
    }
  }

  const names = new Set();
  const sids = new Set();
  let jose = 0;
  let structural = 0;
  let accepted = 0;
  const rows = [];
  for (const c of cases) {
    if (names.has(c.name)) bad(c.name, "name given twice");
    names.add(c.name);
    const { reason, subject } = c.expect;
    const expectAccepted = !REFUSED_BY_TOKEN.has(reason);

    const parts = decodeParts(c.token);
    const headerAlg = (() => {
      try {
        return decodeProtectedHeader(c.token).alg;
      } catch {
        return undefined;
      }
    })();
    if (c.alg !== null && headerAlg !== c.alg) bad(c.name, `alg ${c.alg} but header alg ${headerAlg}`);
    if (c.alg === null && ALGORITHMS.includes(headerAlg)) bad(c.name, `alg null but header alg ${headerAlg}`);

    const structuralReasons = [];
    for (const part of ["header", "payload"]) {
      if (!parts[part]) continue;
      const dups = duplicateMembers(parts[part].text);
      if (dups.length) structuralReasons.push(`${part} member twice: ${dups.join(", ")}`);
    }
    if (c.token.length > MAX_TOKEN_CHARS) {
      structuralReasons.push(`${c.token.length} characters > ${MAX_TOKEN_CHARS}`);
    }

    const v = await joseVerdict(c.token, model, clock);
    const ok = v.accepted && structuralReasons.length === 0;
    if (v.accepted) jose++;
    if (structuralReasons.length) structural++;
    if (ok) accepted++;
    if (ok !== expectAccepted) {
      bad(c.name, `expected ${reason} but ${ok ? "accepted" : "rejected"}: jose ${v.accepted ? "accepts" : "rejects"} it` +
        (structuralReasons.length ? ` (structural: ${structuralReasons.join("; ")})` : "") +
        (v.accepted ? "" : ` [${v.attempts.map((a) => `${a.issuer}: ${a.code}`).join("; ")}]`));
    }
    if (structuralReasons.length && !v.accepted) {
      bad(c.name, "rejected by a structural rule, but its signature or claims are not valid either");
    }

    // token_expired: the failure with the token's own issuer is exp or nbf; token_invalid: never.
    const ownIssuer = parts.payload?.value?.iss;
    const own = v.attempts.find((a) => a.issuer === ownIssuer);
    if (reason === "token_expired" && !(own && isTimeFailure(own))) {
      bad(c.name, `expected token_expired, jose says ${own ? own.code : "(no declared issuer)"}`);
    }
    if (reason === "token_invalid" && v.attempts.some(isTimeFailure)) {
      bad(c.name, "expected token_invalid, but it is (also) out of its time window");
    }

    if (ok) {
      const p = v.payload;
      const expectSubject = v.issuer.subject.replace("{sub}", p.sub);
      if (reason !== "session_revoked" && subject !== expectSubject) bad(c.name, `subject ${subject}, the template gives ${expectSubject}`);
      if (typeof p.sid === "string" && p.sid !== "sess-revoked") {
        if (sids.has(p.sid)) bad(c.name, `sid ${p.sid} twice`);
        sids.add(p.sid);
      }
      const s = model.sessions;
      const revoked =
        s.revoked.some((r) => r.sid === p.sid && r.until > clock) ||
        s.revoked_families.some((r) => p[r.claim] === r.family && r.until > clock) ||
        (s.not_before[expectSubject] !== undefined && p.iat * 1000 < s.not_before[expectSubject]);
      if (revoked !== (reason === "session_revoked")) {
        bad(c.name, `session gates say ${revoked ? "revoked" : "not revoked"}, expected ${reason}`);
      }
      if (c.action === "export" && reason !== "session_revoked") {
        const age = p.auth_time === undefined ? undefined : clock / 1000 - p.auth_time;
        const want = age === undefined ? "step_up_required" : age <= 900 ? "granted" : "condition_failed";
        if (reason !== want) bad(c.name, `auth_time ${p.auth_time} (age ${age}) gives ${want}, expected ${reason}`);
      }
    }
    const gatePassed = !REFUSED_BY_TOKEN.has(reason) && reason !== "session_revoked";
    if (gatePassed !== (subject !== undefined)) {
      bad(c.name, `expect.subject ${subject === undefined ? "missing" : "present"} for ${reason}`);
    }
    if ((reason === "granted") !== c.expect.allowed) bad(c.name, `allowed ${c.expect.allowed} with ${reason}`);

    rows.push([c.name, reason, v.accepted ? "jose accepts" : `jose: ${own?.code ?? v.attempts[0]?.code}`,
      structuralReasons.join("; ")]);
  }

  if (verbose) {
    for (const r of rows) console.log(`  ${r[0].padEnd(50)} ${r[1].padEnd(17)} ${r[2]}${r[3] ? `; ${r[3]}` : ""}`);
  }
  const summary = `${label}: clock ${clock}, ${cases.length} cases; jose accepts ${jose}, ` +
    `${structural} rejected by a structural rule, ${accepted} accepted; expected accepted ` +
    `${cases.filter((c) => !REFUSED_BY_TOKEN.has(c.expect.reason)).length}`;
  return { ok: problems.length === 0, problems, summary };
}

const isMain = (() => {
  try {
    return Boolean(process.argv[1]) && fileURLToPath(import.meta.url) === realpathSync(process.argv[1]);
  } catch {
    return false;
  }
})();
if (isMain) {
  const args = process.argv.slice(2);
  const verbose = args.includes("-v");
  const fresh = args.includes("--fresh");
  const files = args.filter((a) => !a.startsWith("-"));
  if (files.length === 0) files.push(join(HERE, "cases.json"));
  const sets = files.map((f) => [f, () => JSON.parse(readFileSync(f, "utf8"))]);
  if (fresh) sets.push(["makeCases(Date.now())", () => makeCases(Date.now())]);
  let failed = false;
  for (const [label, load] of sets) {
    const { ok, problems, summary } = await checkSet(await load(), { label, verbose });
    console.log(`${ok ? "ok" : "FAIL"} ${summary}`);
    for (const p of problems) console.log(`  - ${p}`);
    failed ||= !ok;
  }
  process.exit(failed ? 1 : 0);
}

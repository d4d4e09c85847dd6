// The token inspector's reading of a token, in the page: nothing here sends, stores or logs one.
//
// `readToken(text)` splits and decodes a compact JWS as the evaluator's gate 6 reads one
// (crates/core/src/token.rs): three base64url parts without padding, a header and a payload that
// are JSON objects whose member names are neither repeated nor written with escapes, an
// asymmetric `alg`, no `crit`, at most 8,192 characters. It throws (code `malformed_token`, a
// message saying what is wrong) when it cannot show the parts at all, and lists in `problems`
// what the evaluator refuses in parts it could show. `identityOf(model)` reads a model's `issuers` and `sessions` as the page shows them.
// `inspectToken(identity, read, clock)` says which declared issuer and key the token names, the
// subject its issuer's template gives, the context attributes its mapped claims give, its times
// and which session entry refuses it: `steps`, each gate in the evaluator's order, and `fault`,
// the first refusal, with the code the evaluator gives as `tokenError`. It does not verify the
// signature (the evaluator does, with the browser's WebCrypto): the evaluator's answer decides.

/** The longest token the evaluator reads (the core's `MAX_TOKEN_BYTES`). */
export const MAX_TOKEN_CHARS = 8192;
/** The algorithms an issuer's keys may have: never `none`, never HMAC. */
export const ALGS = ['RS256', 'ES256', 'EdDSA'];
/** The mapped claim that computes the seconds since `auth_time`. */
export const AUTH_AGE = '@auth_age_s';
/** The claim a family revocation reads when it names none. */
export const DEFAULT_FAMILY_CLAIM = 'fam';
/** Claims shown by name, in this order; the family claims follow, then every other claim. */
export const KNOWN_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'auth_time', 'sid'];
/** Claims that are times (seconds since 1970). */
export const TIME_CLAIMS = new Set(['exp', 'nbf', 'iat', 'auth_time']);

function malformed(message) {
  const e = new Error(message);
  e.code = 'malformed_token';
  return e;
}

const has = (o, k) => o !== null && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, k);

// ---------------------------------------------------------------------------------------------
// Decoding.

/** The bytes of a base64url part (no padding, canonical final character), or throws. */
function base64url(s, what) {
  const bad = s.search(/[^A-Za-z0-9_-]/);
  if (bad >= 0) {
    throw malformed(`the ${what} is not base64url: character ${bad + 1} is ${JSON.stringify(s[bad])} ` +
      '(only A-Z, a-z, 0-9, - and _, without = padding)');
  }
  if (s.length % 4 === 1) {
    throw malformed(`the ${what} is not base64url: ${s.length} character${s.length === 1 ? '' : 's'} cannot make whole bytes`);
  }
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '=='.slice(0, (4 - (s.length % 4)) % 4));
  const again = btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  if (again !== s) throw malformed(`the ${what} is not base64url: its last character has bits past the end of the bytes`);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * JSON text read strictly (RFC 8259, as the evaluator's reader does: no lone surrogate, no number
 * out of range, at most 128 levels); `dups` receives the names given twice in the outer object,
 * which the evaluator refuses (JSON.parse would keep the last), and `escaped` the outer names
 * written with an escape (`"\u0061lg"`), which it refuses too. Objects are built with
 * defineProperty, so a `__proto__` member is a member like any other.
 */
function parseJson(text, what, dups, escaped) {
  let i = 0;
  const fail = (m) => {
    throw malformed(`the ${what} is not JSON: ${m} at character ${i + 1}`);
  };
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const hex4 = () => {
    const h = text.slice(i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('a bad \\u escape');
    i += 4;
    return parseInt(h, 16);
  };
  const ESC = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
  function string() {
    i++; // the opening quote
    let out = '';
    for (;;) {
      if (i >= text.length) fail('an unterminated string');
      const c = text[i];
      if (c === '"') {
        i++;
        return out;
      }
      if (c.charCodeAt(0) < 0x20) fail('a control character in a string');
      if (c !== '\\') {
        out += c;
        i++;
        continue;
      }
      const e = text[i + 1];
      i += 2;
      if (e in ESC) {
        out += ESC[e];
      } else if (e === 'u') {
        const u = hex4();
        if (u >= 0xdc00 && u <= 0xdfff) fail('a lone surrogate');
        if (u >= 0xd800 && u <= 0xdbff) {
          if (text[i] !== '\\' || text[i + 1] !== 'u') fail('a lone surrogate');
          i += 2;
          const low = hex4();
          if (low < 0xdc00 || low > 0xdfff) fail('a lone surrogate');
          out += String.fromCharCode(u, low);
        } else {
          out += String.fromCharCode(u);
        }
      } else {
        i--;
        fail('a bad escape');
      }
    }
  }
  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  function value(depth) {
    if (depth > 128) fail('more than 128 levels');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const out = {};
      const seen = new Set();
      ws();
      if (text[i] === '}') {
        i++;
        return out;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a member name');
        const from = i;
        const k = string();
        if (depth === 0 && text.slice(from, i).includes('\\')) escaped.push(k);
        ws();
        if (text[i] !== ':') fail('expected `:`');
        i++;
        const v = value(depth + 1);
        if (seen.has(k) && depth === 0) dups.push(k);
        seen.add(k);
        Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return out;
        }
        fail('expected `,` or `}`');
      }
    }
    if (c === '[') {
      i++;
      const out = [];
      ws();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return out;
        }
        fail('expected `,` or `]`');
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) fail(i >= text.length ? 'it ends too early' : `unexpected ${JSON.stringify(c)}`);
    const n = Number(m[0]);
    if (!Number.isFinite(n)) fail('a number out of range');
    i += m[0].length;
    return n;
  }
  const v = value(0);
  ws();
  if (i < text.length) fail('text after the value');
  return v;
}

function jsonPart(s, what) {
  const bytes = base64url(s, what);
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw malformed(`the ${what} is not UTF-8 text`);
  }
  const dups = [];
  const escaped = [];
  const v = parseJson(text, what, dups, escaped);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw malformed(`the ${what} is not a JSON object`);
  return { value: v, dups, escaped };
}

/** The token as the page asks about it: trimmed, and without a leading `Bearer `. */
export function normalizeToken(input) {
  const t = String(input ?? '').trim();
  const bearer = /^bearer\s+/i.exec(t);
  return bearer ? t.slice(bearer[0].length).trim() : t;
}

/**
 * Reads a compact JWS: `{token, header, claims, signatureBytes, problems}`, `problems` listing
 * (as `{fault, text}`, in the evaluator's order) what it refuses in what could be read; throws
 * (code `malformed_token`) when the parts cannot be read.
 */
export function readToken(input) {
  const token = normalizeToken(input);
  if (!token) throw malformed('no token: paste a compact JWS (header.payload.signature)');
  const parts = token.split('.');
  if (parts.length !== 3) {
    throw malformed(`not a compact JWS: ${parts.length} part${parts.length === 1 ? '' : 's'} separated by dots, ` +
      'not three (header.payload.signature)' +
      (parts.length === 5 ? '; five parts make an encrypted token (JWE), which no edge reads' : ''));
  }
  const header = jsonPart(parts[0], 'header');
  const payload = jsonPart(parts[1], 'payload');
  const signature = base64url(parts[2], 'signature');
  const problems = [];
  if (token.length > MAX_TOKEN_CHARS) {
    problems.push({ fault: 'malformed', text: `${token.length} characters: the evaluator reads at most ${MAX_TOKEN_CHARS}` });
  }
  for (const [what, p] of [['header', header], ['payload', payload]]) {
    for (const k of new Set(p.dups)) problems.push({ fault: 'malformed', text: `the ${what} names \`${k}\` twice` });
    for (const k of new Set(p.escaped)) {
      problems.push({ fault: 'malformed', text: `the ${what} writes the name \`${k}\` with an escape` });
    }
  }
  const h = header.value;
  if (has(h, 'crit')) problems.push({ fault: 'algorithm', text: 'the header has `crit`: no extension is understood' });
  if (!ALGS.includes(h.alg)) {
    problems.push({ fault: 'algorithm', text: `\`alg\` is ${JSON.stringify(h.alg ?? null)}: only ${ALGS.join(', ')} are accepted` });
  }
  if (has(h, 'kid') && typeof h.kid !== 'string') problems.push({ fault: 'malformed', text: '`kid` is not a string' });
  return { token, header: h, claims: payload.value, signatureBytes: signature.length, problems };
}

// ---------------------------------------------------------------------------------------------
// The model's identity.

function keyOf(jwk) {
  const kid = typeof jwk?.kid === 'string' ? jwk.kid : null;
  if (jwk?.kty === 'RSA') {
    let bits = 0;
    try {
      const n = base64url(String(jwk.n ?? ''), 'modulus');
      const first = n.findIndex((b) => b !== 0);
      bits = first < 0 ? 0 : (n.length - first) * 8;
    } catch {
      // The model compiled, so this does not happen; the detail is only for show.
    }
    return { kid, alg: 'RS256', detail: `RSA ${bits}` };
  }
  if (jwk?.kty === 'EC' && jwk.crv === 'P-256') return { kid, alg: 'ES256', detail: 'P-256' };
  if (jwk?.kty === 'OKP' && jwk.crv === 'Ed25519') return { kid, alg: 'EdDSA', detail: 'Ed25519' };
  return { kid, alg: String(jwk?.alg ?? '?'), detail: String(jwk?.kty ?? '?') };
}

/**
 * A model's `issuers` and `sessions` (docs/model.md), as the page shows them: issuers in the
 * model's order with their keys' algorithms and the default leeway (0), families with their
 * claim (`fam` by default), `not_before` by subject.
 */
export function identityOf(model) {
  const issuers = (Array.isArray(model?.issuers) ? model.issuers : []).map((i) => ({
    issuer: i.issuer,
    audiences: [...new Set(i.audiences ?? [])].sort(),
    keys: (i.jwks?.keys ?? []).map(keyOf),
    subject: i.subject,
    claims: Object.entries(i.claims ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    leeway_s: i.leeway_s ?? 0,
  }));
  const s = model?.sessions ?? {};
  return {
    issuers,
    revoked: (s.revoked ?? []).map((e) => ({ sid: e.sid, until: e.until })),
    families: (s.revoked_families ?? []).map((e) => ({ family: e.family, claim: e.claim ?? DEFAULT_FAMILY_CLAIM, until: e.until })),
    notBefore: Object.entries(s.not_before ?? {}).map(([subject, at]) => ({ subject, at })),
  };
}

/** The claims the model's family revocations read, sorted. */
export function familyClaims(identity) {
  return [...new Set(identity.families.map((f) => f.claim))].sort();
}

// ---------------------------------------------------------------------------------------------
// What the model makes of a token.

/** `[a-z][a-z0-9_]*:name` with a name of 1 to 256 bytes, no whitespace or control character. */
export function isValidId(id) {
  const m = /^([a-z][a-z0-9_]*):(.+)$/su.exec(id);
  if (!m || m[1].length > 64) return false;
  const name = m[2];
  return new TextEncoder().encode(name).length <= 256 && !/[\s\p{Cc}]/u.test(name);
}

/** A JWT time: absent (`undefined`), a finite number of seconds, or `null` for anything else. */
function seconds(claims, name) {
  if (!has(claims, name)) return undefined;
  const v = claims[name];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** The context attribute a claim gives (a string, a finite number, a boolean or a list of at
 * most 32 strings, strings of at most 256 bytes), else undefined. */
function attrOf(v) {
  const short = (s) => new TextEncoder().encode(s).length <= 256;
  if (typeof v === 'string') return short(v) ? v : undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (Array.isArray(v) && v.length <= 32 && v.every((x) => typeof x === 'string' && short(x))) return [...v];
  return undefined;
}

/** The subject an issuer's template makes of the claims, or `{missing}` / `{invalid}`. */
export function subjectOf(template, claims) {
  let out = '';
  for (const m of String(template).matchAll(/\{([^{}]*)\}|[^{}]+/g)) {
    if (m[1] === undefined) {
      out += m[0];
      continue;
    }
    const v = has(claims, m[1]) ? claims[m[1]] : undefined;
    if (typeof v !== 'string') return { missing: m[1] };
    out += v;
  }
  return isValidId(out) ? { subject: out } : { invalid: out };
}

/**
 * What the model's identity makes of a read token at `clock` (Unix ms, the evaluator's clock):
 * `{issuer, key, subject, attrs, steps, fault}`. `steps` are the gates in the evaluator's order,
 * each `{gate, ok, text, fault?}` (`ok` null: not decided here); every gate the page can judge is
 * judged, so a token that fails early still shows its subject and sessions. `fault` is the first
 * refusal (the evaluator's `tokenError` for it, unless the signature fails first).
 */
export function inspectToken(identity, read, clock) {
  const c = read.claims;
  const h = read.header;
  const steps = [];
  let fault = null;
  const step = (gate, ok, text, f) => {
    steps.push(ok ? { gate, ok, text } : { gate, ok, text, fault: f });
    if (ok === false && fault === null) fault = f;
  };
  for (const p of read.problems) step('format', false, p.text, p.fault);
  if (!read.problems.length) step('format', true, `a compact JWS signed with ${h.alg}`);

  // The issuer, its key, the audience.
  const iss = typeof c.iss === 'string' ? c.iss : null;
  const issuer = iss === null ? null : identity.issuers.find((i) => i.issuer === iss) ?? null;
  if (iss === null) step('issuer', false, 'no `iss` claim (a string)', 'issuer');
  else if (!issuer) step('issuer', false, `\`${iss}\` is not an issuer of this model`, 'issuer');
  else step('issuer', true, `declared issuer ${iss}`);

  let key = null;
  if (issuer) {
    const kid = typeof h.kid === 'string' ? h.kid : null;
    key = kid !== null ? issuer.keys.find((k) => k.kid === kid) ?? null : issuer.keys.length === 1 ? issuer.keys[0] : null;
    if (!key) {
      step('key', false, kid !== null ? `no key \`${kid}\` in ${iss}` : `no \`kid\`, and ${iss} has ${issuer.keys.length} keys`, 'key');
    } else if (key.alg !== h.alg) {
      step('key', false, `key ${key.kid ?? '(the only key)'} is ${key.alg}, the token says ${h.alg}`, 'algorithm');
    } else {
      step('key', true, `key ${key.kid ?? '(the only key)'}: ${key.alg} (${key.detail})`);
    }
    const auds = Array.isArray(c.aud) ? c.aud : has(c, 'aud') ? [c.aud] : [];
    const held = auds.find((a) => typeof a === 'string' && issuer.audiences.includes(a));
    if (held !== undefined) step('audience', true, `audience ${held}`);
    else step('audience', false, `\`aud\` holds none of ${issuer.audiences.join(', ')}`, 'audience');
  }
  step('signature', null, 'verified by the evaluator (this browser\'s WebCrypto), not here');

  // Times: JWT times are seconds; the clock is ms.
  const now = clock / 1000;
  const leeway = issuer?.leeway_s ?? 0;
  const exp = seconds(c, 'exp');
  const nbf = seconds(c, 'nbf');
  const iat = seconds(c, 'iat');
  if (exp === undefined || exp === null) step('exp', false, exp === undefined ? 'no `exp`' : '`exp` is not a number', 'malformed');
  else if (now >= exp + leeway) step('exp', false, `expired${leeway ? ` (leeway ${leeway} s)` : ''}`, 'expired');
  else step('exp', true, 'not expired');
  if (nbf === null) step('nbf', false, '`nbf` is not a number', 'malformed');
  else if (nbf !== undefined && now + leeway < nbf) step('nbf', false, 'not valid yet (`nbf` is in the future)', 'not_yet_valid');
  if (iat === null) step('iat', false, '`iat` is not a number', 'malformed');

  // The subject, then the sessions.
  let subject = null;
  if (issuer) {
    const s = subjectOf(issuer.subject, c);
    if (s.subject) {
      subject = s.subject;
      step('subject', true, `subject ${subject} (template ${issuer.subject})`);
    } else if (s.missing) {
      step('subject', false, `the template ${issuer.subject} needs the claim \`${s.missing}\` as a string`, 'subject');
    } else {
      step('subject', false, `the template ${issuer.subject} gives \`${s.invalid}\`, not an id`, 'subject');
    }
  }
  const sessions = [];
  if (typeof c.sid === 'string') {
    const r = identity.revoked.find((e) => e.sid === c.sid);
    if (r) sessions.push({ kind: 'session_revoked', text: `session \`${c.sid}\` is revoked`, until: r.until });
  }
  for (const f of identity.families) {
    if (has(c, f.claim) && c[f.claim] === f.family) {
      sessions.push({ kind: 'family_revoked', text: `family \`${f.family}\` (claim \`${f.claim}\`) is revoked`, until: f.until });
    }
  }
  const nb = subject === null ? undefined : identity.notBefore.find((e) => e.subject === subject);
  if (nb && (iat === undefined || iat === null || iat * 1000 < nb.at)) {
    sessions.push({
      kind: 'signed_out',
      text: iat === undefined || iat === null
        ? `${subject} signed out, and the token has no \`iat\` to show it came after`
        : `issued before ${subject}'s not_before`,
      at: nb.at,
    });
  }
  // The evaluator checks the sessions once the subject is known, in this order; the page shows
  // a revoked session or family whatever came before.
  for (const s of sessions) step('session', false, s.text, s.kind);
  if (!sessions.length && subject !== null) step('session', true, 'no session gate refuses it');

  // The context attributes its issuer maps (they replace the request's attributes of those names).
  const attrs = (issuer?.claims ?? []).map(([attr, claim]) => {
    if (claim === AUTH_AGE) {
      const t = seconds(c, 'auth_time');
      const age = typeof t === 'number' ? Math.floor(now - t) : undefined;
      return { attr, claim, value: age !== undefined && age >= 0 ? age : undefined };
    }
    return { attr, claim, value: has(c, claim) ? attrOf(c[claim]) : undefined };
  });
  return { issuer, key, subject, attrs, sessions, steps, fault };
}

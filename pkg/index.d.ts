/// <reference lib="esnext.disposable" />
// Type declarations of the npm package `edge-authz` (pkg/README.md, docs/javascript.md). The
// same declarations serve `import` (index.d.ts) and `require` (index.d.cts, a copy made by scripts/build-pkg.sh).

/** An action's risk tier; each tier has its own freshness bound. */
export type Tier = 'low' | 'standard' | 'high';

/** Why a decision came out as it did: the first failing gate (docs/decisions.md, "Gates"), in gate order. */
export type Reason =
  | 'no_snapshot'
  | 'invalid_request'
  | 'stale_snapshot'
  | 'pending'
  | 'freshness_exceeded'
  | 'token_invalid'
  | 'token_expired'
  | 'session_revoked'
  | 'unknown_action'
  | 'suspended'
  | 'unknown_resource'
  | 'granted'
  | 'step_up_required'
  | 'condition_failed'
  | 'no_grant';

/** The assignment that granted a decision; `path` runs from the subject to the principal. */
export interface Grant {
  principal: string;
  role: string;
  resource: string;
  path: string[];
  /** The condition the assignment holds under, when it has one. */
  when?: string;
}

/** A decision. `grant` is present only when `allowed`. */
export interface Decision {
  allowed: boolean;
  reason: Reason;
  /** The held epoch (0 for a preview); null when nothing is loaded. */
  epoch: number | null;
  watermark: number;
  /** The action's tier; null when the action is not declared or nothing is loaded. */
  tier: Tier | null;
  grant?: Grant;
  /** For `step_up_required` and `condition_failed`: the failing conditions, sorted. */
  conditions?: string[];
  /** With `conditions`: the context attributes they lacked, sorted (possibly empty). */
  missing?: string[];
}

/** What was wrong with a token that gate 6 refused. */
export type TokenError =
  | 'malformed'
  | 'algorithm'
  | 'key'
  | 'issuer'
  | 'audience'
  | 'signature'
  | 'subject'
  | 'expired'
  | 'not_yet_valid'
  | 'session_revoked'
  | 'family_revoked'
  | 'signed_out';

/** The decision of a token check: with the token's `subject` once it passed gate 6, or
 * `tokenError` when gate 6 refused it. */
export interface TokenDecision extends Decision {
  subject?: string;
  tokenError?: TokenError;
}

/** A context attribute: a string (at most 256 bytes), a finite number, a boolean, or a list of at
 * most 32 such strings. */
export type Attribute = string | number | boolean | string[];

/** `now`: Unix milliseconds, a whole number from 0 to 2^53 - 1; the host's clock when absent.
 * It is the time of assignment expiry and time conditions only: freshness is judged by the
 * evaluator's clock, which no request can move. `at_least_epoch`: the epoch the answer must come
 * from at least (read your writes: the epoch a change reported); held below it, the decision is
 * `pending`. Every other key is an attribute that conditions test (docs/decisions.md, "Context"):
 * `[a-z][a-z0-9_]*` of at most 64 bytes, at most 32 of them; anything else makes the request
 * `invalid_request`. Fields are read as own properties (inherited fields are not part of a
 * context). */
export interface Context {
  now?: number | null;
  at_least_epoch?: number | null;
  [attribute: string]: Attribute | null | undefined;
}

/** One decision as `onDecision` receives it: the shape of the Worker's decision log lines
 * (docs/worker.md, "Decision logs"), without `requestId`, `latencyMs` and `index`. */
export interface DecisionLogEntry {
  event: 'decision';
  /** The clock the decision was made at (Unix ms). */
  ts: number;
  tenant: string;
  /** For a token check: the subject the token named, `''` when it was refused. A field that is
   * not a string is null. */
  subject: string | null;
  action: string | null;
  resource: string | null;
  /** Only when the request had one: the context as read (a plain copy; one object shared by the
   * entries of a batch), or as given when it could not be read. */
  context?: Context;
  allowed: boolean;
  reason: Reason;
  epoch: number | null;
  watermark: number;
  tier: Tier | null;
  /** The held state's content digest (`status().digest`); null when nothing is loaded. */
  digest: string | null;
  /** Only for a token check. */
  token?: true;
}

/** Called after every decision of `check`, `checkMany` (once per decision), `checkToken` (and a
 * Replica's `check`, `tryCheck`, `checkMany`, `checkToken`). What it returns is ignored; if it
 * throws, the decision stands and the first error is reported once on `console.error`. */
export type OnDecision = (entry: DecisionLogEntry) => void;

/** Freshness bounds in milliseconds, per tier. */
export type Freshness = Record<Tier, number>;

export interface Status {
  tenant: string;
  epoch: number | null;
  watermark: number;
  /** The largest `issuedAt` among the signed messages applied. */
  confirmedAt: number | null;
  /** A snapshot is loaded and its epoch is below the watermark: checks answer `stale_snapshot`. */
  stale: boolean;
  preview: boolean;
  counts: {
    actions: number;
    roles: number;
    resources: number;
    subjects: number;
    members: number;
    groups: number;
    memberships: number;
    assignments: number;
    suspended: number;
    [table: string]: number;
  };
  /** Each declared action and its tier, keys sorted by name; empty when nothing is loaded. */
  actions: Record<string, Tier>;
  /** SHA-256 (hex) of the held content; null when nothing is loaded. */
  digest: string | null;
  /** Ids of the trusted public keys (first 8 bytes of their SHA-256, hex). */
  keyIds: string[];
  freshness: Freshness | null;
  /** Approximate heap bytes of the held state. */
  heapBytes: number;
}

/** What a carried delta did when its watermark was applied. */
export interface CarriedDelta {
  applied: boolean;
  /** Why it could not apply (`epoch_gap`, ...): the watermark still took effect. The same shape
   * as the Worker's answer to a pushed watermark. */
  error?: { code: ErrorCode; message: string };
}

/** Stable error codes (`Error.code`). Listing errors carry the refusing gate's reason instead. */
export type ErrorCode =
  | 'invalid_model'
  | 'too_large'
  | 'bad_magic'
  | 'unsupported_version'
  | 'wrong_kind'
  | 'malformed'
  | 'limit_exceeded'
  | 'bad_signature'
  | 'unknown_key'
  | 'invalid_key'
  | 'tenant_mismatch'
  | 'rollback'
  | 'epoch_gap'
  | 'epoch_conflict'
  | 'digest_mismatch'
  | 'invalid_snapshot'
  | 'invalid_delta'
  | 'preview_mode'
  | 'invalid_argument'
  /** A signed message issued more than a second after the evaluator's clock; nothing changed. */
  | 'clock_skew'
  | 'watermark_too_high'
  /** The evaluator's `clock` threw or gave something other than a whole number of ms from 0 to
   * 2^53 - 1: the call fails closed. */
  | 'invalid_clock'
  /** A call on an evaluator after `free()`. */
  | 'freed'
  /** A Replica's confirmation with its feed could not be had and the decision's tier may not
   * answer from what is held (`high`, an undeclared action, a replica that never confirmed). */
  | 'authority_unavailable'
  /** The feed refused the Replica's token (401 or 403): no retry mends it. */
  | 'unauthorized'
  /** A call on a Replica after `close()`. */
  | 'closed'
  /** `checkToken` on a host without WebCrypto (`globalThis.crypto.subtle`). */
  | 'no_webcrypto'
  /** `checkToken`: the host's WebCrypto could not import the key or verify its algorithm. */
  | 'webcrypto_failed'
  /** `checkToken`: the signature was asked for again and again (the held keys kept changing). */
  | 'token_unverified'
  /** A call before the WebAssembly module was loaded: with `edge-authz/init`, `await init()` first. */
  | 'not_initialized'
  /** `init()` could not fetch, compile or instantiate the WebAssembly module it was given. */
  | 'wasm_load_failed'
  /** `generateKeyPair()` on a host without cryptographic randomness (`crypto.getRandomValues`). */
  | 'no_randomness'
  /** Anything else that went wrong inside the package (the original error is its `cause`). */
  | 'internal'
  | Reason;

/** Every error the package throws is an `Error` with a stable `code`. */
export interface EdgeAuthzError extends Error {
  code: ErrorCode;
  /** For `invalid_model`: what is wrong (`group_cycle`, `unknown_field`, `malformed_id`, ...). */
  detail?: string;
}

/** A model object (docs/model.md) or its JSON text. */
export type ModelInput = object | string;

/** The host's clock: Unix milliseconds, a whole number from 0 to 2^53 - 1. */
export type Clock = () => number;

export declare class Evaluator {
  /** A signed evaluator for one tenant, trusting Ed25519 public keys (several for rotation), typed
   * (`edge-authz-public:` then base64) or bare base64; a secret key throws `wrong_key_kind`.
   * `clock` (default `Date.now`) is the host's clock: read at every check, listing and message, it
   * alone judges freshness and refuses messages issued more than a second in its future
   * (`clock_skew`). A clock that throws or gives anything but a whole number of ms from 0 to
   * 2^53 - 1 makes the call throw `invalid_clock`. Options are read as own properties.
   * `onDecision` is called after every decision (docs/javascript.md, "Decision logs"). */
  constructor(options: { tenant: string; publicKeys: string[]; clock?: Clock; onDecision?: OnDecision });
  /** Unsigned; compiles the model in place. No watermark, no freshness gate; takes no signed
   * messages. `clock` gives the time of expiry when a context names none. */
  static preview(model: ModelInput, options?: { clock?: Clock; onDecision?: OnDecision }): Evaluator;
  /** Throws (state unchanged) on a bad signature, another tenant, a rollback, a message issued in
   * the clock's future (`clock_skew`), malformed input, ... */
  loadSnapshot(bytes: Uint8Array): { epoch: number; applied: boolean };
  /** `applied` is false for a replay of the held epoch (a no-op). */
  applyDelta(bytes: Uint8Array): { epoch: number; applied: boolean };
  applyWatermark(bytes: Uint8Array): { watermark: number; epoch: number | null; delta?: CarriedDelta };
  /** Bad input answers `invalid_request` (an unreadable context too); throws only `freed`,
   * `invalid_clock`. */
  check(subject: string, action: string, resource: string, context?: Context): Decision;
  /** Decides a request by a token (a compact JWS: RS256, ES256 or EdDSA) of an issuer the held
   * state declares: the subject comes from the token, its mapped claims replace the context's
   * attributes of the same names, then the session revocations apply (docs/javascript.md,
   * `checkToken`). The signature is verified by the host's WebCrypto once per token and key.
   * A bad token answers `token_invalid` or `token_expired`; rejects only for `freed`,
   * `invalid_clock`, `no_webcrypto`, `webcrypto_failed`, `token_unverified`. */
  checkToken(token: string, action: string, resource: string, context?: Context): Promise<TokenDecision>;
  checkMany(requests: Array<[string, string, string]>, context?: Context): Decision[];
  /** Throws with the refusing gate's reason as `code` (gates 1 to 5 and 7). `context` (as for check)
   * or its shorthand `now` sets the time of expiry; the clock otherwise (and always for
   * freshness). */
  listResources(
    subject: string,
    action: string,
    options?: { type?: string; now?: number; context?: Context },
  ): string[];
  /** Members (not groups), not suspended, sorted. */
  listSubjects(resource: string, action: string, options?: { now?: number; context?: Context }): string[];
  status(): Status;
  /** Releases the wasm memory now; the evaluator cannot be used afterwards. */
  free(): void;
  [Symbol.dispose](): void;
}

/** What a Replica says of its feed, besides the evaluator's status. */
export interface FeedStatus {
  /** The feed's URL: `{feed}/v1/{tenant}/feed`. */
  url: string;
  /** Whether it follows the feed between checks (long polls). */
  following: boolean;
  /** Whether the last exchange with the feed succeeded. */
  connected: boolean;
  /** When it last heard from the feed (the clock's ms), or null. */
  lastHeardAt: number | null;
  /** How long ago it last confirmed the authority's watermark (ms), or null. */
  confirmedAgoMs: number | null;
  /** The authority's head as last heard. */
  authority: { epoch: number | null; watermark: number; confirmedAt: number | null } | null;
  /** Feed round trips so far. */
  exchanges: number;
  error: { code: ErrorCode; message: string } | null;
}

/** An evaluator that follows an authority's feed (a Worker's `GET /v1/{tenant}/feed`), verifying
 * every message itself, and confirming with the feed per tier as a Worker isolate does with its
 * Durable Object: `high` before every decision (concurrent checks share a round trip), `standard`
 * and `low` within their reuse windows; cut off, `high` rejects with `authority_unavailable` and the
 * others answer until their freshness bounds pass. docs/replicas.md. */
export declare class Replica {
  constructor(options: {
    tenant: string;
    publicKeys: string[];
    /** The Worker's base URL, e.g. `https://authz.example.com`. */
    feed: string;
    /** The feed's bearer token (the Worker's FEED_TOKEN, else CHECK_TOKEN). */
    token?: string;
    /** Default: the host's `fetch`. */
    fetch?: (url: string, init: { headers: Record<string, string>; signal: AbortSignal }) => Promise<Response>;
    /** How long a `low` and a `standard` decision may reuse a confirmation (ms); default 10,000
     * and 1,000. */
    reuseMs?: { low?: number; standard?: number };
    clock?: Clock;
    /** How long a feed answer may take beyond its wait (ms, default 2,000). */
    timeoutMs?: number;
    /** How long a follower's request waits for something newer (ms, default 25,000, at most 30,000). */
    waitMs?: number;
    /** Follow the feed between checks (default true; false in hosts where nothing runs between
     * requests, such as workerd: confirmations are then made on demand). */
    follow?: boolean;
    /** Called after every decision the replica answers, once, after any confirmation. */
    onDecision?: OnDecision;
  });
  /** Resolves once the first snapshot is loaded; rejects when the feed refuses the token or the
   * replica is closed first. */
  ready(): Promise<void>;
  check(subject: string, action: string, resource: string, context?: Context): Promise<Decision>;
  /** `Evaluator.checkToken`, confirmed with the feed as `check` is. */
  checkToken(token: string, action: string, resource: string, context?: Context): Promise<TokenDecision>;
  /** `check`'s decision, synchronously, when it needs no confirmation with the feed; `undefined`
   * when it does (then `await check(...)`). */
  tryCheck(subject: string, action: string, resource: string, context?: Context): Decision | undefined;
  checkMany(requests: Array<[string, string, string]>, context?: Context): Promise<Decision[]>;
  status(): Status & { feed: FeedStatus };
  /** Stops following and releases the evaluator. */
  close(): void;
  [Symbol.dispose](): void;
}

/** The minimal `node:http` shapes the push receiver uses. */
export interface PushRequest extends AsyncIterable<Uint8Array> {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
}
export interface PushResponse {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body: string): unknown;
  headersSent?: boolean;
}

/** A `node:http` handler taking the origin's pushes into `evaluator` on the Worker's routes
 * (`PUT /v1/{tenant}/snapshot`, `POST /v1/{tenant}/delta`, `POST /v1/{tenant}/watermark`), with the
 * Worker's answers; other requests go to `next` (or get 404). docs/replicas.md, "Receiving pushes". */
export interface PushReceiver {
  (req: PushRequest, res: PushResponse, next?: () => unknown): Promise<unknown>;
  /** Whether `req` is for one of the push routes. */
  handles(req: { url?: string }): boolean;
}

export declare function createPushReceiver(options: {
  evaluator: Evaluator;
  /** The bearer token every push must carry (the Worker's PUSH_TOKEN). */
  pushToken?: string;
  /** Default 32 MiB. */
  maxSnapshotBytes?: number;
  /** Default 8 MiB (deltas and watermarks). */
  maxMessageBytes?: number;
}): PushReceiver;

/** What `init()` can load the WebAssembly module from: a URL (or its text) to fetch, a request,
 * a response (or a promise of one), the module's bytes, or a compiled module. */
export type InitInput =
  | string
  | URL
  | Request
  | Response
  | PromiseLike<Response>
  | ArrayBuffer
  | ArrayBufferView
  /* lib.dom declares WebAssembly.Module with no members, which a number would satisfy alone. */
  | (WebAssembly.Module & object);

/**
 * Loads the WebAssembly module; resolves once the package is usable. Needed only with the
 * `edge-authz/init` entry (no top-level await), before the first call: `await init()` fetches the
 * `.wasm` file next to the package's glue, `await init(input)` loads it from where the application
 * serves or bundles it. Every other entry loads the module as it is imported, and there `init()`
 * resolves at once. Later calls resolve at once; a failure rejects with `wasm_load_failed`.
 */
export declare function init(input?: InitInput): Promise<void>;

/** A fresh origin key pair as typed key strings: `edge-authz-public:` and `edge-authz-secret:`, each
 * then the base64 of 32 bytes. Every function that takes a key also takes the bare base64, and
 * refuses a key of the other kind (`wrong_key_kind`). */
export declare function generateKeyPair(): { publicKey: string; secretKey: string };

export declare function compileSnapshot(
  model: ModelInput,
  options: { epoch: number; secretKey: string; issuedAt?: number },
): Uint8Array;

export declare function diffModels(
  before: ModelInput,
  after: ModelInput,
  options: { baseEpoch: number; epoch: number; secretKey: string; issuedAt?: number },
): { delta: Uint8Array; revokes: boolean };

export declare function signWatermark(options: {
  tenant: string;
  watermark: number;
  secretKey: string;
  issuedAt?: number;
  delta?: Uint8Array;
}): Uint8Array;

/** Throws `invalid_model` (with `detail`) when the model does not compile; else its warnings. */
export declare function validateModel(model: ModelInput): { warnings: string[] };

/** A message's header and counts; `signature` says whether it verifies when keys are given. */
export declare function inspect(bytes: Uint8Array, options?: { publicKeys?: string[] }): Record<string, unknown>;

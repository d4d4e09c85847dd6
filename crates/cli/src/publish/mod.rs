//! `edge-authz publish`: the origin's publisher. It turns changes of a model into epochs (a signed
//! snapshot, the delta from the previous epoch, and for a change that removes access a watermark
//! carrying that delta), writes each to the journal (`store`) before anything leaves, and brings
//! every edge to the latest epoch (`edge::advance`).
//!
//! Revocations hold the caller until every edge has acknowledged the watermark (or the ack timeout
//! passes: then it names the edges that did not, exits 3 in one-shot mode, and keeps retrying them
//! in `--watch` / `--stdin` mode). Grants get one attempt at every edge at once and are retried
//! with backoff in the background. In `--watch` / `--stdin` mode heartbeats (bare watermark
//! messages) keep edges inside their freshness bounds while the origin is healthy.
//!
//! One job at a time, in one thread (pushes to the edges of one step go out together): each job is
//! one change, numbered by its epoch, and rerunning after a crash at any point converges.

pub(crate) mod changes;
mod edge;
pub(crate) mod status;
pub(crate) mod store;

use std::io::{self, BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use edge_authz::{sign_watermark, Model, Prepared, SecretKey, State, Tier, MAX_EPOCH};
use serde_json::{json, Value};

use super::{now_ms, read_text, secret_key, Fail};
use edge::{advance, Client, EdgeError, Head, Kind, Outcome, Plan, PushToken, Pushed};
use store::{EdgeRow, NewEpoch, Store};

/// Links replayed to an edge before a snapshot is pushed instead.
const MAX_CHAIN: u64 = 16;
/// Deltas since the last snapshot-only epoch never trigger a checkpoint below this weight.
const CHECKPOINT_MIN_BYTES: u64 = 256 * 1024;
/// The environment variable of the crash tests: the step at which the publisher stops and waits
/// to be killed (`before_journal`, `after_journal`, `mid_push`, `before_ack`; the service adds
/// `before_answer`).
const PAUSE_VAR: &str = "EDGE_AUTHZ_PUBLISH_PAUSE";
/// The environment variable that holds the push token when `--push-token-file` is not given.
const TOKEN_VAR: &str = "EDGE_AUTHZ_PUSH_TOKEN";

#[derive(clap::Args)]
pub struct PublishArgs {
    /// The model JSON to publish. Without it: bring the edges to the journal's latest epoch
    /// (or, with --stdin, start from that epoch's model).
    pub model: Option<PathBuf>,
    /// An edge's base URL (a Worker), repeat for each edge.
    #[arg(long = "edge", value_name = "URL")]
    pub edges: Vec<String>,
    /// The origin's secret key file.
    #[arg(long, required_unless_present = "status")]
    pub secret_key: Option<PathBuf>,
    /// The journal's folder (one SQLite database and one lock file per tenant).
    #[arg(long, default_value = ".edge-authz", value_name = "DIR")]
    pub state: PathBuf,
    /// Follow the model file: publish each change, heartbeat, retry, until stopped.
    #[arg(long, requires = "model", conflicts_with = "stdin")]
    pub watch: bool,
    /// Read changes from standard input, one JSON line each (a model, an operation, or an
    /// array of operations); heartbeat and retry until the input ends and every edge is caught up.
    #[arg(long)]
    pub stdin: bool,
    /// Print the journal's report: epochs, edges, propagation times, jobs over budget.
    #[arg(long)]
    pub status: bool,
    /// The tenant (for --status, and for --stdin without a model); else the model's.
    #[arg(long)]
    pub tenant: Option<String>,
    /// JSON lines (events) and a JSON report (--status) instead of text.
    #[arg(long)]
    pub json: bool,
    /// How often --watch looks at the model file (ms).
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub poll: u64,
    /// When an edge's watermark (or epoch) ran ahead of the journal, which leaves it refusing
    /// every epoch the journal issues: issue the latest model as a snapshot at that watermark (one
    /// past such an epoch), and number the epochs after it from there.
    #[arg(long)]
    pub recover_watermark: bool,
    #[command(flatten)]
    pub push: Pushing,
}

/// How the publisher pushes to its edges: the options `publish` and `serve` share.
#[derive(clap::Args, Clone)]
pub struct Pushing {
    /// How long a revocation waits for every edge's acknowledgement (ms).
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub ack_timeout: u64,
    /// Heartbeat interval (ms); by default a third of the model's smallest freshness bound.
    #[arg(long, value_name = "MS")]
    pub heartbeat: Option<u64>,
    /// The limit on one HTTP request to an edge (ms).
    #[arg(long, default_value_t = 5_000, value_name = "MS")]
    pub http_timeout: u64,
    /// A job's time budget (ms) before its size is counted: 1 ms more per 16 KiB it pushes.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub budget: u64,
    /// Issue a checkpoint (a snapshot-only epoch, which resets the edges' delta logs) after this
    /// many deltas, or sooner once the deltas since the last one outweigh the snapshot (and
    /// 256 KiB).
    #[arg(long, default_value_t = 256, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: u64,
    /// A file holding the edges' push token (their `PUSH_TOKEN`), one line: sent to every edge
    /// as `Authorization: Bearer <token>` on every push. Else the environment variable
    /// EDGE_AUTHZ_PUSH_TOKEN, when set, holds it.
    #[arg(long, value_name = "FILE")]
    pub push_token_file: Option<PathBuf>,
}

/// Output: JSON lines with --json, else one readable line per event.
struct Out {
    json: bool,
}

impl Out {
    fn emit(&self, v: Value) {
        let line = if self.json { v.to_string() } else { human(&v) };
        let stdout = io::stdout();
        let mut lock = stdout.lock();
        let _ = writeln!(lock, "{line}");
        let _ = lock.flush();
    }

    /// A `pushed` event for every message `edge` accepted, but the heartbeats that told nothing
    /// new (`before`: where the publisher believed it stood).
    fn pushes(&self, edge: &str, before: Option<Head>, pushed: &[Pushed]) {
        let mut prev = before;
        for p in pushed {
            if !p.heartbeat || prev != Some(p.head) {
                self.emit(json!({"event": "pushed", "edge": edge,
                    "kind": p.kind.as_str(), "heartbeat": p.heartbeat, "bytes": p.bytes,
                    "edgeEpoch": p.head.epoch, "edgeWatermark": p.head.watermark}));
            }
            prev = Some(p.head);
        }
    }

    /// A warning and an `edge_error` event for the error the edge of `slot` (already updated by
    /// [`Slot::absorb`]) answered.
    fn edge_error(&self, slot: &Slot, e: &EdgeError) {
        let text = e.to_string();
        eprintln!(
            "warning: edge {}: {text} (attempt {}, next in {} ms)",
            slot.url,
            slot.failures,
            slot.backoff().as_millis()
        );
        self.emit(json!({"event": "edge_error", "edge": slot.url,
            "error": text, "attempt": slot.failures, "code": e.code()}));
    }
}

fn human(v: &Value) -> String {
    let Some(m) = v.as_object() else {
        return v.to_string();
    };
    let event = m.get("event").and_then(Value::as_str).unwrap_or("event");
    let rest: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "event")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect();
    format!("{event:<10} {}", rest.join(" "))
}

/// One edge as the running publisher sees it.
struct Slot {
    url: String,
    client: Client,
    /// `None` until it answers in this run.
    head: Option<Head>,
    failures: u32,
    next_try: Instant,
    last_error: Option<String>,
    last_ok: Option<Instant>,
    heard_at: Option<u64>,
    /// The last error was `unauthorized`: a configuration error (the push token), which no quick
    /// retry mends, so retries are slower.
    unauthorized: bool,
}

impl Slot {
    /// Whether this edge gets a heartbeat in a round: when the round asks for one, and in its
    /// first round of this run.
    fn wants_heartbeat(&self, heartbeat: bool) -> bool {
        heartbeat || self.last_ok.is_none()
    }

    /// Takes the outcome of a round: where the edge stands, when it was last heard from, and its
    /// run of failures. Returns whether its error is one to report: a new error, and every 10th
    /// repeat, not every retry.
    fn absorb(&mut self, o: &Outcome, now: u64) -> bool {
        self.head = o.head;
        if !o.pushed.is_empty() {
            self.last_ok = Some(Instant::now());
            self.heard_at = Some(now);
        }
        match &o.error {
            None => {
                self.failures = 0;
                self.last_error = None;
                self.unauthorized = false;
                self.next_try = Instant::now();
                false
            }
            Some(e) => {
                let unauthorized = matches!(e, EdgeError::Unauthorized { .. });
                if unauthorized != self.unauthorized {
                    self.failures = 0;
                }
                self.unauthorized = unauthorized;
                self.failures = self.failures.saturating_add(1);
                self.next_try = Instant::now() + self.backoff();
                let text = e.to_string();
                let report =
                    self.last_error.as_deref() != Some(&text) || self.failures.is_multiple_of(10);
                self.last_error = Some(text);
                report
            }
        }
    }

    /// The journal's row of this edge.
    fn row(&self) -> EdgeRow {
        EdgeRow {
            url: self.url.clone(),
            epoch: self.head.map(|h| h.epoch),
            watermark: self.head.map_or(0, |h| h.watermark),
            heard_at: self.heard_at,
            last_error: self.last_error.clone(),
            failures: u64::from(self.failures),
        }
    }

    fn backoff(&self) -> Duration {
        let exp = self.failures.saturating_sub(1).min(7);
        if self.unauthorized {
            Duration::from_millis((1_000u64 << exp).min(30_000))
        } else {
            Duration::from_millis((50u64 << exp).min(5_000))
        }
    }
}

/// The push token: from `--push-token-file` (a file that cannot be read, or holds no token, is an
/// error), else from the environment variable `EDGE_AUTHZ_PUSH_TOKEN` when set and not empty,
/// else none. Error messages never show the token.
fn push_token(file: Option<&Path>) -> Result<Option<PushToken>, Fail> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Fail(format!(
                "--push-token-file: cannot read `{}`: {e}",
                path.display()
            ))
        })?;
        return match PushToken::parse(&text) {
            Ok(Some(t)) => Ok(Some(t)),
            Ok(None) => Err(Fail(format!(
                "--push-token-file: `{}` is empty (it holds the edges' PUSH_TOKEN, one line)",
                path.display()
            ))),
            Err(why) => Err(Fail(format!(
                "--push-token-file: `{}` {why}",
                path.display()
            ))),
        };
    }
    match std::env::var(TOKEN_VAR) {
        Ok(text) => PushToken::parse(&text).map_err(|why| Fail(format!("{TOKEN_VAR} {why}"))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Fail(format!(
            "{TOKEN_VAR} holds characters a token cannot have (only visible ASCII, no spaces)"
        ))),
    }
}

/// Whether `url` is plain HTTP to a host other than this machine (a token sent there crosses the
/// network in the clear).
fn cleartext_remote(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    !(host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()))
}

/// The journal's latest epoch, decoded.
pub(crate) struct Current {
    pub epoch: u64,
    pub watermark: u64,
    pub model: Model,
    /// The state with its content and digest, built once per epoch: the next epoch's delta is
    /// signed from it without building this side again.
    prepared: Prepared,
    /// Its snapshot: the journal's for a snapshot epoch (initial, checkpoint, recovery), else
    /// signed when an edge first needs one.
    snapshot: OnceLock<Vec<u8>>,
    /// The size of the last snapshot signed, until this one is.
    snapshot_size: usize,
    digest: String,
}

impl Current {
    fn snapshot_len(&self) -> usize {
        self.snapshot.get().map_or(self.snapshot_size, Vec::len)
    }

    /// The epoch after this one that `ops` make (`changed`, the model they make of this one's),
    /// patched from this one when they are of the kinds a patch takes and the patch succeeds
    /// (then it equals the compiled model's); `None` otherwise: compile `changed`, which also
    /// gives a refused change its error. Call it once [`changes::apply`] took `ops`.
    pub(crate) fn patch(&self, changed: &Model, ops: &[changes::Op]) -> Option<Next> {
        let net = changes::net_ops(self.prepared.state(), changed, ops)?;
        self.prepared.patch(net).ok().map(Next::Patched)
    }
}

/// The next epoch as a caller made it: compiled whole, or patched from the current one.
#[allow(
    clippy::large_enum_variant,
    reason = "one at a time, moved into the kept epoch: boxing would only add an allocation"
)]
pub(crate) enum Next {
    Whole(Prepared),
    Patched(edge_authz::Patch),
}

impl Next {
    fn prepared(&self) -> &Prepared {
        match self {
            Next::Whole(p) => p,
            Next::Patched(p) => p.prepared(),
        }
    }

    fn into_prepared(self) -> Prepared {
        match self {
            Next::Whole(p) => p,
            Next::Patched(p) => p.into_prepared(),
        }
    }
}

/// What one change came to.
pub(crate) struct Published {
    /// The epoch that holds the change (the latest one when the change was a no-op).
    pub epoch: u64,
    pub revokes: bool,
    /// The model's content did not change: no epoch was issued.
    pub unchanged: bool,
    pub ended: Ended,
}

/// Writes that go into the journal in the same transaction as an epoch (or in one of their own
/// when the change issues none): an idempotency record, the SCIM directory's rows. They are told
/// the epoch being issued and whether it revokes (`None`: no epoch).
pub(crate) type Extra<'a> =
    &'a dyn Fn(&rusqlite::Transaction<'_>, Option<(u64, bool)>) -> rusqlite::Result<()>;

pub(crate) struct Publisher {
    pub(crate) store: Store,
    key: SecretKey,
    tenant: String,
    slots: Vec<Slot>,
    pub(crate) current: Option<Current>,
    out: Out,
    pub(crate) args: PublishArgs,
    pause: Option<String>,
    /// True while a job for a new epoch runs: the crash hooks only fire then.
    in_job: bool,
}

/// How a publish ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Done,
    /// A revocation some edges did not acknowledge within the ack timeout.
    Unacknowledged,
}

fn compile(model: &Model) -> Result<Prepared, Fail> {
    let (prepared, warnings) = model.prepare()?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Ok(prepared)
}

fn min_bound(state: &State) -> u64 {
    [Tier::Low, Tier::Standard, Tier::High]
        .into_iter()
        .map(|t| state.freshness.bound(t))
        .min()
        .unwrap_or(5_000)
}

impl Publisher {
    pub(crate) fn new(args: PublishArgs, tenant: &str, mode: &str) -> Result<Publisher, Fail> {
        let key_path = args
            .secret_key
            .clone()
            .ok_or_else(|| Fail("--secret-key is required".into()))?;
        let key = secret_key(&key_path)?;
        if args.edges.is_empty() {
            return Err(Fail("give at least one --edge URL".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for url in &args.edges {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Fail(format!("--edge `{url}` is not an http(s) URL")));
            }
            if !seen.insert(url.trim_end_matches('/')) {
                return Err(Fail(format!("--edge `{url}` is given twice")));
            }
        }
        let token = push_token(args.push.push_token_file.as_deref())?;
        if token.is_some() {
            for url in args.edges.iter().filter(|u| cleartext_remote(u)) {
                eprintln!(
                    "warning: --edge `{url}` is plain http: the push token crosses the network unencrypted"
                );
            }
        }
        let now = Instant::now();
        let timeout = Duration::from_millis(args.push.http_timeout.max(1));
        let slots = args
            .edges
            .iter()
            .map(|url| Slot {
                url: url.trim_end_matches('/').to_string(),
                client: Client::new(url, tenant, timeout, token.as_ref()),
                head: None,
                failures: 0,
                next_try: now,
                last_error: None,
                last_ok: None,
                heard_at: None,
                unauthorized: false,
            })
            .collect();
        let store = Store::open(&args.state, tenant, mode, now_ms())?;
        // Start from what each edge last acknowledged, when it answered without error: a wrong
        // belief only costs a refusal (a gap, a rollback) that the catch-up handles.
        let mut slots: Vec<Slot> = slots;
        for s in &mut slots {
            let row = store.edge(&s.url)?;
            if row.last_error.is_none() {
                s.head = row.epoch.map(|epoch| edge::edge_head(epoch, row.watermark));
            }
        }
        let mut p = Publisher {
            store,
            key,
            tenant: tenant.to_string(),
            slots,
            current: None,
            out: Out { json: args.json },
            pause: std::env::var(PAUSE_VAR).ok().filter(|v| !v.is_empty()),
            args,
            in_job: false,
        };
        for (id, epoch, kind, step) in p.store.interrupted()? {
            p.out.emit(
                json!({"event": "interrupted", "job": id, "epoch": epoch, "kind": kind,
                              "step": step}),
            );
        }
        p.store.close_interrupted(now_ms())?;
        p.load_current()?;
        Ok(p)
    }

    fn load_current(&mut self) -> Result<(), Fail> {
        self.current = match self.store.latest()? {
            None => None,
            Some(l) => {
                let model = Model::from_json(&l.model)?;
                let prepared = compile(&model)?;
                // A change's epoch has no snapshot in the journal: sign it now, once, so that
                // its size (against which the deltas are weighed) is known.
                let snapshot = match l.snapshot {
                    Some(s) => s,
                    None => prepared.snapshot(l.epoch, now_ms(), &self.key)?,
                };
                Some(Current {
                    epoch: l.epoch,
                    watermark: self.store.watermark()?,
                    model,
                    snapshot_size: snapshot.len(),
                    snapshot: OnceLock::from(snapshot),
                    prepared,
                    digest: l.digest,
                })
            }
        };
        Ok(())
    }

    /// Whether the crash tests asked to stop at `step` (`EDGE_AUTHZ_PUBLISH_PAUSE`, docs/cli.md),
    /// which only ever happens during a job.
    fn pausing_at(&self, step: &str) -> bool {
        self.in_job && self.pause.as_deref() == Some(step)
    }

    /// Stops here, when the crash tests asked for this step, until the process is killed.
    pub(crate) fn pause_at(&self, step: &str) {
        if self.pausing_at(step) {
            eprintln!("paused at {step} (pid {})", std::process::id());
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }

    /// Stops at `step` when the crash tests asked for it, in a job or not (the service's
    /// `before_answer`, after the job).
    pub(crate) fn pause_at_any(&mut self, step: &str) {
        self.in_job = true;
        self.pause_at(step);
        self.in_job = false;
    }

    fn caught_up(&self, slot: &Slot) -> bool {
        match (&self.current, slot.head) {
            (Some(c), Some(h)) => at_head(h, c.epoch, c.watermark),
            (None, _) => true,
            _ => false,
        }
    }

    /// Signs a watermark message; never above `head`, the latest epoch of the journal (or the
    /// one being issued), so that no edge is left refusing the epochs this journal issues next.
    fn sign_watermark(
        &self,
        watermark: u64,
        head: u64,
        issued_at: u64,
        delta: Option<&[u8]>,
    ) -> Result<Vec<u8>, Fail> {
        if watermark > head {
            return Err(Fail(format!(
                "a watermark at {watermark} would be ahead of the journal's latest epoch {head} [watermark_ahead]"
            )));
        }
        Ok(sign_watermark(
            &self.tenant,
            watermark,
            issued_at,
            delta,
            &self.key,
        )?)
    }

    /// The indices of the slots that pass `f`.
    fn select(&self, f: impl Fn(&Slot) -> bool) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| f(s))
            .map(|(i, _)| i)
            .collect()
    }

    /// The slots at `which`.
    fn slots_at<'a>(&'a self, which: &'a [usize]) -> impl Iterator<Item = &'a Slot> + 'a {
        which.iter().filter_map(|&i| self.slots.get(i))
    }

    /// Whether `slot` enforces the revocation at `epoch`.
    fn enforces(slot: &Slot, epoch: u64) -> bool {
        slot.head
            .is_some_and(|h| h.watermark >= epoch || h.epoch.is_some_and(|e| e >= epoch))
    }

    /// Brings the edges `which` towards the latest epoch, together; `heartbeat` sends each a
    /// heartbeat even when caught up, as does an edge's first round in this run (its answer checks
    /// the journal's belief, and the edge's watermark, which only watermark answers carry).
    /// Returns the bytes pushed.
    fn round(&mut self, which: &[usize], heartbeat: bool) -> Result<u64, Fail> {
        let Some(cur) = &self.current else {
            return Ok(0);
        };
        let head = (cur.epoch, cur.watermark);
        let outcomes = self.push_round(cur, which, heartbeat)?;
        let bytes: u64 = outcomes
            .iter()
            .flat_map(|(_, o)| o.pushed.iter().map(|p| p.bytes as u64))
            .sum();
        if outcomes.iter().any(|(_, o)| !o.pushed.is_empty()) {
            self.pause_at("before_ack");
        }
        let now = now_ms();
        for (i, o) in outcomes {
            self.take_outcome(i, &o, now, head)?;
        }
        Ok(bytes)
    }

    /// The pushes of one round: the plan (the journal's latest epoch, its recent links, a fresh
    /// heartbeat), then every edge of `which` advanced towards it. Journals nothing.
    fn push_round(
        &self,
        cur: &Current,
        which: &[usize],
        heartbeat: bool,
    ) -> Result<Vec<(usize, Outcome)>, Fail> {
        let chain = self.store.chain(cur.epoch, MAX_CHAIN)?;
        let beat = self.sign_watermark(cur.watermark, cur.epoch, now_ms(), None)?;
        // The epoch was checked when it was issued: signing its snapshot cannot fail.
        let key = &self.key;
        let sign = || {
            cur.prepared
                .snapshot(cur.epoch, now_ms(), key)
                .unwrap_or_default()
        };
        let plan = Plan {
            epoch: cur.epoch,
            watermark: cur.watermark,
            snapshot: edge::Snapshot {
                signed: &cur.snapshot,
                size_hint: cur.snapshot_size,
                sign: &sign,
            },
            chain: &chain,
            heartbeat: &beat,
        };
        Ok(if self.pausing_at("mid_push") {
            self.advance_in_turn(&plan, which, heartbeat)
        } else {
            self.advance_together(&plan, which, heartbeat)
        })
    }

    /// Advances the edges `which` at once, one scoped thread each.
    fn advance_together(
        &self,
        plan: &Plan<'_>,
        which: &[usize],
        heartbeat: bool,
    ) -> Vec<(usize, Outcome)> {
        let noop = || {};
        std::thread::scope(|scope| {
            let handles: Vec<_> = which
                .iter()
                .filter_map(|&i| {
                    let s = self.slots.get(i)?;
                    let noop = &noop;
                    let beat = s.wants_heartbeat(heartbeat);
                    let run = move || advance(&s.client, plan, s.head, beat, noop);
                    Some((i, scope.spawn(run)))
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|(i, h)| h.join().ok().map(|o| (i, o)))
                .collect()
        })
    }

    /// Advances the edges `which` one after another, pausing after each accepted message: for the
    /// crash tests' `mid_push`, which falls after the first edge and before the next.
    fn advance_in_turn(
        &self,
        plan: &Plan<'_>,
        which: &[usize],
        heartbeat: bool,
    ) -> Vec<(usize, Outcome)> {
        let hook = || self.pause_at("mid_push");
        which
            .iter()
            .filter_map(|&i| {
                let s = self.slots.get(i)?;
                let beat = s.wants_heartbeat(heartbeat);
                Some((i, advance(&s.client, plan, s.head, beat, &hook)))
            })
            .collect()
    }

    /// Takes edge `i`'s outcome of a round that went to the journal's `(epoch, watermark)`: into
    /// its slot, out as events, and into the journal.
    fn take_outcome(
        &mut self,
        i: usize,
        o: &Outcome,
        now: u64,
        (epoch, watermark): (u64, u64),
    ) -> Result<(), Fail> {
        let Some(slot) = self.slots.get_mut(i) else {
            return Ok(());
        };
        let before = slot.head;
        // The first answer in this run confirms a belief taken from the journal.
        let confirmed = slot.last_ok.is_some();
        let report = slot.absorb(o, now);
        self.out.pushes(&slot.url, before, &o.pushed);
        if let (Some(e), true) = (&o.error, report) {
            self.out.edge_error(slot, e);
        }
        self.store.record_edge(&slot.row(), now)?;
        if o.error.is_none()
            && slot.head.is_some_and(|h| at_head(h, epoch, watermark))
            && (before != slot.head || !confirmed)
        {
            self.out
                .emit(json!({"event": "caught_up", "edge": slot.url, "epoch": epoch}));
        }
        Ok(())
    }

    /// Edges not at the latest epoch whose retry time has come.
    fn due(&self) -> Vec<usize> {
        let now = Instant::now();
        self.select(|s| !self.caught_up(s) && s.next_try <= now)
    }

    /// For a journal with no epoch yet: the first epoch goes above anything the edges hold (a
    /// lost journal must never reissue an epoch number an edge has seen).
    fn first_epoch(&mut self) -> Result<u64, Fail> {
        let probe = self.sign_watermark(0, 0, now_ms(), None)?;
        let mut floor = 0;
        let mut highest = None;
        for s in &mut self.slots {
            match s.client.push(Kind::Watermark, &probe) {
                edge::Answer::Ok(v) => match edge::watermark_answer(&v, 0) {
                    Ok((h, _)) => {
                        let top = h.epoch.unwrap_or(0).max(h.watermark);
                        if top >= floor {
                            floor = top;
                            highest = Some(s.url.clone());
                        }
                        s.head = Some(h);
                    }
                    Err(e) => eprintln!(
                        "warning: edge {}: {e}; if it holds epochs from another journal it will refuse this one's",
                        s.url
                    ),
                },
                other => eprintln!(
                    "warning: edge {} did not answer the first probe ({}); if it holds epochs from another journal it will refuse this one's",
                    s.url,
                    other.into_error()
                ),
            }
        }
        next_epoch(floor).map_err(|e| match highest {
            Some(url) => Fail(format!(
                "edge {url} holds epoch or watermark {floor}: {}",
                e.0
            )),
            None => e,
        })
    }

    /// `--recover-watermark`: asks every edge where it stands (a heartbeat); when one holds a
    /// watermark or an epoch ahead of the journal, issues the latest model as a snapshot at the
    /// lowest epoch no edge is ahead of (the highest such watermark, or one past the highest such
    /// epoch), so that every edge can take it and the epochs after it.
    fn recover(&mut self) -> Result<(), Fail> {
        let Some(cur) = &self.current else {
            // A new journal starts above whatever the edges hold.
            return Ok(());
        };
        let head = cur.epoch;
        let beat = self.sign_watermark(cur.watermark, head, now_ms(), None)?;
        let mut target: Option<(u64, String)> = None;
        for s in &mut self.slots {
            let answer = match s.client.push(Kind::Watermark, &beat) {
                edge::Answer::Ok(v) => edge::watermark_answer(&v, cur.watermark),
                other => Err(other.into_error()),
            };
            let h = match answer {
                Ok((h, _)) => h,
                Err(e) => {
                    eprintln!(
                        "warning: edge {} did not say where it stands ({e}); run --recover-watermark again once it answers if it is ahead",
                        s.url
                    );
                    continue;
                }
            };
            s.head = Some(h);
            let needs = match h.epoch {
                Some(e) if e > head => Some(next_epoch(e)?.max(h.watermark)),
                _ if h.watermark > head => Some(h.watermark),
                _ => None,
            };
            if let Some(n) = needs {
                if target.as_ref().is_none_or(|(t, _)| n > *t) {
                    target = Some((n, s.url.clone()));
                }
            }
        }
        let Some((epoch, edge)) = target else {
            self.out
                .emit(json!({"event": "recovery", "needed": false, "epoch": head}));
            return Ok(());
        };
        if epoch > MAX_EPOCH {
            return Err(Fail(format!(
                "edge {edge} would need epoch {epoch}, above the largest epoch ({MAX_EPOCH}) [epoch_exhausted]"
            )));
        }
        let (bytes, digest) = self.issue_snapshot_epoch(epoch, "recovery")?;
        eprintln!(
            "warning: the latest model is reissued at epoch {epoch} (the journal was at {head}; edge {edge} was ahead)"
        );
        self.out.emit(
            json!({"event": "issued", "epoch": epoch, "kind": "recovery", "revokes": false,
            "snapshotBytes": bytes, "digest": digest, "from": head, "edge": edge}),
        );
        let all: Vec<usize> = (0..self.slots.len()).collect();
        self.round(&all, false)?;
        Ok(())
    }

    /// Issues the latest model again as a snapshot-only epoch of `kind` (a checkpoint, a
    /// recovery) and makes it the current one; its snapshot's size and the digest.
    fn issue_snapshot_epoch(&mut self, epoch: u64, kind: &str) -> Result<(usize, String), Fail> {
        let Some(cur) = &self.current else {
            return Err(Fail("nothing is published yet".into()));
        };
        let issued_at = now_ms();
        let snapshot = cur.prepared.snapshot(epoch, issued_at, &self.key)?;
        let model_text = serde_json::to_string(&cur.model).map_err(|e| Fail(e.to_string()))?;
        let digest = cur.digest.clone();
        let edges: Vec<String> = self.slots.iter().map(|s| s.url.clone()).collect();
        self.store.issue(
            &NewEpoch {
                epoch,
                kind,
                revokes: false,
                digest: &digest,
                changed_at: issued_at,
                issued_at,
                model: &model_text,
                snapshot: Some(&snapshot),
                delta: None,
                watermark: None,
                ops: 0,
            },
            &edges,
            None,
        )?;
        let bytes = snapshot.len();
        if let Some(c) = &mut self.current {
            c.epoch = epoch;
            c.snapshot_size = bytes;
            c.snapshot = OnceLock::from(snapshot);
        }
        Ok((bytes, digest))
    }

    /// Publishes `model` (seen at `changed_at`): a new epoch if its content differs from the
    /// latest, then the pushes its kind calls for.
    fn publish(&mut self, model: Model, changed_at: u64) -> Result<Ended, Fail> {
        self.publish_with(model, None, changed_at, None)
            .map(|p| p.ended)
    }

    /// [`Publisher::publish`], with `extra` written in the epoch's transaction (or in its own
    /// when the content is unchanged); says what the change came to. `compiled` is the next
    /// epoch when the caller made it already (compiled, to refuse a model that does not
    /// compile, or patched from the current epoch).
    pub(crate) fn publish_with(
        &mut self,
        mut model: Model,
        compiled: Option<Next>,
        changed_at: u64,
        extra: Option<Extra<'_>>,
    ) -> Result<Published, Fail> {
        // Session revocations past their `until` go when the origin compiles: the journal
        // keeps the model without them, so the state it holds is the one edges hold.
        let dropped = model.drop_expired_sessions(now_ms());
        if model.tenant != self.tenant {
            return Err(Fail(format!(
                "the model is for tenant `{}`, this publisher's journal is `{}` [tenant_mismatch]",
                model.tenant, self.tenant
            )));
        }
        let next = match compiled {
            Some(n) if !dropped => n,
            _ => Next::Whole(compile(&model)?),
        };
        let digest = next.prepared().digest_hex();
        let patched = matches!(next, Next::Patched(_));
        if let Some(c) = &self.current {
            if c.digest == digest {
                let epoch = c.epoch;
                self.out
                    .emit(json!({"event": "unchanged", "epoch": epoch, "digest": digest}));
                if let Some(extra) = extra {
                    self.store.commit(extra)?;
                }
                let ended = self.converge(None)?;
                return Ok(Published {
                    epoch,
                    revokes: false,
                    unchanged: true,
                    ended,
                });
            }
        }
        let epoch = match &self.current {
            Some(c) => next_epoch(c.epoch)?,
            None => self.first_epoch()?,
        };
        let issued_at = now_ms();
        // Only the first epoch is journaled as a snapshot; the others are deltas, and their
        // snapshot is signed when an edge needs it (a checkpoint journals one again).
        let snapshot = match &self.current {
            None => Some(next.prepared().snapshot(epoch, issued_at, &self.key)?),
            Some(_) => None,
        };
        let (delta, revokes, ops) = match &self.current {
            Some(c) => {
                let d = match &next {
                    Next::Whole(p) => c.prepared.delta_to(p, c.epoch, epoch, issued_at, &self.key),
                    Next::Patched(p) => {
                        c.prepared.delta_by(p, c.epoch, epoch, issued_at, &self.key)
                    }
                }?;
                let ops = d.ops.total();
                (Some(d.bytes), d.revokes, ops)
            }
            None => (None, false, 0),
        };
        let watermark = match (&delta, revokes) {
            (Some(d), true) => Some(self.sign_watermark(epoch, epoch, issued_at, Some(d))?),
            _ => None,
        };
        let kind = match (&self.current, revokes) {
            (None, _) => "initial",
            (_, true) => "revocation",
            _ => "grant",
        };
        let model_text = serde_json::to_string(&model).map_err(|e| Fail(e.to_string()))?;
        let edges: Vec<String> = self.slots.iter().map(|s| s.url.clone()).collect();
        self.in_job = true;
        self.pause_at("before_journal");
        self.in_job = false;
        self.store.issue(
            &NewEpoch {
                epoch,
                kind,
                revokes,
                digest: &digest,
                changed_at,
                issued_at,
                model: &model_text,
                snapshot: snapshot.as_deref(),
                delta: delta.as_deref(),
                watermark: watermark.as_deref(),
                ops,
            },
            &edges,
            extra,
        )?;
        let job = self.store.job_start(Some(epoch), kind, changed_at)?;
        self.out.emit(
            json!({"event": "issued", "epoch": epoch, "kind": kind, "revokes": revokes,
            "ops": ops, "patched": patched, "deltaBytes": delta.as_ref().map(Vec::len),
            "watermarkBytes": watermark.as_ref().map(Vec::len),
            "snapshotBytes": snapshot.as_ref().map(Vec::len), "digest": digest}),
        );
        let previous_watermark = self.current.as_ref().map_or(0, |c| c.watermark);
        let snapshot_size = match (&snapshot, &self.current) {
            (Some(s), _) => s.len(),
            (None, Some(c)) => c.snapshot_len(),
            (None, None) => 0,
        };
        self.current = Some(Current {
            epoch,
            watermark: if revokes { epoch } else { previous_watermark },
            model,
            prepared: next.into_prepared(),
            snapshot: snapshot.map(OnceLock::from).unwrap_or_default(),
            snapshot_size,
            digest,
        });
        self.in_job = true;
        self.pause_at("after_journal");
        self.store.job_step(job, "pushing")?;
        let ended = if revokes {
            self.converge(Some((epoch, changed_at)))
        } else {
            // Grants: one attempt at every edge now; the rest is retried in the background.
            let all: Vec<usize> = (0..self.slots.len()).collect();
            self.round(&all, false).map(|_| Ended::Done)
        };
        self.in_job = false;
        let ended = ended?;
        let elapsed = now_ms().saturating_sub(changed_at);
        let bytes = self.bytes_of(epoch);
        let budget = self.args.push.budget + bytes / 16_384;
        let over = elapsed > budget;
        let outcome = match (&ended, over) {
            (Ended::Unacknowledged, _) => "unacknowledged",
            (_, true) => "over_budget",
            _ => "ok",
        };
        self.store.job_end(job, now_ms(), bytes, budget, outcome)?;
        if over {
            eprintln!(
                "warning: epoch {epoch} ({kind}) took {elapsed} ms, over its budget of {budget} ms for {bytes} bytes"
            );
            self.out.emit(
                json!({"event": "over_budget", "epoch": epoch, "ms": elapsed,
                "budgetMs": budget, "bytes": bytes}),
            );
        }
        self.maybe_checkpoint()?;
        Ok(Published {
            epoch,
            revokes,
            unchanged: false,
            ended,
        })
    }

    /// Waits (within the ack timeout, pushing meanwhile) until every edge enforces the
    /// revocation at `epoch`, changed at `since`.
    pub(crate) fn await_enforced(&mut self, epoch: u64, since: u64) -> Result<Ended, Fail> {
        self.converge(Some((epoch, since)))
    }

    /// Whether every edge enforces `epoch` (a revocation) or, with `applied`, holds it.
    pub(crate) fn every_edge(&self, epoch: u64, applied: bool) -> bool {
        self.slots.iter().all(|s| {
            if applied {
                s.head.is_some_and(|h| h.epoch.is_some_and(|e| e >= epoch))
            } else {
                Self::enforces(s, epoch)
            }
        })
    }

    /// The bytes one epoch sends each edge in the usual case (its watermark or delta; the
    /// snapshot for the first).
    fn bytes_of(&self, epoch: u64) -> u64 {
        let chain = self.store.chain(epoch, 1).unwrap_or_default();
        match chain.get(&epoch) {
            Some(l) => l.bytes.len() as u64,
            None => self.current.as_ref().map_or(0, |c| c.snapshot_len() as u64),
        }
    }

    /// With `revocation`: pushes until every edge enforces it or the ack timeout passes, and says
    /// which. Without: one attempt at every edge, a heartbeat for those caught up.
    fn converge(&mut self, revocation: Option<(u64, u64)>) -> Result<Ended, Fail> {
        let Some((epoch, changed_at)) = revocation else {
            // Every edge: those believed caught up get a heartbeat, whose answer checks the
            // belief (an edge may have lost its state) and confirms their freshness.
            let all = self.select(|_| true);
            self.round(&all, true)?;
            return Ok(Ended::Done);
        };
        let deadline = Instant::now() + Duration::from_millis(self.args.push.ack_timeout);
        loop {
            let missing: Vec<usize> = self.select(|s| !Self::enforces(s, epoch));
            if missing.is_empty() {
                let ms = now_ms().saturating_sub(changed_at);
                self.out.emit(
                    json!({"event": "revocation_acknowledged", "epoch": epoch, "ms": ms,
                    "edges": self.slots.iter().map(|s| s.url.clone()).collect::<Vec<_>>()}),
                );
                // Edges that enforce it but could not apply it yet get the snapshot now.
                let behind: Vec<usize> = self.select(|s| !self.caught_up(s));
                if !behind.is_empty() {
                    self.round(&behind, false)?;
                }
                return Ok(Ended::Done);
            }
            let now = Instant::now();
            if now >= deadline {
                let names: Vec<String> = self.slots_at(&missing).map(|s| s.url.clone()).collect();
                let why: Vec<Value> = self
                    .slots_at(&missing)
                    .map(|s| json!({"edge": s.url, "error": s.last_error}))
                    .collect();
                eprintln!(
                    "error: the revocation at epoch {epoch} is NOT acknowledged by {} of {} edges: {}",
                    names.len(),
                    self.slots.len(),
                    names.join(", ")
                );
                self.out.emit(json!({"event": "revocation_unacknowledged", "epoch": epoch,
                    "missing": why, "acknowledged": self.slots.iter()
                        .filter(|s| Self::enforces(s, epoch)).map(|s| s.url.clone()).collect::<Vec<_>>()}));
                return Ok(Ended::Unacknowledged);
            }
            let ready: Vec<usize> = missing
                .iter()
                .copied()
                .filter(|&i| self.slots.get(i).is_some_and(|s| s.next_try <= now))
                .collect();
            if ready.is_empty() {
                // While it waits on the edges that have not acknowledged, the others keep
                // hearing from the origin (in --watch / --stdin mode).
                if self.args.watch || self.args.stdin {
                    self.beat()?;
                }
                let next = self
                    .slots_at(&missing)
                    .map(|s| s.next_try)
                    .min()
                    .unwrap_or(deadline)
                    .min(deadline)
                    .min(now + Duration::from_millis(100));
                std::thread::sleep(next.saturating_duration_since(now));
            } else {
                self.round(&ready, false)?;
            }
        }
    }

    /// After enough deltas (or deltas heavier than the snapshot) since the last snapshot-only
    /// epoch, issues one: the same content at the next epoch, pushed as a snapshot, which replaces
    /// the delta log every edge keeps.
    fn maybe_checkpoint(&mut self) -> Result<(), Fail> {
        let Some(cur) = &self.current else {
            return Ok(());
        };
        let (count, bytes): (i64, i64) = self
            .store
            .conn()
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(delta)), 0) FROM epochs WHERE epoch >
                   (SELECT COALESCE(MAX(epoch), 0) FROM epochs
                    WHERE kind IN ('initial', 'checkpoint', 'recovery'))",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| Fail(format!("publisher journal: {e}")))?;
        // Small tenants: the log is cheap to replay until it reaches 256 KiB.
        let heavy = (cur.snapshot_len() as u64).max(CHECKPOINT_MIN_BYTES);
        let due = u64::try_from(count).unwrap_or(0) >= self.args.push.checkpoint_every
            || u64::try_from(bytes).unwrap_or(0) > heavy;
        if !due {
            return Ok(());
        }
        let epoch = next_epoch(cur.epoch)?;
        let (snapshot_bytes, digest) = self.issue_snapshot_epoch(epoch, "checkpoint")?;
        self.out.emit(
            json!({"event": "issued", "epoch": epoch, "kind": "checkpoint",
            "revokes": false, "snapshotBytes": snapshot_bytes, "digest": digest,
            "deltasSince": count, "deltaBytesSince": bytes}),
        );
        let all: Vec<usize> = (0..self.slots.len()).collect();
        self.round(&all, false)?;
        Ok(())
    }

    fn heartbeat_ms(&self) -> Result<u64, Fail> {
        let bound = self
            .current
            .as_ref()
            .map_or(5_000, |c| min_bound(c.prepared.state()));
        match self.args.push.heartbeat {
            Some(ms) if ms == 0 || ms >= bound => Err(Fail(format!(
                "--heartbeat {ms} must be above 0 and below the smallest freshness bound ({bound} ms)"
            ))),
            Some(ms) => Ok(ms),
            None => Ok((bound / 3).max(50)),
        }
    }

    /// Heartbeats to the edges not heard from within the interval (and due for a try); returns
    /// the interval.
    fn beat(&mut self) -> Result<Duration, Fail> {
        let every = Duration::from_millis(self.heartbeat_ms()?);
        let now = Instant::now();
        let beat = self.select(|s| {
            s.next_try <= now && s.last_ok.is_none_or(|t| now.duration_since(t) >= every)
        });
        if !beat.is_empty() {
            self.round(&beat, true)?;
        }
        Ok(every)
    }

    /// The background duties between changes: the journal's log copied into its database, retry
    /// edges that are behind, heartbeat edges not heard from within the interval. Returns when the next duty is due.
    pub(crate) fn duties(&mut self) -> Result<Instant, Fail> {
        self.store.tidy()?;
        let due = self.due();
        if !due.is_empty() {
            self.round(&due, false)?;
        }
        let every = self.beat()?;
        let now = Instant::now();
        let next = self
            .slots
            .iter()
            .map(|s| {
                let beat_at = s.last_ok.map_or(now, |t| t + every);
                if self.caught_up(s) {
                    beat_at.max(s.next_try)
                } else {
                    s.next_try
                }
            })
            .min()
            .unwrap_or(now + every);
        Ok(next.max(now + Duration::from_millis(5)))
    }

    fn pending(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| !self.caught_up(s))
            .map(|s| s.url.clone())
            .collect()
    }
}

/// Whether an edge at `h` holds the journal's latest `epoch` and enforces its `watermark`, and
/// no more: an edge whose watermark ran past the epoch refuses to answer from it.
fn at_head(h: Head, epoch: u64, watermark: u64) -> bool {
    h.epoch == Some(epoch) && h.watermark >= watermark && h.watermark <= epoch
}

/// The epoch after `epoch`, if there is one: never past [`MAX_EPOCH`] (edges refuse those).
fn next_epoch(epoch: u64) -> Result<u64, Fail> {
    match epoch.checked_add(1) {
        Some(n) if n <= MAX_EPOCH => Ok(n),
        _ => Err(Fail(format!(
            "no epoch is left after {epoch} (the largest is {MAX_EPOCH}) [epoch_exhausted]"
        ))),
    }
}

/// The latest epoch in the journal of `tenant` in `dir`, read without its lock (`None`: no
/// epoch yet).
pub fn journal_head(dir: &Path, tenant: &str) -> Result<Option<u64>, Fail> {
    Store::read_only(dir, tenant)?.latest_epoch()
}

fn read_model(path: &Path) -> Result<Model, Fail> {
    let text = read_text(path)?;
    Model::from_json(&text).map_err(|e| Fail(format!("{}: {}", path.display(), Fail::from(e).0)))
}

/// The file's content now and its SHA-256 digest: a change is a change of content, whatever its
/// modification time and size say (an edit can keep both).
fn fingerprint(path: &Path) -> Option<([u8; 32], Vec<u8>)> {
    use sha2::Digest as _;
    let bytes = std::fs::read(path).ok()?;
    Some((sha2::Sha256::digest(&bytes).into(), bytes))
}

pub fn run(args: PublishArgs) -> Result<Ended, Fail> {
    let started = now_ms();
    if args.status {
        return status::print(&args).map(|_| Ended::Done);
    }
    let first = args.model.as_deref().map(read_model).transpose()?;
    let tenant = match (&first, &args.tenant) {
        (Some(m), Some(t)) if &m.tenant != t => {
            return Err(Fail(format!(
                "--tenant `{t}` but the model is for `{}` [tenant_mismatch]",
                m.tenant
            )))
        }
        (Some(m), _) => m.tenant.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => {
            return Err(Fail(
                "give a MODEL.json, or --tenant to work from the journal's latest epoch".into(),
            ))
        }
    };
    if !edge_authz::is_valid_tenant(&tenant) {
        return Err(Fail(format!("`{tenant}` is not a valid tenant name")));
    }
    let mode = if args.watch {
        "watch"
    } else if args.stdin {
        "stdin"
    } else {
        "once"
    };
    let mut p = Publisher::new(args, &tenant, mode)?;
    if p.args.recover_watermark {
        p.recover()?;
    }
    let mut ended = Ended::Done;
    match first {
        Some(model) => ended = p.publish(model, started)?,
        None => {
            if p.current.is_none() && !p.args.stdin {
                return Err(Fail(format!(
                    "the journal of `{tenant}` has no epoch yet: give a MODEL.json"
                )));
            }
            p.converge(None)?;
        }
    }
    if p.args.watch {
        watch(&mut p)?;
    } else if p.args.stdin {
        ended = stdin(&mut p)?;
    }
    let pending = p.pending();
    if !pending.is_empty() {
        eprintln!(
            "warning: not caught up yet (a later run or --watch retries them): {}",
            pending.join(", ")
        );
    }
    p.out.emit(
        json!({"event": "done", "epoch": p.current.as_ref().map(|c| c.epoch),
        "pending": pending}),
    );
    Ok(ended)
}

/// `--watch`: polls the model file; each new content is a change.
fn watch(p: &mut Publisher) -> Result<(), Fail> {
    let Some(path) = p.args.model.clone() else {
        return Ok(());
    };
    // Nothing seen yet: the first poll compares the file with the journal's content (the file
    // may have changed since it was read).
    let mut seen = None;
    let poll = Duration::from_millis(p.args.poll.max(10));
    loop {
        let next = p.duties()?;
        let wake = next.min(Instant::now() + poll);
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        // An unreadable file (being replaced, say) is looked at again at the next poll.
        let Some((digest, bytes)) = fingerprint(&path) else {
            continue;
        };
        if seen == Some(digest) {
            continue;
        }
        seen = Some(digest);
        let changed_at = now_ms();
        let parsed = String::from_utf8(bytes)
            .map_err(|_| Fail(format!("`{}` is not UTF-8", path.display())))
            .and_then(|text| Model::from_json(&text).map_err(Fail::from));
        match parsed {
            Ok(model) => {
                if let Err(e) = p.publish(model, changed_at) {
                    // An invalid model (or one for another tenant) is reported; the
                    // publisher keeps serving the last good epoch.
                    eprintln!("error: {}: {}", path.display(), e.0);
                    p.out.emit(json!({"event": "rejected", "error": e.0}));
                }
            }
            Err(e) => {
                eprintln!("error: {}: {}", path.display(), e.0);
                p.out.emit(json!({"event": "rejected", "error": e.0}));
            }
        }
    }
}

/// `--stdin`: one change a line until the input ends, then converge (bounded by the ack
/// timeout) and stop.
fn stdin(p: &mut Publisher) -> Result<Ended, Fail> {
    let (tx, rx) = mpsc::channel::<(String, u64)>();
    std::thread::spawn(move || {
        let input = io::stdin();
        for line in input.lock().lines() {
            let Ok(line) = line else { break };
            if tx.send((line, now_ms())).is_err() {
                break;
            }
        }
    });
    let mut ended = Ended::Done;
    loop {
        let next = p.duties()?;
        let wait = next.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok((line, changed_at)) => {
                if line.trim().is_empty() {
                    continue;
                }
                let model = match changes::parse(&line) {
                    Ok(changes::Change::Model(m)) => Ok((*m, None)),
                    Ok(changes::Change::Ops(ops)) => match &p.current {
                        Some(c) => changes::apply(&c.model, &ops).map(|m| {
                            let next = c.patch(&m, &ops);
                            (m, next)
                        }),
                        None => Err("no model yet: the first change must be a whole model".into()),
                    },
                    Err(e) => Err(e),
                };
                let result = model.map_err(Fail).and_then(|(m, next)| {
                    p.publish_with(m, next, changed_at, None).map(|p| p.ended)
                });
                match result {
                    Ok(Ended::Unacknowledged) => ended = Ended::Unacknowledged,
                    Ok(Ended::Done) => {}
                    Err(e) => {
                        eprintln!("error: {}", e.0);
                        p.out.emit(json!({"event": "rejected", "error": e.0}));
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // The input ended: bring everyone up to date, within the ack timeout.
    let deadline = Instant::now() + Duration::from_millis(p.args.push.ack_timeout);
    while !p.pending().is_empty() && Instant::now() < deadline {
        let next = p.duties()?;
        std::thread::sleep(next.min(deadline).saturating_duration_since(Instant::now()));
    }
    if let Some(c) = &p.current {
        let w = c.watermark;
        if p.slots.iter().any(|s| !Publisher::enforces(s, w)) {
            ended = Ended::Unacknowledged;
        }
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::cleartext_remote;

    #[test]
    fn a_token_in_the_clear_is_told_apart() {
        for url in [
            "http://127.0.0.1:8787",
            "http://localhost:8787/",
            "http://[::1]:8787",
            "http://127.0.0.2",
            "https://authz.example.workers.dev",
        ] {
            assert!(!cleartext_remote(url), "{url}");
        }
        for url in [
            "http://authz.example.workers.dev",
            "http://10.0.0.5:8787",
            "http://127.0.0.1.example.com",
            "http://user@example.com",
        ] {
            assert!(cleartext_remote(url), "{url}");
        }
    }
}

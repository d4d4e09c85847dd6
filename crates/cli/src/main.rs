//! The `edge-authz` command line: a thin shell over the core (files, clock, randomness, JSON lines).

use std::fs;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use edge_authz::{
    compile_snapshot, diff_models, inspect, sign_watermark, Decision, DeltaOutcome, Error,
    Evaluator, KeyPair, Limits, Model, PublicKey, Reason, Request, SecretKey, State, Tier,
    MAX_CLOCK_SKEW_MS, MAX_WATERMARK,
};
use edge_authz_protocol::{parse_request_line, read_context, Context, Listing};
use serde_json::json;

/// Standard error for warnings, hints and errors: a reader that went away (`2>&1 | head`) costs
/// the message, never a panic. Shadows the standard macro in every module of this crate.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod explain;
mod impact;
mod publish;
mod replay;
mod serve;
mod testing;
mod times;

#[derive(Parser)]
#[command(
    name = "edge-authz",
    version,
    about = "Compile, sign, inspect and evaluate edge-authz snapshots"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Report errors on standard error as one JSON line, `{"error": {"code", "message",
    /// "detail"?}}`, instead of `error: MESSAGE [code]` (for scripts).
    #[arg(long, global = true)]
    json_errors: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new origin key pair: DIR/origin.key (secret, mode 0600) and DIR/origin.pub.
    #[command(after_help = "Examples:
  edge-authz keygen --out-dir keys
  edge-authz keygen --out-dir keys --force   # replace the pair (a rotation: keep the old .pub trusted)")]
    Keygen {
        /// The folder to write origin.key and origin.pub into (created if missing).
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Validate a model and print its tenant, counts and warnings as JSON.
    #[command(after_help = "Examples:
  edge-authz validate examples/acme.json
  edge-authz validate model.json --json-errors   # an error as {\"error\": {\"code\", \"message\", \"detail\"}}")]
    Validate {
        /// The model JSON.
        model: PathBuf,
    },
    /// Compile a model into a signed snapshot.
    #[command(after_help = "Examples:
  edge-authz compile examples/acme.json --epoch 1 --secret-key keys/origin.key -o snap.bin
  edge-authz compile model.json --epoch 7 --secret-key keys/origin.key -o snap.bin \\
      --issued-at 2026-12-01T09:00:00Z")]
    Compile {
        /// The model JSON.
        model: PathBuf,
        /// The snapshot's epoch: above every epoch the edges hold.
        #[arg(long)]
        epoch: u64,
        #[command(flatten)]
        sign: Signing,
    },
    /// Sign the delta from the model OLD (held at --base-epoch) to NEW (at --epoch).
    #[command(after_help = "Examples:
  edge-authz diff v1.json v2.json --base-epoch 1 --epoch 2 --secret-key keys/origin.key -o d2.bin
  edge-authz impact v1.json v2.json   # the same change, reviewed: who gains and loses what")]
    Diff {
        /// The model the edges hold.
        old: PathBuf,
        /// The model to move them to.
        new: PathBuf,
        /// The epoch of OLD: the delta applies only to an edge at exactly this epoch.
        #[arg(long)]
        base_epoch: u64,
        /// The epoch of NEW, above --base-epoch.
        #[arg(long)]
        epoch: u64,
        #[command(flatten)]
        sign: Signing,
    },
    /// Sign a watermark message (a heartbeat, or a revocation with --delta).
    #[command(after_help = "Examples:
  edge-authz watermark --tenant acme --watermark 2 --secret-key keys/origin.key -o w2.bin
  edge-authz watermark --tenant acme --watermark 2 --delta d2.bin --state journal \\
      --secret-key keys/origin.key -o w2.bin")]
    Watermark {
        /// The tenant the watermark is for.
        #[arg(long)]
        tenant: String,
        /// The epoch below which no edge may answer: at most the latest epoch issued (with
        /// --state), and never above 2^52.
        #[arg(long)]
        watermark: u64,
        /// The publisher's journal folder (as `publish --state`): refuse a watermark above the
        /// latest epoch it issued.
        #[arg(long, value_name = "DIR", alias = "journal")]
        state: Option<PathBuf>,
        /// A signed delta to carry (its epoch must be the watermark).
        #[arg(long, value_name = "FILE")]
        delta: Option<PathBuf>,
        #[command(flatten)]
        sign: Signing,
    },
    /// Print the header and counts of a snapshot, delta or watermark message as JSON.
    #[command(after_help = "Examples:
  edge-authz inspect snap.bin
  edge-authz inspect d2.bin --public-key keys/origin.pub   # and verify its signature")]
    Inspect {
        /// The message file.
        file: PathBuf,
        /// Also verify the signature against this key file (repeat for several).
        #[arg(long, value_name = "FILE")]
        public_key: Vec<PathBuf>,
    },
    /// Decide one request, a stream of JSON lines (--requests), or a request by a token.
    #[command(after_help = "Examples:
  edge-authz check --model examples/acme.json user:alice read doc:roadmap
  edge-authz check --snapshot snap.bin --public-key keys/origin.pub --now 2026-12-01T09:00:00Z \\
      user:alice export doc:roadmap --context '{\"ip\": \"10.1.2.3\"}' --fail-on-deny
  printf '[\"user:alice\",\"read\",\"doc:roadmap\"]\\n' | edge-authz check --model examples/acme.json --requests -
  edge-authz check --model model.json --token - read doc:roadmap < token.jwt")]
    Check {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        times: Times,
        /// A file of JSON lines (`-` for standard input): [subject, action, resource] or
        /// {"subject", "action", "resource", "context"}; one decision per line, in order.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["subject", "action", "resource", "token"])]
        requests: Option<String>,
        /// Check a token instead of a subject: a compact JWS (`-` reads it from standard
        /// input, out of the process list), verified against the model's issuers; then give
        /// ACTION RESOURCE only.
        #[arg(long, value_name = "JWT")]
        token: Option<String>,
        /// The subject, e.g. `user:alice` (the action with --token).
        #[arg(required_unless_present = "requests")]
        subject: Option<String>,
        /// The action, e.g. `read` (the resource with --token).
        #[arg(required_unless_present = "requests")]
        action: Option<String>,
        /// The resource, e.g. `doc:roadmap`.
        #[arg(required_unless_present_any = ["requests", "token"])]
        resource: Option<String>,
        /// Exit with code 2 when the decision (with --requests: any decision) is a denial, so
        /// that a script or CI step fails on it; the decisions are printed all the same.
        #[arg(long)]
        fail_on_deny: bool,
    },
    /// Why a request is allowed (every grant path) or denied (the gate that refused and the
    /// nearest misses: a role without the action, an expired assignment, a failed condition, a
    /// group the subject is not in).
    #[command(after_help = "Examples:
  edge-authz explain --model examples/acme.json user:alice read doc:roadmap
  edge-authz explain --model examples/acme.json user:alice write org:acme --json
  edge-authz explain --snapshot snap.bin --public-key origin.pub --now 2026-12-01T09:00:00Z \\
      --context '{\"ip\": \"10.1.2.3\"}' user:carol admin org:acme")]
    Explain(Box<explain::ExplainArgs>),
    /// List the resources a subject may do an action on, as JSON.
    #[command(after_help = "Examples:
  edge-authz list-resources --model examples/acme.json user:alice read
  edge-authz list-resources --model examples/acme.json user:alice read --type doc")]
    ListResources {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        times: Times,
        /// Only resources of this type (the part of the id before `:`), e.g. `doc`.
        #[arg(long = "type", value_name = "TYPE")]
        type_filter: Option<String>,
        /// The subject, e.g. `user:alice`.
        subject: String,
        /// The action, e.g. `read`.
        action: String,
    },
    /// List the members (never groups) who may do an action on a resource, as JSON.
    #[command(after_help = "Examples:
  edge-authz list-subjects --model examples/acme.json doc:roadmap export")]
    ListSubjects {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        times: Times,
        /// The resource, e.g. `doc:roadmap`.
        resource: String,
        /// The action, e.g. `read`.
        action: String,
    },
    /// Print the evaluator's status (epoch, watermark, confirmedAt, stale, counts) after loading
    /// the source, as JSON.
    #[command(after_help = "Examples:
  edge-authz status --snapshot snap.bin --public-key keys/origin.pub --watermark w2.bin
  edge-authz status --model examples/acme.json")]
    Status {
        #[command(flatten)]
        source: Source,
    },
    /// Run policy assertion files (JSON or YAML). Exit code 1: an assertion failed.
    #[command(after_help = "Examples:
  edge-authz test examples/acme.test.yaml
  edge-authz test policies/*.test.yaml --junit target/policy-tests.xml   # in CI
  edge-authz test examples/acme.test.yaml --json | jq '.files[].failures'")]
    Test(testing::TestArgs),
    /// Every (subject, action, resource) whose answer flips from OLD to NEW. Exit code 2:
    /// something is revoked.
    Impact(impact::ImpactArgs),
    /// Decide recorded decisions again against another model. Exit code 2: a decision flips.
    #[command(after_help = "Examples:
  wrangler tail --format json | jq -r '.logs[].message[0]' > decisions.jsonl
  edge-authz replay --model model-next.json --log decisions.jsonl
  edge-authz replay --model model.json --log decisions.jsonl --digest --json   # same state: no flips")]
    Replay(replay::ReplayArgs),
    /// The origin's publisher: publish a model's changes to edges (revocations acknowledged by
    /// every edge before it returns, grants in the background), follow a file (--watch) or
    /// changes on standard input (--stdin), or report the journal (--status). Exit code 3: a
    /// revocation some edge did not acknowledge.
    #[command(after_help = "Examples:
  edge-authz publish model.json --edge http://127.0.0.1:8787 --secret-key keys/origin.key
  edge-authz publish model.json --watch --edge https://a.example --edge https://b.example \\
      --secret-key keys/origin.key --state /var/lib/edge-authz
  echo '{\"op\": \"remove_membership\", \"member\": \"user:bob\", \"group\": \"group:eng\"}' | \\
      edge-authz publish --stdin --tenant acme --edge http://127.0.0.1:8787 --secret-key keys/origin.key
  edge-authz publish --status --tenant acme --json")]
    Publish(Box<publish::PublishArgs>),
    /// The origin as a service: a change API with consistency tokens, the model, the status,
    /// SCIM 2.0 provisioning and Prometheus metrics over HTTP, the journal as the source of truth.
    #[command(after_help = "Examples:
  edge-authz serve --state .edge-authz --secret-key keys/origin.key \\
      --edge http://127.0.0.1:8787 --token-file writers.tokens
  curl -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\
      -d '{\"op\": \"add_membership\", \"member\": \"user:bob\", \"group\": \"group:eng\"}' \\
      http://127.0.0.1:8788/v1/acme/changes")]
    Serve(Box<serve::ServeArgs>),
    /// Print the generated benchmark workload's model JSON (the same for every host's benchmark).
    #[command(after_help = "Examples:
  edge-authz workload > bench-model.json
  edge-authz workload --users 100000 --groups 2000 --seed 7 | edge-authz validate /dev/stdin")]
    Workload {
        /// Users.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Groups (nested up to a few levels).
        #[arg(long, default_value_t = 500)]
        groups: usize,
        /// Role assignments.
        #[arg(long, default_value_t = 20_000)]
        assignments: usize,
        /// Members of the one big group.
        #[arg(long, default_value_t = 5_000)]
        big_group: usize,
        /// Documents per project (20 workspaces of 10 projects each).
        #[arg(long, default_value_t = 50)]
        docs_per_project: usize,
        /// The random seed: the same seed gives the same model.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Print a shell's completion script, generated from these definitions.
    #[command(after_help = "Examples:
  edge-authz completions bash > /etc/bash_completion.d/edge-authz
  edge-authz completions zsh > \"${fpath[1]}/_edge-authz\"
  edge-authz completions fish > ~/.config/fish/completions/edge-authz.fish")]
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write a page per command into a folder.
    #[command(after_help = "Examples:
  edge-authz man | man -l -
  edge-authz man --out-dir /usr/local/share/man/man1")]
    Man {
        /// Write edge-authz.1 and edge-authz-COMMAND.1 for every command here instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// What every signing command takes: the origin's key, the output file, the time of issue.
#[derive(Args)]
struct Signing {
    /// The origin's secret key file (as `keygen` writes it: origin.key).
    #[arg(long, value_name = "FILE")]
    secret_key: PathBuf,
    /// Where to write the signed message.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: PathBuf,
    /// The message's time of issue, Unix milliseconds or RFC 3339 (default: now); at most 1 s
    /// ahead of this host's clock.
    #[arg(long, value_name = "TIME", value_parser = times::parse_ms)]
    issued_at: Option<u64>,
    /// Sign with an --issued-at further ahead of this host's clock (edges whose clocks agree
    /// refuse it; the others would count it fresh for longer than its bounds).
    #[arg(long, requires = "issued_at")]
    force_issued_at: bool,
}

impl Signing {
    fn key(&self) -> Result<SecretKey, Fail> {
        secret_key(&self.secret_key)
    }
    fn issued_at(&self) -> Result<u64, Fail> {
        let clock = now_ms();
        match self.issued_at {
            None => Ok(clock),
            Some(t) => issued_at_within(t, clock, self.force_issued_at),
        }
    }
}

/// An `--issued-at` more than [`MAX_CLOCK_SKEW_MS`] ahead of `clock` is refused unless forced:
/// `confirmed_at` would run ahead of every edge's clock, and with it every freshness bound.
fn issued_at_within(issued_at: u64, clock: u64, force: bool) -> Result<u64, Fail> {
    if force || issued_at <= clock.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Ok(issued_at);
    }
    Err(Fail(format!(
        "--issued-at {issued_at} is {} ms ahead of this host's clock ({clock}), past the \
         tolerance of {MAX_CLOCK_SKEW_MS} ms: edges would count it fresh for that much longer \
         (give --force-issued-at to sign it anyway) [clock_skew]",
        issued_at.saturating_sub(clock)
    )))
}

/// When an evaluating command decides, and what it needs.
#[derive(Args, Clone)]
struct Times {
    /// Both the clock (freshness) and the time of the decisions (expiry, time conditions), as
    /// Unix milliseconds or RFC 3339, e.g. `--now 2026-12-01T09:00:00Z`. Default: this host's
    /// clock. A snapshot older than its freshness bounds at this time answers
    /// `freshness_exceeded`: give its time of issue (`inspect` prints it) to check it offline.
    #[arg(long, value_name = "TIME", value_parser = times::parse_ms)]
    now: Option<u64>,
    /// Answer `pending` unless the state's epoch is at least this (read your writes).
    #[arg(long, value_name = "EPOCH")]
    at_least_epoch: Option<u64>,
    /// The request's context as JSON: attributes that conditions test, e.g.
    /// '{"ip": "10.1.2.3", "mfa_age_s": 120}' (a malformed one is `invalid_request`); with
    /// --requests, the context of the lines that give none.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
}

impl Times {
    fn clock(&self) -> u64 {
        self.now.unwrap_or_else(now_ms)
    }

    /// The `--context` as read (`Err`: malformed), with `--at-least-epoch` when it names none.
    fn context(&self) -> Result<Context, ()> {
        let mut c = match &self.context {
            None => Context::default(),
            Some(text) => {
                let v: serde_json::Value = serde_json::from_str(text).map_err(|_| ())?;
                read_context(Some(&v))?
            }
        };
        c.at_least_epoch = c.at_least_epoch.or(self.at_least_epoch);
        Ok(c)
    }
}

/// Where an evaluating command gets its state: a signed snapshot (plus deltas and watermarks,
/// applied in the order given: deltas first, then watermarks), or an unsigned preview of a model.
#[derive(Args)]
struct Source {
    /// A signed snapshot to evaluate (its tenant is the evaluator's).
    #[arg(long, value_name = "FILE", required_unless_present = "model")]
    snapshot: Option<PathBuf>,
    /// A trusted origin public key file (repeat for a rotation).
    #[arg(long, value_name = "FILE", required_unless_present = "model")]
    public_key: Vec<PathBuf>,
    /// A signed delta to apply after the snapshot (repeatable, applied in order).
    #[arg(long, value_name = "FILE")]
    delta: Vec<PathBuf>,
    /// A signed watermark to apply after the deltas (repeatable, applied in order).
    #[arg(long, value_name = "FILE")]
    watermark: Vec<PathBuf>,
    /// Evaluate a model JSON unsigned (preview mode) instead of a snapshot.
    #[arg(long, value_name = "FILE", conflicts_with = "snapshot")]
    model: Option<PathBuf>,
}

/// The longest request line read; a longer one is an `invalid_request` decision.
const MAX_LINE: usize = 1 << 20;

struct Fail(String);

impl Fail {
    /// The stable code of the failure: the `[code]` or `[code/detail]` that ends its message,
    /// else `invalid_input`.
    fn code(&self) -> (&str, Option<&str>) {
        let bracket = self
            .0
            .strip_suffix(']')
            .and_then(|m| m.rsplit_once(" ["))
            .map(|(_, c)| c)
            .filter(|c| {
                !c.is_empty()
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_/".contains(&b))
            });
        match bracket {
            None => ("invalid_input", None),
            Some(c) => match c.split_once('/') {
                Some((code, detail)) => (code, Some(detail)),
                None => (c, None),
            },
        }
    }

    /// The message without its trailing code.
    fn message(&self) -> &str {
        match self.code() {
            ("invalid_input", None) if !self.0.ends_with("[invalid_input]") => &self.0,
            _ => self.0.rsplit_once(" [").map_or(&self.0, |(m, _)| m),
        }
    }

    /// Reports the failure on standard error: `error: MESSAGE [code]`, or with `--json-errors`
    /// one line `{"error": {"code", "message", "detail"?}}`.
    fn report(&self, json: bool) {
        if json {
            let (code, detail) = self.code();
            let mut e = json!({"code": code, "message": self.message()});
            if let (Some(d), Some(o)) = (detail, e.as_object_mut()) {
                o.insert("detail".into(), json!(d));
            }
            eprintln!("{}", json!({ "error": e }));
        } else {
            eprintln!("error: {}", self.0);
        }
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        match e.detail() {
            Some(d) => Fail(format!("{e} [{}/{d}]", e.code())),
            None => Fail(format!("{e} [{}]", e.code())),
        }
    }
}

impl From<edge_authz::ModelError> for Fail {
    fn from(e: edge_authz::ModelError) -> Self {
        Error::InvalidModel(e).into()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Fail> {
    fs::read(path).map_err(|e| Fail(format!("cannot read `{}`: {e} [io_error]", path.display())))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Fail> {
    fs::write(path, bytes)
        .map_err(|e| Fail(format!("cannot write `{}`: {e} [io_error]", path.display())))
}

fn read_text(path: &Path) -> Result<String, Fail> {
    String::from_utf8(read(path)?).map_err(|_| Fail(format!("`{}` is not UTF-8", path.display())))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn load_model(path: &Path) -> Result<(State, Vec<String>), Fail> {
    let text = read_text(path)?;
    let model = Model::from_json(&text)
        .map_err(|e| Fail(format!("{}: {}", path.display(), Fail::from(e).0)))?;
    let compiled = model
        .compile()
        .map_err(|e| Fail(format!("{}: {}", path.display(), Fail::from(e).0)))?;
    for w in &compiled.warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    Ok((compiled.state, compiled.warnings))
}

fn secret_key(path: &Path) -> Result<SecretKey, Fail> {
    let text = read_text(path)?;
    let key = SecretKey::from_base64(&text)
        .map_err(|e| Fail(format!("{}: {}", path.display(), Fail::from(e).0)))?;
    warn_bare_key(path, &text, edge_authz::SECRET_KEY_PREFIX);
    Ok(key)
}

fn public_key(path: &Path) -> Result<PublicKey, Fail> {
    let text = read_text(path)?;
    let key = PublicKey::from_base64(&text)
        .map_err(|e| Fail(format!("{}: {}", path.display(), Fail::from(e).0)))?;
    warn_bare_key(path, &text, edge_authz::PUBLIC_KEY_PREFIX);
    Ok(key)
}

/// A warning on stderr, once per file, when a key file holds the bare base64 form (still read:
/// older files hold it) rather than the typed form `prefix` then the base64.
fn warn_bare_key(path: &Path, text: &str, prefix: &str) {
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    if edge_authz::is_typed_key(text) {
        return;
    }
    let file = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !warned.contains(&file) {
        warned.push(file);
        eprintln!(
            "warning: {} holds a bare base64 key; it is still read, but write it as `{prefix}` \
             then the base64 (keygen writes typed keys)",
            path.display()
        );
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<(), Fail> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Fail(e.to_string()))?;
    emit(&text)
}

/// Writes `text` and a newline to standard output. A reader that went away (`edge-authz
/// workload | head`) ends the process quietly with exit code 0, as it would any Unix filter.
fn emit(text: &str) -> Result<(), Fail> {
    let mut out = io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    written.map_err(|e| write_failed(&e))
}

/// [`emit`] for bytes, without a newline of its own.
fn emit_bytes(bytes: &[u8]) -> Result<(), Fail> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| write_failed(&e))
}

/// `man`: the page of the command line to standard output, or every command's page to `dir`.
fn man(dir: Option<&Path>) -> Result<(), Fail> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| Fail(format!("cannot render the man page: {e}")))?;
        return emit_bytes(&out);
    };
    fs::create_dir_all(dir)
        .map_err(|e| Fail(format!("cannot create `{}`: {e} [io_error]", dir.display())))?;
    let page = |cmd: clap::Command, name: &str| -> Result<(), Fail> {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| Fail(format!("cannot render the man page of {name}: {e}")))?;
        write(&dir.join(format!("{name}.1")), &out)
    };
    let mut cmd = cmd;
    cmd.build();
    for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
        let name = format!("edge-authz-{}", sub.get_name());
        page(sub.clone().name(name.clone()), &name)?;
    }
    page(cmd, "edge-authz")
}

/// A failed write to standard output: the end when its reader closed the pipe, else a failure.
fn write_failed(e: &io::Error) -> Fail {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    Fail(format!("cannot write to standard output: {e} [io_error]"))
}

/// The evaluator of an evaluating command, loaded under `clock` (this host's time, or `--now`):
/// a message issued more than [`MAX_CLOCK_SKEW_MS`] after it is refused (`clock_skew`).
fn evaluator(src: &Source, clock: u64) -> Result<Evaluator, Fail> {
    if let Some(model) = &src.model {
        let (state, _) = load_model(model)?;
        return Ok(Evaluator::preview(&state)?);
    }
    let snapshot_path = src
        .snapshot
        .as_ref()
        .ok_or_else(|| Fail("--snapshot or --model is required".into()))?;
    let snapshot = read(snapshot_path)?;
    let keys = src
        .public_key
        .iter()
        .map(|p| public_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let header = inspect(&snapshot, &[], &Limits::default())
        .map_err(|e| Fail(format!("{}: {}", snapshot_path.display(), Fail::from(e).0)))?;
    let mut ev = Evaluator::with_keys(&header.tenant, keys)?;
    ev.set_clock(Some(clock));
    ev.load_snapshot(&snapshot)
        .map_err(|e| Fail(format!("{}: {}", snapshot_path.display(), Fail::from(e).0)))?;
    for d in &src.delta {
        ev.apply_delta(&read(d)?)
            .map_err(|e| Fail(format!("{}: {}", d.display(), Fail::from(e).0)))?;
    }
    for w in &src.watermark {
        let a = ev
            .apply_watermark(&read(w)?)
            .map_err(|e| Fail(format!("{}: {}", w.display(), Fail::from(e).0)))?;
        if let Some(DeltaOutcome::Skipped(e)) = a.delta {
            eprintln!(
                "warning: {}: the carried delta was not applied: {e}",
                w.display()
            );
        }
    }
    Ok(ev)
}

/// What a checking command answered, for its exit code and its hint.
#[derive(Default)]
struct Answered {
    denied: usize,
    /// The first refusal for freshness (gate 3 or 5), to explain on standard error.
    unfresh: Option<Decision>,
}

impl Answered {
    fn note(&mut self, d: &Decision) {
        if !d.allowed {
            self.denied += 1;
            if self.unfresh.is_none()
                && matches!(
                    d.reason,
                    Reason::FreshnessExceeded | Reason::StaleSnapshot | Reason::Pending
                )
            {
                self.unfresh = Some(*d);
            }
        }
    }

    /// Prints the hint for a refusal by freshness, and gives the exit code: 2 for a denial
    /// under `--fail-on-deny`, else 0.
    fn finish(&self, ev: &Evaluator, clock: u64, fail_on_deny: bool) -> ExitCode {
        if let Some(d) = &self.unfresh {
            if let Some(h) = freshness_hint(ev, d, clock) {
                eprintln!("hint: {h}");
            }
        }
        if fail_on_deny && self.denied > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// Why a decision was refused for freshness, in words, with what to do about it offline.
fn freshness_hint(ev: &Evaluator, d: &Decision, clock: u64) -> Option<String> {
    let status = ev.status();
    match d.reason {
        Reason::FreshnessExceeded => {
            let confirmed = status.confirmed_at?;
            let tier = d.tier.unwrap_or(Tier::High);
            let bound = status.freshness.as_ref()?.bound(tier);
            Some(format!(
                "the state was last confirmed by the origin at {} ({confirmed}); at the clock \
                 {} ({clock}) that is {} ms ago, past the {} tier's bound of {bound} ms, so \
                 every {} action answers freshness_exceeded. To evaluate this snapshot offline, \
                 give --now {} (or any time up to {} ms after it); on a live edge, push a \
                 heartbeat or a newer snapshot",
                times::rfc3339(confirmed),
                times::rfc3339(clock),
                clock.saturating_sub(confirmed),
                tier_name(tier),
                tier_name(tier),
                times::rfc3339(confirmed),
                bound,
            ))
        }
        Reason::StaleSnapshot => Some(format!(
            "the snapshot's epoch {} is below the revocation watermark {}: the state lacks a \
             revocation; load the delta or snapshot at epoch {} or later",
            d.epoch.unwrap_or(0),
            d.watermark,
            d.watermark
        )),
        Reason::Pending => Some(format!(
            "the state's epoch {} is below the --at-least-epoch asked for",
            d.epoch.unwrap_or(0)
        )),
        _ => None,
    }
}

fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Low => "low",
        Tier::Standard => "standard",
        Tier::High => "high",
    }
}

fn check_batch(ev: &Evaluator, source: &str, times: Times) -> Result<Answered, Fail> {
    let mut answered = Answered::default();
    let clock = times.clock();
    let default = times.context();
    let input: Box<dyn BufRead> = if source == "-" {
        Box::new(io::BufReader::with_capacity(1 << 16, io::stdin().lock()))
    } else {
        let f = fs::File::open(source)
            .map_err(|e| Fail(format!("cannot read `{source}`: {e} [io_error]")))?;
        Box::new(io::BufReader::with_capacity(1 << 16, f))
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut line = Vec::new();
    let mut reader = input;
    let read_err = |e: io::Error| Fail(format!("cannot read the requests: {e} [io_error]"));
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(read_err)?;
        if n == 0 {
            break;
        }
        let overlong = line.len() > MAX_LINE;
        if overlong && !line.ends_with(b"\n") {
            // Skip the rest of the line without holding it.
            let mut rest = Vec::new();
            while !rest.ends_with(b"\n") {
                rest.clear();
                if (&mut reader)
                    .take(1 << 16)
                    .read_until(b'\n', &mut rest)
                    .map_err(read_err)?
                    == 0
                {
                    break;
                }
            }
        }
        let text = std::str::from_utf8(&line).unwrap_or("\u{fffd}").trim();
        if text.is_empty() {
            continue;
        }
        let decision = match parse_request_line(text).filter(|_| !overlong) {
            Some(l) => {
                let own = l.context.as_ref().map(|c| {
                    read_context(Some(c)).map(|mut c| {
                        c.at_least_epoch = c.at_least_epoch.or(times.at_least_epoch);
                        c
                    })
                });
                match own.as_ref().unwrap_or(&default) {
                    // A line's own `now` moves the time of its decision, never the clock.
                    Ok(c) => ev.check(
                        Request::new(&l.subject, &l.action, &l.resource),
                        c.at(clock),
                    ),
                    Err(()) => ev.reject_request(),
                }
            }
            None => ev.reject_request(),
        };
        answered.note(&decision);
        serde_json::to_writer(&mut out, &ev.explain(&decision))
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| write_failed(&e))?;
    }
    out.flush().map_err(|e| write_failed(&e))?;
    Ok(answered)
}

/// A watermark locks every edge out of the epochs below it, so it is never above the latest
/// epoch issued (known from the publisher's journal, `state`) nor above [`MAX_WATERMARK`], which
/// leaves room for the epochs after it.
fn watermark_within(tenant: &str, watermark: u64, state: Option<&Path>) -> Result<(), Fail> {
    if watermark > MAX_WATERMARK {
        return Err(Fail(format!(
            "--watermark {watermark} is above the largest watermark ({MAX_WATERMARK}): no epoch \
             would be left after it [watermark_too_high]"
        )));
    }
    let Some(dir) = state else {
        return Ok(());
    };
    let head = publish::journal_head(dir, tenant)?;
    if watermark > head.unwrap_or(0) {
        return Err(Fail(format!(
            "--watermark {watermark} is above the latest epoch the journal in `{}` issued for \
             `{tenant}` ({}): edges would refuse every epoch below it [watermark_ahead]",
            dir.display(),
            head.map_or("none".to_string(), |h| h.to_string())
        )));
    }
    Ok(())
}

fn write_key(path: &Path, text: &str, secret: bool, force: bool) -> Result<(), Fail> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let _ = secret;
    let mut f = opts.open(path).map_err(|e| {
        Fail(format!(
            "cannot create `{}`: {e}{}",
            path.display(),
            if force {
                ""
            } else {
                " (use --force to overwrite)"
            }
        ))
    })?;
    f.write_all(format!("{text}\n").as_bytes())
        .map_err(|e| Fail(format!("cannot write `{}`: {e}", path.display())))
}

/// Runs a command (all but `publish`, which has exit codes of its own: see `main`).
fn run(cli: Cli) -> Result<(), Fail> {
    match cli.command {
        Command::Keygen { out_dir, force } => keygen(&out_dir, force),
        Command::Validate { model } => {
            let (state, warnings) = load_model(&model)?;
            let ev = Evaluator::preview(&state)?;
            print_json(
                &json!({"tenant": state.tenant, "counts": ev.status().counts, "warnings": warnings}),
            )
        }
        Command::Compile { model, epoch, sign } => compile(&model, epoch, &sign),
        Command::Inspect {
            file,
            public_key: keys,
        } => inspect_file(&file, &keys),
        Command::Status { source } => print_json(&evaluator(&source, now_ms())?.status()),
        Command::ListResources {
            source,
            times,
            type_filter,
            subject,
            action,
        } => {
            let ev = evaluator(&source, times.clock())?;
            let ctx = times.context().map_err(|()| ev.reject_list())?;
            let at = ctx.at(times.clock());
            let list = ev.list_resources(&subject, &action, type_filter.as_deref(), at)?;
            print_json(&Listing::Resources(list))
        }
        Command::ListSubjects {
            source,
            times,
            resource,
            action,
        } => {
            let ev = evaluator(&source, times.clock())?;
            let ctx = times.context().map_err(|()| ev.reject_list())?;
            let list = ev.list_subjects(&resource, &action, ctx.at(times.clock()))?;
            print_json(&Listing::Subjects(list))
        }
        Command::Diff {
            old,
            new,
            base_epoch,
            epoch,
            sign,
        } => diff(&old, &new, (base_epoch, epoch), &sign),
        Command::Workload {
            users,
            groups,
            assignments,
            big_group,
            docs_per_project,
            seed,
        } => {
            let spec = edge_authz::workload::WorkloadSpec {
                users,
                groups,
                assignments,
                big_group,
                docs_per_project,
                seed,
                ..Default::default()
            };
            emit(&edge_authz::workload::generate(&spec).to_string())
        }
        Command::Watermark {
            tenant,
            watermark,
            state,
            delta,
            sign,
        } => sign_watermark_file(
            &tenant,
            watermark,
            state.as_deref(),
            delta.as_deref(),
            &sign,
        ),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "edge-authz", &mut out);
            emit_bytes(&out)
        }
        Command::Man { out_dir } => man(out_dir.as_deref()),
        // Handled in main (their own exit codes).
        Command::Publish(_)
        | Command::Serve(_)
        | Command::Check { .. }
        | Command::Explain(_)
        | Command::Test(_)
        | Command::Impact(_)
        | Command::Replay(_) => Err(Fail("runs from main".into())),
    }
}

/// `keygen`: a new key pair from the system's randomness, written to `out_dir`.
fn keygen(out_dir: &Path, force: bool) -> Result<(), Fail> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| Fail(format!("no randomness available: {e}")))?;
    let pair = KeyPair::from_seed(seed);
    fs::create_dir_all(out_dir)
        .map_err(|e| Fail(format!("cannot create `{}`: {e}", out_dir.display())))?;
    write_key(&out_dir.join("origin.key"), &pair.secret_key, true, force)?;
    write_key(&out_dir.join("origin.pub"), &pair.public_key, false, force)?;
    let id = PublicKey::from_base64(&pair.public_key)?.id().to_string();
    print_json(&json!({"publicKey": pair.public_key, "keyId": id, "dir": out_dir}))
}

/// `compile`: the model's signed snapshot at `epoch`.
fn compile(model: &Path, epoch: u64, sign: &Signing) -> Result<(), Fail> {
    let (mut state, warnings) = load_model(model)?;
    let issued_at = sign.issued_at()?;
    // Session revocations past their `until` are dropped when the origin compiles.
    state.identity.drop_expired(issued_at);
    let bytes = compile_snapshot(&state, epoch, issued_at, &sign.key()?)?;
    write(&sign.out, &bytes)?;
    let header = inspect(&bytes, &[], &Limits::default())?;
    print_json(
        &json!({"tenant": header.tenant, "epoch": epoch, "bytes": bytes.len(), "digest": header.digest, "keyId": header.key_id, "warnings": warnings}),
    )
}

/// `inspect`: a message's header and counts, its signature verified against `keys` if any.
fn inspect_file(file: &Path, keys: &[PathBuf]) -> Result<(), Fail> {
    let keys = keys
        .iter()
        .map(|p| public_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = read(file)?;
    let info = inspect(&bytes, &keys, &Limits::default())
        .map_err(|e| Fail(format!("{}: {}", file.display(), Fail::from(e).0)))?;
    print_json(&info)
}

/// `check`: one request, or every line of `--requests`, or a request by a token.
fn check_command(command: Command) -> Result<ExitCode, Fail> {
    let Command::Check {
        source,
        times,
        requests,
        token,
        subject,
        action,
        resource,
        fail_on_deny,
    } = command
    else {
        return Err(Fail("not a check".into()));
    };
    let clock = times.clock();
    let ev = evaluator(&source, clock)?;
    let answered = match (token, requests) {
        (Some(token), _) => check_token(&ev, &times, &token, [subject, action, resource])?,
        (None, Some(src)) => check_batch(&ev, &src, times)?,
        (None, None) => check(&ev, &times, subject, action, resource)?,
    };
    Ok(answered.finish(&ev, clock, fail_on_deny))
}

/// `check SUBJECT ACTION RESOURCE`.
fn check(
    ev: &Evaluator,
    times: &Times,
    subject: Option<String>,
    action: Option<String>,
    resource: Option<String>,
) -> Result<Answered, Fail> {
    let (Some(s), Some(a), Some(r)) = (subject, action, resource) else {
        return Err(Fail(
            "SUBJECT ACTION RESOURCE or --requests is required".into(),
        ));
    };
    let d = match times.context() {
        Ok(ctx) => ev.check(Request::new(&s, &a, &r), ctx.at(times.clock())),
        Err(()) => ev.reject_request(),
    };
    let text = serde_json::to_string(&ev.explain(&d)).map_err(|e| Fail(e.to_string()))?;
    emit(&text)?;
    let mut answered = Answered::default();
    answered.note(&d);
    Ok(answered)
}

/// `check --token`: one request by a token's subject, its signature verified natively.
fn check_token(
    ev: &Evaluator,
    times: &Times,
    token: &str,
    args: [Option<String>; 3],
) -> Result<Answered, Fail> {
    let [Some(a), Some(r), None] = args else {
        return Err(Fail(
            "with --token, give ACTION RESOURCE (the subject comes from the token)".into(),
        ));
    };
    let token = if token == "-" {
        let mut text = String::new();
        io::stdin()
            .take(edge_authz::token::MAX_TOKEN_BYTES as u64 + 2)
            .read_to_string(&mut text)
            .map_err(|e| Fail(format!("cannot read the token from standard input: {e}")))?;
        text.trim().to_string()
    } else {
        token.to_string()
    };
    let d = match times.context() {
        Ok(ctx) => {
            let mut verify =
                |v: &edge_authz::token::Verify<'_>| Some(edge_authz_protocol::jws::verify(v));
            match ev.check_token(&token, &a, &r, ctx.at(times.clock()), &mut verify) {
                edge_authz::TokenAnswer::Decided(d) => d,
                edge_authz::TokenAnswer::Verify { .. } => {
                    return Err(Fail("the token's signature was not verified".into()))
                }
            }
        }
        Err(()) => edge_authz::TokenDecision {
            decision: ev.reject_request(),
            subject: None,
            fault: None,
        },
    };
    let text = serde_json::to_string(&ev.explain_token(&d)).map_err(|e| Fail(e.to_string()))?;
    emit(&text)?;
    let mut answered = Answered::default();
    answered.note(&d.decision);
    Ok(answered)
}

/// `diff`: the signed delta from the model `old` to the model `new`, `(base_epoch, epoch)`.
fn diff(
    old: &Path,
    new: &Path,
    (base_epoch, epoch): (u64, u64),
    sign: &Signing,
) -> Result<(), Fail> {
    let (before, _) = load_model(old)?;
    let (mut after, _) = load_model(new)?;
    let issued_at = sign.issued_at()?;
    // NEW is compiled now, so its session entries past their `until` are dropped; OLD stands
    // as written (the state its snapshot holds when nothing had passed when it was compiled).
    after.identity.drop_expired(issued_at);
    let d = diff_models(&before, &after, base_epoch, epoch, issued_at, &sign.key()?)?;
    write(&sign.out, &d.bytes)?;
    print_json(
        &json!({"tenant": after.tenant, "baseEpoch": base_epoch, "epoch": epoch, "revokes": d.revokes, "bytes": d.bytes.len(), "counts": d.ops.counts()}),
    )
}

/// `watermark`: a signed watermark message, carrying the delta in the file `delta` if given.
fn sign_watermark_file(
    tenant: &str,
    watermark: u64,
    state: Option<&Path>,
    delta: Option<&Path>,
    sign: &Signing,
) -> Result<(), Fail> {
    watermark_within(tenant, watermark, state)?;
    let delta = delta.map(read).transpose()?;
    let bytes = sign_watermark(
        tenant,
        watermark,
        sign.issued_at()?,
        delta.as_deref(),
        &sign.key()?,
    )?;
    write(&sign.out, &bytes)?;
    print_json(
        &json!({"tenant": tenant, "watermark": watermark, "bytes": bytes.len(), "carriesDelta": delta.is_some()}),
    )
}

fn main() -> ExitCode {
    // Known before parsing, so that a usage error is reported in JSON too.
    let json_errors = std::env::args_os().any(|a| a == "--json-errors");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            if json_errors {
                // The error's paragraph, without the usage and the pointer to --help.
                let text = e.render().to_string();
                let words: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .take_while(|l| !l.is_empty())
                    .collect();
                let message = words.join(" ");
                Fail(format!("{} [usage]", message.trim_start_matches("error: "))).report(true);
            } else {
                let _ = e.print();
            }
            return ExitCode::from(1);
        }
        Err(e) => {
            // --help and --version: a closed pipe is not an error.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match cli.command {
        Command::Publish(args) => publish::run(*args).map(|ended| match ended {
            publish::Ended::Done => ExitCode::SUCCESS,
            publish::Ended::Unacknowledged => ExitCode::from(3),
        }),
        Command::Test(args) => testing::run(args),
        Command::Serve(args) => serve::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Impact(args) => impact::run(args),
        Command::Replay(args) => replay::run(args),
        command @ Command::Check { .. } => check_command(command),
        Command::Explain(args) => explain::run(*args).map(|()| ExitCode::SUCCESS),
        command => run(Cli {
            command,
            json_errors,
        })
        .map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|fail| {
        fail.report(json_errors);
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command shows examples that run it, and every argument and option says what it is.
    #[test]
    fn every_command_has_examples_and_every_argument_a_help_text() {
        let mut cli = Cli::command();
        cli.build();
        for cmd in cli.get_subcommands().filter(|c| c.get_name() != "help") {
            let name = cmd.get_name();
            let after = cmd
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                after.starts_with("Examples:") && after.contains(&format!("edge-authz {name}")),
                "`{name}` has no examples that run it"
            );
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if ["help", "version"].contains(&id) {
                    continue;
                }
                assert!(
                    arg.get_help()
                        .is_some_and(|h| !h.to_string().trim().is_empty()),
                    "`{name}`: `{id}` has no help text"
                );
            }
        }
    }
}

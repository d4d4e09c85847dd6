//! The `edge-authz` command line: a thin shell over the core (files, clock, randomness, JSON lines).

use std::fs;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use edge_authz::{
    compile_snapshot, diff_models, inspect, sign_watermark, DeltaOutcome, Error, Evaluator,
    KeyPair, Limits, Model, PublicKey, Request, SecretKey, State, MAX_CLOCK_SKEW_MS, MAX_WATERMARK,
};
use edge_authz_protocol::{parse_request_line, read_context, Context, Listing};
use serde_json::json;

mod impact;
mod publish;
mod replay;
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
}

#[derive(Subcommand)]
enum Command {
    /// Write a new origin key pair: DIR/origin.key (secret) and DIR/origin.pub.
    Keygen {
        #[arg(long)]
        out_dir: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Validate a model and print its counts and warnings.
    Validate { model: PathBuf },
    /// Compile a model into a signed snapshot.
    Compile {
        model: PathBuf,
        #[arg(long)]
        epoch: u64,
        #[command(flatten)]
        sign: Signing,
    },
    /// Print the header and counts of a snapshot, delta or watermark message as JSON.
    Inspect {
        file: PathBuf,
        /// Also verify the signature against these keys.
        #[arg(long)]
        public_key: Vec<PathBuf>,
    },
    /// Decide one request, or a stream of JSON lines with --requests.
    Check {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        times: Times,
        /// A file of JSON lines (`-` for standard input): [subject, action, resource] or
        /// {"subject", "action", "resource", "context"}.
        #[arg(long, conflicts_with_all = ["subject", "action", "resource", "token"])]
        requests: Option<String>,
        /// Check a token instead of a subject: a compact JWS (`-` reads it from standard
        /// input, out of the process list), verified against the model's issuers; then give
        /// ACTION RESOURCE only. E.g. `check --token - read doc:roadmap < token.jwt`.
        #[arg(long, value_name = "JWT")]
        token: Option<String>,
        /// SUBJECT (ACTION with --token).
        #[arg(required_unless_present = "requests")]
        subject: Option<String>,
        /// ACTION (RESOURCE with --token).
        #[arg(required_unless_present = "requests")]
        action: Option<String>,
        #[arg(required_unless_present_any = ["requests", "token"])]
        resource: Option<String>,
    },
    /// Print the evaluator's status (epoch, watermark, confirmed_at, stale, counts) after loading
    /// the source, as JSON.
    Status {
        #[command(flatten)]
        source: Source,
    },
    /// List the resources a subject may do an action on.
    ListResources {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        times: Times,
        #[arg(long = "type")]
        type_filter: Option<String>,
        subject: String,
        action: String,
    },
    /// List the members who may do an action on a resource.
    ListSubjects {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        times: Times,
        resource: String,
        action: String,
    },
    /// Sign the delta from OLD to NEW.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long)]
        base_epoch: u64,
        #[arg(long)]
        epoch: u64,
        #[command(flatten)]
        sign: Signing,
    },
    /// Print the generated benchmark workload's model JSON (the same for every host's benchmark).
    Workload {
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        #[arg(long, default_value_t = 500)]
        groups: usize,
        #[arg(long, default_value_t = 20_000)]
        assignments: usize,
        #[arg(long, default_value_t = 5_000)]
        big_group: usize,
        /// Documents per project (20 workspaces of 10 projects each).
        #[arg(long, default_value_t = 50)]
        docs_per_project: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// The origin's publisher: publish a model's changes to edges (revocations acknowledged by
    /// every edge before it returns, grants in the background), follow a file (--watch) or
    /// changes on standard input (--stdin), or report the journal (--status). Exit code 3: a
    /// revocation some edge did not acknowledge.
    Publish(Box<publish::PublishArgs>),
    /// Run policy assertion files (JSON or YAML). Exit code 1: an assertion failed.
    Test(testing::TestArgs),
    /// Every (subject, action, resource) whose answer flips from OLD to NEW. Exit code 2:
    /// something is revoked.
    Impact(impact::ImpactArgs),
    /// Decide recorded decisions again against another model. Exit code 2: a decision flips.
    Replay(replay::ReplayArgs),
    /// Sign a watermark message (a heartbeat, or a revocation with --delta).
    Watermark {
        #[arg(long)]
        tenant: String,
        /// At most the latest epoch issued (with --state), and never above 2^52.
        #[arg(long)]
        watermark: u64,
        /// The publisher's journal folder (as `publish --state`): refuse a watermark above the
        /// latest epoch it issued.
        #[arg(long, value_name = "DIR", alias = "journal")]
        state: Option<PathBuf>,
        /// A signed delta to carry (its epoch must be the watermark).
        #[arg(long)]
        delta: Option<PathBuf>,
        #[command(flatten)]
        sign: Signing,
    },
}

/// What every signing command takes: the origin's key, the output file, the time of issue.
#[derive(Args)]
struct Signing {
    #[arg(long)]
    secret_key: PathBuf,
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Unix milliseconds (default: now); at most 1 s ahead of this host's clock.
    #[arg(long)]
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
    #[arg(long)]
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
    #[arg(long, required_unless_present = "model")]
    snapshot: Option<PathBuf>,
    /// Trusted origin public key file (repeat for rotation).
    #[arg(long, required_unless_present = "model")]
    public_key: Vec<PathBuf>,
    #[arg(long)]
    delta: Vec<PathBuf>,
    #[arg(long)]
    watermark: Vec<PathBuf>,
    /// Evaluate a model JSON unsigned (preview mode) instead of a snapshot.
    #[arg(long, conflicts_with = "snapshot")]
    model: Option<PathBuf>,
}

/// The longest request line read; a longer one is an `invalid_request` decision.
const MAX_LINE: usize = 1 << 20;

struct Fail(String);

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
    fs::read(path).map_err(|e| Fail(format!("cannot read `{}`: {e}", path.display())))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Fail> {
    fs::write(path, bytes).map_err(|e| Fail(format!("cannot write `{}`: {e}", path.display())))
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
    SecretKey::from_base64(&read_text(path)?)
        .map_err(|e| Fail(format!("{}: {}", path.display(), Fail::from(e).0)))
}

fn public_key(path: &Path) -> Result<PublicKey, Fail> {
    PublicKey::from_base64(&read_text(path)?)
        .map_err(|e| Fail(format!("{}: {}", path.display(), Fail::from(e).0)))
}

fn print_json(v: &impl serde::Serialize) -> Result<(), Fail> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Fail(e.to_string()))?;
    println!("{text}");
    Ok(())
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

fn check_batch(ev: &Evaluator, source: &str, times: Times) -> Result<(), Fail> {
    let clock = times.clock();
    let default = times.context();
    let input: Box<dyn BufRead> = if source == "-" {
        Box::new(io::BufReader::with_capacity(1 << 16, io::stdin().lock()))
    } else {
        let f = fs::File::open(source).map_err(|e| Fail(format!("cannot read `{source}`: {e}")))?;
        Box::new(io::BufReader::with_capacity(1 << 16, f))
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut line = Vec::new();
    let mut reader = input;
    let write_err = |e: &dyn std::fmt::Display| Fail(format!("cannot write the decisions: {e}"));
    let read_err = |e: io::Error| Fail(format!("cannot read the requests: {e}"));
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
        serde_json::to_writer(&mut out, &ev.explain(&decision)).map_err(|e| write_err(&e))?;
        out.write_all(b"\n").map_err(|e| write_err(&e))?;
    }
    out.flush()
        .map_err(|e| Fail(format!("cannot write the decisions: {e}")))
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
        Command::Check {
            source,
            times,
            requests: _,
            token: Some(token),
            subject,
            action,
            resource,
        } => check_token(&source, &times, &token, [subject, action, resource]),
        Command::Check {
            source,
            times,
            requests,
            token: None,
            subject,
            action,
            resource,
        } => check(&source, times, requests, subject, action, resource),
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
            println!("{}", edge_authz::workload::generate(&spec));
            Ok(())
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
        // Handled in main (their own exit codes).
        Command::Publish(_) | Command::Test(_) | Command::Impact(_) | Command::Replay(_) => {
            Err(Fail("runs from main".into()))
        }
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

/// `check`: one request, or every line of `--requests`.
fn check(
    source: &Source,
    times: Times,
    requests: Option<String>,
    subject: Option<String>,
    action: Option<String>,
    resource: Option<String>,
) -> Result<(), Fail> {
    let ev = evaluator(source, times.clock())?;
    if let Some(src) = requests {
        return check_batch(&ev, &src, times);
    }
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
    println!("{text}");
    Ok(())
}

/// `check --token`: one request by a token's subject, its signature verified natively.
fn check_token(
    source: &Source,
    times: &Times,
    token: &str,
    args: [Option<String>; 3],
) -> Result<(), Fail> {
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
    let ev = evaluator(source, times.clock())?;
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
    println!("{text}");
    Ok(())
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
        &json!({"tenant": after.tenant, "base_epoch": base_epoch, "epoch": epoch, "revokes": d.revokes, "bytes": d.bytes.len(), "counts": d.ops.counts()}),
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Command::Publish(args) = cli.command {
        return match publish::run(*args) {
            Ok(publish::Ended::Done) => ExitCode::SUCCESS,
            Ok(publish::Ended::Unacknowledged) => ExitCode::from(3),
            Err(Fail(msg)) => {
                eprintln!("error: {msg}");
                ExitCode::from(1)
            }
        };
    }
    let result = match cli.command {
        Command::Test(args) => testing::run(args),
        Command::Impact(args) => impact::run(args),
        Command::Replay(args) => replay::run(args),
        command => run(Cli { command }).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(Fail(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}

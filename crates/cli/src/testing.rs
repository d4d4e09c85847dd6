//! `edge-authz test FILE...`: policy assertion files (JSON or YAML) run against a preview of a
//! model. A file names its model and lists its tests: checks (by subject or by token) and
//! listings with what they should answer, and steps of changes that edit the model for the tests
//! after them. Every failing assertion is reported with its file and line (docs/cli.md, "test").

mod report;
mod yaml;

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use edge_authz::{Evaluator, Model, Request};
use edge_authz_protocol::{read_context, Context};
use serde_json::{Map, Value};

use crate::publish::changes::{self, Change};
use crate::{times, Fail};
use report::{Failure, FileReport, Outcome};
use yaml::{Node, V};

#[derive(Args)]
pub struct TestArgs {
    /// Assertion files: JSON (`.json`) or YAML (`.yaml`, `.yml`).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print the report as JSON (`{files: [{file, passed, failed, failures}], passed, failed}`)
    /// instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the report as JUnit XML to FILE (one test suite per file, one test case per
    /// assertion).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

/// Runs every file; exit code 1 when an assertion fails. A file that cannot be read, does not
/// parse, or names a model that does not compile is an error before anything runs.
pub fn run(args: TestArgs) -> Result<ExitCode, Fail> {
    let suites = args
        .files
        .iter()
        .map(|p| load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let reports: Vec<FileReport> = suites.into_iter().map(run_suite).collect();
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&reports)).map_err(|e| {
            Fail(format!(
                "cannot write `{}`: {e} [unwritable]",
                path.display()
            ))
        })?;
    }
    if args.json {
        crate::print_json(&report::json(&reports))?;
    } else {
        crate::emit_bytes(report::text(&reports).as_bytes())?;
    }
    let failed = reports.iter().any(|r| r.failed() > 0);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A file read and checked, ready to run.
struct Suite {
    file: String,
    model: Model,
    ev: Evaluator,
    /// The file's default time (`now` at the top), else this host's clock.
    now: Option<u64>,
    items: Vec<Item>,
}

struct Item {
    line: usize,
    name: Option<String>,
    what: What,
}

/// When an item decides and with what: its `now` (the clock and the time of the decision) and
/// its `context` (as a request's, read at run time: a malformed one is `invalid_request`).
struct At {
    now: Option<u64>,
    context: Option<Value>,
}

enum What {
    Check {
        /// `[subject, action, resource]`, or `[action, resource]` with `token`.
        args: Vec<String>,
        token: Option<String>,
        at: At,
        expect: Map<String, Value>,
    },
    ListResources {
        subject: String,
        action: String,
        type_filter: Option<String>,
        at: At,
        expect: Listed,
    },
    ListSubjects {
        resource: String,
        action: String,
        at: At,
        expect: Listed,
    },
    Changes {
        change: Change,
        expect_error: Option<String>,
    },
}

/// What a listing should answer: these ids (in any order), or a refusal with this code.
enum Listed {
    Ids(Vec<String>),
    Error(String),
}

/// An input error at `file:line`, with its code.
fn bad(file: &str, line: usize, msg: impl Display) -> Fail {
    Fail(format!("{file}:{line}: {msg} [invalid_assertion]"))
}

/// The keys of a mapping, refusing any but `allowed`.
fn entries<'n>(
    file: &str,
    node: &'n Node,
    what: &str,
    allowed: &[&str],
) -> Result<&'n [(String, usize, Node)], Fail> {
    let V::Map(entries) = &node.v else {
        return Err(bad(file, node.line, format!("{what} must be a mapping")));
    };
    if let Some((k, line, _)) = entries
        .iter()
        .find(|(k, _, _)| !allowed.contains(&k.as_str()))
    {
        return Err(bad(
            file,
            *line,
            format!(
                "unknown key `{k}` in {what} (expected one of: {})",
                allowed.join(", ")
            ),
        ));
    }
    Ok(entries)
}

fn get<'n>(entries: &'n [(String, usize, Node)], key: &str) -> Option<&'n Node> {
    entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v)
}

fn string(file: &str, node: &Node, what: &str) -> Result<String, Fail> {
    node.as_str()
        .map(str::to_string)
        .ok_or_else(|| bad(file, node.line, format!("`{what}` must be a string")))
}

fn strings(file: &str, node: &Node, what: &str, len: Option<usize>) -> Result<Vec<String>, Fail> {
    let shape = || match len {
        Some(n) => bad(
            file,
            node.line,
            format!("`{what}` must be a list of {n} strings"),
        ),
        None => bad(
            file,
            node.line,
            format!("`{what}` must be a list of strings"),
        ),
    };
    let V::Seq(items) = &node.v else {
        return Err(shape());
    };
    if len.is_some_and(|n| n != items.len()) {
        return Err(shape());
    }
    items
        .iter()
        .map(|i| i.as_str().map(str::to_string).ok_or_else(shape))
        .collect()
}

/// A time: Unix milliseconds or RFC 3339.
fn time(file: &str, node: &Node) -> Result<u64, Fail> {
    let text = match &node.v {
        V::Scalar(Value::String(s)) => s.clone(),
        V::Scalar(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    times::parse_ms(&text).map_err(|e| bad(file, node.line, format!("`now`: {e}")))
}

fn load(path: &Path) -> Result<Suite, Fail> {
    let file = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let is_json = match ext.as_str() {
        "json" => true,
        "yaml" | "yml" => false,
        _ => {
            return Err(Fail(format!(
                "{file}: an assertion file ends in .json, .yaml or .yml [unsupported_file]"
            )))
        }
    };
    let text = crate::read_text(path).map_err(|Fail(m)| Fail(format!("{m} [unreadable]")))?;
    if is_json {
        // JSON's own reader first: it refuses what YAML allows but JSON does not.
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            return Err(Fail(format!(
                "{file}:{}: malformed JSON: {e} [malformed_json]",
                e.line()
            )));
        }
    }
    let root = yaml::parse(&text).map_err(|e| {
        let (kind, code) = if is_json {
            ("JSON", "malformed_json")
        } else {
            ("YAML", "malformed_yaml")
        };
        Fail(format!(
            "{file}:{}: malformed {kind}: {} [{code}]",
            e.line, e.message
        ))
    })?;
    let top = entries(
        &file,
        &root,
        "an assertion file",
        &["description", "model", "now", "tests"],
    )?;
    if let Some(d) = get(top, "description") {
        string(&file, d, "description")?;
    }
    let model_node =
        get(top, "model").ok_or_else(|| bad(&file, root.line, "the file names no `model`"))?;
    let model = load_model(&file, path, model_node)?;
    let compiled = model.compile().map_err(|e| {
        let line = match model_node.v {
            V::Map(_) => model_node.line_of(&e.at),
            _ => model_node.line,
        };
        Fail(format!("{file}:{line}: model: {}", Fail::from(e).0))
    })?;
    for w in &compiled.warnings {
        eprintln!("warning: {file}: model: {w}");
    }
    let ev = Evaluator::preview(&compiled.state)
        .map_err(|e| Fail(format!("{file}: model: {}", Fail::from(e).0)))?;
    let now = get(top, "now").map(|n| time(&file, n)).transpose()?;
    let tests =
        get(top, "tests").ok_or_else(|| bad(&file, root.line, "the file has no `tests`"))?;
    let V::Seq(list) = &tests.v else {
        return Err(bad(&file, tests.line, "`tests` must be a list"));
    };
    let items = list
        .iter()
        .map(|n| item(&file, n))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Suite {
        file,
        model,
        ev,
        now,
        items,
    })
}

/// The model: inline, or the path of a model JSON relative to the assertion file.
fn load_model(file: &str, path: &Path, node: &Node) -> Result<Model, Fail> {
    match &node.v {
        V::Map(_) => Model::from_value(node.to_json()).map_err(|e| {
            let line = node.line_of(&e.at);
            Fail(format!("{file}:{line}: model: {}", Fail::from(e).0))
        }),
        V::Scalar(Value::String(rel)) => {
            let at = path.parent().unwrap_or(Path::new("")).join(rel);
            let text = crate::read_text(&at).map_err(|Fail(m)| {
                Fail(format!("{file}:{}: model: {m} [unreadable]", node.line))
            })?;
            Model::from_json(&text).map_err(|e| {
                Fail(format!(
                    "{file}:{}: model `{}`: {}",
                    node.line,
                    at.display(),
                    Fail::from(e).0
                ))
            })
        }
        _ => Err(bad(
            file,
            node.line,
            "`model` must be a model (a mapping) or the path of a model JSON",
        )),
    }
}

const KINDS: [&str; 6] = [
    "check",
    "allow",
    "deny",
    "list_resources",
    "list_subjects",
    "changes",
];

fn item(file: &str, node: &Node) -> Result<Item, Fail> {
    let line = node.line;
    let V::Map(all) = &node.v else {
        return Err(bad(file, line, "a test must be a mapping"));
    };
    let kinds: Vec<&str> = all
        .iter()
        .map(|(k, _, _)| k.as_str())
        .filter(|k| KINDS.contains(k))
        .collect();
    let [kind] = kinds.as_slice() else {
        return Err(bad(
            file,
            line,
            format!(
                "a test has exactly one of: {} (found {})",
                KINDS.join(", "),
                if kinds.is_empty() {
                    "none".to_string()
                } else {
                    kinds.join(", ")
                }
            ),
        ));
    };
    let kind = *kind;
    let what = format!("a `{kind}` test");
    let allowed: &[&str] = match kind {
        "check" => &["name", "check", "token", "context", "now", "expect"],
        "allow" => &["name", "allow", "token", "context", "now", "expect"],
        "deny" => &[
            "name", "deny", "token", "context", "now", "reason", "expect",
        ],
        "list_resources" => &[
            "name",
            "list_resources",
            "type",
            "context",
            "now",
            "expect",
            "expect_error",
        ],
        "list_subjects" => &[
            "name",
            "list_subjects",
            "context",
            "now",
            "expect",
            "expect_error",
        ],
        _ => &["name", "changes", "expect_error"],
    };
    let e = entries(file, node, &what, allowed)?;
    let name = get(e, "name")
        .map(|n| string(file, n, "name"))
        .transpose()?;
    let at = || -> Result<At, Fail> {
        Ok(At {
            now: get(e, "now").map(|n| time(file, n)).transpose()?,
            context: get(e, "context").map(Node::to_json),
        })
    };
    let main = get(e, kind).ok_or_else(|| bad(file, line, "no test"))?;
    let expect_error = get(e, "expect_error")
        .map(|n| string(file, n, "expect_error"))
        .transpose()?;
    let what = match kind {
        "check" | "allow" | "deny" => {
            let token = get(e, "token")
                .map(|n| string(file, n, "token"))
                .transpose()?;
            let len = if token.is_some() { 2 } else { 3 };
            let shape = if token.is_some() {
                "[action, resource] (with `token`)"
            } else {
                "[subject, action, resource]"
            };
            let args = strings(file, main, kind, Some(len))
                .map_err(|_| bad(file, main.line, format!("`{kind}` must be {shape}")))?;
            let mut expect = match get(e, "expect") {
                Some(n) => match n.to_json() {
                    Value::Object(m) => m,
                    _ => return Err(bad(file, n.line, "a check's `expect` must be a mapping")),
                },
                None if kind == "check" => {
                    return Err(bad(
                        file,
                        line,
                        "a `check` needs `expect` (or write `allow` or `deny`)",
                    ))
                }
                None => Map::new(),
            };
            if kind != "check" {
                let allowed = Value::Bool(kind == "allow");
                if expect.get("allowed").is_some_and(|v| v != &allowed) {
                    return Err(bad(
                        file,
                        line,
                        format!("`{kind}` contradicts its `expect.allowed`"),
                    ));
                }
                expect.insert("allowed".into(), allowed);
            }
            if let Some(r) = get(e, "reason") {
                expect.insert("reason".into(), Value::String(string(file, r, "reason")?));
            }
            What::Check {
                args,
                token,
                at: at()?,
                expect,
            }
        }
        "list_resources" | "list_subjects" => {
            let pair = strings(file, main, kind, Some(2))?;
            let expect = match (get(e, "expect"), expect_error) {
                (Some(n), None) => Listed::Ids(strings(file, n, "expect", None)?),
                (None, Some(code)) => Listed::Error(code),
                _ => {
                    return Err(bad(
                        file,
                        line,
                        "a listing needs `expect` (a list of ids) or `expect_error`",
                    ))
                }
            };
            let [first, action] = <[String; 2]>::try_from(pair)
                .map_err(|_| bad(file, main.line, format!("`{kind}` must be 2 strings")))?;
            if kind == "list_resources" {
                What::ListResources {
                    subject: first,
                    action,
                    type_filter: get(e, "type")
                        .map(|n| string(file, n, "type"))
                        .transpose()?,
                    at: at()?,
                    expect,
                }
            } else {
                What::ListSubjects {
                    resource: first,
                    action,
                    at: at()?,
                    expect,
                }
            }
        }
        _ => {
            let text = main.to_json().to_string();
            let change = changes::parse(&text).map_err(|m| {
                bad(
                    file,
                    main.line,
                    format!("`changes` must be a list of operations (or a model): {m}"),
                )
            })?;
            What::Changes {
                change,
                expect_error,
            }
        }
    };
    Ok(Item { line, name, what })
}

/// A value as a person reads it: strings bare, the rest as JSON.
fn show(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// `expected` is met by `actual`: every key it names has that value (recursively for mappings;
/// a `null` is met by an absent key; lists compare item by item).
fn meets(expected: &Value, actual: Option<&Value>) -> bool {
    match (expected, actual) {
        (Value::Null, None | Some(Value::Null)) => true,
        (Value::Object(e), Some(Value::Object(a))) => e.iter().all(|(k, v)| meets(v, a.get(k))),
        (Value::Array(e), Some(Value::Array(a))) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| meets(e, Some(a)))
        }
        (Value::Number(e), Some(Value::Number(a))) => {
            e == a || (e.as_f64().is_some() && e.as_f64() == a.as_f64())
        }
        (e, Some(a)) => e == a,
        _ => false,
    }
}

fn describe(kind: &str, args: &[&str]) -> String {
    let mut s = kind.to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

fn run_suite(suite: Suite) -> FileReport {
    let Suite {
        file,
        mut model,
        mut ev,
        now,
        items,
    } = suite;
    let mut results = Vec::new();
    for item in &items {
        let outcome = |desc: String, failure: Option<Failure>| Outcome {
            line: item.line,
            name: item.name.clone(),
            desc,
            failure,
        };
        let clock = |at: &At| at.now.or(now).unwrap_or_else(crate::now_ms);
        match &item.what {
            What::Check {
                args,
                token,
                at,
                expect,
            } => {
                let clock = clock(at);
                ev.set_clock(Some(clock));
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                let desc = describe(
                    if token.is_some() {
                        "token check"
                    } else {
                        "check"
                    },
                    &refs,
                );
                let failure = match decide(&ev, args, token.as_deref(), at, clock) {
                    Ok(actual) => judge(expect, actual),
                    Err(message) => Some(Failure {
                        expected: Value::Object(expect.clone()),
                        actual: Value::Null,
                        message,
                    }),
                };
                results.push(outcome(desc, failure));
            }
            What::ListResources {
                subject,
                action,
                type_filter,
                at,
                expect,
            } => {
                let clock = clock(at);
                ev.set_clock(Some(clock));
                let got = context(at).map_err(|()| ev.reject_list()).and_then(|c| {
                    ev.list_resources(subject, action, type_filter.as_deref(), c.at(clock))
                });
                let mut desc = describe("list_resources", &[subject, action]);
                if let Some(t) = type_filter {
                    desc.push_str(&format!(" (type {t})"));
                }
                results.push(outcome(desc, judge_list(expect, got)));
            }
            What::ListSubjects {
                resource,
                action,
                at,
                expect,
            } => {
                let clock = clock(at);
                ev.set_clock(Some(clock));
                let got = context(at)
                    .map_err(|()| ev.reject_list())
                    .and_then(|c| ev.list_subjects(resource, action, c.at(clock)));
                let desc = describe("list_subjects", &[resource, action]);
                results.push(outcome(desc, judge_list(expect, got)));
            }
            What::Changes {
                change,
                expect_error,
            } => {
                let applied = apply(&model, change);
                let fail = |message: String, actual: Value| {
                    Some(Failure {
                        expected: expect_error
                            .as_ref()
                            .map_or(Value::Null, |c| serde_json::json!({ "error": c })),
                        actual,
                        message,
                    })
                };
                match (applied, expect_error) {
                    (Ok((m, e)), None) => {
                        model = m;
                        ev = e;
                    }
                    (Ok(_), Some(code)) => results.push(outcome(
                        "changes".into(),
                        fail(
                            format!("expected the change to be refused ({code}), but it applies"),
                            serde_json::json!({ "applied": true }),
                        ),
                    )),
                    (Err(msg), Some(code)) if msg.contains(code.as_str()) => {
                        results.push(outcome("changes".into(), None));
                    }
                    (Err(msg), Some(code)) => results.push(outcome(
                        "changes".into(),
                        fail(
                            format!("expected the change to be refused ({code}), got: {msg}"),
                            serde_json::json!({ "error": msg }),
                        ),
                    )),
                    (Err(msg), None) => {
                        results.push(outcome(
                            "changes".into(),
                            fail(
                                format!("the change does not apply: {msg} (the tests after it were not run)"),
                                serde_json::json!({ "error": msg }),
                            ),
                        ));
                        break;
                    }
                }
            }
        }
    }
    FileReport { file, results }
}

fn context(at: &At) -> Result<Context, ()> {
    match &at.context {
        None => Ok(Context::default()),
        Some(v) => read_context(Some(v)),
    }
}

/// The decision's JSON, by subject or by token.
fn decide(
    ev: &Evaluator,
    args: &[String],
    token: Option<&str>,
    at: &At,
    clock: u64,
) -> Result<Value, String> {
    let ctx = context(at);
    let view = match (token, args) {
        (None, [s, a, r]) => {
            let d = match &ctx {
                Ok(c) => ev.check(Request::new(s, a, r), c.at(clock)),
                Err(()) => ev.reject_request(),
            };
            serde_json::to_value(ev.explain(&d))
        }
        (Some(token), [a, r]) => {
            let d = match &ctx {
                Ok(c) => {
                    let mut verify = |v: &edge_authz::token::Verify<'_>| {
                        Some(edge_authz_protocol::jws::verify(v))
                    };
                    match ev.check_token(token, a, r, c.at(clock), &mut verify) {
                        edge_authz::TokenAnswer::Decided(d) => d,
                        edge_authz::TokenAnswer::Verify { .. } => {
                            return Err("the token's signature was not verified".into())
                        }
                    }
                }
                Err(()) => edge_authz::TokenDecision {
                    decision: ev.reject_request(),
                    subject: None,
                    fault: None,
                },
            };
            serde_json::to_value(ev.explain_token(&d))
        }
        _ => return Err("malformed request".into()),
    };
    view.map_err(|e| e.to_string())
}

/// `None` when the decision meets `expect`; else what differs.
fn judge(expect: &Map<String, Value>, actual: Value) -> Option<Failure> {
    let mut differ = Vec::new();
    diff("", expect, actual.as_object(), &mut differ);
    if differ.is_empty() {
        return None;
    }
    let mut message = differ.join("; ");
    if !expect.contains_key("reason") {
        message.push_str(&format!(" ({})", show(actual.get("reason"))));
    }
    Some(Failure {
        expected: Value::Object(expect.clone()),
        actual,
        message,
    })
}

/// What differs between `expect` and `actual`, key by key (`grant.path`).
fn diff(
    prefix: &str,
    expect: &Map<String, Value>,
    actual: Option<&Map<String, Value>>,
    out: &mut Vec<String>,
) {
    for (k, v) in expect {
        let got = actual.and_then(|a| a.get(k));
        if meets(v, got) {
            continue;
        }
        let key = format!("{prefix}{k}");
        match (v, got) {
            (Value::Object(e), Some(Value::Object(a))) => diff(&format!("{key}."), e, Some(a), out),
            _ => out.push(format!(
                "expected {key} {}, got {}",
                show(Some(v)),
                show(got)
            )),
        }
    }
}

fn judge_list(expect: &Listed, got: Result<Vec<String>, edge_authz::Error>) -> Option<Failure> {
    let actual = match &got {
        Ok(ids) => Value::from(ids.clone()),
        Err(e) => serde_json::json!({ "error": e.code() }),
    };
    let expected = match expect {
        Listed::Ids(ids) => Value::from(ids.clone()),
        Listed::Error(code) => serde_json::json!({ "error": code }),
    };
    let message = match (expect, &got) {
        (Listed::Ids(want), Ok(ids)) => {
            let mut want = want.clone();
            want.sort();
            want.dedup();
            let mut ids = ids.clone();
            ids.sort();
            ids.dedup();
            if want == ids {
                return None;
            }
            let missing: Vec<&str> = want
                .iter()
                .filter(|w| !ids.contains(w))
                .map(String::as_str)
                .collect();
            let extra: Vec<&str> = ids
                .iter()
                .filter(|i| !want.contains(i))
                .map(String::as_str)
                .collect();
            let mut m = format!("expected [{}], got [{}]", want.join(", "), ids.join(", "));
            if !missing.is_empty() {
                m.push_str(&format!(" (missing {})", missing.join(", ")));
            }
            if !extra.is_empty() {
                m.push_str(&format!(" (unexpected {})", extra.join(", ")));
            }
            m
        }
        (Listed::Ids(want), Err(e)) => format!(
            "expected [{}], got the error {} ({e})",
            want.join(", "),
            e.code()
        ),
        (Listed::Error(code), Err(e)) if e.code() == code => return None,
        (Listed::Error(code), Err(e)) => {
            format!(
                "expected the error {code}, got the error {} ({e})",
                e.code()
            )
        }
        (Listed::Error(code), Ok(ids)) => {
            format!("expected the error {code}, got [{}]", ids.join(", "))
        }
    };
    Some(Failure {
        expected,
        actual,
        message,
    })
}

/// The model after a change, compiled, and its preview.
fn apply(model: &Model, change: &Change) -> Result<(Model, Evaluator), String> {
    let next = match change {
        Change::Model(m) => (**m).clone(),
        Change::Ops(ops) => changes::apply(model, ops)?,
    };
    let compiled = next.compile().map_err(|e| Fail::from(e).0)?;
    let ev = Evaluator::preview(&compiled.state).map_err(|e| Fail::from(e).0)?;
    Ok((next, ev))
}

//! `edge-authz explain`: why a request is allowed (every grant path) or denied (the gate that
//! refused, the nearest misses), in words or as JSON.

use std::fmt::Write as _;

use clap::Args;
use edge_authz::{Evaluator, GrantView, Miss, MissKind, Reason, Request, Why};

use crate::{emit, evaluator, freshness_hint, print_json, times, Fail, Source, Times};

#[derive(Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    times: Times,
    /// Print the explanation as JSON: {decision, gate, grants, misses}.
    #[arg(long)]
    json: bool,
    /// The subject, e.g. `user:alice`.
    subject: String,
    /// The action, e.g. `read`.
    action: String,
    /// The resource, e.g. `doc:roadmap`.
    resource: String,
}

pub fn run(args: ExplainArgs) -> Result<(), Fail> {
    let clock = args.times.clock();
    let ev = evaluator(&args.source, clock)?;
    let ctx = args
        .times
        .context()
        .map_err(|()| Fail("--context is not a valid context [invalid_context]".into()))?;
    let req = Request::new(&args.subject, &args.action, &args.resource);
    let why = ev.why(req, ctx.at(clock));
    if args.json {
        return print_json(&why);
    }
    emit(&text(&ev, &why, &args, clock))
}

/// `a > b > c`
fn via(path: &[&str]) -> String {
    path.join(" > ")
}

fn grant_line(g: &GrantView<'_>) -> String {
    let mut line = format!("{} holds {} on {}", g.principal, g.role, g.resource);
    if g.path.len() > 1 {
        let _ = write!(line, ", through {}", via(&g.path));
    }
    if let Some(w) = g.when {
        let _ = write!(line, " (when `{w}` holds)");
    }
    line
}

fn miss_line(m: &Miss<'_>, args: &ExplainArgs) -> String {
    let who = m.principal.unwrap_or("?");
    let role = m.role.unwrap_or("?");
    let on = m.resource.unwrap_or("?");
    let through = if m.path.len() > 1 {
        format!(" ({})", via(&m.path))
    } else {
        String::new()
    };
    match m.kind {
        MissKind::Suspended if m.path.len() > 1 => format!(
            "{who} is suspended, and {} is in it ({})",
            args.subject,
            via(&m.path)
        ),
        MissKind::Suspended => format!("{who} is suspended"),
        MissKind::UnknownSubject => format!(
            "{} appears in no membership, assignment or suspension of this state",
            args.subject
        ),
        MissKind::RoleLacksAction => format!(
            "{who} holds {role} on {on}{through}, which lacks {} ({role}: {})",
            args.action,
            m.actions.join(", ")
        ),
        MissKind::Expired => format!(
            "{who} held {role} on {on}{through}, which has {}, until it expired at {}",
            args.action,
            m.expires_at.map_or("?".into(), times::rfc3339)
        ),
        MissKind::ConditionFailed => {
            let conds: Vec<String> = m.conditions.iter().map(|c| format!("`{c}`")).collect();
            let mut line = format!(
                "{who} holds {role} on {on}{through}, but condition {} failed",
                conds.join(", ")
            );
            if !m.missing.is_empty() {
                let attrs: Vec<String> = m.missing.iter().map(|a| format!("`{a}`")).collect();
                let _ = write!(line, ": attribute {} missing", attrs.join(", "));
            }
            line
        }
        MissKind::OtherResource => format!(
            "{who} holds {role}, which has {}, on {on}{through}: not {} nor above it",
            args.action, args.resource
        ),
        MissKind::NotMember => format!(
            "{who} holds {role} on {on}, which has {}; {} is not in {who}",
            args.action, args.subject
        ),
    }
}

/// Names of the state close to `name` (same type, or a small edit away), for a typo.
fn near<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<(usize, &str)> = candidates
        .map(|c| (distance(name, c), c))
        .filter(|(d, c)| *d <= 2 || (c.len() > 3 && name.contains(*c)) || c.contains(name))
        .collect();
    out.sort_unstable();
    out.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Levenshtein distance over chars.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let sub = prev + usize::from(ca != *cb);
            let (Some(left), Some(up)) = (row.get(j).copied(), row.get(j + 1).copied()) else {
                break;
            };
            prev = up;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = sub.min(left + 1).min(up + 1);
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

fn text(ev: &Evaluator, why: &Why<'_>, args: &ExplainArgs, clock: u64) -> String {
    let d = &why.decision;
    let verb = if d.allowed { "may" } else { "may not" };
    let mut out = format!(
        "{} {verb} {} {} ({}, gate {}",
        args.subject,
        args.action,
        args.resource,
        reason_name(d.reason),
        why.gate
    );
    if let Some(e) = d.epoch {
        let _ = write!(out, "; epoch {e}");
    }
    if let Some(t) = d.tier {
        let _ = write!(out, ", tier {}", crate::tier_name(t));
    }
    out.push_str(")\n");
    let ix = ev.index();
    match d.reason {
        Reason::Granted => {
            out.push_str("granted by:\n");
            for (k, g) in why.grants.iter().enumerate() {
                let mark = if k == 0 {
                    " (the decision's grant)"
                } else {
                    ""
                };
                let _ = writeln!(out, "  - {}{mark}", grant_line(g));
            }
        }
        Reason::UnknownAction => {
            let actions: Vec<&str> = ix
                .map(|ix| {
                    ix.content()
                        .actions
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect()
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "`{}` is not an action of this state; its actions: {}",
                args.action,
                actions.join(", ")
            );
        }
        Reason::UnknownResource => {
            let _ = write!(out, "`{}` is not a resource of this state", args.resource);
            let close = ix
                .map(|ix| near(&args.resource, ix.content().resources.names().iter()))
                .unwrap_or_default();
            if !close.is_empty() {
                let _ = write!(out, "; did you mean {}?", close.join(", "));
            }
            out.push('\n');
        }
        Reason::NoSnapshot
        | Reason::InvalidRequest
        | Reason::StaleSnapshot
        | Reason::Pending
        | Reason::FreshnessExceeded => {
            let decision = ev.check(
                Request::new(&args.subject, &args.action, &args.resource),
                clock,
            );
            if let Some(h) = freshness_hint(ev, &decision, clock) {
                let _ = writeln!(out, "{h}");
            } else if d.reason == Reason::InvalidRequest {
                out.push_str(
                    "a subject or resource is not a valid id (type:name), or the context is \
                     malformed\n",
                );
            }
        }
        _ => {
            if why.misses.is_empty() {
                out.push_str("nothing comes close: no principal of the subject holds the action anywhere, and no one holds it on this resource or above it\n");
            } else {
                out.push_str(if d.reason == Reason::Suspended {
                    "because:\n"
                } else {
                    "nearest misses:\n"
                });
                for m in &why.misses {
                    let _ = writeln!(out, "  - {}", miss_line(m, args));
                }
            }
            if let (Some(ix), true) = (
                ix,
                why.misses
                    .first()
                    .is_some_and(|m| m.kind == MissKind::UnknownSubject),
            ) {
                let close = near(&args.subject, ix.content().subjects.iter());
                if !close.is_empty() {
                    let _ = writeln!(out, "did you mean {}?", close.join(", "));
                }
            }
        }
    }
    out.trim_end().to_string()
}

fn reason_name(r: Reason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

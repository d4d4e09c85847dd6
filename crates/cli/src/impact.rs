//! `edge-authz impact OLD.json NEW.json`: every (subject, action, resource) whose answer flips
//! between two models, with the grant lost or gained (docs/cli.md, "impact"). Exit code 2 when
//! something is revoked, so that a policy pull request can be gated on it.
//!
//! Both models are evaluated as previews at one time (`--now`) and context (`--context`). For
//! every action and resource of either model, the members who may do it are listed before and
//! after; a member in one list and not the other is a candidate, and each candidate is decided on
//! both sides: allowed before and not after is a revocation (with the old decision's grant),
//! the reverse a grant (with the new decision's grant).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use edge_authz::{AssignmentKey, At, Evaluator, GrantView, Request, State};
use edge_authz_protocol::{read_context, Context};
use serde::Serialize;

use crate::{load_model, now_ms, print_json, Fail};

#[derive(Args)]
#[command(after_help = "Examples:
  edge-authz impact main.json model.json                 # text, by subject; exit 2 on a revocation
  edge-authz impact main.json model.json --group-by grant --now 2026-12-01T09:00:00Z
  edge-authz impact main.json model.json --json --context '{\"ip\": \"10.1.2.3\"}'")]
pub struct ImpactArgs {
    /// The model in force (the base branch's, what the edges hold).
    old: PathBuf,
    /// The proposed model.
    new: PathBuf,
    /// Print the report as JSON: {tenant, now, revoked, granted, counts, notes}.
    #[arg(long)]
    json: bool,
    /// The time of the decisions (assignment expiry, time conditions), as Unix milliseconds or
    /// RFC 3339, e.g. `--now 2026-12-01T09:00:00Z`. Default: this host's clock.
    #[arg(long, value_name = "TIME", value_parser = crate::times::parse_ms)]
    now: Option<u64>,
    /// The request attributes conditions test, as a JSON object, e.g.
    /// '{"ip": "10.1.2.3", "mfa_age_s": 120}'; both models are asked with them. Default: none,
    /// so only conditions that need no attribute can hold.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    /// How the text report groups the flips: by subject, or by the grant lost or gained.
    #[arg(long, value_enum, default_value_t = GroupBy::Subject)]
    group_by: GroupBy,
    /// Compare every action on every resource of either model, not only where the models
    /// differ (slower; the same answer).
    #[arg(long)]
    exhaustive: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GroupBy {
    Subject,
    Grant,
}

/// The grant of the allowing side, by name.
#[derive(Serialize, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
struct Grant {
    principal: String,
    role: String,
    resource: String,
    /// The group path from the subject to the principal.
    path: Vec<String>,
    /// The assignment's condition, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    when: Option<String>,
    /// The assignment's expiry, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

/// One decision that flips.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Flip {
    subject: String,
    action: String,
    resource: String,
    /// For a revocation, the old decision's grant; for a grant, the new decision's.
    grant: Grant,
    /// The denying side's reason: the new decision's for a revocation (`no_grant`, `suspended`,
    /// `unknown_resource`, ...), the old decision's for a grant.
    reason: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    revoked: usize,
    granted: usize,
    /// Members with at least one flip.
    subjects: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    tenant: String,
    now: u64,
    revoked: Vec<Flip>,
    granted: Vec<Flip>,
    counts: Counts,
    /// Changes that impact does not decide: `identity_changed` (issuers or sessions: token
    /// checks), `freshness_changed` (a bound, or an action's tier).
    notes: Vec<&'static str>,
}

pub fn run(args: ImpactArgs) -> Result<ExitCode, Fail> {
    let context = context(args.context.as_deref())?;
    let (before, _) = load(&args.old)?;
    let (after, _) = load(&args.new)?;
    if before.tenant != after.tenant {
        return Err(Fail(format!(
            "`{}` is tenant `{}` and `{}` is tenant `{}`: impact compares two models of one \
             tenant [tenant_mismatch]",
            args.old.display(),
            before.tenant,
            args.new.display(),
            after.tenant
        )));
    }
    let now = args.now.unwrap_or_else(now_ms);
    let at = context.at(now);
    let evs = [Evaluator::preview(&before)?, Evaluator::preview(&after)?];
    let states = [&before, &after];
    let (revoked, granted) = flips(&evs, &states, at, args.exhaustive)?;
    let subjects: BTreeSet<&str> = revoked
        .iter()
        .chain(&granted)
        .map(|f| f.subject.as_str())
        .collect();
    let report = Report {
        tenant: after.tenant.clone(),
        now,
        counts: Counts {
            revoked: revoked.len(),
            granted: granted.len(),
            subjects: subjects.len(),
        },
        revoked,
        granted,
        notes: notes(&before, &after),
    };
    if args.json {
        print_json(&report)?;
    } else {
        crate::emit_bytes(text(&report, args.group_by).as_bytes())?;
    }
    Ok(if report.revoked.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// A model compiled, every failure with a code (a file that cannot be read has none of its own).
fn load(path: &Path) -> Result<(State, Vec<String>), Fail> {
    load_model(path).map_err(|Fail(m)| {
        if m.ends_with(']') {
            Fail(m)
        } else {
            Fail(format!("{m} [io_error]"))
        }
    })
}

/// The `--context`: attributes only (the time is `--now`).
fn context(text: Option<&str>) -> Result<Context, Fail> {
    let Some(text) = text else {
        return Ok(Context::default());
    };
    let bad = |why: &str| Fail(format!("--context {why} [invalid_context]"));
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(&format!("is not JSON: {e}")))?;
    let c = read_context(Some(&v)).map_err(|()| {
        bad("is not a context (docs/decisions.md, \"Context\"): an object of attributes")
    })?;
    if c.now.is_some() || c.at_least_epoch.is_some() {
        return Err(bad(
            "names `now` or `at_least_epoch`: give the time with --now (previews have no epoch)",
        ));
    }
    Ok(c)
}

/// The members who may do `action` on `resource` in one model (none when it lacks either).
fn listed(
    ev: &Evaluator,
    state: &State,
    resource: &str,
    action: &str,
    at: At<'_>,
) -> Result<BTreeSet<String>, Fail> {
    if !state.actions.contains_key(action) || !state.resources.contains_key(resource) {
        return Ok(BTreeSet::new());
    }
    Ok(ev
        .list_subjects(resource, action, at)?
        .into_iter()
        .collect())
}

/// The resources on which `subject` may do `action` in one model (none without the action).
fn listed_for(
    ev: &Evaluator,
    state: &State,
    subject: &str,
    action: &str,
    at: At<'_>,
) -> Result<BTreeSet<String>, Fail> {
    if !state.actions.contains_key(action) {
        return Ok(BTreeSet::new());
    }
    Ok(ev
        .list_resources(subject, action, None, at)?
        .into_iter()
        .collect())
}

/// The groups' direct members and the resources' children of one model.
struct Shape<'a> {
    members: BTreeMap<&'a str, Vec<&'a str>>,
    children: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> Shape<'a> {
    fn of(state: &'a State) -> Shape<'a> {
        let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (m, g) in &state.memberships {
            members.entry(g.as_str()).or_default().push(m.as_str());
        }
        let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (r, p) in &state.resources {
            if let Some(p) = p {
                children.entry(p.as_str()).or_default().push(r.as_str());
            }
        }
        Shape { members, children }
    }

    /// Everything reachable from `from` along `edges`, `from` included.
    fn reach(edges: &BTreeMap<&str, Vec<&'a str>>, from: &str, out: &mut BTreeSet<String>) {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(x) = todo.pop() {
            if let Some(next) = edges.get(x.as_str()) {
                todo.extend(
                    next.iter()
                        .filter(|n| !seen.contains(**n))
                        .map(|n| n.to_string()),
                );
            }
            seen.insert(x);
        }
        out.extend(seen);
    }

    /// The members (not groups) at or below the subject `p`.
    fn below(&self, p: &str, out: &mut BTreeSet<String>) {
        let mut all = BTreeSet::new();
        Self::reach(&self.members, p, &mut all);
        out.extend(
            all.into_iter()
                .filter(|s| edge_authz::id_type(s) != "group"),
        );
    }

    /// The resource `r` and everything under it.
    fn subtree(&self, r: &str, out: &mut BTreeSet<String>) {
        Self::reach(&self.children, r, out);
    }
}

/// Where decisions may differ: the members, actions and resources a difference between the
/// models can touch (`None`: any).
#[derive(Default)]
struct Reach {
    subjects: Option<BTreeSet<String>>,
    actions: BTreeSet<String>,
    resources: Option<BTreeSet<String>>,
}

/// The places the two models differ, each with its reach (as the admin page's what-if finds
/// the reach of each staged change). A decision depends on the subject's groups and their
/// suspensions, the assignments to them on the resource and its ancestors, their roles, expiry
/// and conditions, and the action's requirements: whatever differs among those is covered here.
fn reaches(before: &State, after: &State) -> Vec<Reach> {
    let shapes = [Shape::of(before), Shape::of(after)];
    let below = |p: &str, out: &mut BTreeSet<String>| shapes.iter().for_each(|s| s.below(p, out));
    let subtree =
        |r: &str, out: &mut BTreeSet<String>| shapes.iter().for_each(|s| s.subtree(r, out));
    let all_actions: BTreeSet<String> = before
        .actions
        .keys()
        .chain(after.actions.keys())
        .cloned()
        .collect();
    let role = |name: &str| -> BTreeSet<String> {
        [before, after]
            .iter()
            .filter_map(|s| s.roles.get(name))
            .flatten()
            .cloned()
            .collect()
    };
    let mut out = Vec::new();

    // Memberships and suspensions: the members below them, everywhere.
    let mut subjects = BTreeSet::new();
    for (m, _) in before.memberships.symmetric_difference(&after.memberships) {
        below(m, &mut subjects);
    }
    for x in before.suspended.symmetric_difference(&after.suspended) {
        below(x, &mut subjects);
    }
    if !subjects.is_empty() {
        out.push(Reach {
            subjects: Some(subjects),
            actions: all_actions.clone(),
            resources: None,
        });
    }

    // Assignments added, removed, or with another expiry or condition.
    let keys: BTreeSet<&AssignmentKey> = before
        .assignments
        .keys()
        .chain(after.assignments.keys())
        .collect();
    let held =
        |s: &State, k: &AssignmentKey| (s.assignments.get(k).copied(), s.when.get(k).cloned());
    let reach_of = |k: &AssignmentKey, actions: BTreeSet<String>, into: &mut Reach| {
        below(
            &k.principal,
            into.subjects.get_or_insert_with(BTreeSet::new),
        );
        subtree(
            &k.resource,
            into.resources.get_or_insert_with(BTreeSet::new),
        );
        into.actions.extend(actions);
    };
    for &k in &keys {
        if held(before, k) != held(after, k) {
            let mut r = Reach::default();
            reach_of(k, role(&k.role), &mut r);
            out.push(r);
        }
    }

    // Roles that gained or lost actions: their assignments, for those actions.
    let roles: BTreeSet<&String> = before.roles.keys().chain(after.roles.keys()).collect();
    for name in roles {
        let (b, f) = (before.roles.get(name), after.roles.get(name));
        let empty = BTreeSet::new();
        let changed: BTreeSet<String> = b
            .unwrap_or(&empty)
            .symmetric_difference(f.unwrap_or(&empty))
            .cloned()
            .collect();
        if changed.is_empty() {
            continue;
        }
        let mut r = Reach::default();
        for &k in keys.iter().filter(|k| &k.role == name) {
            reach_of(k, changed.clone(), &mut r);
        }
        if r.subjects.is_some() {
            out.push(r);
        }
    }

    // Conditions or requirements changed: every assignment a condition can touch.
    if before.conditions != after.conditions || before.requires != after.requires {
        let required: BTreeSet<&String> = before
            .requires
            .keys()
            .chain(after.requires.keys())
            .collect();
        let mut r = Reach::default();
        for &k in &keys {
            let actions = role(&k.role);
            let conditional = before.when.contains_key(k)
                || after.when.contains_key(k)
                || actions.iter().any(|a| required.contains(a));
            if conditional {
                reach_of(k, actions, &mut r);
            }
        }
        if r.subjects.is_some() {
            out.push(r);
        }
    }

    // Resources added, removed or moved: everyone, on their subtrees.
    let mut resources = BTreeSet::new();
    let ids: BTreeSet<&String> = before
        .resources
        .keys()
        .chain(after.resources.keys())
        .collect();
    for id in ids {
        if before.resources.get(id) != after.resources.get(id) {
            subtree(id, &mut resources);
        }
    }
    if !resources.is_empty() {
        out.push(Reach {
            subjects: None,
            actions: all_actions,
            resources: Some(resources),
        });
    }
    out
}

/// The revocations and the grants, each sorted by subject, resource, action: the candidates
/// of every reach (of everything when `exhaustive`) decided on both sides.
fn flips(
    [old, new]: &[Evaluator; 2],
    [before, after]: &[&State; 2],
    at: At<'_>,
    exhaustive: bool,
) -> Result<(Vec<Flip>, Vec<Flip>), Fail> {
    let reaches = if exhaustive {
        vec![Reach {
            subjects: None,
            actions: BTreeSet::new(),
            resources: None,
        }]
    } else {
        reaches(before, after)
    };
    let all_actions: BTreeSet<String> = before
        .actions
        .keys()
        .chain(after.actions.keys())
        .cloned()
        .collect();
    let all_resources: BTreeSet<String> = before
        .resources
        .keys()
        .chain(after.resources.keys())
        .cloned()
        .collect();
    // (subject, resource, action): the order of the report.
    let mut candidates: BTreeSet<(String, String, String)> = BTreeSet::new();
    for reach in &reaches {
        let actions = if exhaustive {
            &all_actions
        } else {
            &reach.actions
        };
        // By subject when there are fewer subjects than resources to list.
        let by_subject = match (&reach.subjects, &reach.resources) {
            (Some(ss), Some(rs)) => ss.len() < rs.len(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if let (true, Some(ss)) = (by_subject, &reach.subjects) {
            for s in ss {
                for a in actions {
                    let b = listed_for(old, before, s, a, at)?;
                    let f = listed_for(new, after, s, a, at)?;
                    for r in b.symmetric_difference(&f) {
                        if reach.resources.as_ref().is_none_or(|rs| rs.contains(r)) {
                            candidates.insert((s.clone(), r.clone(), a.clone()));
                        }
                    }
                }
            }
        } else {
            for r in reach.resources.as_ref().unwrap_or(&all_resources) {
                for a in actions {
                    let b = listed(old, before, r, a, at)?;
                    let f = listed(new, after, r, a, at)?;
                    for s in b.symmetric_difference(&f) {
                        if reach.subjects.as_ref().is_none_or(|ss| ss.contains(s)) {
                            candidates.insert((s.clone(), r.clone(), a.clone()));
                        }
                    }
                }
            }
        }
    }
    let mut revoked = Vec::new();
    let mut granted = Vec::new();
    for (s, r, a) in candidates {
        let req = Request::new(&s, &a, &r);
        let (db, da) = (old.check(req, at), new.check(req, at));
        // The allowing side's evaluator, state and decision, and the denying side's decision.
        let (list, (ev, st, allowed), denied) = match (db.allowed, da.allowed) {
            (true, false) => (&mut revoked, (old, *before, db), da),
            (false, true) => (&mut granted, (new, *after, da), db),
            _ => continue,
        };
        let Some(g) = ev.explain(&allowed).grant else {
            continue;
        };
        list.push(Flip {
            grant: grant(&g, st),
            subject: s,
            action: a,
            resource: r,
            reason: denied.reason.as_str(),
        });
    }
    Ok((revoked, granted))
}

fn grant(g: &GrantView<'_>, state: &State) -> Grant {
    let key = AssignmentKey {
        resource: g.resource.to_string(),
        principal: g.principal.to_string(),
        role: g.role.to_string(),
    };
    Grant {
        principal: g.principal.to_string(),
        role: g.role.to_string(),
        resource: g.resource.to_string(),
        path: g.path.iter().map(|p| p.to_string()).collect(),
        when: g.when.map(str::to_string),
        expires_at: state.assignments.get(&key).copied().flatten(),
    }
}

/// What changed that the decisions compared here do not show.
fn notes(before: &State, after: &State) -> Vec<&'static str> {
    let mut notes = Vec::new();
    if before.identity != after.identity {
        notes.push("identity_changed");
    }
    if before.freshness != after.freshness
        || before
            .actions
            .iter()
            .any(|(a, t)| after.actions.get(a).is_some_and(|u| u != t))
    {
        notes.push("freshness_changed");
    }
    notes
}

/// "group:eng viewer on workspace:eng via user:bob > group:eng when office until ...".
fn describe(g: &Grant) -> String {
    let mut s = format!("{} {} on {}", g.principal, g.role, g.resource);
    if g.path.len() > 1 {
        let _ = write!(s, " via {}", g.path.join(" > "));
    }
    if let Some(w) = &g.when {
        let _ = write!(s, " when {w}");
    }
    if let Some(t) = g.expires_at {
        let _ = write!(s, " until {}", crate::times::rfc3339(t));
    }
    s
}

fn line(out: &mut String, revoked: bool, f: &Flip) {
    let _ = if revoked {
        writeln!(
            out,
            "  REVOKED {} {} {} (was: {}; now: {})",
            f.subject,
            f.action,
            f.resource,
            describe(&f.grant),
            f.reason
        )
    } else {
        writeln!(
            out,
            "  GRANTED {} {} {} (now: {}; was: {})",
            f.subject,
            f.action,
            f.resource,
            describe(&f.grant),
            f.reason
        )
    };
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The readable report: a summary line, then the flips grouped.
fn text(report: &Report, by: GroupBy) -> String {
    let mut out = String::new();
    let c = &report.counts;
    let _ = writeln!(
        out,
        "impact on tenant {} at {}: {} revoked, {} granted ({})",
        report.tenant,
        crate::times::rfc3339(report.now),
        c.revoked,
        c.granted,
        plural(c.subjects, "subject", "subjects")
    );
    if c.revoked == 0 && c.granted == 0 {
        let _ = writeln!(out, "\nno decision flips");
    }
    let flips = report
        .revoked
        .iter()
        .map(|f| (true, f))
        .chain(report.granted.iter().map(|f| (false, f)));
    match by {
        GroupBy::Subject => {
            let mut groups: BTreeMap<&str, Vec<(bool, &Flip)>> = BTreeMap::new();
            for (rev, f) in flips {
                groups.entry(&f.subject).or_default().push((rev, f));
            }
            for (subject, fs) in groups {
                let lost = fs.iter().filter(|(rev, _)| *rev).count();
                let _ = writeln!(
                    out,
                    "\n{subject}: {} revoked, {} granted",
                    lost,
                    fs.len().saturating_sub(lost)
                );
                for (rev, f) in fs {
                    line(&mut out, rev, f);
                }
            }
        }
        GroupBy::Grant => {
            let mut groups: BTreeMap<(bool, [&str; 3]), Vec<&Flip>> = BTreeMap::new();
            for (rev, f) in flips {
                let g = &f.grant;
                // Revocations first.
                let key = (
                    !rev,
                    [g.principal.as_str(), g.role.as_str(), g.resource.as_str()],
                );
                groups.entry(key).or_default().push(f);
            }
            for ((granted, [p, role, r]), fs) in groups {
                let what = if granted { "gained" } else { "lost" };
                let _ = writeln!(
                    out,
                    "\n{what}: {p} {role} on {r} ({})",
                    plural(fs.len(), "decision", "decisions")
                );
                for f in fs {
                    line(&mut out, !granted, f);
                }
            }
        }
    }
    for n in &report.notes {
        let _ = writeln!(out, "\nnote: {}", note_text(n));
    }
    out
}

fn note_text(code: &str) -> &'static str {
    match code {
        "identity_changed" => {
            "issuers or sessions changed [identity_changed]: token checks may be refused or \
             admitted differently, which impact does not decide (diff's `revokes` flags it)"
        }
        _ => {
            "a freshness bound or an action's tier changed [freshness_changed]: edges fail \
             closed sooner or later, which previews do not show"
        }
    }
}

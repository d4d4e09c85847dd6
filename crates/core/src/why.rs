//! Why a decision is what it is (the command line's `explain`): every grant path of an allow;
//! for a denial, the gate that refused and the nearest misses, the assignments that came
//! closest to granting and what each lacked. It walks the state's tables, so it is for people
//! asking, never for the hot path (no host's package calls it).

use serde::Serialize;

use crate::condition::{Context, Truth};
use crate::decision::{DecisionView, GrantRef, GrantView, Reason};
use crate::evaluator::{At, Evaluator, Request};
use crate::index::Index;

/// At most this many misses of each distant kind (another resource, another principal).
const DISTANT: usize = 5;

/// The explanation of one request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Why<'a> {
    /// The decision, as `check` gives it.
    pub decision: DecisionView<'a>,
    /// The gate that decided it (docs/decisions.md, "Gates"): 1 to 12.
    pub gate: u8,
    /// For an allow: every assignment that grants it, the decision's own first.
    pub grants: Vec<GrantView<'a>>,
    /// For a denial: the assignments that came closest, nearest first.
    pub misses: Vec<Miss<'a>>,
}

/// What kept an assignment (or the subject) from granting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissKind {
    /// The subject, or a group it is in, is suspended.
    Suspended,
    /// The subject appears nowhere in the state.
    UnknownSubject,
    /// A principal of the subject holds a role on the resource or above it that lacks the action.
    RoleLacksAction,
    /// The assignment would grant, but it expired.
    Expired,
    /// The assignment would grant, but its conditions or the action's do not hold.
    ConditionFailed,
    /// A principal of the subject holds the action on a resource that is not this one or above it.
    OtherResource,
    /// The action is held on the resource or above it by a group the subject is not in.
    NotMember,
}

/// One near miss. `path` runs from the subject to the principal (empty for `not_member`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Miss<'a> {
    pub kind: MissKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<&'a str>,
    /// For `role_lacks_action`: the role's actions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// For `condition_failed`: the conditions that are not true, and the attributes they lacked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<&'a str>,
}

impl<'a> Miss<'a> {
    fn new(kind: MissKind) -> Miss<'a> {
        Miss {
            kind,
            principal: None,
            role: None,
            resource: None,
            path: Vec::new(),
            actions: Vec::new(),
            expires_at: None,
            conditions: Vec::new(),
            missing: Vec::new(),
        }
    }
}

/// The gate of a reason (docs/decisions.md, "Gates").
fn gate_of(reason: Reason) -> u8 {
    match reason {
        Reason::NoSnapshot => 1,
        Reason::InvalidRequest => 2,
        Reason::StaleSnapshot => 3,
        Reason::Pending => 4,
        Reason::FreshnessExceeded => 5,
        Reason::TokenInvalid | Reason::TokenExpired | Reason::SessionRevoked => 6,
        Reason::UnknownAction => 7,
        Reason::Suspended => 8,
        Reason::UnknownResource => 9,
        Reason::Granted => 10,
        Reason::StepUpRequired | Reason::ConditionFailed => 11,
        Reason::NoGrant => 12,
    }
}

impl Evaluator {
    /// Decides `req` at `at` as [`Evaluator::check`] does, and says why.
    pub fn why<'e>(&'e self, req: Request<'_>, at: At<'_>) -> Why<'e> {
        let d = self.check(req, at);
        let mut why = Why {
            decision: self.explain(&d),
            gate: gate_of(d.reason),
            grants: Vec::new(),
            misses: Vec::new(),
        };
        if why.gate < 8 {
            return why;
        }
        let Some(ix) = self.index() else {
            return why;
        };
        let (Some(a), Some(r)) = (ix.action(req.action), ix.resource(req.resource)) else {
            return why;
        };
        let Some(s) = ix.subject(req.subject) else {
            why.misses.push(Miss::new(MissKind::UnknownSubject));
            why.misses
                .extend(Walk::new(ix, None, a, r, &at).not_members());
            return why;
        };
        let walk = Walk::new(ix, Some(s), a, r, &at);
        if d.reason == Reason::Suspended {
            why.misses.extend(walk.suspensions());
            return why;
        }
        let (grants, misses) = walk.candidates();
        if d.allowed {
            // The decision's grant first, then the others in table order.
            let first = d.grant.map(|g| g.assignment);
            let mut grants = grants;
            grants.sort_by_key(|g| Some(*g) != first);
            why.grants = grants
                .iter()
                .filter_map(|g| {
                    ix.explain(&GrantRef {
                        assignment: *g,
                        subject: s,
                    })
                })
                .collect();
        } else {
            why.misses = misses;
            why.misses.extend(walk.elsewhere());
            why.misses.extend(walk.not_members());
        }
        why
    }
}

/// One explanation's walk over the tables.
struct Walk<'a, 'c> {
    ix: &'a Index,
    s: Option<u32>,
    a: u32,
    /// The resource and its ancestors, nearest first.
    chain: Vec<u32>,
    now: u64,
    context: &'c Context,
}

impl<'a, 'c> Walk<'a, 'c> {
    fn new(ix: &'a Index, s: Option<u32>, a: u32, r: u32, at: &At<'c>) -> Walk<'a, 'c> {
        let resources = &ix.content().resources;
        let mut chain = vec![r];
        let mut y = r;
        while let Some(p) = resources.parent(y as usize) {
            if chain.contains(&p) || chain.len() > resources.len() {
                break;
            }
            chain.push(p);
            y = p;
        }
        Walk {
            ix,
            s,
            a,
            chain,
            now: at.now,
            context: at.context,
        }
    }

    fn role_has(&self, role: u32) -> bool {
        self.ix
            .content()
            .roles
            .get(role as usize)
            .is_some_and(|(_, actions)| actions.binary_search(&self.a).is_ok())
    }

    /// The path from the subject to `p` when the subject is `p` or in it.
    fn path_to(&self, p: u32, assignment: u32) -> Option<Vec<&'a str>> {
        let s = self.s?;
        let g = GrantRef {
            assignment,
            subject: s,
        };
        let mut ids = Vec::new();
        let (principal, _, _) = self.ix.grant_ids(&g, &mut ids)?;
        (principal == p).then(|| ids.iter().map(|i| self.ix.subject_name(*i)).collect())
    }

    fn named(&self, i: u32, kind: MissKind) -> Option<Miss<'a>> {
        let c = self.ix.content();
        let (res, p, role, exp) = *c.assignments.get(i as usize)?;
        let mut m = Miss::new(kind);
        m.principal = Some(self.ix.subject_name(p));
        m.role = Some(self.ix.role_name(role));
        m.resource = Some(self.ix.resource_name(res));
        m.expires_at = exp;
        if let Some(path) = self.path_to(p, i) {
            m.path = path;
        }
        Some(m)
    }

    /// The conditions of assignment `i` for this action that are not true, and the attributes
    /// they lacked (as condition ids and a mask).
    fn failing(&self, i: u32) -> (Vec<usize>, u64) {
        let ix = self.ix;
        let mut ids: Vec<usize> = Vec::new();
        let requires = ix.requires_mask(self.a);
        for k in 0..64 {
            if requires >> k & 1 == 1 {
                ids.push(k);
            }
        }
        if let Some(w) = ix.when_of_slot(i as usize) {
            ids.push(w);
        }
        let mut missing = 0;
        let mut failed = Vec::new();
        for c in ids {
            let mut m = 0;
            if ix.conditions().eval(c, self.context, self.now, &mut m) != Truth::True {
                failed.push(c);
                missing |= m;
            }
        }
        (failed, missing)
    }

    /// Every assignment on the resource or above it whose principal the subject is or is in:
    /// those that grant (slots), and those that miss, nearest resource first.
    fn candidates(&self) -> (Vec<u32>, Vec<Miss<'a>>) {
        let c = self.ix.content();
        let mut grants = Vec::new();
        let mut misses = Vec::new();
        for y in &self.chain {
            for (i, (res, p, role, exp)) in c.assignments.iter().enumerate() {
                let Ok(i) = u32::try_from(i) else { break };
                if res != y || self.path_to(*p, i).is_none() {
                    continue;
                }
                if !self.role_has(*role) {
                    if let Some(mut m) = self.named(i, MissKind::RoleLacksAction) {
                        m.actions = c
                            .roles
                            .get(*role as usize)
                            .map(|(_, acts)| {
                                acts.iter()
                                    .filter_map(|x| c.actions.get(*x as usize))
                                    .map(|(n, _)| n.as_str())
                                    .collect()
                            })
                            .unwrap_or_default();
                        misses.push(m);
                    }
                    continue;
                }
                if exp.is_some_and(|e| self.now >= e) {
                    misses.extend(self.named(i, MissKind::Expired));
                    continue;
                }
                let (failed, missing) = self.failing(i);
                if failed.is_empty() {
                    grants.push(i);
                } else if let Some(mut m) = self.named(i, MissKind::ConditionFailed) {
                    let conditions = self.ix.conditions();
                    m.conditions = failed
                        .iter()
                        .filter_map(|k| conditions.get(*k))
                        .map(|k| k.name.as_str())
                        .collect();
                    m.missing = conditions.missing_attrs(missing);
                    misses.push(m);
                }
            }
        }
        (grants, misses)
    }

    /// Assignments of the subject's principals with the action, on resources that are neither
    /// this one nor above it (a few).
    fn elsewhere(&self) -> Vec<Miss<'a>> {
        let c = self.ix.content();
        c.assignments
            .iter()
            .enumerate()
            .filter(|(_, (res, _, role, _))| !self.chain.contains(res) && self.role_has(*role))
            .filter_map(|(i, (_, p, _, _))| {
                let i = u32::try_from(i).ok()?;
                self.path_to(*p, i)?;
                self.named(i, MissKind::OtherResource)
            })
            .take(DISTANT)
            .collect()
    }

    /// Assignments with the action on the resource or above it, held by groups the subject is
    /// not in (a few): which group the subject could ask to join.
    fn not_members(&self) -> Vec<Miss<'a>> {
        let c = self.ix.content();
        let mut out = Vec::new();
        for y in &self.chain {
            for (i, (res, p, role, exp)) in c.assignments.iter().enumerate() {
                if out.len() >= DISTANT {
                    return out;
                }
                let Ok(i) = u32::try_from(i) else { break };
                // Only a group can take the subject in.
                let group = c.memberships.iter().any(|(_, g)| g == p);
                if res != y
                    || !group
                    || !self.role_has(*role)
                    || exp.is_some_and(|e| self.now >= e)
                    || self.path_to(*p, i).is_some()
                {
                    continue;
                }
                out.extend(self.named(i, MissKind::NotMember));
            }
        }
        out
    }

    /// The suspended among the subject and its groups.
    fn suspensions(&self) -> Vec<Miss<'a>> {
        let Some(s) = self.s else {
            return Vec::new();
        };
        let c = self.ix.content();
        c.suspended
            .iter()
            .filter_map(|p| {
                let path = if *p == s {
                    vec![self.ix.subject_name(s)]
                } else {
                    self.ix.path_between(s, *p)?
                };
                let mut m = Miss::new(MissKind::Suspended);
                m.principal = Some(self.ix.subject_name(*p));
                m.path = path;
                Some(m)
            })
            .collect()
    }
}

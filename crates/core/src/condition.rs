//! Conditions on grants (docs/model.md, "Conditions"): named tests of a request's context and
//! time, compiled once from the model and evaluated with three-valued logic that fails closed.
//!
//! A condition is a comparison of one context attribute with a literal, a weekly time window at
//! a fixed UTC offset, or `all` / `any` / `not` of other conditions by name. An attribute that is
//! absent, or of another type than the comparison needs, makes the comparison *undetermined*;
//! only `True` grants. Compiling checks every name, type, CIDR and time, refuses cycles and
//! nesting deeper than [`MAX_DEPTH`], and orders the conditions so that evaluation needs no
//! recursion guard.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::error::{ModelError, ModelErrorKind as K};

/// At most this many conditions in a model.
pub const MAX_CONDITIONS: usize = 64;
/// At most this many levels of `all` / `any` / `not` above a comparison or window.
pub const MAX_DEPTH: usize = 8;
/// At most this many keys in a context (besides the reserved `now` and `at_least_epoch`).
pub const MAX_CONTEXT_KEYS: usize = 32;
/// A context key is at most this many bytes.
pub const MAX_KEY_BYTES: usize = 64;
/// A context string (alone or in a list) is at most this many bytes.
pub const MAX_STRING_BYTES: usize = 256;
/// A context list holds at most this many strings.
pub const MAX_LIST_ITEMS: usize = 32;
/// At most this many values in an `in`, `not_in` or `in_cidr` literal.
pub const MAX_LITERAL_ITEMS: usize = 256;

/// Context keys that are not attributes: the request's times (docs/decisions.md, "Requests").
pub const RESERVED_KEYS: [&str; 2] = ["now", "at_least_epoch"];

/// The three truth values of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    /// An attribute it tests is absent or of another type.
    Unknown,
}

impl Truth {
    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }

    fn of(b: bool) -> Truth {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }
}

/// One context value: a string, a finite number, a boolean, or a list of strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Str(String),
    Num(f64),
    Bool(bool),
    List(Vec<String>),
}

/// A request's attributes, checked against the limits above.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// Sorted by key (at most [`MAX_CONTEXT_KEYS`]: a vector is the smallest map).
    attrs: Vec<(String, Attr)>,
}

/// Why a context was refused: the key (empty for the context as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextError {
    pub key: String,
    pub message: String,
}

impl Context {
    /// No attributes.
    pub const EMPTY: Context = Context { attrs: Vec::new() };

    /// A context of `entries`; a key twice, a reserved or malformed key, or a value outside the
    /// limits is refused.
    pub fn new(entries: impl IntoIterator<Item = (String, Attr)>) -> Result<Context, ContextError> {
        let mut attrs: Vec<(String, Attr)> = Vec::new();
        for (key, value) in entries {
            let fail = |message: String| ContextError {
                key: crate::state::shorten(&key),
                message,
            };
            if RESERVED_KEYS.contains(&key.as_str()) {
                return Err(fail("a reserved key is not an attribute".into()));
            }
            if !is_attr_name(&key) {
                return Err(fail(format!(
                    "a key is [a-z][a-z0-9_]* of at most {MAX_KEY_BYTES} bytes"
                )));
            }
            check_value(&value).map_err(fail)?;
            match attrs.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
                Ok(_) => return Err(fail("the key is given twice".into())),
                Err(at) => attrs.insert(at, (key, value)),
            }
            if attrs.len() > MAX_CONTEXT_KEYS {
                return Err(ContextError {
                    key: String::new(),
                    message: format!("more than {MAX_CONTEXT_KEYS} keys"),
                });
            }
        }
        Ok(Context { attrs })
    }

    pub fn get(&self, key: &str) -> Option<&Attr> {
        self.attrs
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .and_then(|i| self.attrs.get(i))
            .map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// This context without the keys `dropped`, then with `set` (each already checked against
    /// the limits; a key of `set` replaces the same key here). For a token's mapped claims.
    pub fn overridden(&self, dropped: &[String], set: Vec<(String, Attr)>) -> Context {
        // The caller's attributes give way first: a mapped claim is never pushed out.
        let room = MAX_CONTEXT_KEYS.saturating_sub(set.len());
        let mut attrs: Vec<(String, Attr)> = self
            .attrs
            .iter()
            .filter(|(k, _)| !dropped.contains(k) && !set.iter().any(|(s, _)| s == k))
            .take(room)
            .cloned()
            .collect();
        for (k, v) in set {
            let at = attrs
                .binary_search_by(|(x, _)| x.as_str().cmp(&k))
                .unwrap_or_else(|i| i);
            attrs.insert(at, (k, v));
        }
        Context { attrs }
    }
}

fn check_value(v: &Attr) -> Result<(), String> {
    let string = |s: &str| {
        if s.len() > MAX_STRING_BYTES {
            Err(format!("a string is at most {MAX_STRING_BYTES} bytes"))
        } else {
            Ok(())
        }
    };
    match v {
        Attr::Str(s) => string(s),
        Attr::Num(n) if !n.is_finite() => Err("a number must be finite".into()),
        Attr::Num(_) | Attr::Bool(_) => Ok(()),
        Attr::List(items) if items.len() > MAX_LIST_ITEMS => {
            Err(format!("a list holds at most {MAX_LIST_ITEMS} strings"))
        }
        Attr::List(items) => items.iter().try_for_each(|s| string(s)),
    }
}

/// Whether `s` is an attribute name: `[a-z][a-z0-9_]*`, at most [`MAX_KEY_BYTES`] bytes.
pub fn is_attr_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() <= MAX_KEY_BYTES
        && b.first().is_some_and(u8::is_ascii_lowercase)
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

// ---------------------------------------------------------------------------------------------
// The model's form.

/// A condition as the model JSON writes it: an object, exactly one of a comparison (`attr`,
/// `op`, `value`), a time window (`time`), `all`, `any` or `not`, with `step_up` on any. Kept as
/// the JSON value itself (what snapshots carry and digests cover) and read by [`Conditions::compile`],
/// which names the field of each error.
pub type ConditionDef = serde_json::Value;

/// A definition's fields, read from its JSON.
struct Def<'a> {
    attr: Option<&'a str>,
    op: Option<&'a str>,
    value: Option<&'a serde_json::Value>,
    time: Option<&'a serde_json::Map<String, serde_json::Value>>,
    all: Option<Vec<&'a str>>,
    any: Option<Vec<&'a str>>,
    not: Option<&'a str>,
    step_up: bool,
}

fn wrong_type(at: String, what: &str) -> ModelError {
    ModelError::new(K::InvalidJson, at, format!("expected {what}"))
}

/// An object's fields, each one of `known` (else `unknown_field`, named).
fn fields<'a>(
    v: &'a serde_json::Value,
    at: &str,
    known: &[&str],
) -> Result<&'a serde_json::Map<String, serde_json::Value>, ModelError> {
    let map = v
        .as_object()
        .ok_or_else(|| wrong_type(at.to_string(), "an object"))?;
    if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ModelError::new(
            K::UnknownField,
            format!("{at}.{}", crate::state::shorten(k)),
            format!("unknown field, expected one of {}", known.join(", ")),
        ));
    }
    Ok(map)
}

fn text(v: Option<&serde_json::Value>, at: String) -> Result<Option<&str>, ModelError> {
    v.map(|v| v.as_str().ok_or_else(|| wrong_type(at, "a string")))
        .transpose()
}

fn texts(v: Option<&serde_json::Value>, at: String) -> Result<Option<Vec<&str>>, ModelError> {
    v.map(|v| {
        v.as_array()
            .and_then(|a| a.iter().map(serde_json::Value::as_str).collect())
            .ok_or_else(|| wrong_type(at, "a list of strings"))
    })
    .transpose()
}

impl<'a> Def<'a> {
    fn read(v: &'a serde_json::Value, at: &str) -> Result<Def<'a>, ModelError> {
        const KNOWN: [&str; 8] = [
            "attr", "op", "value", "time", "all", "any", "not", "step_up",
        ];
        let m = fields(v, at, &KNOWN)?;
        let field = |f: &str| format!("{at}.{f}");
        Ok(Def {
            attr: text(m.get("attr"), field("attr"))?,
            op: text(m.get("op"), field("op"))?,
            value: m.get("value"),
            time: m
                .get("time")
                .map(|t| {
                    fields(
                        t,
                        &field("time"),
                        &["days", "from", "to", "utc_offset_minutes"],
                    )
                })
                .transpose()?,
            all: texts(m.get("all"), field("all"))?,
            any: texts(m.get("any"), field("any"))?,
            not: text(m.get("not"), field("not"))?,
            step_up: match m.get("step_up") {
                None => false,
                Some(b) => b
                    .as_bool()
                    .ok_or_else(|| wrong_type(field("step_up"), "a boolean"))?,
            },
        })
    }
}

/// The names of the conditions a definition names in `all`, `any` and `not` (none for a
/// definition that does not read).
pub fn parts(def: &ConditionDef) -> Vec<&str> {
    let list = |k: &str| {
        def.get(k)
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
    };
    list("all")
        .chain(list("any"))
        .chain(def.get("not").and_then(serde_json::Value::as_str))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The compiled form.

/// A comparison's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    InCidr,
    Contains,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "in_cidr" => Op::InCidr,
            "contains" => Op::Contains,
            _ => return None,
        })
    }
}

/// A comparison's literal, of the type its operator takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Strs(BTreeSet<String>),
    Nums(Vec<f64>),
    Cidrs(Vec<Cidr>),
}

/// An IPv4 or IPv6 network: its address with the host bits cleared, and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: u128,
    prefix: u8,
    v6: bool,
}

impl Cidr {
    /// `a.b.c.d/n` (n ≤ 32) or an IPv6 address `/n` (n ≤ 128); host bits must be zero.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = s.split_once('/')?;
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = len.parse().ok()?;
        let (bits, v6) = address(addr.parse().ok()?);
        let width = if v6 { 128 } else { 32 };
        if u32::from(prefix) > width {
            return None;
        }
        let net = bits & mask(prefix, v6);
        (net == bits).then_some(Cidr { net, prefix, v6 })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (bits, v6) = address(ip);
        v6 == self.v6 && bits & mask(self.prefix, v6) == self.net
    }
}

fn address(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), false),
        // An IPv4-mapped IPv6 address is the IPv4 address it maps.
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (u128::from(u32::from(v4)), false),
            None => (u128::from(a), true),
        },
    }
}

fn mask(prefix: u8, v6: bool) -> u128 {
    let width: u32 = if v6 { 128 } else { 32 };
    let host = width - u32::from(prefix);
    let all = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    if host >= 128 {
        0
    } else {
        (all >> host) << host
    }
}

/// A weekly window, compiled: the days (bit 0 Monday) and minutes of the day at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    days: u8,
    from: u16,
    to: u16,
    offset: i32,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTES_A_DAY: i64 = 24 * 60;

impl Window {
    /// Whether the instant `now_ms` (Unix ms) falls in the window. A window from 22:00 to 02:00
    /// belongs to the day it opens: Friday's runs into Saturday's first two hours.
    fn contains(&self, now_ms: u64) -> bool {
        let minutes =
            i64::try_from(now_ms / 60_000).unwrap_or(i64::MAX / 2) + i64::from(self.offset);
        let day = minutes.div_euclid(MINUTES_A_DAY);
        let minute = minutes.rem_euclid(MINUTES_A_DAY);
        // 1970-01-01 was a Thursday (index 3 from Monday).
        let weekday = |d: i64| (d + 3).rem_euclid(7);
        let listed = |d: i64| self.days & (1 << weekday(d)) != 0;
        let (from, to) = (i64::from(self.from), i64::from(self.to));
        if from < to {
            listed(day) && (from..to).contains(&minute)
        } else {
            (listed(day) && minute >= from) || (listed(day - 1) && minute < to)
        }
    }
}

/// One compiled condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Compare {
        attr: String,
        op: Op,
        value: Literal,
    },
    Time(Window),
    /// Indexes of earlier conditions in [`Conditions`].
    All(Vec<usize>),
    Any(Vec<usize>),
    Not(usize),
}

/// A compiled condition: its name, its test and whether failing it asks for a step-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub name: String,
    pub test: Test,
    pub step_up: bool,
}

impl Condition {
    /// The attribute a comparison tests (`None` for other kinds).
    pub fn attr(&self) -> Option<&str> {
        match &self.test {
            Test::Compare { attr, .. } => Some(attr),
            _ => None,
        }
    }
}

/// A model's conditions, compiled, each at the position of its definition (its id); the
/// parts of `all`, `any` and `not` are ids too. Compiling refused cycles, so evaluating one
/// recurses at most [`MAX_DEPTH`] levels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions {
    list: Vec<Condition>,
    /// Bit `i`: condition `i` is a step-up.
    step_up: u64,
}

impl Conditions {
    /// Compiles a model's `conditions`, in document order (`(name, def)`), naming the entry of
    /// the first error: `conditions.NAME[.field]`.
    pub fn compile(defs: &[(String, ConditionDef)]) -> Result<Conditions, ModelError> {
        if defs.len() > MAX_CONDITIONS {
            return Err(ModelError::new(
                K::LimitExceeded,
                "conditions",
                format!("more than {MAX_CONDITIONS} conditions"),
            ));
        }
        // At most 64 names: looked up by scanning.
        let declared = |n: &str| defs.iter().position(|(d, _)| d == n);
        for (i, (name, _)) in defs.iter().enumerate() {
            let at = format!("conditions.{}", crate::state::shorten(name));
            if !is_attr_name(name) {
                return Err(ModelError::new(
                    K::MalformedId,
                    at,
                    "a condition's name is [a-z][a-z0-9_]* of at most 64 bytes",
                ));
            }
            if declared(name) != Some(i) {
                return Err(ModelError::new(K::DuplicateId, at, "declared twice"));
            }
        }
        let read: Vec<Def<'_>> = defs
            .iter()
            .map(|(name, def)| Def::read(def, &format!("conditions.{name}")))
            .collect::<Result<_, _>>()?;
        // Each definition's direct parts, by index.
        let mut parts: Vec<Vec<usize>> = Vec::with_capacity(defs.len());
        for ((name, _), def) in defs.iter().zip(&read) {
            parts.push(
                references(def)
                    .into_iter()
                    .map(|(field, r)| {
                        declared(&r).ok_or_else(|| {
                            ModelError::new(
                                K::UndeclaredCondition,
                                format!("conditions.{name}.{field}"),
                                format!(
                                    "`{}` is not a declared condition",
                                    crate::state::shorten(&r)
                                ),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            );
        }
        let order = topological(defs, &parts)?;
        // By definition index: how deep it nests (parts come first in `order`).
        let mut depth = vec![0usize; defs.len()];
        let mut tests: Vec<Option<Condition>> = vec![None; defs.len()];
        for i in order {
            let (Some((name, _)), Some(def), Some(own)) = (defs.get(i), read.get(i), parts.get(i))
            else {
                continue;
            };
            let at = format!("conditions.{name}");
            let d = own
                .iter()
                .map(|p| depth.get(*p).copied().unwrap_or(0) + 1)
                .max()
                .unwrap_or(0);
            if d > MAX_DEPTH {
                return Err(ModelError::new(
                    K::LimitExceeded,
                    at,
                    format!("nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            if let Some(slot) = depth.get_mut(i) {
                *slot = d;
            }
            let test = test_of(def, &at, own.clone())?;
            if let Some(slot) = tests.get_mut(i) {
                *slot = Some(Condition {
                    name: name.clone(),
                    test,
                    step_up: def.step_up,
                });
            }
        }
        let mut out = Conditions::default();
        for (i, c) in tests.into_iter().enumerate() {
            let c = c.ok_or_else(|| invalid("conditions", "a condition was not compiled"))?;
            if c.step_up {
                out.step_up |= 1 << i;
            }
            out.list.push(c);
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The index of the condition named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|c| c.name == name)
    }

    pub fn get(&self, i: usize) -> Option<&Condition> {
        self.list.get(i)
    }

    /// Evaluates condition `i` on `ctx` at `now_ms` (Unix ms, the request's `now`). Each
    /// comparison that was undetermined (its attribute absent or of another type) sets its bit
    /// in `missing`; [`Conditions::missing_attrs`] names their attributes.
    pub fn eval(&self, i: usize, ctx: &Context, now_ms: u64, missing: &mut u64) -> Truth {
        let Some(c) = self.list.get(i) else {
            return Truth::Unknown;
        };
        match &c.test {
            Test::Compare { attr, op, value } => {
                let t = compare(ctx.get(attr), *op, value);
                if t == Truth::Unknown {
                    *missing |= 1 << i;
                }
                t
            }
            Test::Time(w) => Truth::of(w.contains(now_ms)),
            Test::Not(p) => self.eval(*p, ctx, now_ms, missing).not(),
            // `all`: false if a part is; `any`: true if a part is; else unknown if a part is.
            Test::All(ps) => self.combine(ps, Truth::False, ctx, now_ms, missing),
            Test::Any(ps) => self.combine(ps, Truth::True, ctx, now_ms, missing),
        }
    }

    /// Every condition evaluated on `ctx` at `now_ms`: a mask of those that are true.
    pub fn true_mask(&self, ctx: &Context, now_ms: u64) -> u64 {
        let mut missing = 0;
        (0..self.list.len())
            .filter(|i| self.eval(*i, ctx, now_ms, &mut missing) == Truth::True)
            .fold(0, |m, i| m | 1 << i)
    }

    /// The names of the conditions whose bits `mask` sets, sorted.
    pub fn names(&self, mask: u64) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .list
            .iter()
            .enumerate()
            .filter(|(i, _)| mask >> i & 1 == 1)
            .map(|(_, c)| c.name.as_str())
            .collect();
        out.sort_unstable();
        out
    }

    /// The attributes of the comparisons whose bits `mask` sets, sorted, each once.
    pub fn missing_attrs(&self, mask: u64) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .list
            .iter()
            .enumerate()
            .filter(|(i, _)| mask >> i & 1 == 1)
            .filter_map(|(_, c)| match &c.test {
                Test::Compare { attr, .. } => Some(attr.as_str()),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl Conditions {
    /// The parts `ps` combined: `decisive` if one of them is, else unknown if one is, else the
    /// opposite of `decisive`. Every part is evaluated (none short-circuited), so that `missing`
    /// names every absent attribute.
    fn combine(
        &self,
        ps: &[usize],
        decisive: Truth,
        ctx: &Context,
        now_ms: u64,
        missing: &mut u64,
    ) -> Truth {
        let mut out = decisive.not();
        for p in ps {
            match self.eval(*p, ctx, now_ms, missing) {
                t if t == decisive => out = decisive,
                Truth::Unknown if out != decisive => out = Truth::Unknown,
                _ => {}
            }
        }
        out
    }
}

/// The condition names `def` refers to, with the field that names each.
fn references(def: &Def<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (field, list) in [("all", &def.all), ("any", &def.any)] {
        for (k, r) in list.iter().flatten().enumerate() {
            out.push((format!("{field}[{k}]"), (*r).to_string()));
        }
    }
    if let Some(r) = def.not {
        out.push(("not".into(), r.to_string()));
    }
    out
}

/// The definitions in an order where every condition comes after its parts; a cycle is refused,
/// listing it.
fn topological(
    defs: &[(String, ConditionDef)],
    parts: &[Vec<usize>],
) -> Result<Vec<usize>, ModelError> {
    let name = |i: usize| defs.get(i).map_or("", |(n, _)| n.as_str());
    let mut done = vec![false; defs.len()];
    let mut order = Vec::with_capacity(defs.len());
    for start in 0..defs.len() {
        if done.get(start).copied().unwrap_or(true) {
            continue;
        }
        // Depth-first without recursion: the path, each with the next part to visit.
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some((node, next)) = path.last().copied() {
            match parts.get(node).and_then(|ps| ps.get(next)).copied() {
                Some(p) => {
                    if let Some(last) = path.last_mut() {
                        last.1 += 1;
                    }
                    if let Some(from) = path.iter().position(|(n, _)| *n == p) {
                        let cycle: Vec<&str> = path
                            .iter()
                            .skip(from)
                            .map(|(n, _)| name(*n))
                            .chain([name(p)])
                            .collect();
                        return Err(ModelError::new(
                            K::ConditionCycle,
                            format!("conditions.{}", name(p)),
                            format!("conditions refer to each other: {}", cycle.join(" -> ")),
                        ));
                    }
                    if !done.get(p).copied().unwrap_or(true) {
                        path.push((p, 0));
                    }
                }
                None => {
                    if let Some(d) = done.get_mut(node) {
                        *d = true;
                    }
                    order.push(node);
                    path.pop();
                }
            }
        }
    }
    Ok(order)
}

fn invalid(at: impl Into<String>, message: impl Into<String>) -> ModelError {
    ModelError::new(K::InvalidValue, at, message)
}

/// The compiled test of one definition; `refs` are the places of the conditions it names.
fn test_of(def: &Def<'_>, at: &str, refs: Vec<usize>) -> Result<Test, ModelError> {
    let comparison = def.attr.is_some() || def.op.is_some() || def.value.is_some();
    let kinds = [
        comparison,
        def.time.is_some(),
        def.all.is_some(),
        def.any.is_some(),
        def.not.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(invalid(
            at,
            "a condition is exactly one of a comparison (attr, op, value), time, all, any or not",
        ));
    }
    if comparison {
        return compile_comparison(def, at);
    }
    if let Some(w) = def.time {
        return Ok(Test::Time(compile_window(w, &format!("{at}.time"))?));
    }
    if let Some(list) = &def.all {
        if list.is_empty() {
            return Err(invalid(format!("{at}.all"), "names at least one condition"));
        }
        return Ok(Test::All(refs));
    }
    if let Some(list) = &def.any {
        if list.is_empty() {
            return Err(invalid(format!("{at}.any"), "names at least one condition"));
        }
        return Ok(Test::Any(refs));
    }
    Ok(Test::Not(refs.first().copied().unwrap_or(0)))
}

fn compile_comparison(def: &Def<'_>, at: &str) -> Result<Test, ModelError> {
    let (Some(attr), Some(op), Some(value)) = (def.attr, def.op, def.value) else {
        return Err(invalid(at, "a comparison has attr, op and value"));
    };
    if !is_attr_name(attr) || RESERVED_KEYS.contains(&attr) {
        return Err(ModelError::new(
            K::MalformedId,
            format!("{at}.attr"),
            "an attribute is [a-z][a-z0-9_]* of at most 64 bytes, and not `now` or `at_least_epoch`",
        ));
    }
    let op = Op::parse(op).ok_or_else(|| {
        invalid(
            format!("{at}.op"),
            "one of ==, !=, <, <=, >, >=, in, not_in, in_cidr, contains",
        )
    })?;
    let at_value = format!("{at}.value");
    let wrong = |what: &str| invalid(at_value.clone(), format!("`{}` takes {what}", op_name(op)));
    let string = |v: &serde_json::Value| -> Option<String> {
        v.as_str()
            .filter(|s| s.len() <= MAX_STRING_BYTES)
            .map(str::to_owned)
    };
    let items = |v: &serde_json::Value| -> Option<Vec<serde_json::Value>> {
        v.as_array()
            .filter(|a| !a.is_empty() && a.len() <= MAX_LITERAL_ITEMS)
            .cloned()
    };
    let value = match op {
        Op::Eq | Op::Ne => match value {
            serde_json::Value::Bool(b) => Literal::Bool(*b),
            serde_json::Value::Number(n) => Literal::Num(
                n.as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| wrong("a string, a finite number or a boolean"))?,
            ),
            v => Literal::Str(string(v).ok_or_else(|| {
                wrong("a string (at most 256 bytes), a finite number or a boolean")
            })?),
        },
        Op::Lt | Op::Le | Op::Gt | Op::Ge => Literal::Num(
            value
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| wrong("a finite number"))?,
        ),
        Op::In | Op::NotIn => {
            let list = items(value)
                .ok_or_else(|| wrong("a list of 1 to 256 strings or of 1 to 256 numbers"))?;
            if list.iter().all(serde_json::Value::is_string) {
                let mut set = BTreeSet::new();
                for v in list.iter() {
                    set.insert(string(v).ok_or_else(|| wrong("strings of at most 256 bytes"))?);
                }
                Literal::Strs(set)
            } else {
                Literal::Nums(
                    list.iter()
                        .map(|v| v.as_f64().filter(|x| x.is_finite()))
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            wrong("a list of strings or a list of finite numbers, not both")
                        })?,
                )
            }
        }
        Op::InCidr => {
            let list = match value {
                serde_json::Value::String(_) => vec![value.clone()],
                v => items(v).ok_or_else(|| wrong("a CIDR or a list of 1 to 256 CIDRs"))?,
            };
            Literal::Cidrs(
                list.iter()
                    .enumerate()
                    .map(|(k, v)| {
                        v.as_str().and_then(Cidr::parse).ok_or_else(|| {
                            invalid(
                                format!("{at_value}[{k}]"),
                                "not a CIDR (an IPv4 or IPv6 address with no host bits set, `/`, a prefix length)",
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Op::Contains => {
            Literal::Str(string(value).ok_or_else(|| wrong("a string of at most 256 bytes"))?)
        }
    };
    Ok(Test::Compare {
        attr: attr.to_string(),
        op,
        value,
    })
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Eq => "==",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::In => "in",
        Op::NotIn => "not_in",
        Op::InCidr => "in_cidr",
        Op::Contains => "contains",
    }
}

/// `HH:MM` from 00:00 to 23:59, as minutes of the day.
fn minute_of(s: &str) -> Option<u16> {
    let &[h1, h2, b':', m1, m2] = s.as_bytes() else {
        return None;
    };
    let digit = |c: u8| c.is_ascii_digit().then(|| u16::from(c - b'0'));
    let (h, m) = (digit(h1)? * 10 + digit(h2)?, digit(m1)? * 10 + digit(m2)?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn compile_window(
    w: &serde_json::Map<String, serde_json::Value>,
    at: &str,
) -> Result<Window, ModelError> {
    let field = |f: &str| format!("{at}.{f}");
    let list = texts(w.get("days"), field("days"))?.unwrap_or_default();
    let mut days = 0u8;
    if list.is_empty() {
        return Err(invalid(field("days"), "names at least one day"));
    }
    for (k, d) in list.iter().enumerate() {
        let i = DAY_NAMES.iter().position(|n| n == d).ok_or_else(|| {
            invalid(
                format!("{at}.days[{k}]"),
                "one of mon, tue, wed, thu, fri, sat, sun",
            )
        })?;
        if days & (1 << i) != 0 {
            return Err(ModelError::new(
                K::DuplicateId,
                format!("{at}.days[{k}]"),
                "a day twice",
            ));
        }
        days |= 1 << i;
    }
    let time = |field: &str, v: &str| {
        minute_of(v).ok_or_else(|| {
            invalid(
                format!("{at}.{field}"),
                "a time is HH:MM, from 00:00 to 23:59",
            )
        })
    };
    let offset = match w.get("utc_offset_minutes") {
        None => 0,
        Some(v) => v
            .as_i64()
            .and_then(|o| i32::try_from(o).ok())
            .ok_or_else(|| wrong_type(field("utc_offset_minutes"), "a whole number"))?,
    };
    let (from, to) = match (
        text(w.get("from"), field("from"))?,
        text(w.get("to"), field("to"))?,
    ) {
        (None, None) => (0, 0),
        (Some(f), Some(t)) => {
            let (from, to) = (time("from", f)?, time("to", t)?);
            if from == to {
                return Err(invalid(
                    format!("{at}.to"),
                    "`to` equals `from`: leave both out for the whole day",
                ));
            }
            (from, to)
        }
        _ => return Err(invalid(at, "`from` and `to` go together")),
    };
    if !(-1080..=1080).contains(&offset) {
        return Err(invalid(
            format!("{at}.utc_offset_minutes"),
            "from -1080 to 1080 (UTC-18:00 to UTC+18:00)",
        ));
    }
    Ok(Window {
        days,
        from,
        to,
        offset,
    })
}

/// One comparison of a context value with its literal.
fn compare(attr: Option<&Attr>, op: Op, lit: &Literal) -> Truth {
    let Some(a) = attr else {
        return Truth::Unknown;
    };
    let t = match (op, a, lit) {
        (Op::Eq | Op::Ne, Attr::Str(x), Literal::Str(y)) => Some(x == y),
        (Op::Eq | Op::Ne, Attr::Num(x), Literal::Num(y)) => Some(x == y),
        (Op::Eq | Op::Ne, Attr::Bool(x), Literal::Bool(y)) => Some(x == y),
        (Op::Lt, Attr::Num(x), Literal::Num(y)) => Some(x < y),
        (Op::Le, Attr::Num(x), Literal::Num(y)) => Some(x <= y),
        (Op::Gt, Attr::Num(x), Literal::Num(y)) => Some(x > y),
        (Op::Ge, Attr::Num(x), Literal::Num(y)) => Some(x >= y),
        (Op::In | Op::NotIn, Attr::Str(x), Literal::Strs(ys)) => Some(ys.contains(x)),
        (Op::In | Op::NotIn, Attr::Num(x), Literal::Nums(ys)) => Some(ys.contains(x)),
        (Op::InCidr, Attr::Str(x), Literal::Cidrs(nets)) => x
            .parse::<IpAddr>()
            .ok()
            .map(|ip| nets.iter().any(|n| n.contains(ip))),
        (Op::Contains, Attr::List(xs), Literal::Str(y)) => Some(xs.contains(y)),
        _ => None,
    };
    match (t, op) {
        (None, _) => Truth::Unknown,
        (Some(b), Op::Ne | Op::NotIn) => Truth::of(!b),
        (Some(b), _) => Truth::of(b),
    }
}

// ---------------------------------------------------------------------------------------------
// Judging the grants of one request.

/// What the conditions made of a request's candidate grants (docs/decisions.md, "Conditions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A candidate held: its `when` and the action's `requires` are true.
    Granted,
    /// No candidate held, and for one of them every failing condition is a step-up.
    StepUpRequired,
    /// No candidate held, and none could by a step-up alone.
    ConditionFailed,
    /// There was no candidate.
    NoGrant,
}

/// Judges, one by one, the grants that would allow a request if conditions were ignored, and
/// remembers what failed. Each condition is evaluated at most once per request, and nothing is
/// allocated (a request's conditions are at most 64: one bit each).
pub struct Judge<'a> {
    conditions: &'a Conditions,
    ctx: &'a Context,
    now_ms: u64,
    /// The action's `requires`.
    requires: u64,
    /// Conditions evaluated so far, and those of them that were true.
    known: u64,
    true_: u64,
    /// The comparisons that were undetermined.
    missing: u64,
    /// Whether a candidate was offered, and the failing conditions of all candidates and of
    /// those a step-up alone would let through.
    offered: bool,
    failed: u64,
    failed_step_up: u64,
    step_up_possible: bool,
}

/// A judgement: the outcome, and for a refusal the failing top-level conditions and the
/// comparisons among their parts that lacked an attribute (masks of condition ids;
/// [`Conditions::names`] and [`Conditions::missing_attrs`] name them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub conditions: u64,
    pub missing: u64,
}

impl<'a> Judge<'a> {
    pub fn new(conditions: &'a Conditions, requires: u64, ctx: &'a Context, now_ms: u64) -> Self {
        Judge {
            conditions,
            ctx,
            now_ms,
            requires,
            known: 0,
            true_: 0,
            missing: 0,
            offered: false,
            failed: 0,
            failed_step_up: 0,
            step_up_possible: false,
        }
    }

    /// The conditions of `mask` that are not true, each evaluated once.
    fn failing(&mut self, mask: u64) -> u64 {
        let mut todo = mask & !self.known;
        while todo != 0 {
            let i = todo.trailing_zeros() as usize;
            todo &= todo - 1;
            let mut missing = 0;
            if self.conditions.eval(i, self.ctx, self.now_ms, &mut missing) == Truth::True {
                self.true_ |= 1 << i;
            } else {
                // Only a failing condition's missing attributes are worth naming.
                self.missing |= missing;
            }
            self.known |= 1 << i;
        }
        mask & !self.true_
    }

    /// Whether the action's `requires` all hold (with no candidate offered).
    pub fn requires_hold(&mut self) -> bool {
        self.failing(self.requires) == 0
    }

    /// Offers a candidate grant with its `when` (a condition id, if any): true when it holds.
    pub fn offer(&mut self, when: Option<usize>) -> bool {
        self.offered = true;
        let mask = self.requires | when.map_or(0, |w| 1 << w);
        let failed = self.failing(mask);
        if failed == 0 {
            return true;
        }
        self.failed |= failed;
        if failed & !self.conditions.step_up == 0 {
            self.step_up_possible = true;
            self.failed_step_up |= failed;
        }
        false
    }

    /// The refusal after every candidate was offered and none held.
    pub fn refusal(&self) -> Verdict {
        let (outcome, named) = match (self.offered, self.step_up_possible) {
            (false, _) => (Outcome::NoGrant, 0),
            (true, true) => (Outcome::StepUpRequired, self.failed_step_up),
            (true, false) => (Outcome::ConditionFailed, self.failed),
        };
        Verdict {
            outcome,
            conditions: named,
            missing: self.missing_under(named),
        }
    }

    /// The undetermined comparisons within the conditions of `named` (themselves or their parts).
    fn missing_under(&self, named: u64) -> u64 {
        let mut reach = 0u64;
        let mut todo = named;
        while todo != 0 {
            let i = todo.trailing_zeros() as usize;
            todo &= todo - 1;
            if reach >> i & 1 == 1 {
                continue;
            }
            reach |= 1 << i;
            if let Some(c) = self.conditions.get(i) {
                match &c.test {
                    Test::All(ps) | Test::Any(ps) => ps.iter().for_each(|p| todo |= 1 << p),
                    Test::Not(p) => todo |= 1 << p,
                    Test::Compare { .. } | Test::Time(_) => {}
                }
            }
        }
        self.missing & reach
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs(v: serde_json::Value) -> Vec<(String, ConditionDef)> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::from_value(v.clone()).unwrap()))
            .collect()
    }

    fn ctx(v: serde_json::Value) -> Context {
        Context::new(v.as_object().unwrap().iter().map(|(k, v)| {
            let a = match v {
                serde_json::Value::String(s) => Attr::Str(s.clone()),
                serde_json::Value::Bool(b) => Attr::Bool(*b),
                serde_json::Value::Number(n) => Attr::Num(n.as_f64().unwrap()),
                serde_json::Value::Array(a) => {
                    Attr::List(a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                }
                _ => panic!(),
            };
            (k.clone(), a)
        }))
        .unwrap()
    }

    fn contract_example() -> Conditions {
        Conditions::compile(&defs(json!({
            "mfa_recent": { "attr": "mfa_age_s", "op": "<=", "value": 900, "step_up": true },
            "office":     { "attr": "ip", "op": "in_cidr", "value": ["10.0.0.0/8", "2001:db8::/32"] },
            "low_risk":   { "attr": "risk_score", "op": "<", "value": 50 },
            "managed":    { "attr": "device", "op": "in", "value": ["managed", "compliant"] },
            "has_mfa":    { "attr": "amr", "op": "contains", "value": "mfa", "step_up": true },
            "workday":    { "time": { "days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00", "utc_offset_minutes": 60 } },
            "finance_ok": { "all": ["office", "low_risk"] },
            "unflagged":  { "not": "flagged" },
            "flagged":    { "attr": "flagged", "op": "==", "value": true }
        })))
        .unwrap()
    }

    fn eval(c: &Conditions, name: &str, x: &Context, now: u64) -> (Truth, Vec<String>) {
        let mut missing = 0;
        let t = c.eval(c.index(name).unwrap(), x, now, &mut missing);
        let attrs = c.missing_attrs(missing);
        (t, attrs.into_iter().map(str::to_owned).collect())
    }

    /// Judges `candidates` (each one's `when`) in order: the position of the first that holds,
    /// or the refusal.
    fn judge_all(
        c: &Conditions,
        candidates: &[Option<usize>],
        requires: u64,
        ctx: &Context,
        now_ms: u64,
    ) -> (Option<usize>, Verdict) {
        let mut j = Judge::new(c, requires, ctx, now_ms);
        for (k, w) in candidates.iter().enumerate() {
            if j.offer(*w) {
                let v = Verdict {
                    outcome: Outcome::Granted,
                    conditions: 0,
                    missing: 0,
                };
                return (Some(k), v);
            }
        }
        (None, j.refusal())
    }

    /// A judgement as (position granted, outcome, condition names, missing attributes).
    fn judged(
        c: &Conditions,
        candidates: &[Option<usize>],
        requires: &[usize],
        x: &Context,
        now: u64,
    ) -> (Option<usize>, Outcome, Vec<String>, Vec<String>) {
        let mask = requires.iter().fold(0, |m, i| m | 1 << i);
        let (k, v) = judge_all(c, candidates, mask, x, now);
        let own = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect();
        (
            k,
            v.outcome,
            own(c.names(v.conditions)),
            own(c.missing_attrs(v.missing)),
        )
    }

    // 2026-12-02 (a Wednesday) 12:00 UTC.
    const WED_NOON: u64 = 1_796_212_800_000;

    #[test]
    fn comparisons_of_every_operator() {
        let c = contract_example();
        let x = ctx(
            json!({"mfa_age_s": 300, "ip": "10.1.2.3", "risk_score": 70, "device": "managed", "amr": ["pwd", "mfa"], "flagged": false}),
        );
        for (name, want) in [
            ("mfa_recent", Truth::True),
            ("office", Truth::True),
            ("low_risk", Truth::False),
            ("managed", Truth::True),
            ("has_mfa", Truth::True),
            ("finance_ok", Truth::False),
            ("flagged", Truth::False),
            ("unflagged", Truth::True),
        ] {
            assert_eq!(eval(&c, name, &x, WED_NOON).0, want, "{name}");
        }
        let v6 = ctx(json!({"ip": "2001:db8:ffff::1"}));
        assert_eq!(eval(&c, "office", &v6, WED_NOON).0, Truth::True);
        let mapped = ctx(json!({"ip": "::ffff:10.0.0.1"}));
        assert_eq!(eval(&c, "office", &mapped, WED_NOON).0, Truth::True);
        let outside = ctx(json!({"ip": "192.168.1.1"}));
        assert_eq!(eval(&c, "office", &outside, WED_NOON).0, Truth::False);
    }

    #[test]
    fn absent_or_mistyped_attributes_are_unknown_and_named() {
        let c = contract_example();
        let empty = Context::default();
        assert_eq!(
            eval(&c, "low_risk", &empty, 0),
            (Truth::Unknown, vec!["risk_score".into()])
        );
        // not(unknown) is unknown: an absent `flagged` does not make a user unflagged.
        assert_eq!(
            eval(&c, "unflagged", &empty, 0),
            (Truth::Unknown, vec!["flagged".into()])
        );
        let typed = ctx(json!({"risk_score": "low", "ip": "not an address"}));
        assert_eq!(eval(&c, "low_risk", &typed, 0).0, Truth::Unknown);
        assert_eq!(eval(&c, "office", &typed, 0).0, Truth::Unknown);
        // all: false wins over unknown; any: true wins over unknown.
        let risky = ctx(json!({"risk_score": 90}));
        assert_eq!(
            eval(&c, "finance_ok", &risky, 0),
            (Truth::False, vec!["ip".into()])
        );
        let any = Conditions::compile(&defs(json!({
            "a": { "attr": "x", "op": "==", "value": 1 },
            "b": { "attr": "y", "op": "==", "value": 1 },
            "either": { "any": ["a", "b"] }
        })))
        .unwrap();
        assert_eq!(
            eval(&any, "either", &ctx(json!({"y": 1})), 0).0,
            Truth::True
        );
        assert_eq!(
            eval(&any, "either", &ctx(json!({"y": 2})), 0).0,
            Truth::Unknown
        );
        assert_eq!(
            eval(&any, "either", &ctx(json!({"x": 2, "y": 2})), 0).0,
            Truth::False
        );
    }

    #[test]
    fn time_windows_at_offsets_and_across_midnight() {
        let c = contract_example();
        let x = Context::default();
        // Wednesday 12:00 UTC is 13:00 at +60: inside 08:00-18:00.
        assert_eq!(eval(&c, "workday", &x, WED_NOON).0, Truth::True);
        // Wednesday 17:30 UTC is 18:30 at +60: outside.
        assert_eq!(
            eval(&c, "workday", &x, WED_NOON + 330 * 60_000).0,
            Truth::False
        );
        // Wednesday 06:59 UTC is 07:59 at +60: outside; 07:00 UTC is 08:00: inside.
        assert_eq!(
            eval(&c, "workday", &x, WED_NOON - 301 * 60_000).0,
            Truth::False
        );
        assert_eq!(
            eval(&c, "workday", &x, WED_NOON - 300 * 60_000).0,
            Truth::True
        );
        // Saturday noon: not a listed day.
        assert_eq!(
            eval(&c, "workday", &x, WED_NOON + 3 * 86_400_000).0,
            Truth::False
        );
        let night = Conditions::compile(&defs(json!({
            "night": { "time": { "days": ["fri"], "from": "22:00", "to": "02:00", "utc_offset_minutes": -300 } }
        })))
        .unwrap();
        // Friday 2026-12-04 23:00 at -05:00 is Saturday 04:00 UTC; Saturday 01:59 local is 06:59 UTC.
        let fri_23_local = WED_NOON + 2 * 86_400_000 + 16 * 3_600_000;
        assert_eq!(eval(&night, "night", &x, fri_23_local).0, Truth::True);
        assert_eq!(
            eval(&night, "night", &x, fri_23_local + 179 * 60_000).0,
            Truth::True
        );
        assert_eq!(
            eval(&night, "night", &x, fri_23_local + 180 * 60_000).0,
            Truth::False
        );
        // Thursday 23:00 local: Thursday is not listed.
        assert_eq!(
            eval(&night, "night", &x, fri_23_local - 86_400_000).0,
            Truth::False
        );
    }

    #[test]
    fn compiling_names_what_is_wrong() {
        let err = |v: serde_json::Value| Conditions::compile(&defs(v)).unwrap_err();
        let e = err(json!({"a": {"all": ["b"]}}));
        assert_eq!(
            (e.kind, e.at.as_str()),
            (K::UndeclaredCondition, "conditions.a.all[0]")
        );
        let e = err(json!({"a": {"all": ["b"]}, "b": {"not": "c"}, "c": {"any": ["a"]}}));
        assert_eq!(e.kind, K::ConditionCycle);
        assert!(e.message.contains("a -> b -> c -> a"), "{}", e.message);
        let e = err(json!({"a": {"attr": "x", "op": "<", "value": "7"}}));
        assert_eq!(
            (e.kind, e.at.as_str()),
            (K::InvalidValue, "conditions.a.value")
        );
        let e = err(json!({"a": {"attr": "ip", "op": "in_cidr", "value": ["10.0.0.1/8"]}}));
        assert_eq!(
            (e.kind, e.at.as_str()),
            (K::InvalidValue, "conditions.a.value[0]")
        );
        let e = err(json!({"a": {"time": {"days": ["mon"], "from": "24:00", "to": "02:00"}}}));
        assert_eq!(
            (e.kind, e.at.as_str()),
            (K::InvalidValue, "conditions.a.time.from")
        );
        let e = err(json!({
            "a": {"attr": "x", "op": "==", "value": 1, "not": "b"},
            "b": {"attr": "y", "op": "==", "value": 1}
        }));
        assert_eq!(e.kind, K::InvalidValue);
        let e = err(json!({"a": {"attr": "now", "op": "<", "value": 1}}));
        assert_eq!(e.kind, K::MalformedId);
        // Nine levels above a comparison is one too many.
        let mut deep = serde_json::Map::new();
        deep.insert("c0".into(), json!({"attr": "x", "op": "==", "value": 1}));
        for i in 1..=9 {
            deep.insert(format!("c{i}"), json!({"not": format!("c{}", i - 1)}));
        }
        let e = err(serde_json::Value::Object(deep.clone()));
        assert_eq!((e.kind, e.at.as_str()), (K::LimitExceeded, "conditions.c9"));
        deep.remove("c9");
        assert!(Conditions::compile(&defs(serde_json::Value::Object(deep))).is_ok());
        let many: serde_json::Map<_, _> = (0..65)
            .map(|i| {
                (
                    format!("c{i}"),
                    json!({"attr": "x", "op": "==", "value": i}),
                )
            })
            .collect();
        assert_eq!(err(serde_json::Value::Object(many)).kind, K::LimitExceeded);
    }

    #[test]
    fn contexts_are_checked() {
        let bad = |k: &str, v: Attr| Context::new([(k.to_owned(), v)]).unwrap_err();
        assert_eq!(bad("now", Attr::Num(1.0)).key, "now");
        assert_eq!(bad("Ip", Attr::Str("x".into())).key, "Ip");
        assert_eq!(
            bad(&"k".repeat(65), Attr::Bool(true)).message,
            "a key is [a-z][a-z0-9_]* of at most 64 bytes"
        );
        assert!(bad("x", Attr::Num(f64::NAN)).message.contains("finite"));
        assert!(bad("x", Attr::Num(f64::INFINITY))
            .message
            .contains("finite"));
        assert!(bad("x", Attr::Str("s".repeat(257))).message.contains("256"));
        assert!(bad("x", Attr::List(vec!["s".into(); 33]))
            .message
            .contains("32"));
        let keys = (0..33).map(|i| (format!("k{i}"), Attr::Bool(true)));
        assert_eq!(Context::new(keys).unwrap_err().key, "");
        let twice = [
            ("x".to_owned(), Attr::Bool(true)),
            ("x".to_owned(), Attr::Bool(false)),
        ];
        assert!(Context::new(twice).unwrap_err().message.contains("twice"));
        assert!(
            Context::new((0..32).map(|i| (format!("k{i}"), Attr::Str("s".repeat(256))))).is_ok()
        );
    }

    #[test]
    fn cidrs_parse_strictly() {
        for good in [
            "10.0.0.0/8",
            "0.0.0.0/0",
            "192.168.1.1/32",
            "2001:db8::/32",
            "::/0",
            "::1/128",
        ] {
            assert!(Cidr::parse(good).is_some(), "{good}");
        }
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "2001:db8::1/32",
            "::/129",
            "x/8",
            "10.0.0.0/08a",
        ] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn judging_candidates_grants_the_first_that_holds_and_names_what_failed() {
        let c = contract_example();
        let idx = |n: &str| c.index(n).unwrap();
        let requires = [idx("mfa_recent")];
        let office_only = [Some(idx("finance_ok")), None];
        // No context: every condition is unknown; mfa_recent alone is a step-up, so the second
        // candidate (no `when`) could get through by a step-up.
        let (k, outcome, names, missing) =
            judged(&c, &office_only, &requires, &Context::default(), WED_NOON);
        assert_eq!((k, outcome), (None, Outcome::StepUpRequired));
        assert_eq!(names, vec!["mfa_recent".to_owned()]);
        assert_eq!(missing, vec!["mfa_age_s".to_owned()]);
        // A recent MFA: the second candidate holds (the first still lacks the office).
        let fresh = ctx(json!({"mfa_age_s": 60}));
        let j = judged(&c, &office_only, &requires, &fresh, 0);
        assert_eq!((j.0, j.1), (Some(1), Outcome::Granted));
        // Both hold: the first wins.
        let both = ctx(json!({"mfa_age_s": 60, "ip": "10.0.0.9", "risk_score": 1}));
        let j = judged(&c, &office_only, &requires, &both, 0);
        assert_eq!((j.0, j.1), (Some(0), Outcome::Granted));
        // Only the first candidate, outside the office: not fixable by a step-up; the missing
        // attributes are those of the failing conditions only.
        let (k, outcome, names, missing) = judged(
            &c,
            &[Some(idx("finance_ok"))],
            &requires,
            &ctx(json!({"ip": "192.0.2.1", "risk_score": 1})),
            0,
        );
        assert_eq!((k, outcome), (None, Outcome::ConditionFailed));
        assert_eq!(
            names,
            vec!["finance_ok".to_owned(), "mfa_recent".to_owned()]
        );
        assert_eq!(missing, vec!["mfa_age_s".to_owned()]);
        // A condition that is true names none of its parts' missing attributes.
        let (_, outcome, names, missing) = judged(
            &c,
            &[Some(idx("office"))],
            &[],
            &ctx(json!({"ip": "192.0.2.1"})),
            0,
        );
        assert_eq!(outcome, Outcome::ConditionFailed);
        assert_eq!((names, missing), (vec!["office".to_owned()], vec![]));
        // No candidate at all.
        assert_eq!(judged(&c, &[], &requires, &both, 0).1, Outcome::NoGrant);
        // No conditions anywhere: the first candidate grants.
        let j = judged(&c, &[None, None], &[], &Context::default(), 0);
        assert_eq!((j.0, j.1), (Some(0), Outcome::Granted));
    }
}

//! Runs every scenario of `tests/conformance/*.json` (format in that folder's README).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edge_authz::{
    compile_snapshot, diff_models, sign_watermark, DeltaOutcome, Error, Evaluator, Request, State,
};
use edge_authz_protocol::read_context;
use serde_json::{json, Value};

use crate::common::{state_of_value, test_key};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance")
}

fn host_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn u(step: &Value, key: &str) -> u64 {
    step.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("step needs `{key}`: {step}"))
}

fn s(v: &Value, i: usize) -> String {
    v.get(i)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected a string at {i} of {v}"))
        .to_string()
}

/// Compares the keys listed in `expect` with `actual`; an absent key equals `null`.
fn subset_mismatch(expect: &Value, actual: &Value) -> Option<String> {
    let Value::Object(exp) = expect else {
        return (expect != actual).then(|| format!("expected {expect}, got {actual}"));
    };
    for (k, v) in exp {
        let got = actual.get(k).unwrap_or(&Value::Null);
        if got != v {
            return Some(format!("`{k}`: expected {v}, got {got} (whole: {actual})"));
        }
    }
    None
}

struct Run {
    models: BTreeMap<String, State>,
    ev: Evaluator,
}

impl Run {
    fn model(&self, v: &Value) -> &State {
        let name = v.as_str().unwrap_or_else(|| panic!("a model name: {v}"));
        self.models
            .get(name)
            .unwrap_or_else(|| panic!("no model `{name}`"))
    }

    fn outcome(&mut self, step: &Value) -> Result<Value, Error> {
        let key = test_key();
        if let Some(m) = step.get("snapshot") {
            let bytes =
                compile_snapshot(self.model(m), u(step, "epoch"), u(step, "issued_at"), &key)?;
            let a = self.ev.load_snapshot(&bytes)?;
            return Ok(json!({"epoch": a.epoch, "applied": a.applied}));
        }
        if let Some(m) = step.get("preview") {
            self.ev = Evaluator::preview(self.model(m))?;
            return Ok(json!({}));
        }
        if let Some(pair) = step
            .get("delta")
            .filter(|_| step.get("watermark").is_none())
        {
            let out = diff_models(
                self.model(&pair[0]),
                self.model(&pair[1]),
                u(step, "base_epoch"),
                u(step, "epoch"),
                u(step, "issued_at"),
                &key,
            )?;
            let a = self.ev.apply_delta(&out.bytes)?;
            return Ok(json!({"epoch": a.epoch, "applied": a.applied, "revokes": out.revokes}));
        }
        if step.get("watermark").is_some() {
            let w = u(step, "watermark");
            let delta = match step.get("delta") {
                Some(pair) => Some(
                    diff_models(
                        self.model(&pair[0]),
                        self.model(&pair[1]),
                        u(step, "base_epoch"),
                        w,
                        u(step, "issued_at"),
                        &key,
                    )?
                    .bytes,
                ),
                None => None,
            };
            let tenant = self.ev.tenant().to_string();
            let bytes = sign_watermark(&tenant, w, u(step, "issued_at"), delta.as_deref(), &key)?;
            let a = self.ev.apply_watermark(&bytes)?;
            let delta = a.delta.map(|d| match d {
                DeltaOutcome::Applied => "applied".to_string(),
                DeltaOutcome::AlreadyApplied => "already_applied".to_string(),
                DeltaOutcome::Skipped(e) => e.code().to_string(),
            });
            return Ok(json!({"watermark": a.watermark, "epoch": a.epoch, "delta": delta}));
        }
        // The step's `clock` is the host's clock (else this machine's); the context's `now` moves
        // only expiry.
        let clock = step
            .get("clock")
            .and_then(Value::as_u64)
            .unwrap_or_else(host_now);
        let ctx = read_context(step.get("context"));
        let now = ctx.as_ref().map(|c| c.at(clock)).map_err(|_| ());
        if let Some(req) = step.get("check") {
            let (sub, act, res) = (s(req, 0), s(req, 1), s(req, 2));
            let d = match now {
                Ok(now) => self.ev.check(Request::new(&sub, &act, &res), now),
                Err(()) => self.ev.reject_request(),
            };
            return Ok(serde_json::to_value(self.ev.explain(&d)).unwrap());
        }
        if let Some(req) = step.get("list_resources") {
            let ty = step.get("type").and_then(Value::as_str);
            let now = now.map_err(|()| self.ev.reject_list())?;
            return Ok(json!(self.ev.list_resources(
                &s(req, 0),
                &s(req, 1),
                ty,
                now
            )?));
        }
        if let Some(req) = step.get("list_subjects") {
            let now = now.map_err(|()| self.ev.reject_list())?;
            return Ok(json!(self.ev.list_subjects(&s(req, 0), &s(req, 1), now)?));
        }
        if step.get("status").is_some() {
            return Ok(serde_json::to_value(self.ev.status()).unwrap());
        }
        panic!("unknown step {step}");
    }
}

/// Runs one file; returns the number of cases and the failures.
fn run_file(path: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut models = BTreeMap::new();
    let mut first_tenant = None;
    for (name, m) in doc["models"]
        .as_object()
        .unwrap_or_else(|| panic!("{}: no models", path.display()))
    {
        let v = match m {
            Value::String(rel) => {
                serde_json::from_str(&std::fs::read_to_string(dir().join(rel)).unwrap()).unwrap()
            }
            other => other.clone(),
        };
        let st = state_of_value(v);
        first_tenant.get_or_insert(st.tenant.clone());
        models.insert(name.clone(), st);
    }
    let tenant = first_tenant.unwrap_or_else(|| "acme".into());
    let ev = Evaluator::with_keys(&tenant, vec![test_key().public_key()]).unwrap();
    let mut run = Run { models, ev };
    let (mut cases, mut failures) = (0, Vec::new());
    for (i, step) in doc["steps"].as_array().unwrap().iter().enumerate() {
        let before = run.ev.status();
        let got = run.outcome(step);
        let expect = step.get("expect");
        let expect_error = step.get("expect_error").and_then(Value::as_str);
        if expect.is_some() || expect_error.is_some() {
            cases += 1;
        }
        let where_ = format!(
            "{} step {i} {step}",
            path.file_name().unwrap().to_string_lossy()
        );
        match (got, expect_error) {
            (Err(e), Some(code)) => {
                if e.code() != code {
                    failures.push(format!(
                        "{where_}: expected error `{code}`, got `{}`: {e}",
                        e.code()
                    ));
                }
                if run.ev.status() != before {
                    failures.push(format!("{where_}: a rejected step changed the status"));
                }
            }
            (Err(e), None) => {
                failures.push(format!("{where_}: unexpected error `{}`: {e}", e.code()))
            }
            (Ok(v), Some(code)) => {
                failures.push(format!("{where_}: expected error `{code}`, got {v}"))
            }
            (Ok(v), None) => {
                if let Some(m) = expect.and_then(|e| subset_mismatch(e, &v)) {
                    failures.push(format!("{where_}: {m}"));
                }
            }
        }
    }
    (cases, failures)
}

#[test]
fn conformance_suite() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let (mut total, mut failures) = (0, Vec::new());
    for f in &files {
        let (n, mut fails) = run_file(f);
        total += n;
        failures.append(&mut fails);
    }
    println!(
        "conformance: {} files, {total} cases, {} failures",
        files.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} conformance failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        total >= 60 || files.len() < 5,
        "only {total} conformance cases"
    );
}

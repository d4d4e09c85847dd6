//! `edge-authz test`: assertion files in JSON and YAML, their reports (text, JSON, JUnit), models
//! by path, changes, tokens, and the errors of malformed files.
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Runs the command line in `dir`: (exit code, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edge-authz"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder holding the example model as `model.json` and the given files.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(ROOT).join("examples/acme.json"),
        dir.path().join("model.json"),
    )
    .unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// An input error: exit 1, nothing on stdout, `error: ...` with `needles` on stderr.
fn input_error(dir: &Path, file: &str, needles: &[&str]) {
    let (code, out, err) = run(dir, &["test", file]);
    assert_eq!(code, 1, "{file}: {out}{err}");
    assert!(out.is_empty(), "{file}: {out}");
    assert!(err.starts_with("error: "), "{file}: {err}");
    for n in needles {
        assert!(err.contains(n), "{file}: `{err}` lacks `{n}`");
    }
}

#[test]
fn the_example_passes() {
    let (code, out, err) = run(Path::new(ROOT), &["test", "examples/acme.test.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("ok   examples/acme.test.yaml: 24 passed, 0 failed"),
        "{out}"
    );
    assert!(out.contains("test result: ok."), "{out}");
}

#[test]
fn the_ported_conformance_cases_pass() {
    let dir = Path::new(ROOT).join("crates/cli/tests/assertions");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    let mut args = vec!["test", "--json"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = run(&dir, &args);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["failed"], 0);
    assert!(report["passed"].as_u64().unwrap() > 100, "{report}");
    for f in report["files"].as_array().unwrap() {
        assert!(f["passed"].as_u64().unwrap() > 10, "{f}");
    }
}

const FAILING_YAML: &str = "\
model: model.json
now: 2026-06-01T00:00:00Z
tests:
  - allow: [user:alice, read, doc:roadmap]
  - allow: [user:bob, read, doc:roadmap]
  - name: mallory <&> \"quoted\"
    deny: [user:mallory, read, doc:roadmap]
    reason: no_grant
  - list_resources: [user:alice, export]
    expect: [doc:roadmap]
  - check: [user:alice, read, doc:roadmap]
    expect:
      grant: {principal: group:staff}
";

#[test]
fn a_failing_yaml_assertion_is_reported_with_its_file_and_line() {
    let dir = dir_with(&[("a.test.yaml", FAILING_YAML)]);
    let (code, out, err) = run(dir.path(), &["test", "a.test.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    for line in [
        "a.test.yaml:5: check user:bob read doc:roadmap: expected allowed true, got false (no_grant)",
        "a.test.yaml:6: mallory <&> \"quoted\": check user:mallory read doc:roadmap: expected reason no_grant, got suspended",
        "a.test.yaml:9: list_resources user:alice export: expected [doc:roadmap], got [doc:roadmap, workspace:eng] (unexpected workspace:eng)",
        "a.test.yaml:11: check user:alice read doc:roadmap: expected grant.principal group:staff, got user:alice (granted)",
        "FAIL a.test.yaml: 1 passed, 4 failed",
        "test result: FAILED. 1 passed, 4 failed (1 file)",
    ] {
        assert!(out.contains(line), "`{out}` lacks `{line}`");
    }
}

#[test]
fn a_failing_json_assertion_is_reported_with_its_file_and_line() {
    let text = r#"{
  "description": "an inline model",
  "model": {
    "version": 1, "tenant": "t",
    "actions": {"read": {"tier": "low"}},
    "roles": {"viewer": ["read"]},
    "resources": [{"id": "doc:a"}],
    "assignments": [{"principal": "user:a", "role": "viewer", "resource": "doc:a"}]
  },
  "tests": [
    {"allow": ["user:a", "read", "doc:a"]},

    {"check": ["user:b", "read", "doc:a"],
     "expect": {"allowed": true}},
    {"list_subjects": ["doc:a", "read"], "expect": ["user:a"]}
  ]
}
"#;
    let dir = dir_with(&[("b.test.json", text)]);
    let (code, out, err) = run(dir.path(), &["test", "b.test.json"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(
            "b.test.json:13: check user:b read doc:a: expected allowed true, got false (no_grant)"
        ),
        "{out}"
    );
    assert!(
        out.contains("FAIL b.test.json: 2 passed, 1 failed"),
        "{out}"
    );
}

#[test]
fn the_json_and_junit_reports() {
    let dir = dir_with(&[
        ("a.test.yaml", FAILING_YAML),
        (
            "ok.test.yaml",
            "model: model.json\ntests:\n  - allow: [group:staff, read, doc:roadmap]\n",
        ),
    ]);
    let (code, out, err) = run(
        dir.path(),
        &[
            "test",
            "--json",
            "--junit",
            "report.xml",
            "ok.test.yaml",
            "a.test.yaml",
        ],
    );
    assert_eq!(code, 1, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (report["passed"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(4))
    );
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(
        files[0],
        json!({"file": "ok.test.yaml", "passed": 1, "failed": 0, "failures": []})
    );
    assert_eq!(files[1]["file"], "a.test.yaml");
    assert_eq!(
        (files[1]["passed"].as_u64(), files[1]["failed"].as_u64()),
        (Some(1), Some(4))
    );
    let failures = files[1]["failures"].as_array().unwrap();
    let lines: Vec<u64> = failures
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![5, 6, 9, 11]);
    let first = &failures[0];
    assert_eq!(first["expected"], json!({"allowed": true}));
    assert_eq!(first["actual"]["reason"], "no_grant");
    assert_eq!(first["actual"]["allowed"], false);
    assert!(first.get("name").is_none());
    assert_eq!(
        first["message"],
        "check user:bob read doc:roadmap: expected allowed true, got false (no_grant)"
    );
    assert_eq!(failures[1]["name"], "mallory <&> \"quoted\"");
    assert_eq!(failures[2]["expected"], json!(["doc:roadmap"]));
    assert_eq!(
        failures[2]["actual"],
        json!(["doc:roadmap", "workspace:eng"])
    );

    let xml = std::fs::read_to_string(dir.path().join("report.xml")).unwrap();
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"),
        "{xml}"
    );
    assert!(xml.contains(r#"tests="6" failures="4""#), "{xml}");
    assert!(
        xml.contains(r#"<testsuite name="ok.test.yaml" tests="1" failures="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuite name="a.test.yaml" tests="5" failures="4""#),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 6);
    assert_eq!(xml.matches("<failure ").count(), 4);
    assert!(
        xml.contains(r#"line 6: mallory &lt;&amp;&gt; &quot;quoted&quot;: check user:mallory"#),
        "{xml}"
    );
    assert!(xml.contains(r#"line="5""#), "{xml}");
    // Escaped: no raw `<` or `&` inside the attributes or the texts.
    for (i, part) in xml.split('<').enumerate().skip(1) {
        let tag_end = part.find('>').unwrap_or_else(|| panic!("part {i}: {part}"));
        let (tag, text) = part.split_at(tag_end);
        assert!(!tag.contains('&') || !tag.contains("&<"), "{tag}");
        for (j, amp) in text.match_indices('&') {
            let rest = &text[j..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#10;"]
                    .iter()
                    .any(|e| rest.starts_with(e)),
                "a bare {amp} in {text}"
            );
        }
    }
    assert!(xml.trim_end().ends_with("</testsuites>"));
}

#[test]
fn changes_apply_to_the_tests_after_them() {
    let text = "\
model: model.json
tests:
  - allow: [user:alice, read, doc:roadmap]
  - changes:
      - {op: remove_membership, member: user:alice, group: group:eng}
  # alice keeps her own admin role
  - allow: [user:alice, read, doc:roadmap]
  - changes:
      - {op: remove_assignment, principal: user:alice, role: admin, resource: workspace:eng}
  - deny: [user:alice, read, doc:roadmap]
    reason: no_grant
  - changes:
      - {op: suspend, subject: group:staff}
  - deny: [group:eng, read, doc:roadmap]
    reason: suspended
  - changes: {op: add_assignment, principal: user:x, role: nope, resource: org:acme}
    expect_error: undeclared_role
  - changes: {op: unsuspend, subject: group:staff}
    expect_error: undeclared_role
  - changes:
      - {op: remove_membership, member: user:alice, group: group:eng}
  - allow: [user:nobody, read, doc:roadmap]
";
    let dir = dir_with(&[("c.test.yaml", text)]);
    let (code, out, err) = run(dir.path(), &["test", "c.test.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("c.test.yaml:18: changes: expected the change to be refused (undeclared_role), but it applies"),
        "{out}"
    );
    assert!(
        out.contains("c.test.yaml:20: changes: the change does not apply: membership user:alice in group:eng does not exist (the tests after it were not run)"),
        "{out}"
    );
    // The last check is not run; every test before the failures passed.
    assert!(
        out.contains("FAIL c.test.yaml: 5 passed, 2 failed"),
        "{out}"
    );
}

#[test]
fn token_checks_answer_as_the_shared_token_cases_say() {
    let path = Path::new(ROOT).join("tests/tokens/cases.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = all["cases"].as_array().unwrap();
    let mut tests: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "name": c["name"],
                "token": c["token"],
                "check": [c["action"], c["resource"]],
                "expect": c["expect"],
            })
        })
        .collect();
    // One that must fail: the first token's subject is not bob.
    tests.push(json!({
        "token": cases[0]["token"],
        "allow": [cases[0]["action"], cases[0]["resource"]],
        "expect": {"subject": "user:bob"},
    }));
    let file = json!({"model": all["model"], "now": all["clock"], "tests": tests});
    let text = serde_json::to_string_pretty(&file).unwrap();
    let dir = dir_with(&[("t.test.json", &text)]);
    let (code, out, err) = run(dir.path(), &["test", "--json", "t.test.json"]);
    assert_eq!(code, 1, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["passed"].as_u64(),
        Some(cases.len() as u64),
        "{report}"
    );
    assert_eq!(report["failed"], 1, "{report}");
    let failure = &report["files"][0]["failures"][0];
    assert_eq!(failure["actual"]["subject"], "user:alice");
    let line = failure["line"].as_u64().unwrap() as usize;
    let at = text.lines().nth(line - 1).unwrap();
    assert!(at.trim_start().starts_with('{'), "line {line}: {at}");
    assert!(
        text.lines().nth(line).unwrap().contains("\"token\""),
        "line {line}"
    );
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .starts_with("token check read doc:roadmap: expected subject user:bob, got user:alice"),
        "{failure}"
    );
    // A token check without `token` names three strings, with it two.
    let bad = r#"{"model": "model.json", "tests": [{"token": "x", "check": ["a", "b", "c"], "expect": {}}]}"#;
    let dir = dir_with(&[("t.test.json", bad)]);
    input_error(
        dir.path(),
        "t.test.json",
        &[
            "t.test.json:1: `check` must be [action, resource] (with `token`)",
            "[invalid_assertion]",
        ],
    );
}

#[test]
fn malformed_files_are_errors_with_their_line() {
    let dir = dir_with(&[
        ("bad.yaml", "model: model.json\ntests:\n  - allow: [user:a, read\n  - deny: x\n"),
        ("bad.json", "{\n  \"model\": \"model.json\",\n  \"tests\": [,]\n}\n"),
        // YAML that is not JSON, in a .json file.
        ("yamlish.json", "model: model.json\ntests: []\n"),
        (
            "unknown.yaml",
            "model: model.json\ntests:\n  - allow: [user:a, read, doc:roadmap]\n  - deny: [user:a, read, doc:roadmap]\n    reasn: no_grant\n",
        ),
        ("top.yaml", "model: model.json\ntest: []\n"),
        ("two.yaml", "model: model.json\ntests:\n  - allow: [a, b, c]\n    deny: [a, b, c]\n"),
        ("args.yaml", "model: model.json\ntests:\n  - allow: [user:a, read]\n"),
        ("now.yaml", "model: model.json\ntests:\n  - allow: [user:a, read, doc:x]\n    now: yesterday\n"),
        ("op.yaml", "model: model.json\ntests:\n  - changes: [{op: frobnicate}]\n"),
        (
            "inline.yaml",
            "model:\n  version: 1\n  tenant: t\n  actions: {read: {tier: low}}\n  roles: {viewer: [read]}\n  resources: [{id: 'doc:a'}]\n  assignments:\n    - {principal: 'user:a', role: viewer, resource: 'doc:a'}\n    - {principal: 'user:a', role: owner, resource: 'doc:a'}\ntests: []\n",
        ),
        ("field.yaml", "model:\n  version: 1\n  tenant: t\n  colour: blue\ntests: []\n"),
        ("missing.yaml", "model: nowhere.json\ntests: []\n"),
        ("broken-model.yaml", "model: broken.json\ntests: []\n"),
        ("broken.json", "{\"version\": 1, \"tenant\": \"t\", \"roles\": {\"r\": [\"nope\"]}}"),
        ("list.yaml", "- allow: [a, b, c]\n"),
        ("empty.yaml", ""),
        ("notes.txt", "model: model.json\ntests: []\n"),
    ]);
    let p = dir.path();
    input_error(
        p,
        "bad.yaml",
        &["bad.yaml:4: malformed YAML:", "[malformed_yaml]"],
    );
    input_error(
        p,
        "bad.json",
        &["bad.json:3: malformed JSON:", "[malformed_json]"],
    );
    input_error(
        p,
        "yamlish.json",
        &["yamlish.json:1: malformed JSON:", "[malformed_json]"],
    );
    input_error(
        p,
        "unknown.yaml",
        &[
            "unknown.yaml:5: unknown key `reasn` in a `deny` test",
            "[invalid_assertion]",
        ],
    );
    input_error(
        p,
        "top.yaml",
        &["top.yaml:2: unknown key `test`", "[invalid_assertion]"],
    );
    input_error(
        p,
        "two.yaml",
        &[
            "two.yaml:3: a test has exactly one of",
            "(found allow, deny)",
        ],
    );
    input_error(
        p,
        "args.yaml",
        &["args.yaml:3: `allow` must be [subject, action, resource]"],
    );
    input_error(
        p,
        "now.yaml",
        &["now.yaml:4: `now`: `yesterday` is neither"],
    );
    input_error(
        p,
        "op.yaml",
        &[
            "op.yaml:3: `changes` must be a list of operations",
            "frobnicate",
        ],
    );
    input_error(
        p,
        "inline.yaml",
        &[
            "inline.yaml:9: model: ",
            "at `assignments[1]`",
            "[invalid_model/undeclared_role]",
        ],
    );
    input_error(
        p,
        "field.yaml",
        &["field.yaml:", "[invalid_model/unknown_field]", "colour"],
    );
    input_error(
        p,
        "missing.yaml",
        &["missing.yaml:1: model: cannot read", "[unreadable]"],
    );
    input_error(
        p,
        "broken-model.yaml",
        &[
            "broken-model.yaml:1: model:",
            "roles.r",
            "[invalid_model/undeclared_action]",
        ],
    );
    input_error(
        p,
        "list.yaml",
        &["list.yaml:1: an assertion file must be a mapping"],
    );
    input_error(
        p,
        "empty.yaml",
        &["empty.yaml:1: malformed YAML: the file is empty"],
    );
    input_error(
        p,
        "notes.txt",
        &["notes.txt: an assertion file ends in", "[unsupported_file]"],
    );
    input_error(
        p,
        "absent.yaml",
        &["cannot read `absent.yaml`", "[unreadable]"],
    );
    // One bad file stops the run before anything is reported.
    let (code, out, err) = run(p, &["test", "unknown.yaml", "bad.json"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
}

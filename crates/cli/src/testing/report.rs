//! The reports of `edge-authz test`: text for people, JSON for machines, JUnit XML for CI.

use serde_json::{json, Value};

/// One assertion run: where it is, what it asked, and how it failed if it did.
pub struct Outcome {
    pub line: usize,
    pub name: Option<String>,
    pub desc: String,
    pub failure: Option<Failure>,
}

pub struct Failure {
    pub expected: Value,
    pub actual: Value,
    pub message: String,
}

pub struct FileReport {
    pub file: String,
    pub results: Vec<Outcome>,
}

impl FileReport {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.failure.is_some()).count()
    }
    pub fn passed(&self) -> usize {
        self.results.len() - self.failed()
    }
}

impl Outcome {
    /// `name: desc`, or `desc`.
    fn title(&self) -> String {
        match &self.name {
            Some(n) => format!("{n}: {}", self.desc),
            None => self.desc.clone(),
        }
    }

    /// The failure's message as reported: what was asked, then what differs.
    fn message(&self) -> Option<String> {
        self.failure
            .as_ref()
            .map(|f| format!("{}: {}", self.title(), f.message))
    }
}

fn totals(reports: &[FileReport]) -> (usize, usize) {
    reports
        .iter()
        .fold((0, 0), |(p, f), r| (p + r.passed(), f + r.failed()))
}

/// `FILE:LINE: message` for each failure, a line per file, and the totals.
pub fn text(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for r in reports {
        for o in &r.results {
            if let Some(m) = o.message() {
                out.push_str(&format!("{}:{}: {m}\n", r.file, o.line));
            }
        }
    }
    for r in reports {
        let status = if r.failed() == 0 { "ok  " } else { "FAIL" };
        out.push_str(&format!(
            "{status} {}: {} passed, {} failed\n",
            r.file,
            r.passed(),
            r.failed()
        ));
    }
    let (passed, failed) = totals(reports);
    out.push_str(&format!(
        "test result: {}. {passed} passed, {failed} failed ({} file{})\n",
        if failed == 0 { "ok" } else { "FAILED" },
        reports.len(),
        if reports.len() == 1 { "" } else { "s" }
    ));
    out
}

/// `{files: [{file, passed, failed, failures: [{line, name?, expected, actual, message}]}],
/// passed, failed}`.
pub fn json(reports: &[FileReport]) -> Value {
    let files: Vec<Value> = reports
        .iter()
        .map(|r| {
            let failures: Vec<Value> = r
                .results
                .iter()
                .filter_map(|o| {
                    let f = o.failure.as_ref()?;
                    let mut v = json!({
                        "line": o.line,
                        "expected": f.expected,
                        "actual": f.actual,
                        "message": o.message(),
                    });
                    if let (Some(n), Some(m)) = (&o.name, v.as_object_mut()) {
                        m.insert("name".into(), Value::String(n.clone()));
                    }
                    Some(v)
                })
                .collect();
            json!({
                "file": r.file,
                "passed": r.passed(),
                "failed": r.failed(),
                "failures": failures,
            })
        })
        .collect();
    let (passed, failed) = totals(reports);
    json!({ "files": files, "passed": passed, "failed": failed })
}

/// Text escaped for an XML attribute or element.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            // Characters XML 1.0 cannot hold at all.
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: a `testsuite` per file, a `testcase` per assertion (named by its line), a
/// `failure` with the message and the expected and actual JSON.
pub fn junit(reports: &[FileReport]) -> String {
    let (passed, failed) = totals(reports);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"edge-authz test\" tests=\"{}\" failures=\"{failed}\" errors=\"0\">\n",
        passed + failed
    ));
    for r in reports {
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\">\n",
            xml(&r.file),
            r.results.len(),
            r.failed()
        ));
        for o in &r.results {
            let name = format!("line {}: {}", o.line, o.title());
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\"",
                xml(&name),
                xml(&r.file),
                xml(&r.file),
                o.line
            ));
            match &o.failure {
                None => out.push_str("/>\n"),
                Some(f) => {
                    let message =
                        format!("{}:{}: {}", r.file, o.line, o.message().unwrap_or_default());
                    out.push_str(&format!(
                        ">\n      <failure message=\"{}\" type=\"assertion\">{}&#10;expected: {}&#10;actual: {}</failure>\n    </testcase>\n",
                        xml(&message),
                        xml(&message),
                        xml(&f.expected.to_string()),
                        xml(&f.actual.to_string())
                    ));
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_escaped() {
        assert_eq!(
            xml("a<b>&\"c\"'\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;&#10;\u{fffd}"
        );
    }
}

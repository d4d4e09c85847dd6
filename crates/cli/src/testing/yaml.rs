//! Assertion files read as YAML 1.2 (of which JSON is a subset) into a tree that keeps the line
//! of every value and every key, so that a failing assertion or a malformed entry can be named by
//! its line.

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};
use serde_json::{Map, Number, Value};

/// A value and the line (1-based) where it starts.
#[derive(Debug, Clone)]
pub struct Node {
    pub line: usize,
    pub v: V,
}

#[derive(Debug, Clone)]
pub enum V {
    Scalar(Value),
    Seq(Vec<Node>),
    /// Entries in the file's order: (key, the key's line, value).
    Map(Vec<(String, usize, Node)>),
}

/// A file that does not parse: the line, and what is wrong.
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Reads the one document of `text`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let docs = MarkedYamlOwned::load_from_str(text).map_err(|e| SyntaxError {
        line: e.marker().line(),
        message: format!("{} (column {})", e.info(), e.marker().col() + 1),
    })?;
    let mut docs = docs.into_iter();
    let first = docs.next().ok_or(SyntaxError {
        line: 1,
        message: "the file is empty".into(),
    })?;
    if let Some(second) = docs.next() {
        return Err(SyntaxError {
            line: second.span.start.line(),
            message: "more than one document".into(),
        });
    }
    convert(first)
}

fn convert(node: MarkedYamlOwned) -> Result<Node, SyntaxError> {
    let line = node.span.start.line();
    let fail = |message: &str| SyntaxError {
        line,
        message: message.into(),
    };
    let v = match node.data {
        YamlDataOwned::Value(s) => V::Scalar(match s {
            ScalarOwned::Null => Value::Null,
            ScalarOwned::Boolean(b) => Value::Bool(b),
            ScalarOwned::Integer(i) => Value::Number(i.into()),
            ScalarOwned::FloatingPoint(f) => Value::Number(
                Number::from_f64(f.into_inner()).ok_or_else(|| fail("a number out of range"))?,
            ),
            ScalarOwned::String(s) => Value::String(s),
        }),
        YamlDataOwned::Representation(s, _, _) => V::Scalar(Value::String(s)),
        YamlDataOwned::Sequence(items) => {
            V::Seq(items.into_iter().map(convert).collect::<Result<_, _>>()?)
        }
        YamlDataOwned::Mapping(entries) => {
            let mut out = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let key_line = k.span.start.line();
                let key = match k.data {
                    YamlDataOwned::Value(ScalarOwned::String(s)) => s,
                    YamlDataOwned::Value(ScalarOwned::Integer(i)) => i.to_string(),
                    YamlDataOwned::Value(ScalarOwned::Boolean(b)) => b.to_string(),
                    _ => {
                        return Err(SyntaxError {
                            line: key_line,
                            message: "a key that is not a string".into(),
                        })
                    }
                };
                out.push((key, key_line, convert(v)?));
            }
            V::Map(out)
        }
        YamlDataOwned::Tagged(..) => return Err(fail("tags (`!name`) are not supported")),
        YamlDataOwned::Alias(_) => return Err(fail("aliases (`*name`) are not supported")),
        YamlDataOwned::BadValue => return Err(fail("a value that does not parse")),
    };
    Ok(Node { line, v })
}

impl Node {
    /// The value as JSON.
    pub fn to_json(&self) -> Value {
        match &self.v {
            V::Scalar(v) => v.clone(),
            V::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            V::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, _, v)| (k.clone(), v.to_json()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.v {
            V::Scalar(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The node at a model's JSON path (`assignments[3].role`, `roles.viewer`), as far as it
    /// goes: the line of the deepest node found.
    pub fn line_of(&self, path: &str) -> usize {
        let mut node = self;
        for part in path.split('.') {
            let (name, rest) = part.split_once('[').unwrap_or((part, ""));
            if !name.is_empty() {
                match &node.v {
                    V::Map(entries) => match entries.iter().find(|(k, _, _)| k == name) {
                        Some((_, _, v)) => node = v,
                        None => return node.line,
                    },
                    _ => return node.line,
                }
            }
            for index in rest.split('[') {
                let Ok(i) = index.trim_end_matches(']').parse::<usize>() else {
                    continue;
                };
                match &node.v {
                    V::Seq(items) => match items.get(i) {
                        Some(v) => node = v,
                        None => return node.line,
                    },
                    _ => return node.line,
                }
            }
        }
        node.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_read_alike_with_lines() -> Result<(), String> {
        let err = |e: SyntaxError| format!("{}: {}", e.line, e.message);
        let json = parse("{\n \"a\":1,\n \"b\": [\"user:x\", 2.5, true, null],\n \"c\": {\"d\": \"e\\u00e9\"}\n}")
            .map_err(err)?;
        let yaml =
            parse("a: 1\nb: [user:x, 2.5, true, null]\nc:\n  d: \"e\\u00e9\"\n").map_err(err)?;
        assert_eq!(json.to_json(), yaml.to_json());
        assert_eq!(json.line_of("c.d"), 4);
        assert_eq!(yaml.line_of("c.d"), 4);
        assert_eq!(yaml.line_of("b[1]"), 2);
        let list = parse("tests:\n  - check: [a, b, c]\n\n  - deny: [d, e, f]\n").map_err(err)?;
        let V::Map(top) = &list.v else {
            return Err("not a map".into());
        };
        let Some((
            _,
            1,
            Node {
                v: V::Seq(items), ..
            },
        )) = top.first()
        else {
            return Err("no tests".into());
        };
        let lines: Vec<usize> = items.iter().map(|n| n.line).collect();
        assert_eq!(lines, vec![2, 4]);
        assert!(parse("a: [1, 2").is_err_and(|e| e.line >= 1));
        assert!(parse("a: 1\na: 2\n").is_err());
        assert!(parse("").is_err());
        Ok(())
    }
}

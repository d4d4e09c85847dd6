//! Identifier syntax (docs/model.md, "Identifiers"). Pure functions over `&str`, no allocation.

/// Longest accepted type part of an id (`user` in `user:alice`).
pub const MAX_TYPE_LEN: usize = 64;
/// Longest accepted name part of an id, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest accepted action or role name, in bytes.
pub const MAX_ACTION_LEN: usize = 128;
/// Longest accepted tenant name, in bytes.
pub const MAX_TENANT_LEN: usize = 64;

fn is_type(t: &str) -> bool {
    let mut bytes = t.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && t.len() <= MAX_TYPE_LEN
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// `type:name` with `type` matching `[a-z][a-z0-9_]*` and `name` 1 to 256 bytes of UTF-8
/// with no whitespace and no control characters.
pub fn is_valid_id(id: &str) -> bool {
    let Some(colon) = id.bytes().position(|b| b == b':') else {
        return false;
    };
    let (Some(t), Some(name)) = (id.get(..colon), id.get(colon + 1..)) else {
        return false;
    };
    is_type(t) && !name.is_empty() && name.len() <= MAX_NAME_LEN && is_clean_name(name)
}

/// No whitespace and no control characters. ASCII (the common case) is checked byte by byte:
/// its whitespace and control characters are exactly the bytes up to 0x20, and 0x7f.
fn is_clean_name(name: &str) -> bool {
    if name.is_ascii() {
        name.bytes().all(|b| b > b' ' && b != 0x7f)
    } else {
        !name.chars().any(|c| c.is_whitespace() || c.is_control())
    }
}

/// The type part of an id (`group` for `group:eng`); the whole string when it has no colon.
pub fn id_type(id: &str) -> &str {
    id.split_once(':').map_or(id, |(t, _)| t)
}

/// Whether the id names a group (its type is `group`).
pub fn is_group(id: &str) -> bool {
    id.starts_with("group:")
}

/// Action and role names: `[a-z][a-z0-9_.-]*`, at most 128 bytes.
pub fn is_valid_action_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= MAX_ACTION_LEN
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'))
}

/// Tenant names: `[a-z0-9][a-z0-9_-]*`, at most 64 bytes (they appear in URL paths).
pub fn is_valid_tenant(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && name.len() <= MAX_TENANT_LEN
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["user:alice", "doc:2024/q3-plan", "a:b", "x_1:é", "doc:a:b"] {
            assert!(is_valid_id(ok), "{ok}");
        }
        let long = format!("doc:{}", "x".repeat(257));
        for bad in [
            "alice",
            "User:alice",
            "user:",
            ":alice",
            "user:al ice",
            "user:a\u{7}",
            "1x:a",
            "us-er:a",
            long.as_str(),
        ] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        assert!(is_valid_id(&format!("doc:{}", "x".repeat(256))));
    }

    #[test]
    fn names() {
        assert!(is_valid_action_name("docs.read-all_2"));
        assert!(!is_valid_action_name("Read"));
        assert!(!is_valid_action_name(""));
        assert!(!is_valid_action_name("9read"));
        assert!(is_valid_tenant("acme-2"));
        assert!(!is_valid_tenant("Acme"));
        assert!(!is_valid_tenant(""));
    }
}

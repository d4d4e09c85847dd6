//! A content digest independent of any serializer: SHA-256 over a length-prefixed canonical
//! stream of the interned tables. Deltas carry the digest of the state they start from and of the
//! state they produce, so an edge proves it holds exactly what the origin holds.

use sha2::{Digest as _, Sha256};

use crate::content::Content;

struct Stream(Sha256);

impl Stream {
    fn u64(&mut self, v: u64) {
        self.0.update(v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.update(s.as_bytes());
    }
    fn opt(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.0.update([1]);
                self.u64(v);
            }
            None => self.0.update([0]),
        }
    }
}

pub(crate) fn digest(c: &Content) -> [u8; 32] {
    let mut s = Stream(Sha256::new());
    s.0.update(b"edge-authz content v1");
    s.u64(c.actions.len() as u64);
    for (n, t) in &c.actions {
        s.str(n);
        s.u64(u64::from(*t));
    }
    s.u64(c.roles.len() as u64);
    for (n, ids) in &c.roles {
        s.str(n);
        s.u64(ids.len() as u64);
        ids.iter().for_each(|i| s.u64(u64::from(*i)));
    }
    s.u64(c.resources.len() as u64);
    for (n, p) in c.resources.iter() {
        s.str(n);
        s.opt(p.map(u64::from));
    }
    s.u64(c.subjects.len() as u64);
    c.subjects.iter().for_each(|n| s.str(n));
    s.u64(c.memberships.len() as u64);
    for (m, g) in &c.memberships {
        s.u64(u64::from(*m));
        s.u64(u64::from(*g));
    }
    s.u64(c.assignments.len() as u64);
    for (r, p, role, e) in &c.assignments {
        s.u64(u64::from(*r));
        s.u64(u64::from(*p));
        s.u64(u64::from(*role));
        s.opt(*e);
    }
    s.u64(c.suspended.len() as u64);
    c.suspended.iter().for_each(|i| s.u64(u64::from(*i)));
    c.freshness.iter().for_each(|f| s.u64(*f));
    // Conditions only when there are some: a state without them keeps the digest it always had.
    let t = &c.conditional;
    if !t.is_empty() {
        s.0.update(b"conditions");
        s.u64(t.conditions.len() as u64);
        for (n, def) in &t.conditions {
            s.str(n);
            s.str(def);
        }
        for pairs in [&t.requires, &t.when] {
            s.u64(pairs.len() as u64);
            for (a, b) in pairs {
                s.u64(u64::from(*a));
                s.u64(u64::from(*b));
            }
        }
    }
    // Likewise the identity part.
    if !c.identity.is_empty() {
        s.0.update(b"identity");
        s.str(&c.identity.to_text());
    }
    s.0.finalize().into()
}

pub(crate) fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

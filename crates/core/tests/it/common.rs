//! Shared helpers for the integration tests.
use edge_authz::{Model, SecretKey, State};

/// The suite's origin key (a fixed seed: tests are deterministic).
pub fn test_key() -> SecretKey {
    SecretKey::from_seed([7u8; 32])
}

/// Another key no evaluator trusts.
pub fn other_key() -> SecretKey {
    SecretKey::from_seed([9u8; 32])
}

pub fn state_of(json: &str) -> State {
    Model::from_json(json).unwrap().compile().unwrap().state
}

pub fn state_of_value(v: serde_json::Value) -> State {
    Model::from_value(v).unwrap().compile().unwrap().state
}

pub fn example_json() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/conformance/models/example.json"
    ))
    .unwrap()
}

/// The example model (tests/conformance/models/example.json) as a state.
pub fn example() -> State {
    state_of(&example_json())
}

/// The example with alice removed from group:eng (a revocation).
pub fn revoked() -> State {
    let mut s = example();
    s.memberships
        .remove(&("user:alice".to_string(), "group:eng".to_string()));
    s
}

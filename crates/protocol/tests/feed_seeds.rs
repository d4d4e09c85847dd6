//! The fuzz seeds of feed answers (written by scripts/fuzz.sh without this crate) read as feed
//! answers, so the fuzz target starts from answers that go past the reader.
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: they fail loudly"
)]
use edge_authz_protocol::feed;

#[test]
fn the_feed_answer_seeds_read() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz/seeds/sync_answer");
    let mut read = 0;
    for (name, messages, watermark) in [
        ("feed-snapshot", 1, 0),
        ("feed-heartbeat", 2, 1),
        ("feed-carried", 2, 2),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (marker, body) = bytes
            .split_first()
            .unwrap_or_else(|| panic!("{name} is empty"));
        assert_eq!(*marker, b'f', "{name}");
        let a = feed::decode(body).unwrap_or_else(|| panic!("{name} is not a feed answer"));
        assert_eq!(a.messages.len(), messages, "{name}");
        assert_eq!(
            (a.head.epoch, a.head.watermark),
            (Some(2), watermark),
            "{name}"
        );
        assert!(!a.more);
        read += 1;
    }
    assert_eq!(read, 3);
}

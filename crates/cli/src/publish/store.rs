//! The publisher's journal: one SQLite database per tenant (`DIR/TENANT.sqlite`, WAL), guarded by
//! an exclusive lock on `DIR/TENANT.lock` for as long as a publisher runs.
//!
//! Every epoch is written, with its signed messages, in one transaction synced to disk before any
//! of it is pushed: an edge can never hold something the journal does not. What each edge acknowledged, every job
//! and every step are written after the edge answered, so a crash between the two only makes the
//! next run push again what the edge already has (edges treat that as a no-op).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::Fail;

/// Clears the model and snapshot of the epochs before `?1`: only the rows that still hold one
/// (`epochs_kept`), so that a new epoch costs the same whatever the history's length.
const CLEAR_KEPT: &str = "UPDATE epochs SET model = NULL, snapshot = NULL
     WHERE epoch < ?1 AND (model IS NOT NULL OR snapshot IS NOT NULL)";
/// The latest revocation's epoch (`epochs_revoking`).
const WATERMARK: &str = "SELECT COALESCE(MAX(epoch), 0) FROM epochs WHERE revokes = 1";
/// Marks enforced an edge's unenforced revocations up to its watermark: `?1` the edge, `?2` the
/// watermark, `?3` the time.
const ENFORCE: &str = "UPDATE acks SET enforced_at = ?3
     WHERE edge = ?1 AND enforced_at IS NULL AND epoch <= ?2
       AND EXISTS (SELECT 1 FROM epochs e WHERE e.epoch = acks.epoch AND e.revokes = 1)";

/// The propagation histograms' upper bounds, in milliseconds (`/metrics` gives them in seconds;
/// a last bucket takes what is above them all).
pub const PROPAGATION_BUCKETS_MS: [u64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/// The propagation times from each change to each edge's acknowledgement (a revocation enforced,
/// a grant applied: what `status::latencies` lists one by one), counted into
/// [`PROPAGATION_BUCKETS_MS`] as the acknowledgements are written, by triggers in the same
/// transaction, so that `/metrics` reads a few rows whatever the history's length. `bucket` is
/// the first bound the time is within (14: above them all); `sum_ms` adds the times (below 0,
/// from a clock that stepped back, as 0).
fn propagation_schema() -> String {
    let bucket = |t: &str| {
        let arms: String = PROPAGATION_BUCKETS_MS
            .iter()
            .enumerate()
            .map(|(i, b)| format!(" WHEN {t} <= {b} THEN {i}"))
            .collect();
        format!("CASE{arms} ELSE {} END", PROPAGATION_BUCKETS_MS.len())
    };
    let trigger = |name: &str, column: &str, revokes: u8| {
        let t = format!("(NEW.{column} - e.changed_at)");
        format!(
            "CREATE TRIGGER {name} AFTER UPDATE OF {column} ON acks
             WHEN OLD.{column} IS NULL AND NEW.{column} IS NOT NULL
             BEGIN
               INSERT INTO propagation (revokes, bucket, count, sum_ms)
                 SELECT {revokes}, {}, 1, MAX({t}, 0) FROM epochs e
                 WHERE e.epoch = NEW.epoch AND e.revokes = {revokes}
                   AND e.kind IN ('revocation', 'grant')
               ON CONFLICT (revokes, bucket) DO UPDATE
                 SET count = count + 1, sum_ms = sum_ms + excluded.sum_ms;
             END;",
            bucket(&t)
        )
    };
    let backfill = |column: &str, revokes: u8| {
        let t = format!("(a.{column} - e.changed_at)");
        format!(
            "INSERT INTO propagation (revokes, bucket, count, sum_ms)
               SELECT {revokes}, {}, COUNT(*), SUM(MAX({t}, 0))
               FROM acks a JOIN epochs e ON e.epoch = a.epoch
               WHERE e.revokes = {revokes} AND e.kind IN ('revocation', 'grant')
                 AND a.{column} IS NOT NULL
               GROUP BY 2;",
            bucket(&t)
        )
    };
    format!(
        "CREATE TABLE propagation (
           revokes INTEGER NOT NULL,
           bucket INTEGER NOT NULL,
           count INTEGER NOT NULL,
           sum_ms INTEGER NOT NULL,
           PRIMARY KEY (revokes, bucket)
         );
         {}
         {}
         {}
         {}",
        trigger("acks_enforced", "enforced_at", 1),
        trigger("acks_applied", "applied_at", 0),
        backfill("enforced_at", 1),
        backfill("applied_at", 0),
    )
}

/// One direction's propagation histogram: per bucket of [`PROPAGATION_BUCKETS_MS`] (and one above
/// them), how many acknowledgements; and the sum of their times, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Propagation {
    pub counts: [u64; PROPAGATION_BUCKETS_MS.len() + 1],
    pub sum_ms: u64,
}

/// Marks applied (and so enforced) an edge's unapplied epochs up to its epoch: `?1` the edge,
/// `?2` its epoch, `?3` the time.
const APPLY: &str = "UPDATE acks SET applied_at = ?3, enforced_at = COALESCE(enforced_at, ?3)
     WHERE edge = ?1 AND applied_at IS NULL AND epoch <= COALESCE(?2, 0)";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Every epoch issued, in order. The model is kept for the latest epoch only, and the snapshot
-- when the latest is a snapshot epoch (initial, checkpoint, recovery): the others reach edges as
-- deltas, and their snapshot is signed from the model when an edge needs one. Older rows keep
-- their digest, kind and delta: the audit trail of what changed when.
CREATE TABLE IF NOT EXISTS epochs (
  epoch INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,            -- initial | revocation | grant | checkpoint
  revokes INTEGER NOT NULL,
  digest TEXT NOT NULL,          -- content digest (hex SHA-256), as edges report it
  changed_at INTEGER NOT NULL,   -- when the change was seen (Unix ms)
  issued_at INTEGER NOT NULL,    -- the signed messages' issued_at
  model TEXT,                    -- latest epoch only
  snapshot BLOB,                 -- latest epoch only, if a snapshot epoch
  delta BLOB,                    -- from epoch - 1; NULL for the first epoch
  watermark BLOB,                -- revocations: the signed watermark carrying the delta
  ops INTEGER NOT NULL DEFAULT 0 -- entries the delta changes
);
-- The rows that still hold a model or a snapshot (the latest, one at a time): what each new epoch
-- clears, found without visiting the history. And the revocations, for the watermark and the
-- enforcement of acknowledgements, without a scan of the grants between them.
CREATE INDEX IF NOT EXISTS epochs_kept ON epochs (epoch) WHERE model IS NOT NULL OR snapshot IS NOT NULL;
CREATE INDEX IF NOT EXISTS epochs_revoking ON epochs (epoch) WHERE revokes = 1;
-- What the publisher knows of each edge, from its answers.
CREATE TABLE IF NOT EXISTS edges (
  url TEXT PRIMARY KEY,
  epoch INTEGER,                 -- the edge's epoch at its last answer (NULL: no snapshot)
  watermark INTEGER NOT NULL DEFAULT 0,
  heard_at INTEGER,              -- last answer with status 200
  last_error TEXT,               -- NULL once the edge answers again
  failures INTEGER NOT NULL DEFAULT 0
);
-- For each epoch and each edge it was published to (a row is written with the epoch): when the
-- edge first enforced it (watermark >= epoch) and first applied it (its epoch >= epoch).
CREATE TABLE IF NOT EXISTS acks (
  epoch INTEGER NOT NULL,
  edge TEXT NOT NULL,
  enforced_at INTEGER,
  applied_at INTEGER,
  run INTEGER NOT NULL,
  PRIMARY KEY (epoch, edge)
);
CREATE INDEX IF NOT EXISTS acks_unapplied ON acks (edge, epoch) WHERE applied_at IS NULL;
CREATE INDEX IF NOT EXISTS acks_unenforced ON acks (edge, epoch) WHERE enforced_at IS NULL;
-- One row per job (one change, or one catch-up run), closed when it ends: an open row is where
-- an interrupted run stopped.
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY,
  run INTEGER NOT NULL,
  epoch INTEGER,
  kind TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  step TEXT NOT NULL,
  ended_at INTEGER,
  bytes INTEGER NOT NULL DEFAULT 0,
  budget_ms INTEGER,
  outcome TEXT
);
-- The origin service (`edge-authz serve`): the answer each `Idempotency-Key` was given, written
-- with the change's epoch, so that a retry returns it instead of making a new one.
CREATE TABLE IF NOT EXISTS idempotency (
  key TEXT PRIMARY KEY,
  request TEXT NOT NULL,         -- hex SHA-256 of the method, path and body
  epoch INTEGER NOT NULL,
  revokes INTEGER NOT NULL,
  unchanged INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
-- The origin service's SCIM resources (Users and Groups), written with the epoch they cause.
CREATE TABLE IF NOT EXISTS scim (
  kind TEXT NOT NULL,            -- User | Group
  id TEXT NOT NULL,
  body TEXT NOT NULL,            -- the resource's SCIM JSON
  version INTEGER NOT NULL,
  PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  pid INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  mode TEXT NOT NULL
);
";

/// The latest epoch, whole.
#[derive(Debug, Clone)]
pub struct Latest {
    pub epoch: u64,
    pub digest: String,
    pub model: String,
    /// Kept when the latest epoch is a snapshot epoch (initial, checkpoint, recovery).
    pub snapshot: Option<Vec<u8>>,
}

/// One step of the chain an edge replays: a revocation's watermark (carrying its delta) or a
/// grant's delta.
#[derive(Debug, Clone)]
pub struct Link {
    pub epoch: u64,
    pub revokes: bool,
    pub bytes: Vec<u8>,
}

/// What the journal knows of one edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeRow {
    pub url: String,
    /// `None`: never heard; `Some(None)`: the edge holds no snapshot.
    pub epoch: Option<Option<u64>>,
    pub watermark: u64,
    pub heard_at: Option<u64>,
    pub last_error: Option<String>,
    pub failures: u64,
}

/// A job an earlier run left open: id, epoch, kind, the step it had reached.
pub type OpenJob = (u64, Option<u64>, String, String);

/// A new epoch, written whole or not at all.
pub struct NewEpoch<'a> {
    pub epoch: u64,
    pub kind: &'a str,
    pub revokes: bool,
    pub digest: &'a str,
    pub changed_at: u64,
    pub issued_at: u64,
    pub model: &'a str,
    pub snapshot: Option<&'a [u8]>,
    pub delta: Option<&'a [u8]>,
    pub watermark: Option<&'a [u8]>,
    pub ops: usize,
}

pub struct Store {
    conn: Connection,
    pub tenant: String,
    pub run: u64,
    _lock: Option<File>,
}

fn db_err(e: rusqlite::Error) -> Fail {
    Fail(format!("publisher journal: {e}"))
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub fn paths(dir: &Path, tenant: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{tenant}.sqlite")),
        dir.join(format!("{tenant}.lock")),
    )
}

impl Store {
    /// Opens (creating) the journal of `tenant` and takes its lock: one publisher per tenant.
    pub fn open(dir: &Path, tenant: &str, mode: &str, now: u64) -> Result<Store, Fail> {
        fs::create_dir_all(dir)
            .map_err(|e| Fail(format!("cannot create `{}`: {e}", dir.display())))?;
        let (db, lock_path) = paths(dir, tenant);
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .read(true)
            .open(&lock_path)
            .map_err(|e| Fail(format!("cannot open `{}`: {e}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            let holder = fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(Fail(format!(
                "another publisher holds the lock for tenant `{tenant}` ({}; pid {}) [locked]",
                lock_path.display(),
                holder.trim()
            )));
        }
        // Who holds it, for the message above (the lock itself is what counts).
        let _ = lock.set_len(0);
        let _ = write!(lock, "{}", std::process::id());
        let conn = Self::connect(&db)?;
        let mut store = Store {
            conn,
            tenant: tenant.to_string(),
            run: 0,
            _lock: Some(lock),
        };
        store.check_tenant()?;
        store
            .conn
            .execute(
                "INSERT INTO runs (pid, started_at, mode) VALUES (?1, ?2, ?3)",
                params![std::process::id(), int(now), mode],
            )
            .map_err(db_err)?;
        store.run = uint(store.conn.last_insert_rowid());
        Ok(store)
    }

    /// Opens the journal for reading only (`publish --status`), without the lock.
    pub fn read_only(dir: &Path, tenant: &str) -> Result<Store, Fail> {
        let (db, _) = paths(dir, tenant);
        if !db.exists() {
            return Err(Fail(format!(
                "no journal for tenant `{tenant}` in `{}`",
                dir.display()
            )));
        }
        let conn = Self::connect(&db)?;
        Ok(Store {
            conn,
            tenant: tenant.to_string(),
            run: 0,
            _lock: None,
        })
    }

    fn connect(db: &Path) -> Result<Connection, Fail> {
        let conn = Connection::open(db)
            .map_err(|e| Fail(format!("cannot open `{}`: {e}", db.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        // The log is copied into the database between changes ([`Store::tidy`]); this is only
        // the bound should the changes never pause (32 MiB of 4 KiB pages).
        conn.pragma_update(None, "wal_autocheckpoint", 8192)
            .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        Self::count_propagation(&conn)?;
        Ok(conn)
    }

    /// Creates the propagation histograms (`propagation_schema`) in a journal that has none (a
    /// new one, or one written before they were kept), counting the acknowledgements it holds,
    /// in one immediate transaction: two processes opening it at once count them once.
    fn count_propagation(conn: &Connection) -> Result<(), Fail> {
        let has = |c: &Connection| -> Result<bool, Fail> {
            c.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'propagation'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(db_err)
        };
        if has(conn)? {
            return Ok(());
        }
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        let done = (|| {
            if !has(conn)? {
                conn.execute_batch(&propagation_schema()).map_err(db_err)?;
            }
            conn.execute_batch("COMMIT").map_err(db_err)
        })();
        if done.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        done
    }

    /// The propagation histogram of revocations (`revokes`) or grants, as the journal keeps it.
    pub fn propagation(&self, revokes: bool) -> Result<Propagation, Fail> {
        let mut out = Propagation::default();
        let mut q = self
            .conn
            .prepare("SELECT bucket, count, sum_ms FROM propagation WHERE revokes = ?1")
            .map_err(db_err)?;
        let rows = q
            .query_map(params![revokes], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(db_err)?;
        for row in rows {
            let (bucket, count, sum) = row.map_err(db_err)?;
            if let Some(c) = usize::try_from(bucket)
                .ok()
                .and_then(|b| out.counts.get_mut(b))
            {
                *c = c.saturating_add(uint(count));
            }
            out.sum_ms = out.sum_ms.saturating_add(uint(sum));
        }
        Ok(out)
    }

    /// Between changes: copies the write-ahead log into the database (what SQLite would do in
    /// the middle of a commit once the log passed 4 MiB, a change's tail latency for a large
    /// model), without waiting for readers.
    pub fn tidy(&self) -> Result<(), Fail> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(db_err)
    }

    /// Runs `write` in one immediate transaction synced to disk before it returns (`synchronous
    /// = FULL`): the epochs and what is written with them (idempotency keys, SCIM rows). The
    /// bookkeeping written after an edge answers (acknowledgements, jobs) commits without its own
    /// sync (`NORMAL`: a process crash keeps it; a power loss may lose the last of it, which only
    /// makes the next run push again), and reaches the disk with the next synced write, since
    /// the write-ahead log is synced whole.
    fn durably(
        &mut self,
        write: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), Fail>,
    ) -> Result<(), Fail> {
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        let done = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            write(&tx)?;
            tx.commit().map_err(db_err)
        })();
        let back = self.conn.pragma_update(None, "synchronous", "NORMAL");
        done?;
        back.map_err(db_err)
    }

    fn check_tenant(&mut self) -> Result<(), Fail> {
        let held: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'tenant'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err)?;
        match held {
            Some(t) if t != self.tenant => Err(Fail(format!(
                "this journal belongs to tenant `{t}`, not `{}` [tenant_mismatch]",
                self.tenant
            ))),
            Some(_) => Ok(()),
            None => self
                .conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('tenant', ?1)",
                    [&self.tenant],
                )
                .map(|_| ())
                .map_err(db_err),
        }
    }

    /// Tenants with a journal in `dir`.
    pub fn tenants(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().to_string();
                        name.strip_suffix(".sqlite").map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    pub fn latest_epoch(&self) -> Result<Option<u64>, Fail> {
        self.conn
            .query_row("SELECT MAX(epoch) FROM epochs", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|v| v.map(uint))
            .map_err(db_err)
    }

    pub fn latest(&self) -> Result<Option<Latest>, Fail> {
        self.conn
            .query_row(
                "SELECT epoch, digest, model, snapshot FROM epochs ORDER BY epoch DESC LIMIT 1",
                [],
                |r| {
                    Ok(Latest {
                        epoch: uint(r.get(0)?),
                        digest: r.get(1)?,
                        model: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        snapshot: r.get::<_, Option<Vec<u8>>>(3)?,
                    })
                },
            )
            .optional()
            .map_err(db_err)
    }

    /// The revocation watermark: the latest epoch that removed access (0 if none).
    pub fn watermark(&self) -> Result<u64, Fail> {
        self.conn
            .query_row(WATERMARK, [], |r| r.get::<_, i64>(0))
            .map(uint)
            .map_err(db_err)
    }

    /// Writes a new epoch and its messages in one transaction; the previous latest epoch's model
    /// and snapshot are dropped in the same step.
    pub fn issue(
        &mut self,
        e: &NewEpoch<'_>,
        edges: &[String],
        extra: Option<super::Extra<'_>>,
    ) -> Result<(), Fail> {
        let run = self.run;
        self.durably(|tx| {
            tx.execute(CLEAR_KEPT, [int(e.epoch)]).map_err(db_err)?;
            tx.execute(
                "INSERT INTO epochs (epoch, kind, revokes, digest, changed_at, issued_at, model,
                                     snapshot, delta, watermark, ops)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    int(e.epoch),
                    e.kind,
                    e.revokes,
                    e.digest,
                    int(e.changed_at),
                    int(e.issued_at),
                    e.model,
                    e.snapshot,
                    e.delta,
                    e.watermark,
                    e.ops as i64
                ],
            )
            .map_err(db_err)?;
            for url in edges {
                tx.execute(
                    "INSERT INTO acks (epoch, edge, run) VALUES (?1, ?2, ?3)",
                    params![int(e.epoch), url, int(run)],
                )
                .map_err(db_err)?;
            }
            if let Some(extra) = extra {
                extra(tx, Some((e.epoch, e.revokes))).map_err(db_err)?;
            }
            Ok(())
        })
    }

    /// Runs `extra` in a transaction of its own, synced like an epoch's.
    pub fn commit(&mut self, extra: super::Extra<'_>) -> Result<(), Fail> {
        self.durably(|tx| extra(tx, None).map_err(db_err))
    }

    /// The links of the last `max` epochs up to `to`, by epoch (the first epoch has none).
    pub fn chain(&self, to: u64, max: u64) -> Result<BTreeMap<u64, Link>, Fail> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT epoch, revokes, delta, watermark FROM epochs
                 WHERE epoch > ?1 AND epoch <= ?2 ORDER BY epoch",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([int(to.saturating_sub(max)), int(to)], |r| {
                let revokes: bool = r.get(1)?;
                let delta: Option<Vec<u8>> = r.get(2)?;
                let wm: Option<Vec<u8>> = r.get(3)?;
                Ok((uint(r.get(0)?), revokes, if revokes { wm } else { delta }))
            })
            .map_err(db_err)?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (epoch, revokes, bytes) = row.map_err(db_err)?;
            if let Some(bytes) = bytes {
                out.insert(
                    epoch,
                    Link {
                        epoch,
                        revokes,
                        bytes,
                    },
                );
            }
        }
        Ok(out)
    }

    pub fn edge(&self, url: &str) -> Result<EdgeRow, Fail> {
        let row = self
            .conn
            .query_row(
                "SELECT epoch, watermark, heard_at, last_error, failures FROM edges WHERE url = ?1",
                [url],
                |r| {
                    let heard: Option<i64> = r.get(2)?;
                    Ok(EdgeRow {
                        url: url.to_string(),
                        epoch: heard
                            .map(|_| r.get::<_, Option<i64>>(0).map(|e| e.map(uint)))
                            .transpose()?,
                        watermark: uint(r.get(1)?),
                        heard_at: heard.map(uint),
                        last_error: r.get(3)?,
                        failures: uint(r.get(4)?),
                    })
                },
            )
            .optional()
            .map_err(db_err)?;
        Ok(row.unwrap_or_else(|| EdgeRow {
            url: url.to_string(),
            ..EdgeRow::default()
        }))
    }

    pub fn edges(&self) -> Result<Vec<EdgeRow>, Fail> {
        let mut stmt = self
            .conn
            .prepare("SELECT url FROM edges ORDER BY url")
            .map_err(db_err)?;
        let urls = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        urls.iter().map(|u| self.edge(u)).collect()
    }

    /// Records what an edge answered (its head after the answer) and the acknowledgements that
    /// follow from it, in one transaction.
    pub fn record_edge(&mut self, row: &EdgeRow, now: u64) -> Result<(), Fail> {
        let tx = self.conn.transaction().map_err(db_err)?;
        // An edge not heard from in this run keeps what it last acknowledged.
        let known = row.epoch.is_some();
        let epoch = row.epoch.flatten().map(int);
        tx.execute(
            "INSERT INTO edges (url, epoch, watermark, heard_at, last_error, failures)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (url) DO UPDATE SET
               epoch = CASE WHEN ?7 THEN ?2 ELSE epoch END,
               watermark = CASE WHEN ?7 THEN ?3 ELSE watermark END,
               heard_at = COALESCE(?4, heard_at), last_error = ?5, failures = ?6",
            params![
                row.url,
                epoch,
                int(row.watermark),
                row.heard_at.map(int),
                row.last_error,
                int(row.failures),
                known
            ],
        )
        .map_err(db_err)?;
        if known {
            // Applied: every expected epoch up to the edge's epoch (and so enforced). Enforced:
            // every revocation up to its watermark.
            tx.execute(APPLY, params![row.url, epoch, int(now)])
                .map_err(db_err)?;
            tx.execute(ENFORCE, params![row.url, int(row.watermark), int(now)])
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    pub fn job_start(&mut self, epoch: Option<u64>, kind: &str, now: u64) -> Result<u64, Fail> {
        self.conn
            .execute(
                "INSERT INTO jobs (run, epoch, kind, started_at, step) VALUES (?1, ?2, ?3, ?4, 'started')",
                params![int(self.run), epoch.map(int), kind, int(now)],
            )
            .map_err(db_err)?;
        Ok(uint(self.conn.last_insert_rowid()))
    }

    pub fn job_step(&mut self, job: u64, step: &str) -> Result<(), Fail> {
        self.conn
            .execute(
                "UPDATE jobs SET step = ?2 WHERE id = ?1",
                params![int(job), step],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    pub fn job_end(
        &mut self,
        job: u64,
        now: u64,
        bytes: u64,
        budget_ms: u64,
        outcome: &str,
    ) -> Result<(), Fail> {
        self.conn
            .execute(
                "UPDATE jobs SET step = 'done', ended_at = ?2, bytes = ?3, budget_ms = ?4, outcome = ?5
                 WHERE id = ?1",
                params![int(job), int(now), int(bytes), int(budget_ms), outcome],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    /// Jobs an earlier run left open: where it stopped.
    pub fn interrupted(&self) -> Result<Vec<OpenJob>, Fail> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, epoch, kind, step FROM jobs WHERE ended_at IS NULL AND run < ?1 ORDER BY id",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([int(self.run)], |r| {
                Ok((
                    uint(r.get(0)?),
                    r.get::<_, Option<i64>>(1)?.map(uint),
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    pub fn close_interrupted(&mut self, now: u64) -> Result<(), Fail> {
        self.conn
            .execute(
                "UPDATE jobs SET ended_at = ?2, outcome = 'interrupted' WHERE ended_at IS NULL AND run < ?1",
                params![int(self.run), int(now)],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    /// A read-only query for the status report.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::{NewEpoch, Store};

    fn epoch<'a>(epoch: u64, kind: &'a str, snapshot: Option<&'a [u8]>) -> NewEpoch<'a> {
        NewEpoch {
            epoch,
            kind,
            revokes: kind == "revocation",
            digest: "d",
            changed_at: epoch,
            issued_at: epoch,
            model: "{}",
            snapshot,
            delta: (epoch > 1).then_some(b"delta".as_slice()),
            watermark: (kind == "revocation").then_some(b"watermark".as_slice()),
            ops: 1,
        }
    }

    const EDGE: &str = "http://127.0.0.1:1";

    /// A journal in `dir` with its first epoch (a snapshot epoch) issued to one edge.
    fn started(dir: &std::path::Path) -> Result<(Store, [String; 1]), String> {
        let mut s = Store::open(dir, "acme", "test", 0).map_err(|e| e.0)?;
        let edges = [EDGE.to_string()];
        s.issue(&epoch(1, "initial", Some(b"snap-1")), &edges, None)
            .map_err(|e| e.0)?;
        Ok((s, edges))
    }

    /// The latest epoch keeps its model always and its snapshot only when it is a snapshot
    /// epoch; the previous latest loses both in the same transaction; the synced and unsynced
    /// writes and the log's copy between changes leave everything readable.
    #[test]
    fn the_latest_epoch_keeps_a_snapshot_only_when_it_is_a_snapshot_epoch() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let fail = |e: super::Fail| e.0;
        let (mut s, edges) = started(dir.path())?;
        let l = s.latest().map_err(fail)?.ok_or("no epoch")?;
        assert_eq!(
            (l.epoch, l.snapshot.as_deref()),
            (1, Some(b"snap-1".as_slice()))
        );
        s.issue(&epoch(2, "revocation", None), &edges, None)
            .map_err(fail)?;
        s.tidy().map_err(fail)?;
        let l = s.latest().map_err(fail)?.ok_or("no epoch")?;
        assert_eq!((l.epoch, l.snapshot, l.model.as_str()), (2, None, "{}"));
        let old: (Option<String>, Option<Vec<u8>>) = s
            .conn()
            .query_row(
                "SELECT model, snapshot FROM epochs WHERE epoch = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| e.to_string())?;
        assert_eq!(old, (None, None));
        assert_eq!(s.watermark().map_err(fail)?, 2);
        let chain = s.chain(2, 8).map_err(fail)?;
        let link = chain.get(&2).ok_or("no link")?;
        assert_eq!(
            (chain.len(), link.bytes.as_slice()),
            (1, b"watermark".as_slice())
        );
        Ok(())
    }

    /// Over a longer history: one row keeps a model at a time, the watermark is the latest
    /// revocation, and an edge's acknowledgement marks the revocations up to its watermark
    /// enforced and no grant.
    #[test]
    fn one_row_keeps_a_model_and_the_watermark_is_the_latest_revocation() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let fail = |e: super::Fail| e.0;
        let (mut s, edges) = started(dir.path())?;
        let mut last_revocation = 0;
        for e in 2..=40u64 {
            let kind = match e % 7 {
                0 => "checkpoint",
                3 | 5 => "revocation",
                _ => "grant",
            };
            let snap = (kind == "checkpoint").then_some(b"snap".as_slice());
            s.issue(&epoch(e, kind, snap), &edges, None).map_err(fail)?;
            if kind == "revocation" {
                last_revocation = e;
            }
            let kept: i64 = s
                .conn()
                .query_row(
                    "SELECT COUNT(*) FROM epochs WHERE model IS NOT NULL OR snapshot IS NOT NULL",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| e.to_string())?;
            assert_eq!(kept, 1, "after epoch {e}");
            assert_eq!(s.watermark().map_err(fail)?, last_revocation);
        }
        let tx = s
            .conn()
            .unchecked_transaction()
            .map_err(|e| e.to_string())?;
        tx.execute(super::ENFORCE, rusqlite::params![edges[0], 20, 99])
            .map_err(|e| e.to_string())?;
        let enforced: Vec<i64> = tx
            .prepare("SELECT epoch FROM acks WHERE enforced_at = 99 ORDER BY epoch")
            .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| e.to_string())?;
        assert_eq!(enforced, vec![3, 5, 10, 12, 17, 19]);
        Ok(())
    }

    /// The histogram of `ms` (as `status::latencies` lists the times) over the buckets.
    fn bucketed(ms: &[u64]) -> super::Propagation {
        let mut h = super::Propagation::default();
        for t in ms {
            let b = super::PROPAGATION_BUCKETS_MS
                .iter()
                .position(|b| t <= b)
                .unwrap_or(super::PROPAGATION_BUCKETS_MS.len());
            if let Some(c) = h.counts.get_mut(b) {
                *c += 1;
            }
            h.sum_ms += t;
        }
        h
    }

    /// The propagation histograms the journal keeps as acknowledgements are written equal the
    /// histograms of every acknowledgement's time (`status::latencies`, a scan of the history),
    /// in both directions; a journal written before they were kept gets them counted when
    /// opened, and then keeps counting.
    #[test]
    fn propagation_histograms_count_every_acknowledgement_once() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let fail = |e: super::Fail| e.0;
        let (mut s, _) = started(dir.path())?;
        let edges = [EDGE.to_string(), "http://127.0.0.1:2".to_string()];
        let answer = |s: &mut Store, url: &str, epoch: u64, watermark: u64, now: u64| {
            let row = super::EdgeRow {
                url: url.to_string(),
                epoch: Some(Some(epoch)),
                watermark,
                heard_at: Some(now),
                last_error: None,
                failures: 0,
            };
            s.record_edge(&row, now)
        };
        let agree = |s: &Store| -> Result<(), String> {
            for revokes in [true, false] {
                let ms = crate::publish::status::latencies(s, revokes, None).map_err(fail)?;
                assert!(!ms.is_empty(), "revokes {revokes}: no acknowledgement");
                assert_eq!(
                    s.propagation(revokes).map_err(fail)?,
                    bucketed(&ms),
                    "revokes {revokes}"
                );
            }
            Ok(())
        };
        let mut watermark = 0;
        for e in 2..=60u64 {
            let kind = match e % 9 {
                0 => "checkpoint",
                2 | 4 | 7 => "revocation",
                _ => "grant",
            };
            let mut next = epoch(
                e,
                kind,
                (kind == "checkpoint").then_some(b"snap".as_slice()),
            );
            next.changed_at = e * 1_000;
            s.issue(&next, &edges, None).map_err(fail)?;
            if kind == "revocation" {
                watermark = e;
            }
            // The first edge enforces each revocation at once and applies every third epoch,
            // times spread over the buckets (one from a clock that stepped back); the second
            // answers every fifth epoch, late.
            let spread = [
                0, 3, 7, 40, 90, 240, 600, 2_000, 4_000, 9_000, 20_000, 50_000, 100_000, 400_000,
            ];
            let t = e * 1_000 + spread.get((e % 14) as usize).copied().unwrap_or(0);
            let held = if e % 3 == 0 { e } else { e - 1 };
            answer(
                &mut s,
                &edges[0],
                held,
                watermark,
                if e == 11 { t - 5_000 } else { t },
            )
            .map_err(fail)?;
            if e % 5 == 0 {
                answer(&mut s, &edges[1], e, watermark, e * 1_000 + 700_000).map_err(fail)?;
            }
            // An answer repeated changes nothing.
            answer(&mut s, &edges[0], held, watermark, t + 1).map_err(fail)?;
        }
        agree(&s)?;
        // A journal from before: its histograms gone, they are counted when it is opened.
        s.conn()
            .execute_batch(
                "DROP TRIGGER acks_enforced; DROP TRIGGER acks_applied; DROP TABLE propagation;",
            )
            .map_err(|e| e.to_string())?;
        drop(s);
        let mut s = Store::open(dir.path(), "acme", "test", 0).map_err(fail)?;
        agree(&s)?;
        let other = Store::read_only(dir.path(), "acme").map_err(fail)?;
        agree(&other)?;
        answer(&mut s, &edges[1], 60, watermark, 61_000 + 20).map_err(fail)?;
        agree(&s)?;
        agree(&other)
    }

    /// The statements run for each new epoch and each acknowledgement find their rows by an
    /// index, never by a scan of the epochs' history (whose length grows without bound).
    #[test]
    fn per_epoch_statements_use_an_index_not_a_scan_of_the_history() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let s = Store::open(dir.path(), "acme", "test", 0).map_err(|e| e.0)?;
        for (sql, index) in [
            (super::CLEAR_KEPT, "epochs_kept"),
            (super::WATERMARK, "epochs_revoking"),
            (super::ENFORCE, "acks_unenforced"),
        ] {
            let plan: Vec<String> = s
                .conn()
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .and_then(|mut q| {
                    let n = q.parameter_count();
                    let args: Vec<i64> = vec![1; n];
                    q.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))?
                        .collect()
                })
                .map_err(|e| e.to_string())?;
            let plan = plan.join("; ");
            assert!(plan.contains(index), "{sql}: {plan}");
            assert!(!plan.contains("SCAN"), "{sql}: {plan}");
        }
        Ok(())
    }
}

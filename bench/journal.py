#!/usr/bin/env python3
"""What a new epoch's journal statements cost as the history grows.

The publisher's journal (crates/cli/src/publish/store.rs) keeps every epoch's row. Each new epoch
clears the model and snapshot the previous latest held, and reads the watermark; this times
those statements, as store.rs has them (its schema and statements are read from the file), on a
journal of N earlier epochs, against the statement the journal used before it had its index (an
UPDATE of every earlier row). SQLite through Python's sqlite3 module, in a temporary file.

Then what /metrics reads for the propagation histograms on a journal of N epochs acknowledged by
two edges: the buckets the journal keeps (counted by triggers as acknowledgements are written;
target/release/edge-authz opens the journal once to add them, so build it first), against every
acknowledgement's time (status.rs's query, what it read before); and one acknowledgement's
statements (store.rs's APPLY and ENFORCE) with those triggers and without.

    python3 bench/journal.py [N ...]        # default: 1000 10000 100000
"""
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SOURCE = open(os.path.join(ROOT, "crates/cli/src/publish/store.rs"), encoding="utf-8").read()


def const(name):
    m = re.search(r'const %s: &str = "(.*?)";' % name, SOURCE, re.S)
    if not m:
        sys.exit("store.rs: no const %s" % name)
    return m.group(1)


SCHEMA = const("SCHEMA")
CLEAR_KEPT = const("CLEAR_KEPT")
WATERMARK = const("WATERMARK")
APPLY = const("APPLY")
ENFORCE = const("ENFORCE")
STATUS = open(os.path.join(ROOT, "crates/cli/src/publish/status.rs"), encoding="utf-8").read()
# What /metrics read before the journal kept its propagation histograms: every acknowledgement's
# time, one direction at a time (status.rs's `latencies`, still what the report lists).
m = re.search(r'"(SELECT a\.\{column\} - e\.changed_at FROM acks.*?)"', STATUS, re.S)
if not m:
    sys.exit("status.rs: no latencies query")
LATENCIES = m.group(1)
m = re.search(r'"(SELECT bucket, count, sum_ms FROM propagation WHERE revokes = \?1)"', SOURCE)
if not m:
    sys.exit("store.rs: no propagation query")
PROPAGATION = m.group(1)
BINARY = os.path.join(ROOT, "target/release/edge-authz")
# Before the journal had `epochs_kept`: every earlier row rewritten.
CLEAR_ALL = "UPDATE epochs SET model = NULL, snapshot = NULL WHERE epoch < ?1"


def journal(n):
    path = os.path.join(tempfile.mkdtemp(prefix="edge-authz-journal-"), "acme.sqlite")
    c = sqlite3.connect(path)
    c.executescript(SCHEMA)
    rows = [(e, "revocation" if e % 50 == 0 else "grant", int(e % 50 == 0), "ab" * 32, e, e,
             None, None, b"d" * 200, None, 1) for e in range(1, n + 1)]
    c.executemany("INSERT INTO epochs VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    c.commit()
    return c, path


def median(f, rounds=7):
    """The median of `rounds` calls of f."""
    xs = sorted(f() for _ in range(rounds))
    return xs[len(xs) // 2]


def timed(c, sql, args):
    """The median time of a statement and its commit, ms."""
    def once():
        t = time.perf_counter()
        c.execute(sql, args).fetchall()
        c.commit()
        return (time.perf_counter() - t) * 1000
    return median(once)


def acknowledged(n):
    """A journal of n epochs acknowledged by two edges, but the last by edge `a`, opened once by
    the command line (which counts its propagation histograms and adds their triggers)."""
    c, path = journal(n)
    c.execute("INSERT INTO meta (key, value) VALUES ('tenant', 'acme')")
    rows = []
    for e in range(1, n + 1):
        for edge, late in (("a", 30), ("b", 400)):
            done = None if (edge == "a" and e == n) else e + late + e % 7
            rows.append((e, edge, done, done, 1))
    c.executemany("INSERT INTO acks VALUES (?,?,?,?,?)", rows)
    c.commit()
    c.close()
    subprocess.run([BINARY, "publish", "--status", "--tenant", "acme", "--state",
                    os.path.dirname(path)], check=True, capture_output=True)
    return sqlite3.connect(path), path


# A direction's revocations flag and the acknowledgement time it counts.
DIRECTIONS = ((1, "enforced_at"), (0, "applied_at"))


def scrape_before(c):
    t = time.perf_counter()
    for revokes, column in DIRECTIONS:
        sorted(c.execute(LATENCIES.replace("{column}", column), (revokes, None)).fetchall())
    return (time.perf_counter() - t) * 1000


def scrape_now(c):
    t = time.perf_counter()
    for revokes, _ in DIRECTIONS:
        c.execute(PROPAGATION, (revokes,)).fetchall()
    return (time.perf_counter() - t) * 1000


def acknowledge(c, n):
    """One edge's acknowledgement of the latest epoch (applied and enforced), rolled back."""
    t = time.perf_counter()
    c.execute("BEGIN")
    c.execute(APPLY, ("a", n, n + 50))
    c.execute(ENFORCE, ("a", n, n + 50))
    c.execute("ROLLBACK")
    return (time.perf_counter() - t) * 1000


def scrapes(sizes):
    if not os.path.exists(BINARY):
        sys.exit("%s: build it first (cargo build --release -p edge-authz-cli)" % BINARY)
    print()
    print("/metrics' propagation histograms (both directions) and one acknowledgement, median of 7, ms")
    print("| epochs (2 edges) | every acknowledgement's time (before) | the kept histograms (now) "
          "| an acknowledgement, with the histograms' triggers | without them |")
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        c, path = acknowledged(n)
        c.isolation_level = None
        before = median(lambda: scrape_before(c))
        now = median(lambda: scrape_now(c))
        counted = c.execute("SELECT SUM(count) FROM propagation").fetchone()[0]
        listed = sum(len(c.execute(LATENCIES.replace("{column}", column), (r, None)).fetchall())
                     for r, column in DIRECTIONS)
        if counted != listed:
            sys.exit("the histograms count %s acknowledgements, the journal lists %s" % (counted, listed))
        with_triggers = median(lambda: acknowledge(c, n))
        c.execute("DROP TRIGGER acks_enforced")
        c.execute("DROP TRIGGER acks_applied")
        without = median(lambda: acknowledge(c, n))
        print("| {:,} | {:.3f} | {:.3f} | {:.3f} | {:.3f} |".format(n, before, now, with_triggers, without))
        c.close()
        for f in os.listdir(os.path.dirname(path)):
            os.remove(os.path.join(os.path.dirname(path), f))
        os.rmdir(os.path.dirname(path))


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10000, 100000]
    print("SQLite %s; median of 7, ms" % sqlite3.sqlite_version)
    print("| earlier epochs | clear, every earlier row | clear, by epochs_kept | watermark |")
    print("|---:|---:|---:|---:|")
    for n in sizes:
        c, path = journal(n)
        before = timed(c, CLEAR_ALL, (n + 1,))
        after = timed(c, CLEAR_KEPT, (n + 1,))
        wm = timed(c, WATERMARK, ())
        print("| {:,} | {:.3f} | {:.3f} | {:.3f} |".format(n, before, after, wm))
        c.close()
        os.remove(path)
        os.rmdir(os.path.dirname(path))
    scrapes(sizes)


main()

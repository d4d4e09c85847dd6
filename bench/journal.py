#!/usr/bin/env python3
"""What a new epoch's journal statements cost as the history grows.

The publisher's journal (crates/cli/src/publish/store.rs) keeps every epoch's row. Each new epoch
clears the model and snapshot the previous latest held, and reads the watermark; this times
those statements, as store.rs has them (its schema and statements are read from the file), on a
journal of N earlier epochs, against the statement the journal used before it had its index (an
UPDATE of every earlier row). SQLite through Python's sqlite3 module, in a temporary file.

    python3 bench/journal.py [N ...]        # default: 1000 10000 100000
"""
import os
import re
import sqlite3
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
# Before the journal had `epochs_kept`: every earlier row rewritten.
CLEAR_ALL = "UPDATE epochs SET model = NULL, snapshot = NULL WHERE epoch < ?1"


def journal(n):
    path = os.path.join(tempfile.mkdtemp(prefix="edge-authz-journal-"), "j.db")
    c = sqlite3.connect(path)
    c.executescript(SCHEMA)
    rows = [(e, "revocation" if e % 50 == 0 else "grant", int(e % 50 == 0), "ab" * 32, e, e,
             None, None, b"d" * 200, None, 1) for e in range(1, n + 1)]
    c.executemany("INSERT INTO epochs VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    c.commit()
    return c, path


def timed(c, sql, args, rounds=7):
    best = []
    for _ in range(rounds):
        t = time.perf_counter()
        c.execute(sql, args).fetchall()
        c.commit()
        best.append((time.perf_counter() - t) * 1000)
    best.sort()
    return best[len(best) // 2]


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


main()

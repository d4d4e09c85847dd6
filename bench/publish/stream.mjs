// A long-running `edge-authz publish --stdin --json` child: lines written one at a time, its JSON
// events read back with their arrival time (performance.now(), ms), and the waits of the benchmark
// ("the next event matching ... after index i, within t ms").
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/** Every child started here, so that an exit (normal, error, signal) can kill what still runs. */
const children = new Set();

export function killAll() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
}

export class StdinPublisher {
  /** `args`: the publish arguments after `publish` (without --json / --stdin, added here). */
  constructor(bin, args, { label = 'publish --stdin' } = {}) {
    this.label = label;
    this.events = [];
    this.stderr = '';
    this.exit = null;
    this.waiters = new Set();
    this.child = spawn(bin, ['publish', '--json', '--stdin', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(this.child);
    let rest = '';
    this.child.stdout.on('data', (chunk) => {
      const at = performance.now();
      rest += chunk.toString('utf8');
      const lines = rest.split('\n');
      rest = lines.pop();
      for (const line of lines) {
        let v;
        try {
          v = JSON.parse(line);
        } catch {
          continue;
        }
        if (v && typeof v === 'object' && v.event) {
          v.at = at;
          this.events.push(v);
        }
      }
      this.notify();
    });
    this.child.stderr.on('data', (d) => {
      this.stderr += d;
      if (this.stderr.length > 1 << 20) this.stderr = this.stderr.slice(-(1 << 19));
    });
    this.closed = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        children.delete(this.child);
        this.exit = { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
    this.child.on('error', (e) => {
      this.exit ??= { code: null, signal: null, error: e };
      this.notify();
    });
    // A closed pipe (the child died) must not crash this process: the waits report it.
    this.child.stdin.on('error', () => {});
  }

  notify() {
    for (const w of [...this.waiters]) w();
  }

  /** Writes one change (a JSON value) as a line; returns the time just before the write. */
  write(value) {
    const line = typeof value === 'string' ? value : JSON.stringify(value);
    const t = performance.now();
    this.child.stdin.write(line + '\n');
    return t;
  }

  /**
   * The first event at index >= `from` that passes `pred`: {ev, index}. Rejects when `timeoutMs`
   * passes first or the child exits without it.
   */
  waitFor(pred, { from = 0, timeoutMs = 30_000, what = 'an event' } = {}) {
    return new Promise((resolve, reject) => {
      let i = from;
      let timer;
      const check = () => {
        for (; i < this.events.length; i++) {
          if (pred(this.events[i])) {
            done();
            resolve({ ev: this.events[i], index: i });
            return;
          }
        }
        if (this.exit) {
          done();
          reject(new Error(`${this.label} exited (${JSON.stringify(this.exit)}) before ${what}\n${this.stderr.slice(-2000)}`));
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms\n${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves once no event arrived for `quietMs` (or the child exited). */
  async quiet(quietMs) {
    for (;;) {
      const n = this.events.length;
      await new Promise((r) => setTimeout(r, quietMs));
      if (this.events.length === n || this.exit) return;
    }
  }

  /** Ends the input and waits for the child to exit (killed after `timeoutMs`). */
  async end(timeoutMs = 30_000) {
    this.child.stdin.end();
    let timer;
    const killed = new Promise((resolve) => {
      timer = setTimeout(() => {
        this.kill();
        resolve({ code: null, signal: 'SIGKILL', timedOut: true });
      }, timeoutMs);
    });
    const r = await Promise.race([this.closed, killed]);
    clearTimeout(timer);
    return r;
  }

  kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /**
   * One change: writes `value`, waits for its `issued` event, for a revocation its
   * `revocation_acknowledged` (or `revocation_unacknowledged`), and for every edge of `urls` a
   * `caught_up` at its epoch or later. Returns the figures of the change; throws on `rejected`,
   * `unchanged` or a timeout.
   */
  async change(value, urls, { timeoutMs = 30_000 } = {}) {
    const from = this.events.length;
    const t0 = this.write(value);
    const { ev: issued, index: ii } = await this.waitFor(
      (e) => (e.event === 'issued' && e.kind !== 'checkpoint') || e.event === 'rejected' || e.event === 'unchanged',
      { from, timeoutMs, what: 'issued event' },
    );
    if (issued.event !== 'issued') throw new Error(`${this.label}: the change was ${issued.event}: ${JSON.stringify(issued)}`);
    const epoch = issued.epoch;
    let ack = null;
    let last = ii;
    if (issued.revokes) {
      const r = await this.waitFor(
        (e) => (e.event === 'revocation_acknowledged' || e.event === 'revocation_unacknowledged') && e.epoch === epoch,
        { from: ii, timeoutMs, what: `revocation_acknowledged of epoch ${epoch}` },
      );
      ack = r.ev;
      last = Math.max(last, r.index);
    }
    const caught = {};
    for (const url of urls) {
      const r = await this.waitFor((e) => e.event === 'caught_up' && e.edge === url && e.epoch >= epoch, {
        from: ii,
        timeoutMs,
        what: `caught_up of ${url} at epoch ${epoch}`,
      });
      caught[url] = r.ev.at - t0;
      last = Math.max(last, r.index);
    }
    const window = this.events.slice(ii, last + 1);
    const pushed = window.filter((e) => e.event === 'pushed' && (e.edgeEpoch == null || e.edgeEpoch <= epoch));
    return {
      epoch,
      kind: issued.kind,
      ops: issued.ops,
      deltaBytes: issued.deltaBytes,
      watermarkBytes: issued.watermarkBytes,
      snapshotBytes: issued.snapshotBytes,
      acknowledged: ack ? ack.event === 'revocation_acknowledged' : null,
      ackMs: ack?.event === 'revocation_acknowledged' ? ack.ms : null,
      missing: ack?.event === 'revocation_unacknowledged' ? ack.missing : null,
      issuedWallMs: issued.at - t0,
      ackWallMs: ack ? ack.at - t0 : null,
      caughtUpWallMs: Math.max(...Object.values(caught)),
      caughtUp: caught,
      pushed: pushed.map((e) => ({ edge: e.edge, kind: e.kind, bytes: e.bytes })),
      overBudget: window.some((e) => e.event === 'over_budget' && e.epoch === epoch),
      t0,
    };
  }

  /**
   * After a change: waits until the child has been quiet for `quietMs`; a checkpoint issued
   * meanwhile is waited for (every edge caught up at it) and returned, else null.
   */
  async settle(from, urls, quietMs, { timeoutMs = 30_000 } = {}) {
    await this.quiet(quietMs);
    const i = this.events.findIndex((e, k) => k >= from && e.event === 'issued' && e.kind === 'checkpoint');
    if (i < 0) return null;
    const cp = this.events[i];
    const caught = [];
    for (const url of urls) {
      const r = await this.waitFor((e) => e.event === 'caught_up' && e.edge === url && e.epoch >= cp.epoch, {
        from: i,
        timeoutMs,
        what: `caught_up of ${url} at checkpoint ${cp.epoch}`,
      });
      caught.push(r.ev.at - cp.at);
    }
    const pushed = this.events.slice(i).filter((e) => e.event === 'pushed' && e.edgeEpoch === cp.epoch);
    return {
      epoch: cp.epoch,
      snapshotBytes: cp.snapshotBytes,
      deltasSince: cp.deltasSince,
      deltaBytesSince: cp.deltaBytesSince,
      caughtUpMs: Math.max(...caught),
      pushed: pushed.map((e) => ({ edge: e.edge, kind: e.kind, bytes: e.bytes })),
    };
  }
}

/** One whole `edge-authz ARGS` process: {code, signal, events, stdout, stderr, wallMs}. */
export function runOnce(bin, args, { timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`edge-authz ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      children.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      const wallMs = performance.now() - t0;
      clearTimeout(timer);
      children.delete(child);
      const events = stdout.split('\n').flatMap((l) => {
        try {
          const v = JSON.parse(l);
          return v && typeof v === 'object' && v.event ? [v] : [];
        } catch {
          return [];
        }
      });
      resolve({ code, signal, events, stdout, stderr, wallMs });
    });
  });
}

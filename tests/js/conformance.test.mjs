// The conformance suite (tests/conformance/*.json; format in its README) through the npm package's
// JavaScript API, with the semantics of the native harness tests/it/conformance.rs: `expect`
// compares only the keys it lists (an absent key equals null), `expect_error` compares the error's
// `code` and asserts the step left `status()` unchanged, steps without either still must not fail.
// A step's `clock` is the host's clock for that step, given to the evaluator through its `clock`
// option (a push arrives at the time it was issued); without one, the machine's clock applies.
// One test per file; a failing case is reported by file and step index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { subsetMismatch } from './subset.mjs';
import { importPackage, REPO_DIR } from './pkg.mjs';

const { Evaluator, generateKeyPair, compileSnapshot, diffModels, signWatermark, validateModel } =
  await importPackage();

const DIR = path.join(REPO_DIR, 'tests/conformance');
// The number of cases (steps with `expect` or `expect_error`) when this suite was written; the
// suite asserts it runs every case of the files and that the files have not lost any.
const CASES_AT_LEAST = 453;

// Signatures are not compared, so any key will do.
const KEY = generateKeyPair();

const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

// A bug in a conformance file (a missing field), not an answer of the package.
class HarnessError extends Error {}

function u(step, key) {
  const v = step[key];
  if (!Number.isSafeInteger(v) || v < 0) throw new HarnessError(`step needs \`${key}\`: ${JSON.stringify(step)}`);
  return v;
}

function s(req, i) {
  if (!Array.isArray(req) || typeof req[i] !== 'string') {
    throw new HarnessError(`expected a string at ${i} of ${JSON.stringify(req)}`);
  }
  return req[i];
}

// A list's context goes to the JS API as `options.context`, exactly as the file gives it.
function listOptions(step) {
  const o = {};
  if (typeof step.type === 'string') o.type = step.type;
  if ('context' in step) o.context = step.context;
  return o;
}

// As JSON: what the native harness compares (no undefined fields).
const asJson = (v) => JSON.parse(JSON.stringify(v));

function carried(delta) {
  if (delta === undefined || delta === null) return null;
  if (delta.applied) return 'applied';
  return delta.error?.code ?? 'already_applied';
}

// The host's clock at a step: its `clock`, else (a push) its `issued_at`, else the machine's.
function clockOf(step) {
  for (const key of ['clock', 'issued_at']) {
    if (key in step) return u(step, key);
  }
  return null;
}

class Run {
  constructor(models, tenant) {
    this.models = models;
    this.at = null;
    this.clock = () => this.at ?? Date.now();
    this.ev = new Evaluator({ tenant, publicKeys: [KEY.publicKey], clock: this.clock });
  }

  model(name) {
    if (typeof name !== 'string' || !Object.hasOwn(this.models, name)) {
      throw new HarnessError(`no model \`${name}\``);
    }
    return this.models[name];
  }

  outcome(step) {
    const secretKey = KEY.secretKey;
    if ('snapshot' in step) {
      const bytes = compileSnapshot(this.model(step.snapshot), {
        epoch: u(step, 'epoch'),
        issuedAt: u(step, 'issued_at'),
        secretKey,
      });
      return this.ev.loadSnapshot(bytes);
    }
    if ('preview' in step) {
      const next = Evaluator.preview(this.model(step.preview), { clock: this.clock });
      this.ev.free();
      this.ev = next;
      return {};
    }
    if ('delta' in step && !('watermark' in step)) {
      const [a, b] = step.delta;
      const { delta, revokes } = diffModels(this.model(a), this.model(b), {
        baseEpoch: u(step, 'base_epoch'),
        epoch: u(step, 'epoch'),
        issuedAt: u(step, 'issued_at'),
        secretKey,
      });
      const r = this.ev.applyDelta(delta);
      return { epoch: r.epoch, applied: r.applied, revokes };
    }
    if ('watermark' in step) {
      const watermark = u(step, 'watermark');
      let delta;
      if ('delta' in step) {
        const [a, b] = step.delta;
        delta = diffModels(this.model(a), this.model(b), {
          baseEpoch: u(step, 'base_epoch'),
          epoch: watermark,
          issuedAt: u(step, 'issued_at'),
          secretKey,
        }).delta;
      }
      const bytes = signWatermark({
        tenant: this.ev.status().tenant,
        watermark,
        issuedAt: u(step, 'issued_at'),
        secretKey,
        delta,
      });
      const r = this.ev.applyWatermark(bytes);
      return { watermark: r.watermark, epoch: r.epoch, delta: carried(r.delta) };
    }
    if ('check' in step) {
      const req = step.check;
      return this.ev.check(s(req, 0), s(req, 1), s(req, 2), step.context);
    }
    if ('list_resources' in step) {
      const req = step.list_resources;
      return this.ev.listResources(s(req, 0), s(req, 1), listOptions(step));
    }
    if ('list_subjects' in step) {
      const req = step.list_subjects;
      return this.ev.listSubjects(s(req, 0), s(req, 1), listOptions(step));
    }
    if ('status' in step) return this.ev.status();
    throw new HarnessError(`unknown step ${JSON.stringify(step)}`);
  }
}

let total = 0;
let expected = 0;

function runFile(file) {
  const doc = JSON.parse(readFileSync(path.join(DIR, file), 'utf8'));
  const models = {};
  let tenant;
  for (const [name, m] of Object.entries(doc.models ?? {})) {
    const v = typeof m === 'string' ? JSON.parse(readFileSync(path.join(DIR, m), 'utf8')) : m;
    validateModel(v); // the native harness compiles every model first (and panics on an error)
    models[name] = v;
    tenant ??= v.tenant;
  }
  const run = new Run(models, tenant ?? 'acme');
  let cases = 0;
  const failures = [];
  try {
    doc.steps.forEach((step, i) => {
      const before = run.ev.status();
      let got;
      let err;
      run.at = clockOf(step);
      try {
        got = asJson(run.outcome(step));
      } catch (e) {
        if (e instanceof HarnessError) throw e;
        err = e;
      }
      const expect = step.expect;
      const expectError = typeof step.expect_error === 'string' ? step.expect_error : undefined;
      if (expect !== undefined || expectError !== undefined) cases += 1;
      const where = `${file} step ${i} ${JSON.stringify(step)}`;
      const problems = [];
      if (err !== undefined && expectError !== undefined) {
        if (!(err instanceof Error)) problems.push(`${where}: threw a non-Error ${String(err)}`);
        if (err?.code !== expectError) {
          problems.push(`${where}: expected error \`${expectError}\`, got \`${err?.code}\`: ${err?.message}`);
        }
        if (!isDeepStrictEqual(run.ev.status(), before)) {
          problems.push(`${where}: a rejected step changed the status`);
        }
      } else if (err !== undefined) {
        problems.push(`${where}: unexpected error \`${err?.code}\`: ${err?.message ?? err}`);
      } else if (expectError !== undefined) {
        problems.push(`${where}: expected error \`${expectError}\`, got ${JSON.stringify(got)}`);
      } else if (expect !== undefined) {
        const m = subsetMismatch(expect, got);
        if (m !== null) problems.push(`${where}: ${m}`);
      }
      failures.push(...problems);
    });
  } finally {
    run.ev.free();
  }
  return { cases, failures };
}

for (const file of files) {
  const doc = JSON.parse(readFileSync(path.join(DIR, file), 'utf8'));
  expected += doc.steps.filter((st) => 'expect' in st || 'expect_error' in st).length;
  test(file, () => {
    const { cases, failures } = runFile(file);
    total += cases;
    assert.ok(cases > 0, `${file}: no cases`);
    assert.equal(failures.length, 0, `${failures.length} conformance failures:\n${failures.join('\n')}`);
  });
}

test('every case ran', (t) => {
  t.diagnostic(`conformance: ${files.length} files, ${total} cases`);
  assert.equal(total, expected, 'cases run vs steps with expect/expect_error in the files');
  assert.ok(total >= CASES_AT_LEAST, `only ${total} cases (there were ${CASES_AT_LEAST})`);
});

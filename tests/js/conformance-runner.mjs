// The JavaScript runner of the conformance suite (tests/conformance/*.json; format and semantics in
// its README), for every JavaScript host behind the interface of evaluator-hosts.mjs. The native
// runner (crates/cli/tests/it/conformance.rs) gives the steps the same meaning:
//
// - the evaluator is a signed one for the tenant of the first model, trusting one key; every model
//   is validated first (the native runner compiles them all before the first step);
// - a push step signs its message with the package's origin functions (compileSnapshot,
//   diffModels, signWatermark) and hands the bytes to the host; a signing error is the step's
//   error, as natively;
// - the host's clock at a step is its `clock`, else (a push arrives when it was issued) its
//   `issued_at`, else the machine's clock;
// - a check's `context` (and a listing's, as `options.context`) reaches the host exactly as the file
//   gives it;
// - consecutive checks with the same clock and context are one batch: each is asked alone
//   (`check`) and the batch together (`checkMany`); both answers must meet the step's `expect`,
//   and they must be the same decision;
// - `expect` compares the keys it lists (subset.mjs: an absent key equals null), `expect_error`
//   the error's `code`, and a refused step must leave `status()` exactly as it was; steps with
//   neither still must not fail. Every step with `expect` or `expect_error` is one case.
//
// `conformanceSuite(...)` registers one node:test test per file, a test that every case ran, and a
// test that the files a host leaves out are exactly those it declares (a host lacking a capability
// a file needs, e.g. `preview`, does not run that file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { subsetMismatch } from './subset.mjs';
import { importPackage, REPO_DIR } from './pkg.mjs';

const pkg = await importPackage();

export const DIR = path.join(REPO_DIR, 'tests/conformance');
// Signatures are not compared: any key will do, one per process.
const KEY = pkg.generateKeyPair();

// `watermark` before `delta`: a watermark step may carry a `delta`.
const KINDS = ['snapshot', 'preview', 'watermark', 'delta', 'check', 'list_resources', 'list_subjects', 'status'];
export const kindOf = (step) => KINDS.find((k) => k in step);

// A bug in a conformance file (a missing field), not an answer of the host.
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

// The host's clock at a step: its `clock`, else (a push) its `issued_at`, else the machine's.
function clockOf(step) {
  for (const key of ['clock', 'issued_at']) {
    if (key in step) return u(step, key);
  }
  return null;
}

function listOptions(step) {
  const o = {};
  if (typeof step.type === 'string') o.type = step.type;
  if ('context' in step) o.context = step.context;
  return o;
}

// As JSON: what the native runner compares (no undefined fields).
const asJson = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/** Every scenario file: its models (inline or by path), tenant, the capabilities it needs and
 * its number of cases. */
export function scenarios() {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const doc = JSON.parse(readFileSync(path.join(DIR, file), 'utf8'));
      const models = {};
      let tenant;
      for (const [name, m] of Object.entries(doc.models ?? {})) {
        models[name] = typeof m === 'string' ? JSON.parse(readFileSync(path.join(DIR, m), 'utf8')) : m;
        tenant ??= models[name].tenant;
      }
      const needs = doc.steps.some((st) => kindOf(st) === 'preview') ? ['preview'] : [];
      const cases = doc.steps.filter((st) => 'expect' in st || 'expect_error' in st).length;
      return { file, doc, models, tenant: tenant ?? 'acme', needs, cases };
    });
}

/** What a step (other than a check) does, through `host`. */
async function outcome(host, sc, step) {
  const secretKey = KEY.secretKey;
  const model = (name) => {
    if (typeof name !== 'string' || !Object.hasOwn(sc.models, name)) throw new HarnessError(`no model \`${name}\``);
    return sc.models[name];
  };
  const delta = (pair, epoch) => {
    if (!Array.isArray(pair)) throw new HarnessError(`\`delta\` names two models: ${JSON.stringify(pair)}`);
    return pkg.diffModels(model(pair[0]), model(pair[1]), { baseEpoch: u(step, 'base_epoch'), epoch, issuedAt: u(step, 'issued_at'), secretKey });
  };
  switch (kindOf(step)) {
    case 'snapshot':
      return host.loadSnapshot(pkg.compileSnapshot(model(step.snapshot), { epoch: u(step, 'epoch'), issuedAt: u(step, 'issued_at'), secretKey }));
    case 'preview':
      await host.preview(model(step.preview));
      return {};
    case 'delta': {
      const d = delta(step.delta, u(step, 'epoch'));
      const r = await host.applyDelta(d.delta);
      return { epoch: r.epoch, applied: r.applied, revokes: d.revokes };
    }
    case 'watermark': {
      const watermark = u(step, 'watermark');
      const carried = 'delta' in step ? delta(step.delta, watermark).delta : undefined;
      return host.applyWatermark(pkg.signWatermark({ tenant: sc.tenant, watermark, issuedAt: u(step, 'issued_at'), secretKey, delta: carried }));
    }
    case 'list_resources':
      return host.listResources(s(step.list_resources, 0), s(step.list_resources, 1), listOptions(step));
    case 'list_subjects':
      return host.listSubjects(s(step.list_subjects, 0), s(step.list_subjects, 1), listOptions(step));
    case 'status':
      return host.status();
    default:
      throw new HarnessError(`unknown step ${JSON.stringify(step)}`);
  }
}

/** The step's answer (`got`) or error (`err`) against its `expect` / `expect_error`. */
function judge(where, step, got, err) {
  const expectError = typeof step.expect_error === 'string' ? step.expect_error : undefined;
  if (err !== undefined && expectError !== undefined) {
    const problems = [];
    if (!(err instanceof Error)) problems.push(`${where}: threw a non-Error ${String(err)}`);
    if (err?.code !== expectError) problems.push(`${where}: expected error \`${expectError}\`, got \`${err?.code}\`: ${err?.message}`);
    return problems;
  }
  if (err !== undefined) return [`${where}: unexpected error \`${err?.code}\`: ${err?.message ?? err}`];
  if (expectError !== undefined) return [`${where}: expected error \`${expectError}\`, got ${JSON.stringify(got)}`];
  if (step.expect !== undefined) {
    const m = subsetMismatch(step.expect, got);
    if (m !== null) return [`${where}: ${m}`];
  }
  return [];
}

async function attempt(f) {
  try {
    return { got: asJson(await f()) };
  } catch (e) {
    if (e instanceof HarnessError) throw e;
    return { err: e };
  }
}

/** Runs one scenario through `host`: `{cases, failures}`. */
export async function runScenario(host, sc) {
  for (const m of Object.values(sc.models)) pkg.validateModel(m);
  const steps = sc.doc.steps;
  const where = (i, how = '') => `${sc.file} step ${i}${how} ${JSON.stringify(steps[i])}`;
  const counts = (step) => step.expect !== undefined || step.expect_error !== undefined;
  let cases = 0;
  const failures = [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    if (kindOf(step) === 'check') {
      const batch = [i];
      while (
        i + 1 < steps.length &&
        kindOf(steps[i + 1]) === 'check' &&
        isDeepStrictEqual(steps[i + 1].context, step.context) &&
        isDeepStrictEqual(clockOf(steps[i + 1]), clockOf(step))
      ) {
        batch.push(++i);
      }
      await host.setClock(clockOf(step));
      const requests = batch.map((j) => [s(steps[j].check, 0), s(steps[j].check, 1), s(steps[j].check, 2)]);
      const many = await attempt(() => host.checkMany(requests, step.context));
      for (const [n, j] of batch.entries()) {
        if (counts(steps[j])) cases += 1;
        const one = await attempt(() => host.check(...requests[n], step.context));
        failures.push(...judge(where(j, ' (check)'), steps[j], one.got, one.err));
        const fromMany = many.err === undefined ? many.got?.[n] : undefined;
        failures.push(...judge(where(j, ' (checkMany)'), steps[j], fromMany, many.err));
        if (one.err === undefined && many.err === undefined && !isDeepStrictEqual(one.got, fromMany)) {
          failures.push(`${where(j)}: check answered ${JSON.stringify(one.got)}, checkMany ${JSON.stringify(fromMany)}`);
        }
      }
      continue;
    }
    await host.setClock(clockOf(step));
    const refusable = step.expect_error !== undefined;
    const before = refusable ? await host.status() : undefined;
    const { got, err } = await attempt(() => outcome(host, sc, step));
    if (counts(step)) cases += 1;
    failures.push(...judge(where(i), step, got, err));
    if (refusable && err !== undefined && !isDeepStrictEqual(await host.status(), before)) {
      failures.push(`${where(i)}: a refused step changed the status`);
    }
  }
  await host.setClock(null);
  return { cases, failures };
}

/**
 * Registers the suite for one kind of host: `makeHost({tenant, publicKeys})` gives a fresh host
 * for each file; `leftOut` lists the files the host cannot run (each needs a capability missing
 * from `host.can`), `casesAtLeast` how many cases it ran when the suite was written.
 */
export function conformanceSuite({ name, can, makeHost, leftOut = [], casesAtLeast }) {
  const all = scenarios();
  const runs = all.filter((sc) => sc.needs.every((n) => can[n]));
  const expected = runs.reduce((n, sc) => n + sc.cases, 0);
  let total = 0;
  for (const sc of runs) {
    test(`${sc.file} (${name})`, async () => {
      const host = await makeHost({ tenant: sc.tenant, publicKeys: [KEY.publicKey] });
      try {
        assert.deepEqual(host.can, can, `${name}: the host's capabilities`);
        const { cases, failures } = await runScenario(host, sc);
        total += cases;
        assert.ok(cases > 0, `${sc.file}: no cases`);
        assert.equal(failures.length, 0, `${failures.length} conformance failures:\n${failures.join('\n')}`);
      } finally {
        await host.dispose();
      }
    });
  }

  test(`every case ran (${name})`, (t) => {
    t.diagnostic(`conformance (${name}): ${runs.length} files, ${total} cases`);
    assert.equal(total, expected, 'cases run vs steps with expect/expect_error in the files');
    assert.ok(total >= casesAtLeast, `only ${total} cases (there were ${casesAtLeast})`);
  });

  test(`the files left out need what the ${name} cannot be`, () => {
    const out = all.filter((sc) => !runs.includes(sc));
    assert.deepEqual(
      out.map((sc) => sc.file),
      leftOut,
      `files the ${name} cannot run (they need ${JSON.stringify(out.map((sc) => sc.needs))})`,
    );
    for (const sc of out) assert.ok(sc.needs.some((n) => !can[n]), sc.file);
  });
}

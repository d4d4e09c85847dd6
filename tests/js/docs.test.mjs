// The documentation holds together: every relative link of the repository's Markdown pages
// reaches a file that exists (and, for a `#fragment` into a Markdown page, a heading of it), and no
// file of the repository cites a document readers of the repository cannot see. The project's
// specification is docs/; code, tests and docs cite it by page and section ("docs/decisions.md,
// "Gates""), never an outside contract or an issue tracker's numbers.
//
//   node --test tests/js/docs.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Folders that hold generated or installed files, never the project's own words. */
const GENERATED = /^(node_modules|target|build|\.wrangler|\.tools|fuzz\/target|fuzz\/corpus|fuzz\/artifacts)\/|^pkg\/dist\//;

/** The project's files: tracked, plus new ones not ignored (so that a page is checked before it
 * is committed), without the generated folders. */
function projectFiles() {
  const list = (args) =>
    execFileSync('git', ['ls-files', '-z', ...args], { cwd: REPO, encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\0')
      .filter(Boolean);
  const files = new Set([...list([]), ...list(['--others', '--exclude-standard'])]);
  return [...files].filter((f) => !GENERATED.test(f) && existsSync(path.join(REPO, f))).sort();
}

/** The Markdown pages whose links are checked. */
function pages() {
  const out = ['README.md', 'ARCHITECTURE.md', 'bench/RESULTS.md', 'bench/README.md', 'pkg/README.md'];
  for (const f of readdirSync(path.join(REPO, 'docs'))) if (f.endsWith('.md')) out.push(`docs/${f}`);
  for (const c of readdirSync(path.join(REPO, 'crates'))) {
    if (existsSync(path.join(REPO, 'crates', c, 'README.md'))) out.push(`crates/${c}/README.md`);
  }
  for (const t of ['tests/js/README.md', 'tests/conformance/README.md', 'tests/fuzz/README.md']) {
    if (existsSync(path.join(REPO, t))) out.push(t);
  }
  return out;
}

/** The text of a Markdown page outside fenced code blocks, line by line (code lines emptied, so
 * line numbers stay right). */
function prose(text) {
  let fence = null;
  return text.split('\n').map((line) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
      return '';
    }
    if (m) {
      fence = m[1];
      return '';
    }
    return line;
  });
}

/** A line without its inline code spans (`...`, ``...``). */
function withoutCode(line) {
  return line.replace(/(`+)[\s\S]*?\1/g, '');
}

/** The anchor GitHub gives a heading: its text, lower-cased, punctuation dropped (letters, digits,
 * `_`, `-` and spaces kept), spaces as hyphens; a repeated anchor gets `-1`, `-2`, ... */
function slug(heading) {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link shows its text
    .replace(/`/g, '')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, '').replace(/ /g, '-');
}

const anchorsCache = new Map();
/** Every anchor of a Markdown page's headings. */
function anchors(file) {
  if (anchorsCache.has(file)) return anchorsCache.get(file);
  const seen = new Map();
  const out = new Set();
  for (const line of prose(readFileSync(file, 'utf8'))) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  anchorsCache.set(file, out);
  return out;
}

/** The links of a page: inline `[text](target)` and `![alt](target)` (their text may run over
 * several lines), and reference definitions `[label]: target`, each with its line. */
function links(text) {
  const out = [];
  const lines = prose(text).map(withoutCode);
  const all = lines.join('\n');
  const lineAt = (index) => all.slice(0, index).split('\n').length;
  for (const m of all.matchAll(/!?\[(?:[^\][]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) {
    out.push({ target: m[1], line: lineAt(m.index) });
  }
  lines.forEach((line, i) => {
    const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(line);
    if (def) out.push({ target: def[1], line: i + 1 });
  });
  return out;
}

/** What is wrong with one link of `page` (null: nothing). */
function brokenLink(page, target) {
  if (target === '') return 'an empty link';
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // https:, mailto: ...: not a file
  const hash = target.indexOf('#');
  const filePart = hash >= 0 ? target.slice(0, hash) : target;
  const fragment = hash >= 0 ? decodeURIComponent(target.slice(hash + 1)) : null;
  const abs = filePart === '' ? path.join(REPO, page) : path.resolve(path.dirname(path.join(REPO, page)), decodeURIComponent(filePart));
  if (!abs.startsWith(REPO + path.sep) && abs !== REPO) return `${target} leaves the repository`;
  if (!existsSync(abs)) return `${target}: no such file`;
  if (fragment !== null) {
    if (!abs.endsWith('.md') || statSync(abs).isDirectory()) return `${target}: a fragment into a file that is not a Markdown page`;
    if (!anchors(abs).has(fragment)) {
      return `${target}: no heading "#${fragment}" in ${path.relative(REPO, abs)}`;
    }
  }
  return null;
}

test('the slug of a heading is the anchor GitHub gives it', () => {
  assert.equal(slug('Two times'), 'two-times');
  assert.equal(slug("Bird's-eye view"), 'birds-eye-view');
  assert.equal(slug('`crates/core` (`edge-authz`)'), 'cratescore-edge-authz');
  assert.equal(slug('What an evaluator accepts'), 'what-an-evaluator-accepts');
  assert.equal(slug('snake_case and `--flags`'), 'snake_case-and---flags');
});

test('every relative link of the Markdown pages reaches a file, and a heading', () => {
  const problems = [];
  const checked = pages();
  let count = 0;
  for (const page of checked) {
    const text = readFileSync(path.join(REPO, page), 'utf8');
    for (const { target, line } of links(text)) {
      count += 1;
      const why = brokenLink(page, target);
      if (why) problems.push(`${page}:${line}: ${why}`);
    }
  }
  assert.ok(checked.includes('docs/README.md'), 'docs/README.md, the index of the specification, exists');
  assert.ok(count > 100, `the pages hold links (${count} found): the link parser works`);
  assert.deepEqual(problems, [], `broken links:\n${problems.join('\n')}`);
});

// What a citation of an outside document looks like. `\b` keeps ordinary words out: "contracts"
// and "contractors" (`group:contractors` in the fixtures) are not citations and pass; "the
// contract", "contract section 3", "CONTRACT.md" and "issue 4" / "issues #12" do not.
const OUTSIDE = [
  { what: 'an outside contract', re: /\bcontract\b/i },
  { what: 'an issue number', re: /\bissues?\s+#?\d+/i },
];

test('no file of the repository cites an outside contract or an issue number', () => {
  const self = path.relative(REPO, fileURLToPath(import.meta.url));
  const problems = [];
  let scanned = 0;
  for (const file of projectFiles()) {
    // This file names the patterns it looks for; the license's text is the Apache License's own.
    if (file === self || path.basename(file) === 'LICENSE') continue;
    const bytes = readFileSync(path.join(REPO, file));
    if (bytes.includes(0)) continue; // binary (fuzz seeds, images)
    scanned += 1;
    bytes
      .toString('utf8')
      .split('\n')
      .forEach((line, i) => {
        for (const { what, re } of OUTSIDE) {
          if (re.test(line)) problems.push(`${file}:${i + 1}: ${what}: ${line.trim().slice(0, 160)}`);
        }
      });
  }
  assert.ok(scanned > 100, `the project's files were read (${scanned})`);
  assert.deepEqual(problems, [], `cite docs/ instead (docs/README.md lists its pages):\n${problems.join('\n')}`);
});

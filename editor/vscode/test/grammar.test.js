// Tokenises every .l3map file under mappings/ with the extension's TextMate
// grammar, through the same engine VS Code uses (vscode-textmate on
// vscode-oniguruma), and checks what a reader relies on:
//   - nothing falls through to `invalid.illegal` (untokenised garbage);
//   - every `//` line is a comment, every `"`/`"""` opens a string;
//   - block keywords, `when`, `->` / `=>`, money, ids and numbers get their
//     scopes wherever they appear outside strings and comments;
//   - each of those kinds occurs at least once across the files.
// Run: npm test (after npm ci). Exits 1 with the first problems found.
'use strict';

const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const root = path.resolve(__dirname, '..', '..', '..');
const grammarPath = path.join(__dirname, '..', 'syntaxes', 'l3map.tmLanguage.json');

function l3mapFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...l3mapFiles(p));
    else if (e.name.endsWith('.l3map')) out.push(p);
  }
  return out.sort();
}

async function loadGrammar() {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (p) => new oniguruma.OnigScanner(p),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scope) =>
      scope === 'source.l3map'
        ? vsctm.parseRawGrammar(fs.readFileSync(grammarPath, 'utf8'), grammarPath)
        : null,
  });
  return registry.loadGrammar('source.l3map');
}

/// Each token of a file: its line, text and scopes.
function tokenise(grammar, text) {
  const out = [];
  let stack = vsctm.INITIAL;
  text.split('\n').forEach((line, i) => {
    const r = grammar.tokenizeLine(line, stack);
    for (const t of r.tokens) {
      out.push({
        line: i + 1,
        start: t.startIndex,
        end: t.endIndex,
        text: line.slice(t.startIndex, t.endIndex),
        scopes: t.scopes,
      });
    }
    stack = r.ruleStack;
  });
  return out;
}

const has = (t, prefix) => t.scopes.some((s) => s.startsWith(prefix));
const inStringOrComment = (t) => has(t, 'string.') || has(t, 'comment.');

// What a token's text says it must be, outside strings and comments.
const EXPECTED = [
  [/^(connection|statuses|fields|map|sku|template|escalation)$/, 'keyword.other.block'],
  [/^when$/, 'keyword.control'],
  [/^->$/, 'keyword.operator.arrow'],
  [/^=>$/, 'keyword.operator.arrow.fat'],
  [/^\$\d/, 'constant.numeric.money'],
  [/^\d+(\.\d+)? ?[A-Z]{3}$/, 'constant.numeric.money'],
  [/^#\d+$/, 'constant.numeric.id'],
  [/^\d+(\.\d+)?$/, 'constant.numeric'],
  [/^(and|or|not|in|has)$/, 'keyword.operator.logical'],
  [/^(true|false|none)$/, 'constant.language'],
];

async function main() {
  const grammar = await loadGrammar();
  const files = l3mapFiles(path.join(root, 'mappings'));
  if (files.length === 0) throw new Error('no .l3map files under mappings/');
  const problems = [];
  const seen = new Set();
  for (const file of files) {
    const rel = path.relative(root, file);
    const text = fs.readFileSync(file, 'utf8');
    const tokens = tokenise(grammar, text);
    for (const t of tokens) {
      const where = `${rel}:${t.line} ${JSON.stringify(t.text)} [${t.scopes.join(' ')}]`;
      if (has(t, 'invalid.')) problems.push(`untokenised: ${where}`);
      if (inStringOrComment(t)) {
        for (const s of t.scopes) seen.add(s.split('.').slice(0, 2).join('.'));
        continue;
      }
      const word = t.text.trim();
      for (const [re, scope] of EXPECTED) {
        if (re.test(word)) {
          if (!has(t, scope)) problems.push(`expected ${scope}: ${where}`);
          seen.add(scope);
          break;
        }
      }
      if (word.startsWith('"')) problems.push(`a quote outside a string: ${where}`);
    }
    // Whole-line comments are comments from their first character.
    text.split('\n').forEach((line, i) => {
      const at = line.search(/\S/);
      if (at < 0 || !line.slice(at).startsWith('//')) return;
      const t = tokens.find((x) => x.line === i + 1 && x.start <= at && at < x.end);
      if (!t || !has(t, 'comment.line')) problems.push(`not a comment: ${rel}:${i + 1}`);
    });
  }
  for (const kind of [
    'comment.line',
    'string.quoted',
    'keyword.other.block',
    'keyword.control',
    'keyword.operator.arrow',
    'constant.numeric.money',
    'constant.numeric.id',
  ]) {
    if (![...seen].some((s) => s.startsWith(kind) || kind.startsWith(s))) {
      problems.push(`no ${kind} anywhere in mappings/`);
    }
  }
  if (problems.length > 0) {
    console.error(problems.slice(0, 40).join('\n'));
    console.error(`${problems.length} problem(s) in ${files.length} files`);
    process.exit(1);
  }
  console.log(`grammar ok: ${files.length} files tokenised, every kind scoped`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

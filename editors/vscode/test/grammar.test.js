// Tokenizes every .nn file of the repository with the extension's TextMate grammar, through the same
// engine VS Code uses (vscode-textmate on Oniguruma), and checks the scopes of representative tokens.
'use strict';
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const extensionRoot = path.resolve(__dirname, '..');
const repositoryRoot = path.resolve(extensionRoot, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(extensionRoot, 'package.json'), 'utf8'));
const grammarPath = path.join(extensionRoot, manifest.contributes.grammars[0].path);

// The language's line breaks (docs/language.md, "White space"); the grammar sees one line at a time.
const lineBreak = /\r\n|\r|\n|\u0085|\u2028|\u2029/;
// What may appear outside a comment (NN0005), v2's '=' included.
const allowedCharacter = /^[\s\p{L}\p{N}_()[\]{},:;.\-+>/*=]$/u;

let grammar;
before(async () => {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === 'source.nn' ? vsctm.parseRawGrammar(fs.readFileSync(grammarPath, 'utf8'), grammarPath) : null,
  });
  grammar = await registry.loadGrammar('source.nn');
  assert.ok(grammar, 'the grammar loads');
});

/** Tokens of a whole text: { line (1-based), column (1-based), text, scopes }. */
function tokenize(text) {
  const tokens = [];
  let stack = vsctm.INITIAL;
  text.replace(/^\uFEFF/, '').split(lineBreak).forEach((line, index) => {
    const result = grammar.tokenizeLine(line, stack);
    for (const token of result.tokens) {
      tokens.push({
        line: index + 1,
        column: token.startIndex + 1,
        text: line.substring(token.startIndex, token.endIndex),
        scopes: token.scopes,
      });
    }
    stack = result.ruleStack;
  });
  return tokens;
}

/** The innermost scope of the nth token (0-based) whose text is `text`, on `line` if given. */
function scopeOf(tokens, text, { line, nth = 0 } = {}) {
  const matches = tokens.filter((t) => t.text === text && (line === undefined || t.line === line));
  assert.ok(matches.length > nth, `no token ${JSON.stringify(text)}${line ? ` on line ${line}` : ''} (occurrence ${nth})`);
  return matches[nth].scopes[matches[nth].scopes.length - 1];
}

const inComment = (token) => token.scopes.some((s) => s.startsWith('comment.'));

function repositoryNnFiles() {
  const files = [];
  const skip = new Set(['.git', 'node_modules', 'bin', 'obj', 'TestResults', 'artifacts']);
  (function walk(directory) {
    for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (!skip.has(entry.name)) walk(path.join(directory, entry.name));
      } else if (entry.name.endsWith('.nn')) {
        files.push(path.join(directory, entry.name));
      }
    }
  })(repositoryRoot);
  return files.sort();
}

test('every .nn file of the repository: each token outside comments has a role, and only forbidden characters are invalid', () => {
  const files = repositoryNnFiles();
  assert.ok(files.length >= 20, `found only ${files.length} .nn files under ${repositoryRoot}`);
  for (const file of files) {
    const where = path.relative(repositoryRoot, file);
    const tokens = tokenize(fs.readFileSync(file, 'utf8'));
    for (const token of tokens) {
      const at = `${where}(${token.line},${token.column}) ${JSON.stringify(token.text)}: ${token.scopes.join(' ')}`;
      if (inComment(token) || token.text.trim() === '') continue;
      const innermost = token.scopes[token.scopes.length - 1];
      assert.notEqual(innermost, 'source.nn', `unscoped token at ${at}`);
      if (innermost === 'invalid.illegal.character.nn') {
        assert.ok([...token.text].every((c) => !allowedCharacter.test(c)), `an allowed character scoped as NN0005 at ${at}`);
        continue;
      }
      if (innermost === 'invalid.illegal.unexpected.nn') continue; // a syntax error in the file (NN0001)
      if (token.text === '->') assert.equal(innermost, 'keyword.operator.arrow.nn', at);
      if (/^-?\d/.test(token.text)) assert.match(innermost, /^constant\.numeric\.(integer|decimal)\.nn$/, at);
      if (token.text === 'model') assert.equal(innermost, 'storage.type.model.nn', at);
      if (token.text === 'as') assert.equal(innermost, 'keyword.other.as.nn', at);
      if (token.text === 'true' || token.text === 'false') assert.equal(innermost, 'constant.language.boolean.nn', at);
    }
  }
});

test('lenet.nn: comments, namespace, model, input, layers, child names, numbers, arrows', () => {
  const tokens = tokenize(fs.readFileSync(path.join(repositoryRoot, 'examples/LeNet/lenet.nn'), 'utf8'));
  assert.equal(tokens[0].scopes.at(-1), 'punctuation.definition.comment.nn');
  assert.equal(tokens[0].scopes[1], 'comment.line.double-slash.nn');
  assert.equal(scopeOf(tokens, 'namespace'), 'keyword.other.namespace.nn');
  assert.equal(scopeOf(tokens, 'Examples'), 'entity.name.namespace.nn');
  assert.equal(scopeOf(tokens, 'LeNet', { line: 3 }), 'entity.name.namespace.nn');
  assert.equal(scopeOf(tokens, ';'), 'punctuation.terminator.statement.nn');
  assert.equal(scopeOf(tokens, 'model'), 'storage.type.model.nn');
  assert.equal(scopeOf(tokens, 'LeNet', { line: 5 }), 'entity.name.type.model.nn');
  assert.equal(scopeOf(tokens, 'input'), 'keyword.other.input.nn');
  assert.equal(scopeOf(tokens, '34'), 'constant.numeric.integer.nn');
  assert.equal(scopeOf(tokens, 'conv'), 'support.function.layer.nn');
  assert.equal(scopeOf(tokens, 'conv1'), 'entity.name.child.nn');
  assert.equal(scopeOf(tokens, 'as'), 'keyword.other.as.nn');
  assert.equal(scopeOf(tokens, '->'), 'keyword.operator.arrow.nn');
  assert.equal(scopeOf(tokens, 'bn2d'), 'support.function.layer.nn');
  assert.equal(scopeOf(tokens, 'flatten'), 'support.function.layer.nn');
  assert.equal(scopeOf(tokens, '1350', { line: 10 }), 'constant.numeric.integer.nn');
  assert.equal(scopeOf(tokens, '{'), 'punctuation.section.block.begin.nn');
  assert.equal(scopeOf(tokens, '}'), 'punctuation.section.block.end.nn');
});

test('behaviour.nn: named arguments, booleans, decimals, one-line models', () => {
  const tokens = tokenize(fs.readFileSync(path.join(repositoryRoot, 'tests/Dsl.Models.Tests/Models/behaviour.nn'), 'utf8'));
  assert.equal(scopeOf(tokens, 'track_running_stats'), 'variable.parameter.argument.nn');
  assert.equal(scopeOf(tokens, ':', { line: 3 }), 'punctuation.separator.key-value.nn');
  assert.equal(scopeOf(tokens, 'false', { line: 3 }), 'constant.language.boolean.nn');
  assert.equal(scopeOf(tokens, '0.25'), 'constant.numeric.decimal.nn');
  assert.equal(scopeOf(tokens, 'frozen'), 'variable.parameter.argument.nn');
  assert.equal(scopeOf(tokens, 'Drop'), 'entity.name.type.model.nn');
  assert.equal(scopeOf(tokens, 'dropout'), 'support.function.layer.nn');
  assert.equal(scopeOf(tokens, 'leaky_relu'), 'support.function.layer.nn');
});

test('language v2 (test/fixtures/resnet.nn): blocks, parameters, values, merges, groups, repetition', () => {
  const tokens = tokenize(fs.readFileSync(path.join(__dirname, 'fixtures', 'resnet.nn'), 'utf8'));
  assert.equal(scopeOf(tokens, 'block'), 'storage.type.block.nn');
  assert.equal(scopeOf(tokens, 'BasicBlock'), 'entity.name.type.block.nn');
  assert.equal(scopeOf(tokens, 'inplanes'), 'variable.parameter.block.nn');
  assert.equal(scopeOf(tokens, '='), 'keyword.operator.assignment.nn');
  assert.equal(scopeOf(tokens, '1', { line: 5 }), 'constant.numeric.integer.nn');
  assert.equal(scopeOf(tokens, 'out'), 'variable.other.value.nn');
  assert.equal(scopeOf(tokens, '=', { line: 6 }), 'keyword.operator.assignment.nn');
  assert.equal(scopeOf(tokens, 'inplanes', { line: 6 }), 'variable.parameter.nn');
  assert.equal(scopeOf(tokens, 'stride', { line: 6 }), 'variable.parameter.argument.nn');
  assert.equal(scopeOf(tokens, 'stride', { line: 6, nth: 1 }), 'variable.parameter.nn');
  assert.equal(scopeOf(tokens, ';', { line: 9 }), 'punctuation.terminator.statement.nn');
  assert.equal(scopeOf(tokens, 'add'), 'support.function.merge.nn');
  assert.equal(scopeOf(tokens, 'out', { line: 10 }), 'variable.other.value.nn');
  assert.equal(scopeOf(tokens, 'input', { line: 10 }), 'variable.language.input.nn');
  assert.equal(scopeOf(tokens, 'skip'), 'variable.other.value.nn');
  assert.equal(scopeOf(tokens, 'input', { line: 18 }), 'variable.language.input.nn');
  assert.equal(scopeOf(tokens, '(', { line: 18 }), 'punctuation.section.group.begin.nn');
  assert.equal(scopeOf(tokens, 'downsample'), 'entity.name.child.nn');
  assert.equal(scopeOf(tokens, 'skip', { line: 19 }), 'variable.other.value.nn');
  assert.equal(tokens.find((t) => t.line === 22 && t.text.includes('DenseNet')).scopes[1], 'comment.block.nn');
  assert.equal(tokens.find((t) => t.line === 23 && t.text.includes('appended')).scopes[1], 'comment.block.nn');
  assert.equal(scopeOf(tokens, 'Dense', { line: 24 }), 'entity.name.type.block.nn');
  assert.equal(scopeOf(tokens, 'new'), 'variable.other.value.nn');
  assert.equal(scopeOf(tokens, 'norm'), 'entity.name.child.nn');
  assert.equal(scopeOf(tokens, 'concat'), 'support.function.merge.nn');
  assert.equal(scopeOf(tokens, 'new', { line: 26 }), 'variable.other.value.nn');
  assert.equal(scopeOf(tokens, 'ResNet20'), 'entity.name.type.model.nn');
  assert.equal(scopeOf(tokens, 'BasicBlock', { line: 31 }), 'entity.name.type.block.nn');
  assert.equal(scopeOf(tokens, '*', { line: 31 }), 'keyword.operator.repeat.nn');
  assert.equal(scopeOf(tokens, '3', { line: 31 }), 'constant.numeric.integer.nn');
  assert.equal(scopeOf(tokens, 'layer1'), 'entity.name.child.nn');
  assert.equal(scopeOf(tokens, 'DownBlock', { line: 32 }), 'entity.name.type.block.nn');
  assert.equal(scopeOf(tokens, '2', { line: 32, nth: 0 }), 'constant.numeric.integer.nn');
  assert.equal(scopeOf(tokens, 'global_avgpool'), 'support.function.layer.nn');
  assert.equal(scopeOf(tokens, 'group_norm'), 'support.function.layer.nn');
  assert.equal(scopeOf(tokens, '1e-5'), 'constant.numeric.decimal.nn');
  assert.equal(scopeOf(tokens, 'instance_norm2d'), 'support.function.layer.nn');
  assert.equal(scopeOf(tokens, 'true', { line: 39 }), 'constant.language.boolean.nn');
  assert.equal(scopeOf(tokens, 'layer_norm'), 'support.function.layer.nn');
  assert.equal(scopeOf(tokens, 'none'), 'constant.language.none.nn');
  assert.equal(scopeOf(tokens, '2E-3'), 'constant.numeric.decimal.nn');
  assert.equal(scopeOf(tokens, '(', { line: 41, nth: 1 }), 'punctuation.section.parens.begin.nn');
  assert.equal(scopeOf(tokens, 'Dense', { line: 41 }), 'entity.name.type.block.nn');
});

test('edge cases: Unicode names, CRLF, a layer split over lines, a negative value, forbidden characters', () => {
  const tokens = tokenize('model Réseau(input: [8]) {\r\n  linear(8,\r\n    4) -> leaky_relu(-0.5) -> relu -> @tanh # x\r\n}\r\nmodel Next(input: [2]) { relu }');
  assert.equal(scopeOf(tokens, 'Réseau'), 'entity.name.type.model.nn');
  assert.equal(scopeOf(tokens, '4'), 'constant.numeric.integer.nn');
  assert.equal(scopeOf(tokens, ')', { line: 3 }), 'punctuation.definition.arguments.end.nn');
  assert.equal(scopeOf(tokens, '-0.5'), 'constant.numeric.decimal.nn');
  assert.equal(scopeOf(tokens, '@'), 'invalid.illegal.character.nn');
  assert.equal(scopeOf(tokens, 'tanh'), 'support.function.layer.nn');
  assert.equal(scopeOf(tokens, '#'), 'invalid.illegal.character.nn');
  assert.equal(scopeOf(tokens, 'Next'), 'entity.name.type.model.nn', 'the grammar is back at file level after the first model');
  assert.equal(scopeOf(tokens, 'relu', { line: 5 }), 'support.function.layer.nn');
});

test('tokens where the syntax has no place for them are unexpected, the rest of the file still highlights', () => {
  const tokens = tokenize('modle Net(input: [8]) { relu }\nmodel Ok(input: [8, x]) { relu, tanh . sigmoid }\nmodel Last(input: [4]) { relu }');
  assert.equal(scopeOf(tokens, 'modle'), 'invalid.illegal.unexpected.nn');
  assert.equal(scopeOf(tokens, 'relu', { line: 1 }), 'invalid.illegal.unexpected.nn');
  assert.equal(scopeOf(tokens, ',', { line: 2 }), 'punctuation.separator.comma.nn');
  assert.equal(scopeOf(tokens, 'x'), 'invalid.illegal.unexpected.nn');
  assert.equal(scopeOf(tokens, ',', { line: 2, nth: 1 }), 'invalid.illegal.unexpected.nn');
  assert.equal(scopeOf(tokens, '.'), 'invalid.illegal.unexpected.nn');
  assert.equal(scopeOf(tokens, 'sigmoid'), 'support.function.layer.nn');
  assert.equal(scopeOf(tokens, 'Ok'), 'entity.name.type.model.nn');
  assert.equal(scopeOf(tokens, 'Last'), 'entity.name.type.model.nn');
  assert.equal(scopeOf(tokens, 'relu', { line: 3 }), 'support.function.layer.nn');
});

test('language configuration: comment toggling, bracket matching, auto-closing', () => {
  const language = manifest.contributes.languages.find((l) => l.id === 'nn');
  assert.deepEqual(language.extensions, ['.nn']);
  const configuration = JSON.parse(fs.readFileSync(path.join(extensionRoot, language.configuration), 'utf8'));
  assert.equal(configuration.comments.lineComment, '//');
  assert.deepEqual(configuration.comments.blockComment, ['/*', '*/']);
  for (const pair of [['{', '}'], ['[', ']'], ['(', ')']]) {
    assert.ok(configuration.brackets.some((b) => b[0] === pair[0] && b[1] === pair[1]), `bracket pair ${pair}`);
    assert.ok(configuration.autoClosingPairs.some((p) => p.open === pair[0] && p.close === pair[1]), `auto-closing ${pair}`);
    assert.ok(configuration.surroundingPairs.some((p) => p[0] === pair[0] && p[1] === pair[1]), `surrounding ${pair}`);
  }
  assert.equal(manifest.contributes.grammars[0].scopeName, grammar.scopeName ?? 'source.nn');
});

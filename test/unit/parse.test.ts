/** The one parser of view output: `key: value` lines (src/views/parse.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCgviewError } from '../../src/errors.js';
import { parseViewLines, parseViewOutput, viewUint } from '../../src/views/parse.js';

const badInput = (re: RegExp) => (e: unknown) =>
  isCgviewError(e, 'E_BAD_INPUT') && re.test((e as Error).message);

describe('parseViewOutput', () => {
  it('parses key: value lines in printed order', () => {
    const m = parseViewOutput('cgroup_id: 1234\nlevel: 2\nname: job-1\n');
    assert.deepEqual(
      [...m],
      [
        ['cgroup_id', '1234'],
        ['level', '2'],
        ['name', 'job-1'],
      ],
    );
  });

  it('reads an empty output (removed cgroup) as no keys', () => {
    assert.equal(parseViewOutput('').size, 0);
  });

  it('accepts a last line without a newline', () => {
    assert.deepEqual(
      [...parseViewOutput('a: 1\nb: 2')],
      [
        ['a', '1'],
        ['b', '2'],
      ],
    );
  });

  it('skips the spaces after the colon, like sscanf("cgroup_id: %8d")', () => {
    assert.equal(parseViewOutput('cgroup_id:        42\n').get('cgroup_id'), '42');
  });

  it('keeps the value as printed: colons, inner and trailing spaces, any byte', () => {
    const m = parseViewOutput('name: a: b  c \nraw: \x80\xe9\xff\n');
    assert.equal(m.get('name'), 'a: b  c ');
    assert.equal(m.get('raw'), '\x80\xe9\xff');
  });

  it('reads "key:" alone as an empty value', () => {
    assert.equal(parseViewOutput('empty:\nx: 1\n').get('empty'), '');
  });

  it('refuses a line without key: value, naming the line', () => {
    assert.throws(
      () => parseViewOutput('a: 1\nthis is not it\n'),
      badInput(/line 2: not a "key: value" line/),
    );
    assert.throws(() => parseViewOutput('a:1\n'), badInput(/line 1/));
    assert.throws(() => parseViewOutput(' a: 1\n'), badInput(/line 1/));
    assert.throws(() => parseViewOutput('1a: 1\n'), badInput(/line 1/));
  });

  it('refuses an empty line in the middle', () => {
    assert.throws(() => parseViewOutput('a: 1\n\nb: 2\n'), badInput(/line 2: empty line/));
    assert.throws(() => parseViewOutput('a: 1\n\n'), badInput(/line 2: empty line/));
  });

  it('refuses a key printed twice', () => {
    assert.throws(() => parseViewOutput('a: 1\nb: 2\na: 3\n'), badInput(/line 3: key a printed twice/));
  });
});

describe('parseViewLines', () => {
  it('gives keys, values and line numbers', () => {
    assert.deepEqual(parseViewLines('k: v\nk2: v2\n'), [
      { key: 'k', value: 'v', line: 1 },
      { key: 'k2', value: 'v2', line: 2 },
    ]);
  });

  it('allows dots and dashes in keys after the first character', () => {
    assert.deepEqual(
      parseViewLines('a.b-c_d: 1\n').map((l) => l.key),
      ['a.b-c_d'],
    );
  });
});

describe('viewUint', () => {
  const m = parseViewOutput('n: 18446744073709551615\nneg: -1\nx: 1e3\nsp: 1 \nz: 0\n');

  it('reads unsigned decimals as bigint, beyond 2^53', () => {
    assert.equal(viewUint(m, 'n'), 18446744073709551615n);
    assert.equal(viewUint(m, 'z'), 0n);
  });

  it('refuses anything else, and a missing key', () => {
    for (const k of ['neg', 'x', 'sp'])
      assert.throws(() => viewUint(m, k), badInput(/not an unsigned integer/));
    assert.throws(() => viewUint(m, 'nope'), badInput(/has no nope/));
  });
});

/**
 * Command-line parsing: node:util parseArgs with strict checks, an option's
 * value is the next word whatever it starts with, usage errors are marked
 * (main exits 2), and arguments are read as bytes. Pure: no root, no kernel.
 * test/unit/cli-usage.test.ts runs bin/cgview end to end.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { argvBytes, isUsageError, OPTIONS, parseArgs, wantsVerbose } from '../../src/cli/args.js';
import { isCgviewError } from '../../src/errors.js';

describe('parseArgs', () => {
  it('takes the next word as the value of an option, even one that starts with "-"', () => {
    const a = parseArgs(['info', '/t', '--name', '-v', '--inherit'], OPTIONS['pin']!);
    assert.equal(a.values.get('name'), '-v');
    assert.ok(a.bools.has('inherit'));
    assert.ok(!a.bools.has('verbose'));
    assert.deepEqual(a.positional, ['info', '/t']);
    assert.equal(parseArgs(['--name', '--inherit'], OPTIONS['pin']!).values.get('name'), '--inherit');
    assert.equal(parseArgs(['--name=-x'], OPTIONS['pin']!).values.get('name'), '-x');
    assert.equal(parseArgs(['--name='], OPTIONS['pin']!).values.get('name'), '');
  });

  it('keeps every word after -- as an argument', () => {
    const a = parseArgs(['--', '-v', '--inherit'], OPTIONS['unpin']!);
    assert.deepEqual(a.positional, ['-v', '--inherit']);
    assert.equal(a.bools.size, 0);
  });

  it('refuses unknown options, missing values and values for flags, as usage errors', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--bogus'], /unknown option --bogus/],
      [['--name'], /--name needs a value/],
      [['--inherit=yes'], /--inherit takes no value/],
      [['-x'], /unknown option -x/],
    ];
    for (const [argv, re] of cases) {
      assert.throws(
        () => parseArgs(argv, OPTIONS['pin']!),
        (e: unknown) => isCgviewError(e, 'E_BAD_INPUT') && isUsageError(e) && re.test(e.message),
        argv.join(' '),
      );
    }
    // An option of another command is unknown here.
    assert.throws(() => parseArgs(['--inherit'], OPTIONS['ls']!), /unknown option --inherit/);
  });

  it('accepts --verbose/-v and --help/-h for every command', () => {
    for (const cmd of Object.keys(OPTIONS)) {
      const a = parseArgs(['-v', '--help'], OPTIONS[cmd]!);
      assert.ok(a.bools.has('verbose') && a.bools.has('help'), cmd);
    }
  });

  it('has the options DESIGN.md section 3 lists', () => {
    assert.deepEqual([...OPTIONS['pin']!.values!, ...OPTIONS['pin']!.bools!].sort(), [
      'cgroup',
      'file-mode',
      'inherit',
      'json',
      'mode',
      'name',
      'socket',
    ]);
    for (const v of ['bpffs', 'cgroup-root', 'state', 'socket', 'listen'])
      assert.ok(OPTIONS['daemon']!.values!.includes(v), v);
    for (const cmd of ['unpin', 'ls', 'cat', 'status'])
      assert.ok(OPTIONS[cmd]!.values!.includes('socket'), cmd);
  });

  it('finds --verbose only where it is an option', () => {
    assert.equal(wantsVerbose('pin', ['info', '/t', '--name', '-v']), false);
    assert.equal(wantsVerbose('pin', ['info', '/t', '-v']), true);
    assert.equal(wantsVerbose('pin', ['info', '/t', '--verbose']), true);
    assert.equal(wantsVerbose('unpin', ['--', '-v']), false);
  });
});

describe('argvBytes', () => {
  const cmdline = (...words: Array<string | Buffer>) =>
    Buffer.concat(words.flatMap((w) => [Buffer.isBuffer(w) ? w : Buffer.from(w), Buffer.from([0])]));

  it('reads the arguments after the script from /proc/self/cmdline, bytes that are not UTF-8 included', () => {
    const raw = Buffer.from([0x61, 0xff, 0xfe, 0x0a]);
    const argv = ['cat', raw.toString('utf8')]; // what Node makes of it: U+FFFD for each bad byte
    const got = argvBytes(argv, cmdline('node', '--enable-source-maps', '/x/bin/cgview', 'cat', raw));
    assert.deepEqual(got, ['cat', raw.toString('latin1')]);
    assert.deepEqual(Buffer.from(got[1]!, 'latin1'), raw);
  });

  it('gives UTF-8 arguments as their bytes, and an empty argument as empty', () => {
    const got = argvBytes(['é', ''], cmdline('node', 'cgview', 'é', ''));
    assert.deepEqual(got, ['\xc3\xa9', '']);
  });

  it('matches however many U+FFFD a bad sequence was decoded to', () => {
    const raw = Buffer.from([0xf0, 0x9f, 0x41]); // a truncated 4-byte sequence, then 'A'
    assert.deepEqual(argvBytes(['\ufffdA'], cmdline('node', 'cgview', raw)), [raw.toString('latin1')]);
    assert.deepEqual(argvBytes(['\ufffd\ufffdA'], cmdline('node', 'cgview', raw)), [raw.toString('latin1')]);
  });

  it("falls back to Node's argv when cmdline does not match it", () => {
    assert.deepEqual(argvBytes(['ls', 'é'], cmdline('node', 'cgview', 'status')), ['ls', '\xc3\xa9']);
    assert.deepEqual(argvBytes(['a', 'b', 'c'], cmdline('b', 'c')), ['a', 'b', 'c']);
  });

  it('matches this process', () => {
    // node --test runs this file with its path as the script's only argument, or none.
    assert.deepEqual(argvBytes(), process.argv.slice(2));
  });
});

/**
 * src/kernel/abi.ts: the architecture check, the shape of what is
 * registered, and the build-time comparison with C (scripts/check-abi.mjs,
 * which compiles against the installed headers and the kernel's BTF).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isCgviewError } from '../../src/errors.js';
import { abiChecks, checkArch, requireSupportedArch, STAT } from '../../src/kernel/abi.js';
import { REPO } from '../helpers.js';

describe('architecture', () => {
  it('x64 is supported, others are refused with E_NOT_SUPPORTED and a remedy', () => {
    assert.equal(checkArch('x64').ok, true);
    // doctor lists it as one of its checks: a required one named 'arch'.
    assert.equal(checkArch('x64').name, 'arch');
    assert.equal(checkArch('arm64').required, true);
    for (const arch of ['arm64', 'ia32', 'riscv64', 's390x']) {
      const c = checkArch(arch);
      assert.equal(c.ok, false, arch);
      assert.match(c.detail, /x86_64 only/);
      assert.ok(c.remedy);
      assert.throws(
        () => requireSupportedArch(arch),
        (e: unknown) => isCgviewError(e, 'E_NOT_SUPPORTED') && e.message.includes(arch),
      );
    }
    assert.equal(checkArch().ok, process.arch === 'x64');
  });

  it('no syscall is made on another architecture: the kernel calls throw E_NOT_SUPPORTED', () => {
    const sys = path.join(REPO, 'dist/src/kernel/sys.js');
    // koffi picks its native module by process.arch: load it first, then pretend.
    const script = `
      const { openDir } = await import(${JSON.stringify(sys)});
      Object.defineProperty(process, 'arch', { value: 'arm64' });
      try { openDir('/'); console.log('opened'); } catch (e) { console.log(e.code, e.message); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^E_NOT_SUPPORTED unsupported architecture arm64/);
  });

  it('the daemon refuses to start on another architecture', () => {
    const main = path.join(REPO, 'dist/src/cli/main.js');
    const script = `
      const { main } = await import(${JSON.stringify(main)});
      await import(${JSON.stringify(path.join(REPO, 'dist/src/cli/daemon.js'))});
      Object.defineProperty(process, 'arch', { value: 'arm64' });
      process.exitCode = await main(['daemon', '--socket', '/nonexistent/cgview-abi-test.sock']);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unsupported architecture arm64/);
  });
});

describe('registered values', () => {
  it('each has a C expression and an integer value; struct fields lie inside the struct', () => {
    const checks = abiChecks();
    assert.ok(checks.length > 100);
    for (const c of checks) {
      assert.ok(c.c.length > 0);
      assert.ok(Number.isInteger(c.value), c.c);
    }
    for (const f of ['ino', 'nlink', 'mode', 'uid', 'gid'] as const)
      assert.ok(STAT[f].off + STAT[f].size <= STAT.size, f);
    // Every field of every struct with a registered sizeof lies inside it.
    const sizes = new Map<string, number>();
    for (const c of checks) {
      const m = /^sizeof\(((?:struct|union) [a-z_0-9]+)\)$/.exec(c.c);
      if (m) sizes.set(m[1]!, c.value);
    }
    for (let i = 0; i < checks.length; i++) {
      const m = /^__builtin_offsetof\(((?:struct|union) [a-z_0-9]+), (.+)\)$/.exec(checks[i]!.c);
      if (!m) continue;
      const width = checks[i + 1]!;
      assert.equal(width.c, `sizeof(((${m[1]} *)0)->${m[2]})`, 'an offset is followed by its width');
      const size = sizes.get(m[1]!);
      if (size !== undefined) assert.ok(checks[i]!.value + width.value <= size, `${m[1]} ${m[2]}`);
    }
  });
});

describe('scripts/check-abi.mjs', () => {
  it('finds every value equal to the C side', () => {
    const out = execFileSync(process.execPath, [path.join(REPO, 'scripts/check-abi.mjs')], {
      encoding: 'utf8',
    });
    assert.match(out, /^check-abi: \d+ ABI values match/);
  });
});

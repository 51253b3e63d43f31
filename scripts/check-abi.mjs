#!/usr/bin/env node
// Build-time check of src/kernel/abi.ts against C: every syscall number,
// flag, errno value, enum value, struct size, field offset and field width
// registered there is printed by a small C program compiled against the
// installed headers ('uapi') or, for what is newer than them, against the
// running kernel's BTF (build/bpf/vmlinux.h, made by `make -C bpf`). Any
// difference, or a C expression that does not compile, fails (exit 1).
// Needs the TypeScript build (dist/) and a C compiler. Run by scripts/setup.sh.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname, '..');
const verbose = process.argv.includes('--verbose');
const { abiChecks, checkArch } = await import(path.join(repo, 'dist/src/kernel/abi.js'));

const arch = checkArch();
if (!arch.ok) {
  console.error(`check-abi: ${arch.detail}`);
  process.exit(1);
}

const checks = abiChecks();
// clang: scripts/setup.sh installs it (for the BPF objects); gcc works as well (CC=gcc).
const cc = process.env.CC ?? 'clang';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cgview-abi-'));

const HEADERS = {
  uapi: [
    '#define _GNU_SOURCE',
    '#include <errno.h>',
    '#include <fcntl.h>',
    '#include <stdio.h>',
    '#include <stddef.h>',
    '#include <sys/syscall.h>',
    '#include <sys/socket.h>',
    '#include <sys/stat.h>',
    '#include <sys/vfs.h>',
    '#include <sys/inotify.h>',
    '#include <linux/bpf.h>',
    '#include <linux/btf.h>',
    '#include <linux/openat2.h>',
    '#include <linux/capability.h>',
    '#include <linux/magic.h>',
    '#include <bpf/libbpf.h>',
  ],
  // vmlinux.h is the whole kernel's types: no libc header may come beside it.
  btf: ['#include "vmlinux.h"', 'int printf(const char *, ...);'],
  // cgview's BPF headers (the structs its objects share with TypeScript), on vmlinux.h as in bpf/.
  cgview: [
    '#include <cgview/cgview.h>',
    '#include "sched_lat.h"',
    '#include "bulk.h"',
    'int printf(const char *, ...);',
  ],
};

/** Compiles and runs the program for one source; returns index -> value. */
function evaluate(src, list) {
  const lines = [...HEADERS[src], 'int main(void) {'];
  for (const { i, c } of list) lines.push(`  printf("%d %lld\\n", ${i}, (long long)(${c}));`);
  lines.push('  return 0;', '}', '');
  const file = path.join(tmp, `${src}.c`);
  const exe = path.join(tmp, src);
  fs.writeFileSync(file, lines.join('\n'));
  const include =
    src === 'btf'
      ? [`-I${path.join(repo, 'build/bpf')}`]
      : src === 'cgview'
        ? [
            '-D__TARGET_ARCH_x86',
            `-I${path.join(repo, 'build/bpf')}`,
            `-I${path.join(repo, 'bpf')}`,
            `-I${path.join(repo, 'bpf/include')}`,
          ]
        : [];
  if (src !== 'uapi' && !fs.existsSync(path.join(repo, 'build/bpf/vmlinux.h'))) {
    console.error('check-abi: build/bpf/vmlinux.h is missing; run `make -C bpf` first');
    process.exit(1);
  }
  try {
    execFileSync(cc, ['-O0', '-w', ...include, '-o', exe, file], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = String(e.stderr ?? e.message);
    // Name the entries the compiler refused, by the line they are on.
    const bad = new Set();
    for (const m of err.matchAll(/\.c:(\d+):\d+: error/g)) {
      const entry = list[Number(m[1]) - HEADERS[src].length - 2];
      if (entry) bad.add(`${entry.c} (${src})`);
    }
    console.error(`check-abi: the ${src} program does not compile:`);
    const where = { uapi: 'installed headers', btf: 'kernel BTF', cgview: "project's BPF headers" }[src];
    for (const b of bad) console.error(`  not in the ${where}: ${b}`);
    if (!bad.size || verbose) console.error(err);
    process.exit(1);
  }
  const out = new Map();
  for (const line of execFileSync(exe, { encoding: 'utf8' }).trim().split('\n')) {
    const [i, v] = line.split(' ');
    out.set(Number(i), Number(v));
  }
  return out;
}

const bySource = { uapi: [], btf: [], cgview: [] };
const unchecked = [];
checks.forEach((c, i) => {
  if (typeof c.src === 'object') unchecked.push(c);
  else bySource[c.src].push({ i, c: c.c });
});

let bad = 0;
for (const src of ['uapi', 'btf', 'cgview']) {
  const got = evaluate(src, bySource[src]);
  for (const { i } of bySource[src]) {
    const want = checks[i].value;
    const have = got.get(i);
    if (have !== want) {
      bad++;
      console.error(`check-abi: ${checks[i].c} is ${have} in the ${src} C, ${want} in src/kernel/abi.ts`);
    } else if (verbose) console.log(`ok ${src} ${checks[i].c} = ${want}`);
  }
}
fs.rmSync(tmp, { recursive: true, force: true });
const summary = `${bySource.uapi.length} against the installed headers, ${bySource.btf.length} against the kernel's BTF, ${bySource.cgview.length} against cgview's BPF headers, ${unchecked.length} unchecked (${unchecked.map((c) => `${c.c}: ${c.src.none}`).join('; ')})`;
if (bad) {
  console.error(`check-abi: ${bad} of ${checks.length} ABI values differ: ${summary}`);
  process.exit(1);
}
console.log(`check-abi: ${checks.length} ABI values match: ${summary}`);

/** cgview new-view NAME [--with-collector]: writes a view skeleton NAME.bpf.c in the current directory. */
import fs from 'node:fs';
import path from 'node:path';
import { CgviewError } from '../errors.js';
import { builtinViews } from '../views/registry.js';
import { bytePath, cwdBytes, OPTIONS, parseArgs, usageError, writeText } from './args.js';

// C keywords (C11 and the GNU ones clang knows): not usable as a function name.
const C_KEYWORDS = new Set(
  (
    'auto break case char const continue default do double else enum extern float for goto if inline int ' +
    'long register restrict return short signed sizeof static struct switch typedef union unsigned void ' +
    'volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert ' +
    '_Thread_local asm typeof __asm__ __typeof__ __attribute__ bool true false'
  ).split(' '),
);

/** Longest NAME: it is the program, a map prefix and the pin's file name. */
export const MAX_VIEW_NAME = 48;

/**
 * Why NAME cannot be a view's name, or null. It is the program's name (a C
 * identifier), the default name of its pin files (bpffs refuses a '.') and
 * of its metrics (cgview_NAME_...), so the built-in views' names are refused too.
 */
export function badViewName(name: string): string | null {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    return 'a view name is a C identifier: letters, digits and _, not starting with a digit';
  if (name.length > MAX_VIEW_NAME) return `a view name has at most ${MAX_VIEW_NAME} characters`;
  if (C_KEYWORDS.has(name)) return `${name} is a C keyword`;
  if (name.startsWith('__') || name.startsWith('bpf_')) return 'names starting with __ or bpf_ are reserved';
  if (builtinViews().includes(name)) return `${name} is a built-in view`;
  return null;
}

/** The skeleton's source, on the view kit (bpf/include/cgview/, docs/writing-views.md). */
export function viewSource(name: string, withCollector: boolean): string {
  const head = `// SPDX-License-Identifier: GPL-2.0
/*
 * ${name}: a cgview view, made by \`cgview new-view${withCollector ? ' --with-collector' : ''}\`.
 *
 *   cgview build ${name}.bpf.c
 *   cgview pin ./${name}.bpf.o:${name} /sys/fs/bpf/cgview --inherit
 *   cgview cat /sys/fs/cgroup/unified ${name}
 *
 * A view prints "key: value" lines, cgroup_id first; keys ending in _total
 * are counters, _ns nanoseconds (docs/views.md, "Key conventions"; the kit's
 * printing macros, cgview/print.h, spell them). Walkthrough:
 * docs/writing-views.md.
 */
#include <cgview/cgview.h>

char LICENSE[] SEC("license") = "GPL";
`;
  if (!withCollector)
    return `${head}
/* The view: run once per read of a view file, for that file's cgroup. */
SEC("iter/cgroup")
int ${name}(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;

	if (!cgrp) /* the end of the iteration */
		return 0;
	cgv_print_cgroup_id(seq, cgrp);
	cgv_print_int(seq, "level", cgrp->level);
	return 0;
}
`;
  return `${head}
/* 0: follow cgroup v2; N: the v1 hierarchy with id N. The daemon sets it before load. */
const volatile __u32 v1_hierarchy_id = 0;

/* What the collector keeps for each cgroup. */
struct ${name}_cgroup {
	__u64 switches; /* context switches of the cgroup's tasks */
};

/*
 * Per-cgroup storage (cgview/storage.h): cgroup storage on v2 (made on a
 * cgroup's first event, freed with it), a hash keyed by cgroup id on v1
 * (at most 16384 cgroups).
 */
CGV_STORAGE(${name}_store, struct ${name}_cgroup, 16384);

/*
 * The collector: every program that is not iter/cgroup is one. The daemon
 * loads and attaches it once, when the first view of this object is pinned,
 * and keeps it (and its maps) until the last one is unpinned.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(${name}_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct cgroup *cg = cgv_task_cgroup(prev, v1_hierarchy_id);
	struct ${name}_cgroup *c = cgv_storage_get(${name}_store, cg, v1_hierarchy_id, true);

	if (c)
		__sync_fetch_and_add(&c->switches, 1);
	return 0;
}

/* A v1 cgroup's entry goes with the cgroup (v2 storage goes by itself). */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(${name}_rmdir, struct cgroup *cgrp, const char *path)
{
	cgv_storage_rmdir(${name}_store, cgrp, v1_hierarchy_id);
	return 0;
}

/* The view: run once per read of a view file, for that file's cgroup. */
SEC("iter/cgroup")
int ${name}(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	struct ${name}_cgroup *c;

	if (!cgrp) /* the end of the iteration */
		return 0;
	cgv_print_cgroup_id(seq, cgrp);
	c = cgv_storage_lookup(${name}_store, cgrp);
	cgv_print_counter(seq, "switches", c ? c->switches : 0);
	return 0;
}
`;
}

export async function newView(argv: string[]): Promise<number> {
  const a = parseArgs(argv, OPTIONS['new-view']!);
  const [name, ...extra] = a.positional;
  if (!name || extra.length) throw usageError('usage: cgview new-view NAME [--with-collector]');
  const bad = badViewName(name);
  if (bad) throw usageError(`bad view name ${JSON.stringify(name)}: ${bad}`, 'e.g. cgview new-view my_view');
  const file = path.join(cwdBytes(), `${name}.bpf.c`);
  const withCollector = a.bools.has('with-collector');
  try {
    // O_EXCL: an existing file (or symlink) is never overwritten.
    fs.writeFileSync(bytePath(file), viewSource(name, withCollector), { flag: 'wx', mode: 0o644 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new CgviewError('E_EXISTS', `${name}.bpf.c exists; not overwritten`, {
        path: file,
        hint: 'remove it first, or choose another NAME',
      });
    throw new CgviewError('E_SYSCALL', `write ${name}.bpf.c: ${code}`, { path: file, cause: e });
  }
  writeText(
    process.stdout,
    `wrote ${name}.bpf.c (view ${name}${withCollector ? `, collector ${name}_switch and ${name}_rmdir` : ''})\n` +
      `next: cgview build ${name}.bpf.c && cgview pin ./${name}.bpf.o:${name} DIR --inherit\n`,
  );
  return 0;
}

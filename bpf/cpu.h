/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The `cpu` view: definitions shared by its collector (cpu_collector.bpf.c)
 * and the view (cpu.bpf.c). Method and format: docs/cpu-views.md.
 *
 * Both objects include this file, so the two counter maps are declared the
 * same way in both; the loader reuses the collector's pinned maps in the
 * view object by name (src/views/collectors.ts):
 *
 *     cpu_cgrp    per-cgroup counters, cgroup v2 (cgroup-local storage)
 *     cpu_cg_v1   per-cgroup counters keyed by cgroup id, used only when the
 *                 collector follows a v1 hierarchy (v1_hierarchy_id != 0)
 */
#ifndef CPU_VIEW_H
#define CPU_VIEW_H

/* Most v1 cgroups followed at once (cpu_cg_v1 entries; removed at rmdir). */
#define CPU_V1_MAX_CGROUPS 16384

/*
 * Counters of one cgroup's own tasks, monotonic for the cgroup's life.
 * Added to with atomic adds by whichever CPU switches a task of the cgroup.
 */
struct cpu_stats {
	__u64 run_ns;         /* on-CPU time: sched_switch to sched_switch */
	__u64 nvcsw;          /* voluntary switches (the task blocked) */
	__u64 nivcsw;         /* involuntary switches (preempted or yielded, still runnable) */
	__u64 by_self;        /* involuntary, in favour of a task of the same cgroup */
	__u64 by_other;       /* involuntary, in favour of a task of another cgroup */
	__u64 migrations;     /* moves of a task of the cgroup to another CPU */
	__u64 pad[2];         /* one cache line */
};

/* Declared the same way in both objects (cgview/storage.h): the view reuses the collector's. */
CGV_STORAGE_MAPS(cpu_cgrp, cpu_cg_v1, struct cpu_stats, CPU_V1_MAX_CGROUPS);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sched_lat: definitions shared by the collector (sched_lat_collector.bpf.c)
 * and the views (sched_lat.bpf.c). See docs/sched_lat.md for the method.
 *
 * Both objects include this file, so the maps the views read are declared
 * with the same name, type, key, value and max_entries in both; the loader
 * reuses the collector's (pinned) map fds in the view object *by name*:
 *
 *     sl_cgrp    per-cgroup stats, cgroup v2 (and any cgroup the collector
 *                can get a trusted pointer to)
 *     sl_cg_v1   per-cgroup stats keyed by cgroup id, used only when the
 *                collector follows a v1 hierarchy (v1_hierarchy_id != 0)
 *
 * Only fixed-width types are used: the layouts are read by two separately
 * compiled objects and must not depend on the compiler's idea of `long`.
 * No map has a pinning attribute: the daemon pins and reuses maps itself.
 */
#ifndef SCHED_LAT_H
#define SCHED_LAT_H

#include <cgview/storage.h>

/*
 * Per-CPU slots in the per-cgroup run-time array and in sl_cpu. Equal to
 * this kernel's CONFIG_NR_CPUS (256). The loader refuses to start the
 * collector on a machine with more possible CPUs (src/views/collectors.ts),
 * so every CPU has its slot.
 */
#define SL_MAX_CPUS 256

/*
 * Wait-time histogram, log2 buckets: bucket i counts waits w with
 * 2^i <= w < 2^(i+1) ns (bucket 0 also holds w = 0). The last bucket also
 * holds every longer wait (>= 2^39 ns, about 9 minutes).
 */
#define SL_HIST_BUCKETS 40

/* Most v1 cgroups followed at once (sl_cg_v1 entries; removed at rmdir). */
#define SL_V1_MAX_CGROUPS 16384

/*
 * The per-cgroup statistics, as printed by the views. Updated with atomic
 * adds by whichever CPU completes a wait; the two maxima are updated with a
 * compare-and-swap loop. Totals and counts only grow for the cgroup's life.
 */
struct sl_stats {
#ifndef SL_TEST_OLD_LAYOUT
	__u64 wait_count;     /* completed waits */
	__u64 wait_ns_total;  /* sum of wait lengths */
#else
	/* Upgrade test only: a same-size layout change (bpf/Makefile TEST_OLD). */
	__u64 wait_ns_total;
	__u64 wait_count;
#endif
	__u64 self_ns_total;  /* sum of queue_self parts */
	__u64 other_ns_total; /* sum of queue_other parts (= wait - self) */
	__u64 self_max_ns;    /* largest queue_self of one wait */
	__u64 other_max_ns;   /* largest queue_other of one wait */
	__u64 hist[SL_HIST_BUCKETS];
};

/*
 * The fast read path (sched_lat_bulk.bpf.c, bulk.h, src/views/bulk.ts): one
 * record per cgroup of a hierarchy walk. Layout in src/kernel/abi.ts
 * (SL_BULK_REC), checked by check-abi.
 */
struct sl_bulk_rec {
	__u64 id;        /* cgrp->kn->id */
	__u64 parent_id; /* the parent cgroup's kn->id; 0 for a hierarchy root */
	struct sl_stats st;
};

/*
 * The value of a per-cgroup map entry: the stats, then the cgroup's
 * cumulative run time on each CPU (ns its tasks ran there, charged at each
 * sched_switch on that CPU; only that CPU writes its slot, under its run
 * queue lock). run_ns starts on its own cache line so that the switch path
 * does not share lines with the stats other CPUs add to.
 */
struct sl_cgroup {
	struct sl_stats st;
	__u64 run_ns[SL_MAX_CPUS] __attribute__((aligned(64)));
};

/*
 * Per-task wait state (collector only). start_ns != 0 while the task is
 * runnable but not running. nsw is the task's context-switch count
 * (nvcsw + nivcsw) when the wait started: a task that has been switched out
 * since has run, so a start with another count is stale (its switch-in was
 * not seen) and is never completed nor kept. snap_ns is the value of its cgroup's
 * run_ns[cpu] plus the in-progress run of that cgroup on `cpu` when the
 * wait started on `cpu` (or the task was migrated to it); self_acc_ns is the
 * queue_self already earned on CPUs the task left while waiting. cg is the
 * identity (kernel address) of the cgroup the wait started in.
 */
struct sl_task {
	__u64 start_ns;
	__u64 snap_ns;
	__u64 self_acc_ns;
	__u64 cg;
	__u64 nsw;
	__u32 cpu;
	__u32 pad;
};

/*
 * Per-CPU scheduler state (collector only), one cache line per CPU. Written
 * at sched_switch on that CPU; read from other CPUs by the wakeup and
 * migration programs (an ARRAY indexed by cpu, so any CPU can read it).
 * curr_cg is the identity of the cgroup of the running task, 0 when idle.
 */
struct sl_cpu {
	__u64 last_switch_ns;
	__u64 curr_cg;
	__u64 pad[6];
};

/* ---- maps shared by both objects (reused by name) ---- */

/*
 * The per-cgroup storage of the view kit (bpf/include/cgview/storage.h):
 * sl_cgrp, a CGRP_STORAGE (cgroup v2, and any cgroup the collector can get
 * a trusted pointer to), and sl_cg_v1, a hash keyed by cgroup id, used only
 * when the collector follows a v1 hierarchy.
 */
CGV_STORAGE_MAPS(sl_cgrp, sl_cg_v1, struct sl_cgroup, SL_V1_MAX_CGROUPS);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The `sched_culprits` view: definitions shared by its collector
 * (sched_culprits_collector.bpf.c) and the view (sched_culprits.bpf.c).
 * Method, bounds and format: docs/cpu-views.md.
 *
 * The two counter maps are declared the same way in both objects; the
 * loader reuses the collector's pinned maps in the view object by name:
 *
 *     sc_cgrp    per-cgroup culprit table, cgroup v2 (cgroup-local storage)
 *     sc_cg_v1   the same keyed by cgroup id, when the collector follows a
 *                v1 hierarchy (v1_hierarchy_id != 0)
 */
#ifndef SCHED_CULPRITS_H
#define SCHED_CULPRITS_H

/* Culprits kept per cgroup; time behind any other one is summed in rest_ns. */
#define SC_TOPK 8

/* Most v1 cgroups followed at once (sc_cg_v1 entries; removed at rmdir). */
#define SC_V1_MAX_CGROUPS 16384

/*
 * One culprit of a cgroup: id (cgrp->kn->id; 0 = free slot), ns its tasks
 * ran on a CPU while a task of the owning cgroup waited there (the printed
 * counter), and score, the weight used to choose what to evict (ns plus
 * what the culprit earned as a candidate before it got the slot).
 */
struct sc_entry {
	__u64 id;
	__u64 ns;
	__u64 score;
};

/*
 * A cgroup's culprit table. rest_ns: time behind culprits without a slot,
 * plus the ns of evicted entries (so the printed lines only grow), plus the
 * part of very long waits whose run log was overwritten (docs). cand_id /
 * cand_ns: the candidate for a slot among the culprits without one, and its
 * net time (a majority vote: others' time wears it down); it takes the slot
 * of the entry with the smallest score once its net time is more.
 */
struct sc_cgroup {
	struct sc_entry top[SC_TOPK];
	__u64 rest_ns;
	__u64 cand_id;
	__u64 cand_ns;
	__u64 pad;
};

/* Declared the same way in both objects (cgview/storage.h): the view reuses the collector's. */
CGV_STORAGE_MAPS(sc_cgrp, sc_cg_v1, struct sc_cgroup, SC_V1_MAX_CGROUPS);

#endif

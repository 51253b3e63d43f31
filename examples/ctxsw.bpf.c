// SPDX-License-Identifier: GPL-2.0
/*
 * ctxsw: context switches and on-CPU time slices of each cgroup's tasks.
 * Made with `cgview new-view ctxsw --with-collector`, then a histogram was
 * added (docs/writing-views.md walks through it).
 *
 *   cgview build examples/ctxsw.bpf.c
 *   cgview pin ./examples/ctxsw.bpf.o:ctxsw /sys/fs/bpf/cgview --inherit
 *   cgview cat /sys/fs/cgroup/unified ctxsw
 *
 * Prints, after cgroup_id:
 *   switches_total       times a task of the cgroup was switched out
 *   slice_ns_total       on-CPU time of those slices, in ns (the histogram's sum;
 *                        the scheduler's account, as in /proc/PID/schedstat)
 *   slice_ns_lt_<B>      slices shorter than B ns (cumulative; B = 2^11 ... 2^33)
 *   slice_ns_lt_inf      every slice measured (the histogram's count)
 * Metrics: cgview_ctxsw_switches_total (counter) and cgview_ctxsw_slice_seconds
 * (histogram). cgroup v2 only.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* Buckets: [0, 2^11), [2^11, 2^12), ..., [2^32, 2^33), [2^33, inf). */
#define CTXSW_MIN_SHIFT 11
#define CTXSW_BUCKETS 24

struct ctxsw_cgroup {
	__u64 switches;
	__u64 slice_ns_total;
	__u64 hist[CTXSW_BUCKETS];
};

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ctxsw_cgroup);
} ctxsw_cgrp SEC(".maps");

/*
 * Each task's on-CPU time (se.sum_exec_runtime, what /proc/PID/schedstat
 * prints first) when it was last switched in. The scheduler's own account,
 * not the clock: it leaves out what the kernel does not charge to the task
 * (time stolen by a hypervisor, interrupts where they are accounted apart).
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} ctxsw_task SEC(".maps");

/* The histogram bucket of a slice of `ns` nanoseconds. */
static __always_inline __u32 ctxsw_bucket(__u64 ns)
{
	__u32 log = 0;

	/* floor(log2(ns)) without a loop */
	if (ns >> 32) { ns >>= 32; log += 32; }
	if (ns >> 16) { ns >>= 16; log += 16; }
	if (ns >> 8) { ns >>= 8; log += 8; }
	if (ns >> 4) { ns >>= 4; log += 4; }
	if (ns >> 2) { ns >>= 2; log += 2; }
	if (ns >> 1) log += 1;
	if (log < CTXSW_MIN_SHIFT)
		return 0;
	log -= CTXSW_MIN_SHIFT - 1;
	return log < CTXSW_BUCKETS ? log : CTXSW_BUCKETS - 1;
}

/* The collector: at every context switch, prev's slice ends and next's begins. */
SEC("tp_btf/sched_switch")
int BPF_PROG(ctxsw_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct ctxsw_cgroup *c;
	__u64 *start;

	c = bpf_cgrp_storage_get(&ctxsw_cgrp, prev->cgroups->dfl_cgrp, 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	start = bpf_task_storage_get(&ctxsw_task, prev, 0, 0);
	if (c) {
		__sync_fetch_and_add(&c->switches, 1);
		/* prev's run time is brought up to date before this tracepoint. */
		if (start && *start && prev->se.sum_exec_runtime + 1 >= *start) {
			__u64 ns = prev->se.sum_exec_runtime + 1 - *start;

			__sync_fetch_and_add(&c->slice_ns_total, ns);
			__sync_fetch_and_add(&c->hist[ctxsw_bucket(ns)], 1);
		}
	}
	start = bpf_task_storage_get(&ctxsw_task, next, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	/* +1: a task that never ran yet has 0, which means "not seen" above. */
	if (start)
		*start = next->se.sum_exec_runtime + 1;
	return 0;
}

/* The view. */
SEC("iter/cgroup")
int ctxsw(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	struct ctxsw_cgroup *c;
	__u64 cum = 0;
	int i;

	if (!cgrp)
		return 0;
	BPF_SEQ_PRINTF(seq, "cgroup_id: %llu\n", cgrp->kn->id);
	c = bpf_cgrp_storage_get(&ctxsw_cgrp, cgrp, 0, 0);
	BPF_SEQ_PRINTF(seq, "switches_total: %llu\n", c ? c->switches : 0);
	BPF_SEQ_PRINTF(seq, "slice_ns_total: %llu\n", c ? c->slice_ns_total : 0);
	/* Cumulative: slice_ns_lt_B counts the slices shorter than B. */
	for (i = 0; i < CTXSW_BUCKETS - 1; i++) {
		cum += c ? c->hist[i] : 0;
		BPF_SEQ_PRINTF(seq, "slice_ns_lt_%llu: %llu\n", 1ULL << (CTXSW_MIN_SHIFT + i), cum);
	}
	cum += c ? c->hist[CTXSW_BUCKETS - 1] : 0;
	BPF_SEQ_PRINTF(seq, "slice_ns_lt_inf: %llu\n", cum);
	return 0;
}

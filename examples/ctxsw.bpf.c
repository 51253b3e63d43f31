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
 *   slice_ns_total       on-CPU time of those slices, in ns (the histogram's
 *                        sum; the scheduler's account, as in /proc/PID/schedstat)
 *   slice_ns_lt_<B>      slices shorter than B ns (cumulative; B = 2^11 ... 2^39)
 *   slice_ns_lt_inf      every slice measured (the histogram's count)
 *   p50_ns, p99_ns       the slices' percentiles since the cgroup was made (for
 *                        people: not exported, the histogram carries them)
 * Metrics: cgview_ctxsw_switches_total (counter) and cgview_ctxsw_slice_seconds
 * (histogram). cgroup v2 and v1.
 */
#include <cgview/cgview.h>

char LICENSE[] SEC("license") = "GPL";

/* 0: follow cgroup v2; N: the v1 hierarchy with id N. The daemon sets it before load. */
const volatile __u32 v1_hierarchy_id = 0;

/* Buckets below 2^11 ns (2 us) are printed as one line. */
#define CTXSW_MIN_LOG2 11

struct ctxsw_cgroup {
	__u64 switches;
	__u64 slice_ns_total;
	__u64 slice[CGV_HIST_BUCKETS]; /* log2 buckets: [2^i, 2^(i+1)) ns */
};

CGV_STORAGE(ctxsw_store, struct ctxsw_cgroup, 16384);

/*
 * Each task's on-CPU time (se.sum_exec_runtime, what /proc/PID/schedstat
 * prints first) when it was last switched in, plus one (0: not seen yet).
 * The scheduler's own account rather than the clock: it leaves out what the
 * kernel does not charge to the task (time a hypervisor stole, say).
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} ctxsw_task SEC(".maps");

/* The collector: at every context switch, prev's slice ends and next's begins. */
SEC("tp_btf/sched_switch")
int BPF_PROG(ctxsw_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct cgroup *cg = cgv_task_cgroup(prev, v1_hierarchy_id);
	ctxsw_store_t *c = cgv_storage_get(ctxsw_store, cg, v1_hierarchy_id, true);
	__u64 *start = bpf_task_storage_get(&ctxsw_task, prev, 0, 0);

	if (c) {
		__sync_fetch_and_add(&c->switches, 1);
		/* prev's run time is brought up to date before this tracepoint. */
		if (start && *start && prev->se.sum_exec_runtime + 1 >= *start) {
			__u64 ns = prev->se.sum_exec_runtime + 1 - *start;

			__sync_fetch_and_add(&c->slice_ns_total, ns);
			cgv_hist_add(c->slice, CGV_HIST_BUCKETS, ns);
		}
	}
	start = bpf_task_storage_get(&ctxsw_task, next, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (start)
		*start = next->se.sum_exec_runtime + 1;
	return 0;
}

/* A v1 cgroup's entry goes with the cgroup (v2 storage goes by itself). */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(ctxsw_rmdir, struct cgroup *cgrp, const char *path)
{
	cgv_storage_rmdir(ctxsw_store, cgrp, v1_hierarchy_id);
	return 0;
}

/* The view. */
SEC("iter/cgroup")
int ctxsw(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	const ctxsw_store_t *c;
	__u64 total;

	if (!cgrp)
		return 0;
	c = cgv_storage_lookup(ctxsw_store, cgrp);
	if (!c) /* nothing recorded yet: print zeros */
		c = &ctxsw_store_zero;
	cgv_print_cgroup_id(seq, cgrp);
	cgv_print_counter(seq, "switches", c->switches);
	cgv_print_ns_counter(seq, "slice", c->slice_ns_total);
	total = cgv_print_hist(seq, "slice_ns", c->slice, CGV_HIST_BUCKETS, CTXSW_MIN_LOG2);
	cgv_print_ns_gauge(seq, "p50", cgv_hist_percentile(c->slice, CGV_HIST_BUCKETS, total, 50));
	cgv_print_ns_gauge(seq, "p99", cgv_hist_percentile(c->slice, CGV_HIST_BUCKETS, total, 99));
	return 0;
}

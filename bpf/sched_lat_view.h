/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the sched_lat views (sched_lat.bpf.c, sched_lat_tree.bpf.c) share:
 * the lookup of a cgroup's stats and the printing of them. Each view is its
 * own object, so that a kernel without what one needs (the css iterator of
 * sched_lat_tree, Linux 6.7) still runs the other.
 */
#ifndef SCHED_LAT_VIEW_H
#define SCHED_LAT_VIEW_H

#include "sched_lat.h"

/* Histogram lines printed: wait_ns_lt_2^SL_PRINT_MIN_LOG2 .. wait_ns_lt_2^(SL_HIST_BUCKETS-1). */
#define SL_PRINT_MIN_LOG2 8

static const struct sl_stats sl_empty;

/* The stats of one cgroup; NULL if nothing was recorded for it yet. */
static __always_inline struct sl_cgroup *cg_lookup(struct cgroup *cgrp)
{
	__u64 id;

	/* The v2 (default) hierarchy has hierarchy id 0. */
	if (cgrp->root->hierarchy_id == 0)
		return bpf_cgrp_storage_get(&sl_cgrp, cgrp, 0, 0);
	id = cgrp->kn->id;
	return bpf_map_lookup_elem(&sl_cg_v1, &id);
}

/*
 * Value at percentile pct (1..99) of the histogram, interpolated linearly
 * inside the log2 bucket it falls in (so within a factor 2 of the truth).
 */
static __always_inline __u64 percentile(const struct sl_stats *s, __u64 total, __u64 pct)
{
	__u64 target, cum = 0;
	int i;

	if (!total)
		return 0;
	target = (total * pct + 99) / 100;
	for (i = 0; i < SL_HIST_BUCKETS; i++) {
		__u64 n = s->hist[i], lo, width;

		if (cum + n >= target && n) {
			lo = i ? 1ULL << i : 0;
			width = i ? 1ULL << i : 2;
			if (i == SL_HIST_BUCKETS - 1)
				return lo;	/* open-ended bucket: its floor */
			return lo + width * (target - cum) / n;
		}
		cum += n;
	}
	return 0;
}

static __always_inline void print_stats(struct seq_file *seq, __u64 id, const struct sl_stats *s)
{
	__u64 cum = 0, v, self_max, other_max;
	int i;

	BPF_SEQ_PRINTF(seq, "cgroup_id: %llu\n", id);
	/* Read once: the collector may raise a maximum between two prints. */
	self_max = s->self_max_ns;
	other_max = s->other_max_ns;
	BPF_SEQ_PRINTF(seq, "queue_self: %llu\n", self_max);
	BPF_SEQ_PRINTF(seq, "queue_other: %llu\n", other_max);
	BPF_SEQ_PRINTF(seq, "wait_count: %llu\n", s->wait_count);
	BPF_SEQ_PRINTF(seq, "wait_ns_total: %llu\n", s->wait_ns_total);
	BPF_SEQ_PRINTF(seq, "queue_self_ns_total: %llu\n", s->self_ns_total);
	BPF_SEQ_PRINTF(seq, "queue_other_ns_total: %llu\n", s->other_ns_total);
	/* The RFC's lines 2 and 3 again, named by the key conventions (docs/views.md). */
	BPF_SEQ_PRINTF(seq, "queue_self_max_ns: %llu\n", self_max);
	BPF_SEQ_PRINTF(seq, "queue_other_max_ns: %llu\n", other_max);

	/* wait_ns_lt_<2^k>: waits shorter than 2^k ns (cumulative). The last
	 * bucket is open-ended, so it only shows in wait_ns_lt_inf. */
	for (i = 0; i < SL_HIST_BUCKETS; i++) {
		cum += s->hist[i];
		if (i + 1 >= SL_PRINT_MIN_LOG2 && i < SL_HIST_BUCKETS - 1) {
			v = 1ULL << (i + 1);
			BPF_SEQ_PRINTF(seq, "wait_ns_lt_%llu: %llu\n", v, cum);
		}
	}
	BPF_SEQ_PRINTF(seq, "wait_ns_lt_inf: %llu\n", cum);
	BPF_SEQ_PRINTF(seq, "p50_ns: %llu\n", percentile(s, cum, 50));
	BPF_SEQ_PRINTF(seq, "p90_ns: %llu\n", percentile(s, cum, 90));
	BPF_SEQ_PRINTF(seq, "p99_ns: %llu\n", percentile(s, cum, 99));
}

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the sched_lat views (sched_lat.bpf.c, sched_lat_tree.bpf.c) and the
 * bulk reader (sched_lat_bulk.bpf.c) share: the lookup of a cgroup's stats
 * and the printing of them, on the view kit (bpf/include/cgview/). Each
 * view is its own object, so that a kernel without what one needs (the css
 * iterator of sched_lat_tree, Linux 6.7) still runs the other.
 */
#ifndef SCHED_LAT_VIEW_H
#define SCHED_LAT_VIEW_H

#include <cgview/cgview.h>
#include "sched_lat.h"

/* Histogram lines printed: wait_ns_lt_2^SL_PRINT_MIN_LOG2 .. wait_ns_lt_2^(SL_HIST_BUCKETS-1). */
#define SL_PRINT_MIN_LOG2 8

static const struct sl_stats sl_empty;

/* The stats of one cgroup; NULL if nothing was recorded for it yet. */
static __always_inline struct sl_cgroup *cg_lookup(struct cgroup *cgrp)
{
	return cgv_storage_lookup_maps(&sl_cgrp, &sl_cg_v1, cgrp);
}

static __always_inline void print_stats(struct seq_file *seq, __u64 id, const struct sl_stats *s)
{
	__u64 total, self_max, other_max;

	cgv_print_u64(seq, "cgroup_id", id);
	/* Read once: the collector may raise a maximum between two prints. */
	self_max = s->self_max_ns;
	other_max = s->other_max_ns;
	/* The RFC's lines (fixed by DESIGN.md): maxima without a unit suffix, the count. */
	cgv_print_u64(seq, "queue_self", self_max);
	cgv_print_u64(seq, "queue_other", other_max);
	cgv_print_u64(seq, "wait_count", s->wait_count);
	/* wait_ns_total is also the sum of the wait_ns histogram (key conventions). */
	cgv_print_ns_counter(seq, "wait", s->wait_ns_total);
	cgv_print_ns_counter(seq, "queue_self", s->self_ns_total);
	cgv_print_ns_counter(seq, "queue_other", s->other_ns_total);
	/* The RFC's lines 2 and 3 again, named by the key conventions (docs/views.md). */
	cgv_print_ns_gauge(seq, "queue_self_max", self_max);
	cgv_print_ns_gauge(seq, "queue_other_max", other_max);
	/* wait_ns_lt_<2^k>: waits shorter than 2^k ns (cumulative). The last
	 * bucket is open-ended, so it only shows in wait_ns_lt_inf. */
	total = cgv_print_hist(seq, "wait_ns", s->hist, SL_HIST_BUCKETS, SL_PRINT_MIN_LOG2);
	cgv_print_ns_gauge(seq, "p50", cgv_hist_percentile(s->hist, SL_HIST_BUCKETS, total, 50));
	cgv_print_ns_gauge(seq, "p90", cgv_hist_percentile(s->hist, SL_HIST_BUCKETS, total, 90));
	cgv_print_ns_gauge(seq, "p99", cgv_hist_percentile(s->hist, SL_HIST_BUCKETS, total, 99));
}

#endif

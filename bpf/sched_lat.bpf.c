// SPDX-License-Identifier: GPL-2.0
/*
 * The sched_lat view: scheduling queueing delay of one cgroup's own tasks
 * (the RFC's view), as gathered by the collector (sched_lat_collector.bpf.c).
 * Before loading this object the loader reuses the collector's maps
 * `sl_cgrp` and `sl_cg_v1` (declared identically in sched_lat.h) by name.
 * Needs what the collector needs, no kfunc (Linux 6.6 with cgview).
 *
 * Output (key: value lines; format in docs/sched_lat.md):
 *   cgroup_id, queue_self, queue_other (the RFC's three lines, maxima in ns),
 *   wait_count, wait_ns_total, queue_self_ns_total, queue_other_ns_total,
 *   queue_self_max_ns, queue_other_max_ns,
 *   wait_ns_lt_<2^k> (cumulative) ..., wait_ns_lt_inf, p50_ns, p90_ns, p99_ns.
 */
#include <cgview/cgview.h>
#include "sched_lat_view.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/cgroup")
int sched_lat(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	struct sl_cgroup *cg;

	/* NULL marks the end of the iteration (and a cgroup that is gone). */
	if (!cgrp)
		return 0;
	cg = cg_lookup(cgrp);
	print_stats(seq, cgrp->kn->id, cg ? &cg->st : &sl_empty);
	return 0;
}

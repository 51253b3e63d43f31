// SPDX-License-Identifier: GPL-2.0
/*
 * The sched_lat_tree view: sched_lat of a cgroup and all its descendants
 * (summed; maxima and percentiles over the whole subtree), walked with the
 * open-coded css iterator (kfuncs of Linux 6.7+). Before loading this object
 * the loader reuses the collector's maps `sl_cgrp` and `sl_cg_v1` by name.
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

/* Open-coded css iterator kfuncs (Linux 6.7+; libbpf 1.1 has no bpf_for_each). */
extern int bpf_iter_css_new(struct bpf_iter_css *it, struct cgroup_subsys_state *start,
			    unsigned int flags) __weak __ksym;
extern struct cgroup_subsys_state *bpf_iter_css_next(struct bpf_iter_css *it) __weak __ksym;
extern void bpf_iter_css_destroy(struct bpf_iter_css *it) __weak __ksym;

SEC("iter/cgroup")
int sched_lat_tree(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	struct cgroup_subsys_state *pos;
	struct bpf_iter_css it;
	struct sl_stats acc = {};
	int i;

	if (!cgrp)
		return 0;

	/* Pre-order walk of the subtree, the cgroup itself first (RCU held). */
	bpf_iter_css_new(&it, &cgrp->self, BPF_CGROUP_ITER_DESCENDANTS_PRE);
	while ((pos = bpf_iter_css_next(&it))) {
		struct sl_cgroup *cg = cg_lookup(pos->cgroup);

		if (!cg)
			continue;
		acc.wait_count += cg->st.wait_count;
		acc.wait_ns_total += cg->st.wait_ns_total;
		acc.self_ns_total += cg->st.self_ns_total;
		acc.other_ns_total += cg->st.other_ns_total;
		if (cg->st.self_max_ns > acc.self_max_ns)
			acc.self_max_ns = cg->st.self_max_ns;
		if (cg->st.other_max_ns > acc.other_max_ns)
			acc.other_max_ns = cg->st.other_max_ns;
		for (i = 0; i < SL_HIST_BUCKETS; i++)
			acc.hist[i] += cg->st.hist[i];
	}
	bpf_iter_css_destroy(&it);

	print_stats(seq, cgrp->kn->id, &acc);
	return 0;
}

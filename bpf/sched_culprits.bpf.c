// SPDX-License-Identifier: GPL-2.0
/*
 * The `sched_culprits` view: the other cgroups the cgroup's tasks waited
 * behind, and for how long, as gathered by the collector
 * (sched_culprits_collector.bpf.c). Before loading this object the loader
 * reuses the collector's maps `sc_cgrp` and `sc_cg_v1` by name.
 *
 * Output (key: value lines; docs/cpu-views.md):
 *   cgroup_id: <id>
 *   culprit_<id>_ns_total: <ns>     one line per culprit, largest first
 *   culprit_rest_ns_total: <ns>     culprits outside the top SC_TOPK, evicted ones
 */
#include "cgview.h"
#include "sched_culprits.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/cgroup")
int sched_culprits(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	__u64 ids[SC_TOPK], ns[SC_TOPK], rest = 0, id;
	struct sc_cgroup *st;
	int i, j, n = 0;

	if (!cgrp)
		return 0;
	id = cgrp->kn->id;
	if (cgrp->root->hierarchy_id == 0)
		st = bpf_cgrp_storage_get(&sc_cgrp, cgrp, 0, 0);
	else
		st = bpf_map_lookup_elem(&sc_cg_v1, &id);
	BPF_SEQ_PRINTF(seq, "cgroup_id: %llu\n", id);
	if (st) {
		rest = st->rest_ns;
		/* A snapshot of the slots; one culprit in two slots (an eviction race) is merged. */
		for (i = 0; i < SC_TOPK; i++) {
			__u64 cid = st->top[i].id, v = st->top[i].ns;
			bool merged = false;

			if (!cid)
				continue;
			for (j = 0; j < SC_TOPK; j++)
				if (j < n && ids[j] == cid) {
					ns[j] += v;
					merged = true;
				}
			if (!merged && n < SC_TOPK) {
				ids[n & (SC_TOPK - 1)] = cid;
				ns[n & (SC_TOPK - 1)] = v;
				n++;
			}
		}
	}
	/* Largest first (selection sort of at most SC_TOPK lines). */
	for (i = 0; i < SC_TOPK; i++) {
		__u64 best = 0;
		int b = -1;

		for (j = 0; j < SC_TOPK; j++)
			if (j < n && ids[j] && (b < 0 || ns[j] > best)) {
				best = ns[j];
				b = j;
			}
		if (b < 0)
			break;
		BPF_SEQ_PRINTF(seq, "culprit_%llu_ns_total: %llu\n", ids[b & (SC_TOPK - 1)], best);
		ids[b & (SC_TOPK - 1)] = 0;
	}
	BPF_SEQ_PRINTF(seq, "culprit_rest_ns_total: %llu\n", rest);
	return 0;
}

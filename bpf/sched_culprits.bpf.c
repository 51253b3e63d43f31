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
#include <cgview/cgview.h>
#include "sched_culprits.h"

char LICENSE[] SEC("license") = "GPL";

/* The lines still to print; bpf_loop prints the largest one per step. */
struct print_ctx {
	struct seq_file *seq;
	__u64 ids[SC_TOPK];
	__u64 ns[SC_TOPK];
};

/*
 * One step: prints the largest culprit left and clears it. A culprit found
 * in two slots (possible only through an eviction race) is printed once,
 * with the time of both. Returns 1 (stop) when none is left.
 */
static long print_largest(__u32 i, void *ctx)
{
	struct print_ctx *p = ctx;
	__u64 best = 0, id;
	__u32 k, b = SC_TOPK;

	for (k = 0; k < SC_TOPK; k++)
		if (p->ids[k] && (b == SC_TOPK || p->ns[k] > best)) {
			best = p->ns[k];
			b = k;
		}
	if (b >= SC_TOPK)
		return 1;
	id = p->ids[b];
	p->ids[b] = 0;
	for (k = 0; k < SC_TOPK; k++)
		if (p->ids[k] == id) {
			best += p->ns[k];
			p->ids[k] = 0;
		}
	cgv_print_indexed(p->seq, "culprit", id, "ns_total", best);	/* culprit_<id>_ns_total */
	return 0;
}

SEC("iter/cgroup")
int sched_culprits(struct bpf_iter__cgroup *ctx)
{
	struct print_ctx p = { .seq = ctx->meta->seq };
	struct cgroup *cgrp = ctx->cgroup;
	struct sc_cgroup *st;
	__u64 rest = 0;
	int i;

	if (!cgrp)
		return 0;
	st = cgv_storage_lookup_maps(&sc_cgrp, &sc_cg_v1, cgrp);
	cgv_print_cgroup_id(p.seq, cgrp);
	if (st) {
		rest = st->rest_ns;
		/* A snapshot of the slots (other CPUs go on adding). */
		for (i = 0; i < SC_TOPK; i++) {
			p.ids[i] = st->top[i].id;
			p.ns[i] = st->top[i].ns;
		}
		/* Largest first; at most SC_TOPK steps. */
		bpf_loop(SC_TOPK, print_largest, &p, 0);
	}
	cgv_print_indexed_rest(p.seq, "culprit", "ns_total", rest);	/* culprit_rest_ns_total */
	return 0;
}

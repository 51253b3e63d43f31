// SPDX-License-Identifier: GPL-2.0
/*
 * The sched_lat views: scheduling queueing delay of one cgroup, as gathered
 * by the collector (sched_lat_collector.bpf.c). Before loading this object
 * the loader reuses the collector's maps `sl_cgrp` and `sl_cg_v1` (declared
 * identically in sched_lat.h) by name.
 *
 *   sched_lat       the cgroup's own tasks (the RFC's view)
 *   sched_lat_tree  the cgroup and all its descendants (summed; maxima and
 *                   percentiles over the whole subtree)
 *
 * Output (key: value lines; format in docs/sched_lat.md):
 *   cgroup_id, queue_self, queue_other (the RFC's three lines, maxima in ns),
 *   wait_count, wait_ns_total, queue_self_ns_total, queue_other_ns_total,
 *   hist_lt_<2^k>ns (cumulative) ..., hist_lt_inf, p50_ns, p90_ns, p99_ns.
 */
#include "cgview.h"
#include "sched_lat.h"

char LICENSE[] SEC("license") = "GPL";

/* Open-coded css iterator kfuncs (Linux 6.7+; libbpf 1.1 has no bpf_for_each). */
extern int bpf_iter_css_new(struct bpf_iter_css *it, struct cgroup_subsys_state *start,
			    unsigned int flags) __weak __ksym;
extern struct cgroup_subsys_state *bpf_iter_css_next(struct bpf_iter_css *it) __weak __ksym;
extern void bpf_iter_css_destroy(struct bpf_iter_css *it) __weak __ksym;

/* Histogram lines printed: hist_lt_2^SL_PRINT_MIN_LOG2 .. hist_lt_2^SL_HIST_BUCKETS. */
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
	__u64 cum = 0, v;
	int i;

	BPF_SEQ_PRINTF(seq, "cgroup_id: %llu\n", id);
	BPF_SEQ_PRINTF(seq, "queue_self: %llu\n", s->self_max_ns);
	BPF_SEQ_PRINTF(seq, "queue_other: %llu\n", s->other_max_ns);
	BPF_SEQ_PRINTF(seq, "wait_count: %llu\n", s->wait_count);
	BPF_SEQ_PRINTF(seq, "wait_ns_total: %llu\n", s->wait_ns_total);
	BPF_SEQ_PRINTF(seq, "queue_self_ns_total: %llu\n", s->self_ns_total);
	BPF_SEQ_PRINTF(seq, "queue_other_ns_total: %llu\n", s->other_ns_total);

	/* hist_lt_<2^k>ns: waits shorter than 2^k ns (cumulative). The last
	 * bucket is open-ended, so it only shows in hist_lt_inf. */
	for (i = 0; i < SL_HIST_BUCKETS; i++) {
		cum += s->hist[i];
		if (i + 1 >= SL_PRINT_MIN_LOG2 && i < SL_HIST_BUCKETS - 1) {
			v = 1ULL << (i + 1);
			BPF_SEQ_PRINTF(seq, "hist_lt_%lluns: %llu\n", v, cum);
		}
	}
	BPF_SEQ_PRINTF(seq, "hist_lt_inf: %llu\n", cum);
	BPF_SEQ_PRINTF(seq, "p50_ns: %llu\n", percentile(s, cum, 50));
	BPF_SEQ_PRINTF(seq, "p90_ns: %llu\n", percentile(s, cum, 90));
	BPF_SEQ_PRINTF(seq, "p99_ns: %llu\n", percentile(s, cum, 99));
}

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

// SPDX-License-Identifier: GPL-2.0
/*
 * The `cpu` view: on-CPU time, context switches, preemptions by the own /
 * another cgroup and migrations of one cgroup's own tasks, as counted by the
 * collector (cpu_collector.bpf.c). Before loading this object the loader
 * reuses the collector's maps `cpu_cgrp` and `cpu_cg_v1` by name.
 *
 * Output (key: value lines, all monotonic counters; docs/cpu-views.md):
 *   cgroup_id, run_ns_total, nvcsw_total, nivcsw_total,
 *   preempted_by_self_total, preempted_by_other_total, migrations_total
 */
#include "cgview.h"
#include "cpu.h"

char LICENSE[] SEC("license") = "GPL";

static const struct cpu_stats cpu_empty;

SEC("iter/cgroup")
int cpu(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	const struct cpu_stats *s;
	__u64 id;

	if (!cgrp)
		return 0;
	id = cgrp->kn->id;
	if (cgrp->root->hierarchy_id == 0)
		s = bpf_cgrp_storage_get(&cpu_cgrp, cgrp, 0, 0);
	else
		s = bpf_map_lookup_elem(&cpu_cg_v1, &id);
	if (!s)
		s = &cpu_empty;
	BPF_SEQ_PRINTF(seq, "cgroup_id: %llu\n", id);
	BPF_SEQ_PRINTF(seq, "run_ns_total: %llu\n", s->run_ns);
	BPF_SEQ_PRINTF(seq, "nvcsw_total: %llu\n", s->nvcsw);
	BPF_SEQ_PRINTF(seq, "nivcsw_total: %llu\n", s->nivcsw);
	BPF_SEQ_PRINTF(seq, "preempted_by_self_total: %llu\n", s->by_self);
	BPF_SEQ_PRINTF(seq, "preempted_by_other_total: %llu\n", s->by_other);
	BPF_SEQ_PRINTF(seq, "migrations_total: %llu\n", s->migrations);
	return 0;
}

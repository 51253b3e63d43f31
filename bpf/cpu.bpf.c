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
#include <cgview/cgview.h>
#include "cpu.h"

char LICENSE[] SEC("license") = "GPL";

static const struct cpu_stats cpu_empty;

SEC("iter/cgroup")
int cpu(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	const struct cpu_stats *s;

	if (!cgrp)
		return 0;
	s = cgv_storage_lookup_maps(&cpu_cgrp, &cpu_cg_v1, cgrp);
	if (!s)
		s = &cpu_empty;
	cgv_print_cgroup_id(seq, cgrp);
	cgv_print_ns_counter(seq, "run", s->run_ns);			/* run_ns_total */
	cgv_print_counter(seq, "nvcsw", s->nvcsw);			/* nvcsw_total */
	cgv_print_counter(seq, "nivcsw", s->nivcsw);
	cgv_print_counter(seq, "preempted_by_self", s->by_self);
	cgv_print_counter(seq, "preempted_by_other", s->by_other);
	cgv_print_counter(seq, "migrations", s->migrations);
	return 0;
}

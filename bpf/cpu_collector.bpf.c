// SPDX-License-Identifier: GPL-2.0
/*
 * The collector of the `cpu` view: per cgroup, on-CPU time, voluntary and
 * involuntary context switches, involuntary switches in favour of a task of
 * the same / another cgroup, and migrations. Method: docs/cpu-views.md.
 *
 * Programs (attach each with plain bpf_program__attach):
 *   cpu_switch    tp_btf/sched_switch        run time of prev charged; the switch counted
 *   cpu_migrate   tp_btf/sched_migrate_task  a task changes CPU
 *   cpu_rmdir     tp_btf/cgroup_rmdir        drops a v1 cgroup's entry
 */
#include <cgview/cgview.h>
#include "cpu.h"

char LICENSE[] SEC("license") = "GPL";

/* 0: cgroup v2; N: the v1 hierarchy with id N (set before load). */
const volatile __u32 v1_hierarchy_id = 0;

#define TASK_RUNNING_STATE 0

/* Per-CPU: when the last context switch happened there (only that CPU touches it). */
struct cpu_pcpu {
	__u64 last_switch_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_pcpu);
} cpu_pcpu SEC(".maps");

static const struct cpu_stats cpu_zero;

/* The cgroup's counters, made (zeroed) first if there are none. */
static __always_inline struct cpu_stats *cpu_get(struct cgroup *cgrp)
{
	return cgv__storage_get(&cpu_cgrp, &cpu_cg_v1, &cpu_zero, cgrp, v1_hierarchy_id, true);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(cpu_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	struct cgroup *pcg;
	struct cpu_stats *s;
	struct cpu_pcpu *c;
	__u32 zero = 0;
	__u64 now, last;

	c = bpf_map_lookup_elem(&cpu_pcpu, &zero);
	if (!c)
		return 0;
	now = bpf_ktime_get_ns();
	last = c->last_switch_ns;
	c->last_switch_ns = now;
	if (!prev->pid)		/* this CPU's idle task */
		return 0;
	pcg = cgv_task_cgroup(prev, v1_hierarchy_id);
	s = cpu_get(pcg);
	if (!s)
		return 0;
	/* prev ran since the last switch on this CPU (none seen yet: not charged). */
	if (last && now > last)
		__sync_fetch_and_add(&s->run_ns, now - last);
	/*
	 * The kernel counts a switch as voluntary (nvcsw) when the task blocks:
	 * not preempted and its state is not TASK_RUNNING. Anything else
	 * (preemption, sched_yield) is involuntary (nivcsw).
	 */
	if (!preempt && prev_state != TASK_RUNNING_STATE) {
		__sync_fetch_and_add(&s->nvcsw, 1);
		return 0;
	}
	__sync_fetch_and_add(&s->nivcsw, 1);
	if (!next->pid)
		return 0;	/* in favour of idle: neither self nor other */
	if (cgv_task_cgroup(next, v1_hierarchy_id) == pcg)
		__sync_fetch_and_add(&s->by_self, 1);
	else
		__sync_fetch_and_add(&s->by_other, 1);
	return 0;
}

/* Fires for every set_task_cpu(); a move only when the CPU changes. */
SEC("tp_btf/sched_migrate_task")
int BPF_PROG(cpu_migrate, struct task_struct *p, int dest_cpu)
{
	struct cpu_stats *s;

	if (p->thread_info.cpu == (__u32)dest_cpu)
		return 0;
	s = cpu_get(cgv_task_cgroup(p, v1_hierarchy_id));
	if (s)
		__sync_fetch_and_add(&s->migrations, 1);
	return 0;
}

/* v1 entries are not tied to the cgroup's life by the kernel: drop them. */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(cpu_rmdir, struct cgroup *cgrp, const char *path)
{
	cgv__storage_rmdir(&cpu_cg_v1, cgrp, v1_hierarchy_id);
	return 0;
}

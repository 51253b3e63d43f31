/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which cgroup a task is charged to, for the collectors of the `cpu` and
 * `sched_culprits` views (cpu_collector.bpf.c, sched_culprits_collector.bpf.c):
 * the same rule as sched_lat's collector (docs/sched_lat.md, "cgroup v1").
 *
 * The including object declares `const volatile __u32 v1_hierarchy_id`:
 * 0 follows cgroup v2 (task->cgroups->dfl_cgrp); N follows the v1 hierarchy
 * with hierarchy id N through task->cgroups->subsys[] (it needs a controller;
 * a name-only hierarchy yields no cgroup). bpf_task_get_cgroup1() is not
 * used: it takes css_set_lock, which must not be taken under the run-queue
 * lock these programs run under.
 */
#ifndef CPU_CGROUP_H
#define CPU_CGROUP_H

#define CV_TASK_RUNNING 0

static __always_inline struct cgroup *cv_task_cgrp_v1(struct task_struct *p, __u32 hid)
{
	struct css_set *cset = p->cgroups;
	int i;

#pragma unroll
	for (i = 0; i < CGROUP_SUBSYS_COUNT; i++) {
		struct cgroup_subsys_state *css = cset->subsys[i];
		struct cgroup *cgrp;

		if (!css)
			continue;
		cgrp = css->cgroup;
		if (cgrp && cgrp->root->hierarchy_id == hid)
			return cgrp;
	}
	return NULL;
}

/* The task's cgroup in the followed hierarchy; NULL if it has none there. */
static __always_inline struct cgroup *cv_task_cgrp(struct task_struct *p, __u32 hid)
{
	if (!hid)
		return p->cgroups->dfl_cgrp;
	return cv_task_cgrp_v1(p, hid);
}

/* The id every view prints (cgroup_id: ...): the cgroup directory's inode number. */
static __always_inline __u64 cv_cgrp_id(struct cgroup *cgrp)
{
	return cgrp ? cgrp->kn->id : 0;
}

#endif

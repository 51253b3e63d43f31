// SPDX-License-Identifier: GPL-2.0
/*
 * The sched_lat collector: measures, per cgroup, how long runnable tasks
 * wait for a CPU (from wakeup / preemption to being switched in) and splits
 * each wait into queue_self (the CPU ran tasks of the waiting task's own
 * cgroup) and queue_other (anything else). The views in sched_lat.bpf.c
 * print the result. Method, error bounds and migration: docs/sched_lat.md.
 *
 * Programs (attach each with plain bpf_program__attach; sl_switch and
 * sl_migrate before the wakeups, so that no wait starts unseen by them):
 *   sl_switch      tp_btf/sched_switch       run time charged; a preempted
 *                                            prev starts waiting; next's
 *                                            wait completes
 *   sl_migrate     tp_btf/sched_migrate_task a waiting task changes CPU
 *   sl_rmdir       tp_btf/cgroup_rmdir       drops a v1 cgroup's entry
 *   sl_wakeup      tp_btf/sched_wakeup       a wait starts
 *   sl_wakeup_new  tp_btf/sched_wakeup_new   a wait starts (new task)
 */
#include <cgview/cgview.h>
#include "sched_lat.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * 0: follow cgroup v2 (task->cgroups->dfl_cgrp; the fast path).
 * N: follow the v1 hierarchy with hierarchy id N (it must have at least one
 *    controller bound; a name-only hierarchy such as name=systemd is not
 *    reachable this way and yields no data). Set before load.
 */
const volatile __u32 v1_hierarchy_id = 0;

#define TASK_RUNNING_STATE 0

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sl_task);
} sl_task SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct sl_cpu);
} sl_cpu SEC(".maps");

/* Template for creating sl_cg_v1 entries (values are too big for the stack). */
static const struct sl_cgroup sl_zero;

/* ---- which cgroup a task is charged to ---- */

static __always_inline struct cgroup *task_cgrp_v1(struct task_struct *p)
{
	struct css_set *cset = p->cgroups;
	int i;

	/* The hierarchy's css is in whichever subsys slot its controller uses. */
#pragma unroll
	for (i = 0; i < CGROUP_SUBSYS_COUNT; i++) {
		struct cgroup_subsys_state *css = cset->subsys[i];
		struct cgroup *cgrp;

		if (!css)
			continue;
		cgrp = css->cgroup;
		if (cgrp && cgrp->root->hierarchy_id == v1_hierarchy_id)
			return cgrp;
	}
	return NULL;
}

/*
 * The cgroup the task belongs to. Its address is also the cgroup's identity
 * for the same-cgroup comparisons (a cgroup cannot be freed while a task in
 * it, running or waiting, pins its css_set).
 */
static __always_inline struct cgroup *task_cgrp(struct task_struct *p)
{
	if (!v1_hierarchy_id)
		return p->cgroups->dfl_cgrp;
	return task_cgrp_v1(p);
}

static __always_inline struct sl_cgroup *cg_get_v1(struct cgroup *cgrp, bool create)
{
	struct sl_cgroup *cg;
	__u64 id;

	if (!cgrp)
		return NULL;
	id = cgrp->kn->id;
	cg = bpf_map_lookup_elem(&sl_cg_v1, &id);
	if (cg || !create)
		return cg;
	bpf_map_update_elem(&sl_cg_v1, &id, &sl_zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sl_cg_v1, &id);
}

/* The cgroup's stats and run-time counters: one storage lookup. */
static __always_inline struct sl_cgroup *cg_get(struct cgroup *cgrp, bool create)
{
	if (!v1_hierarchy_id)
		return bpf_cgrp_storage_get(&sl_cgrp, cgrp, 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	return cg_get_v1(cgrp, create);
}

/* ---- helpers ---- */

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

/*
 * Lossless maximum: raise *p to v. There is no atomic max instruction, so a
 * compare-and-swap is retried until it succeeds or *p >= v. Only larger
 * values are ever stored, so a failed CAS means another CPU raised *p in
 * between; the retries end as soon as *p >= v. The fast path (no raise
 * needed, or the first CAS wins) is inline; contention goes to bpf_loop,
 * whose bound (2^23) is only there for the verifier: reaching it would take
 * 2^23 larger-but-smaller-than-v maxima stored by other CPUs, each one a
 * completed wait (a context switch), during one loop.
 */
struct max_ctx {
	__u64 *p;
	__u64 v;
};

static long max_step(__u32 i, void *ctx)
{
	struct max_ctx *m = ctx;
	__u64 old = *m->p;

	if (m->v <= old)
		return 1;
	return __sync_val_compare_and_swap(m->p, old, m->v) == old;
}

static __always_inline void max_update(__u64 *p, __u64 v)
{
	__u64 old = *p;
	struct max_ctx m;

	if (v <= old || __sync_val_compare_and_swap(p, old, v) == old)
		return;
	m.p = p;
	m.v = v;
	bpf_loop(1 << 23, max_step, &m, 0);
}

/* The task's context-switch count: it grows each time the task is switched out. */
static __always_inline __u64 nsw_of(struct task_struct *p)
{
	return p->nvcsw + p->nivcsw;
}

/*
 * Value of cg's run-time counter for `cpu` at `now`, including the run in
 * progress there if cg's task is the one running. Called with cpu's run
 * queue lock held (wakeups and migrations run under it), so it cannot race
 * with sched_switch on that CPU.
 */
static __always_inline __u64 run_at(struct sl_cgroup *cg, __u64 tok, __u32 cpu, __u64 now)
{
	__u32 key = cpu;	/* cpu itself stays a bounded register */
	struct sl_cpu *c;
	__u64 v;

	if (!cg || cpu >= SL_MAX_CPUS)
		return 0;
	v = cg->run_ns[cpu & (SL_MAX_CPUS - 1)];
	c = bpf_map_lookup_elem(&sl_cpu, &key);
	if (c && c->curr_cg == tok && c->last_switch_ns && now > c->last_switch_ns)
		v += now - c->last_switch_ns;
	return v;
}

static __always_inline void wait_done(struct sl_cgroup *cg, __u64 wait, __u64 self)
{
	__u64 other;
	__u32 b;

	if (self > wait)
		self = wait;
	other = wait - self;
	b = log2_u64(wait);
	if (b >= SL_HIST_BUCKETS)
		b = SL_HIST_BUCKETS - 1;
#ifdef SL_TEST_OLD_CODE
	/* Upgrade test only: other code, same maps (bpf/Makefile TEST_OLD). */
	__sync_fetch_and_add(&cg->st.wait_count, 0);
#endif

	__sync_fetch_and_add(&cg->st.wait_count, 1);
	__sync_fetch_and_add(&cg->st.wait_ns_total, wait);
	__sync_fetch_and_add(&cg->st.self_ns_total, self);
	__sync_fetch_and_add(&cg->st.other_ns_total, other);
	__sync_fetch_and_add(&cg->st.hist[b], 1);
	max_update(&cg->st.self_max_ns, self);
	max_update(&cg->st.other_max_ns, other);
}

/* ---- a wait starts at a wakeup ---- */

static __always_inline int wait_start_wakeup(struct task_struct *p)
{
	struct sl_cgroup *cg;
	struct cgroup *cgrp;
	struct sl_task *t;
	__u64 now, tok;
	__u32 cpu;

	/*
	 * Waking a task that is still on its CPU (it set its state but has
	 * not scheduled yet) makes it runnable without a wait.
	 */
	if (p->on_cpu)
		return 0;
	t = bpf_task_storage_get(&sl_task, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return 0;
	/*
	 * Already waiting (e.g. a wakeup of a preempted task): keep the start,
	 * unless the task was switched out since (its switch-in was missed,
	 * e.g. before sl_switch was attached): that start is stale.
	 */
	if (t->start_ns && t->nsw == nsw_of(p))
		return 0;
	now = bpf_ktime_get_ns();
	cpu = p->thread_info.cpu;	/* the run queue it was put on */
	cgrp = task_cgrp(p);
	tok = (__u64)cgrp;
	cg = cg_get(cgrp, true);
	t->snap_ns = run_at(cg, tok, cpu, now);
	t->self_acc_ns = 0;
	t->cg = tok;
	t->cpu = cpu;
	t->nsw = nsw_of(p);
	t->start_ns = now;
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sl_wakeup, struct task_struct *p)
{
	return wait_start_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sl_wakeup_new, struct task_struct *p)
{
	return wait_start_wakeup(p);
}

/* ---- the context switch: charge run time, start and complete waits ---- */

SEC("tp_btf/sched_switch")
int BPF_PROG(sl_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	struct sl_cgroup *pcg = NULL, *ncg;
	__u64 now, last, ptok = 0, ntok = 0;
	struct sl_task *t;
	struct sl_cpu *c;
	__u32 key, cpu;

	key = bpf_get_smp_processor_id();
	c = bpf_map_lookup_elem(&sl_cpu, &key);
	if (!c)
		return 0;
	/* key < SL_MAX_CPUS (the lookup succeeded); the mask tells the verifier. */
	cpu = key & (SL_MAX_CPUS - 1);
	now = bpf_ktime_get_ns();
	last = c->last_switch_ns;
	c->last_switch_ns = now;

	if (prev->pid) {	/* pid 0: this CPU's idle task */
		struct cgroup *cgrp = task_cgrp(prev);

		ptok = (__u64)cgrp;
		pcg = cg_get(cgrp, true);
		/* Only this CPU writes its slot, under its rq lock. */
		if (pcg && last && now > last)
			pcg->run_ns[cpu] += now - last;
		/* Still runnable (preempted, or yielded): it waits from now. */
		if (preempt || prev_state == TASK_RUNNING_STATE) {
			t = bpf_task_storage_get(&sl_task, prev, 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (t) {
				t->snap_ns = pcg ? pcg->run_ns[cpu] : 0;
				t->self_acc_ns = 0;
				t->cg = ptok;
				t->cpu = cpu;
				/* Already counted: the kernel counts before the tracepoint. */
				t->nsw = nsw_of(prev);
				t->start_ns = now;
			}
		}
	}

	if (!next->pid) {
		c->curr_cg = 0;
		return 0;
	}
	{
		struct cgroup *cgrp = task_cgrp(next);
		__u64 wait, self;

		ntok = (__u64)cgrp;
		c->curr_cg = ntok;
		t = bpf_task_storage_get(&sl_task, next, 0, 0);
		if (!t || !t->start_ns)
			return 0;
		wait = now > t->start_ns ? now - t->start_ns : 0;
		t->start_ns = 0;
		/* Switched out since the start: it ran in between, the start is stale. */
		if (t->nsw != nsw_of(next))
			return 0;
		ncg = ntok == ptok ? pcg : cg_get(cgrp, true);
		if (!ncg)
			return 0;
		self = t->self_acc_ns;
		if (t->cg != ntok)
			self = 0;	/* moved to another cgroup while waiting */
		else if (t->cpu == cpu && ncg->run_ns[cpu] > t->snap_ns)
			self += ncg->run_ns[cpu] - t->snap_ns;
		wait_done(ncg, wait, self);
	}
	return 0;
}

/*
 * A waiting task moves to another run queue (load balancing). Close the
 * queue_self earned on the old CPU and take a new snapshot on the new one.
 * Fired with the source run queue locked; the destination's state is read
 * without its lock (see docs/sched_lat.md for the bound). For wakeup-time
 * migrations the task is not waiting yet: one lookup and out.
 */
SEC("tp_btf/sched_migrate_task")
int BPF_PROG(sl_migrate, struct task_struct *p, int dest_cpu)
{
	struct sl_cgroup *cg;
	struct cgroup *cgrp;
	struct sl_task *t;
	__u64 now, tok, cur;

	t = bpf_task_storage_get(&sl_task, p, 0, 0);
	if (!t || !t->start_ns || t->nsw != nsw_of(p))
		return 0;
	cgrp = task_cgrp(p);
	tok = (__u64)cgrp;
	if (tok != t->cg)
		return 0;	/* the completion reports queue_self 0 */
	cg = cg_get(cgrp, false);
	if (!cg)
		return 0;
	now = bpf_ktime_get_ns();
	cur = run_at(cg, tok, t->cpu, now);
	if (cur > t->snap_ns)
		t->self_acc_ns += cur - t->snap_ns;
	t->snap_ns = run_at(cg, tok, dest_cpu, now);
	t->cpu = dest_cpu;
	return 0;
}

/* v1 entries are not tied to the cgroup's life by the kernel: drop them. */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(sl_rmdir, struct cgroup *cgrp, const char *path)
{
	__u64 id;

	if (!v1_hierarchy_id || cgrp->root->hierarchy_id != v1_hierarchy_id)
		return 0;
	id = cgrp->kn->id;
	bpf_map_delete_elem(&sl_cg_v1, &id);
	return 0;
}

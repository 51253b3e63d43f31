// SPDX-License-Identifier: GPL-2.0
/*
 * The collector of the `sched_culprits` view: for each cgroup, which other
 * cgroups ran on a CPU while its tasks waited there, and for how long (the
 * split of sched_lat's queue_other by culprit). Method: docs/cpu-views.md.
 *
 * Each CPU keeps a run log: a ring of the last SC_RING segments, a segment
 * being a stretch of time during which tasks of one cgroup (or idle) ran
 * there; a new segment starts only when a switch changes the cgroup. A
 * waiting task remembers the CPU, the time and the log position where its
 * wait started; when it is switched in (or migrated away while waiting) the
 * segments since are walked once and each other cgroup's part of the wait
 * is added to the waiting cgroup's table (top SC_TOPK culprits + rest).
 * The switch path itself is O(1); the walk costs one step per change of
 * cgroup on the CPU during the wait, at most SC_RING.
 *
 * Programs (attach each with plain bpf_program__attach; sc_switch and
 * sc_migrate before the wakeups, so that no wait starts unseen by them):
 *   sc_switch      tp_btf/sched_switch        log updated; prev starts
 *                                             waiting if runnable; next's
 *                                             wait is attributed
 *   sc_migrate     tp_btf/sched_migrate_task  a waiting task changes CPU
 *   sc_rmdir       tp_btf/cgroup_rmdir        drops a v1 cgroup's entry
 *   sc_wakeup      tp_btf/sched_wakeup        a wait starts
 *   sc_wakeup_new  tp_btf/sched_wakeup_new    a wait starts (new task)
 */
#include <cgview/cgview.h>
#include "sched_culprits.h"

char LICENSE[] SEC("license") = "GPL";

/* 0: cgroup v2; N: the v1 hierarchy with id N (set before load). */
const volatile __u32 v1_hierarchy_id = 0;

#define TASK_RUNNING_STATE 0

/* Per-CPU slots of sc_cpu (= CONFIG_NR_CPUS here); the loader refuses more possible CPUs. */
#define SC_MAX_CPUS 256
/* Segments in each CPU's run log (a power of two). */
#define SC_RING 64
#define SC_RING_MASK (SC_RING - 1)

/* One stretch of a CPU's time: from start_ns until the next segment's start, cgroup cg ran (0: idle). */
struct sc_seg {
	__u64 start_ns;
	__u64 cg;
};

/*
 * A CPU's run log. Written only at sched_switch on that CPU (under its run
 * queue lock); read by the wakeup and migration programs, which run under
 * the same lock (wakeups: the lock of the task's CPU; migrations: of the
 * source CPU). seq is the index of the current segment, ring[seq % SC_RING].
 */
struct sc_cpu {
	__u64 seq;
	__u64 pad[7];
	struct sc_seg ring[SC_RING];
};

/*
 * Per-task wait state. start_ns != 0 while the task waits; nsw its context
 * switch count then (a start with another count is stale: sched_lat.md).
 * from_ns / seq / cpu: where the not yet attributed part of the wait began
 * (the start, or the last migration).
 */
struct sc_task {
	__u64 start_ns;
	__u64 from_ns;
	__u64 seq;
	__u64 nsw;
	__u32 cpu;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sc_task);
} sc_task SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SC_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct sc_cpu);
} sc_cpu SEC(".maps");

static const struct sc_cgroup sc_zero;

/* The cgroup's culprit table, made (zeroed) first if there is none. */
static __always_inline struct sc_cgroup *sc_get(struct cgroup *cgrp)
{
	return cgv__storage_get(&sc_cgrp, &sc_cg_v1, &sc_zero, cgrp, v1_hierarchy_id, true);
}

/* The id the views print (cgroup_id: ...): the cgroup directory's inode number; 0 for none. */
static __always_inline __u64 cgrp_id(struct cgroup *cgrp)
{
	return cgrp ? cgrp->kn->id : 0;
}

static __always_inline __u64 nsw_of(struct task_struct *p)
{
	return p->nvcsw + p->nivcsw;
}

/*
 * Adds d ns behind culprit `id` to a cgroup's table. Slots are claimed with
 * a compare-and-swap and never freed; when all are taken the time goes to
 * rest_ns, and counts for or against the table's candidate (below): once the
 * candidate's net time is more than the score of the entry with the smallest
 * score, it takes that slot and the entry's ns move to rest_ns (so every
 * printed counter only grows).
 */
static __always_inline void sc_add(struct sc_cgroup *st, __u64 id, __u64 d)
{
	__u64 min_score = ~0ULL, eid, cand;
	struct sc_entry *e;
	__u32 k, min_k = 0;

	for (k = 0; k < SC_TOPK; k++) {
		e = &st->top[k];
		eid = e->id;
		if (!eid)
			eid = __sync_val_compare_and_swap(&e->id, 0, id);
		if (!eid || eid == id) {
			__sync_fetch_and_add(&e->ns, d);
			e->score += d;
			return;
		}
		if (e->score < min_score) {
			min_score = e->score;
			min_k = k;
		}
	}
	__sync_fetch_and_add(&st->rest_ns, d);
	/*
	 * One candidate among the culprits without a slot, chosen by majority
	 * vote over their time: another one's time first wears the candidate's
	 * down, and takes over when it is more. So the culprit that has most of
	 * the time outside the table gets through, however the others
	 * interleave with it.
	 */
	if (st->cand_id != id) {
		cand = st->cand_ns;
		if (d > cand) {
			st->cand_id = id;
			st->cand_ns = d - cand;
		} else {
			st->cand_ns = cand - d;
		}
		return;
	}
	cand = __sync_add_and_fetch(&st->cand_ns, d);
	if (cand <= min_score)
		return;
	/* One CPU wins the candidate (and so the eviction). */
	if (__sync_val_compare_and_swap(&st->cand_id, id, 0) != id)
		return;
	e = &st->top[min_k & (SC_TOPK - 1)];
	eid = e->id;
	if (__sync_val_compare_and_swap(&e->id, eid, id) != eid)
		return;
	e->score = cand;
	__sync_fetch_and_add(&st->rest_ns, __sync_lock_test_and_set(&e->ns, 0));
}

/* The walk of one CPU's log from a wait's (attribution) start to now. */
struct walk_ctx {
	struct sc_cpu *c;
	struct sc_cgroup *st;
	__u64 first;
	__u64 last;
	__u64 from;
	__u64 now;
	__u64 self;
};

static __always_inline void walk_one(struct walk_ctx *w, __u64 j)
{
	struct sc_seg *seg = &w->c->ring[j & SC_RING_MASK];
	__u64 s = seg->start_ns, e, cg = seg->cg;

	if (!cg || cg == w->self)
		return;		/* idle, or the waiting task's own cgroup */
	if (s < w->from)
		s = w->from;
	e = j == w->last ? w->now : w->c->ring[(j + 1) & SC_RING_MASK].start_ns;
	if (e > s)
		sc_add(w->st, cg, e - s);
}

static long walk_step(__u32 i, void *ctx)
{
	struct walk_ctx *w = ctx;

	walk_one(w, w->first + i);
	return 0;
}

/*
 * Attributes [from, now) of a wait on CPU c (log position seq at `from`) to
 * the cgroups that ran there. Called with c's run queue lock held. Segments
 * overwritten since (a wait across more than SC_RING changes of cgroup) go
 * to rest_ns as unknown culprits.
 */
static __always_inline void attribute(struct sc_cgroup *st, struct sc_cpu *c, __u64 seq,
				      __u64 from, __u64 now, __u64 self)
{
	struct walk_ctx w = { .c = c, .st = st, .first = seq, .last = c->seq,
			      .from = from, .now = now, .self = self };

	if (w.last < w.first)
		return;
	if (w.last - w.first >= SC_RING) {
		__u64 s;

		w.first = w.last - SC_RING + 1;
		s = c->ring[w.first & SC_RING_MASK].start_ns;
		if (s > from) {
			__sync_fetch_and_add(&st->rest_ns, s - from);
			w.from = s;
		}
	}
	if (w.first == w.last) {	/* no change of cgroup during the wait */
		walk_one(&w, w.first);
		return;
	}
	bpf_loop((__u32)(w.last - w.first + 1), walk_step, &w, 0);
}

/* ---- a wait starts at a wakeup ---- */

static __always_inline int wait_start_wakeup(struct task_struct *p)
{
	struct sc_task *t;
	struct sc_cpu *c;
	__u32 cpu;

	if (p->on_cpu)
		return 0;	/* woken before it could block: no wait */
	t = bpf_task_storage_get(&sc_task, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return 0;
	if (t->start_ns && t->nsw == nsw_of(p))
		return 0;	/* already waiting */
	cpu = p->thread_info.cpu;
	c = bpf_map_lookup_elem(&sc_cpu, &cpu);
	if (!c)
		return 0;
	t->start_ns = t->from_ns = bpf_ktime_get_ns();
	t->seq = c->seq;
	t->cpu = cpu;
	t->nsw = nsw_of(p);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sc_wakeup, struct task_struct *p)
{
	return wait_start_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sc_wakeup_new, struct task_struct *p)
{
	return wait_start_wakeup(p);
}

/* ---- the context switch ---- */

SEC("tp_btf/sched_switch")
int BPF_PROG(sc_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	struct cgroup *ncg = NULL;
	struct sc_seg *cur;
	struct sc_task *t;
	struct sc_cpu *c;
	__u64 now, nid = 0, seq;
	__u32 key;

	key = bpf_get_smp_processor_id();
	c = bpf_map_lookup_elem(&sc_cpu, &key);
	if (!c)
		return 0;
	now = bpf_ktime_get_ns();
	if (next->pid) {
		ncg = cgv_task_cgroup(next, v1_hierarchy_id);
		nid = cgrp_id(ncg);
		/* next's wait ends: attribute it, up to now, before the log moves on. */
		t = bpf_task_storage_get(&sc_task, next, 0, 0);
		if (t && t->start_ns) {
			t->start_ns = 0;
			/* Not switched out since the start (else stale), and no migration missed. */
			if (t->nsw == nsw_of(next) && t->cpu == key) {
				struct sc_seg *only = &c->ring[c->seq & SC_RING_MASK];
				struct sc_cgroup *st;

				/*
				 * The common case of a short wait: one segment, of
				 * the own cgroup or idle: nothing to charge, no
				 * storage lookup.
				 */
				if (t->seq == c->seq && (only->cg == nid || !only->cg))
					goto logged;
				st = sc_get(ncg);
				if (st)
					attribute(st, c, t->seq, t->from_ns, now, nid);
			}
		}
	}
logged:
	/* A new segment when the cgroup changes (idle is cgroup 0). */
	seq = c->seq;
	cur = &c->ring[seq & SC_RING_MASK];
	if (cur->cg != nid || !cur->start_ns) {
		seq++;
		cur = &c->ring[seq & SC_RING_MASK];
		cur->start_ns = now;
		cur->cg = nid;
		c->seq = seq;
	}
	/* prev still runnable (preempted, or yielded): it waits from now. */
	if (prev->pid && (preempt || prev_state == TASK_RUNNING_STATE)) {
		t = bpf_task_storage_get(&sc_task, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (t) {
			t->start_ns = t->from_ns = now;
			t->seq = seq;
			t->cpu = key;
			t->nsw = nsw_of(prev);	/* the kernel counted this switch already */
		}
	}
	return 0;
}

/*
 * A waiting task moves to another run queue: what it waited on the old CPU
 * is attributed now (the source run queue is locked here), and it goes on
 * from the destination's current log position (read without that CPU's
 * lock: the walk clamps every segment to the wait, so a position read a
 * switch too early changes nothing).
 */
SEC("tp_btf/sched_migrate_task")
int BPF_PROG(sc_migrate, struct task_struct *p, int dest_cpu)
{
	struct sc_cpu *c, *dc;
	struct sc_cgroup *st;
	struct cgroup *cgrp;
	struct sc_task *t;
	__u32 dest = dest_cpu;
	__u64 now;

	t = bpf_task_storage_get(&sc_task, p, 0, 0);
	if (!t || !t->start_ns || t->nsw != nsw_of(p) || t->cpu == dest)
		return 0;
	c = bpf_map_lookup_elem(&sc_cpu, &t->cpu);
	dc = bpf_map_lookup_elem(&sc_cpu, &dest);
	if (!c || !dc)
		return 0;
	now = bpf_ktime_get_ns();
	cgrp = cgv_task_cgroup(p, v1_hierarchy_id);
	st = sc_get(cgrp);
	if (st)
		attribute(st, c, t->seq, t->from_ns, now, cgrp_id(cgrp));
	t->from_ns = now;
	t->seq = dc->seq;
	t->cpu = dest;
	return 0;
}

/* v1 entries are not tied to the cgroup's life by the kernel: drop them. */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(sc_rmdir, struct cgroup *cgrp, const char *path)
{
	cgv__storage_rmdir(&sc_cg_v1, cgrp, v1_hierarchy_id);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cgview/atomic.h: a lossless maximum shared by all CPUs.
 *
 *   cgv_max(&e->max_ns, v);     raise e->max_ns to v (never lowers it)
 *
 * Counters need no helper: __sync_fetch_and_add(&e->count, 1) is an atomic
 * add (BPF_ATOMIC). There is no atomic max instruction, so cgv_max retries
 * a compare-and-swap until it wins or the stored value is already >= v.
 * Only larger values are ever stored, so each failure means another CPU
 * raised the maximum in between, and the retries stop as soon as it is >= v.
 * The first try is inline (the common case: no raise needed, or it wins);
 * contention goes to bpf_loop (Linux 5.17), whose bound (2^23) is only there
 * for the verifier: reaching it would take 2^23 other raises during one call.
 * Programs that call it need bpf_loop: tracing programs (tp_btf, fentry, ...)
 * and iterators have it.
 */
#ifndef CGVIEW_ATOMIC_H
#define CGVIEW_ATOMIC_H

struct cgv__max_ctx {
	__u64 *p;
	__u64 v;
};

static long cgv__max_step(__u32 i, void *ctx)
{
	struct cgv__max_ctx *m = ctx;
	__u64 old = *m->p;

	if (m->v <= old)
		return 1;
	return __sync_val_compare_and_swap(m->p, old, m->v) == old;
}

/* Raises *p to v if v is larger; lossless under concurrent raises (see above). */
static __always_inline void cgv_max(__u64 *p, __u64 v)
{
	struct cgv__max_ctx m;
	__u64 old = *p;

	if (v <= old || __sync_val_compare_and_swap(p, old, v) == old)
		return;
	m.p = p;
	m.v = v;
	bpf_loop(1 << 23, cgv__max_step, &m, 0);
}

#endif

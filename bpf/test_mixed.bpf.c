// SPDX-License-Identifier: GPL-2.0
/*
 * Test fixture: one object, a good view and a bad one (the verifier rejects
 * it), and a tracing program. A view of the object must load without the
 * others: one bad program may not spoil its neighbours.
 */
#include "cgview.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} mixed_arr SEC(".maps");

SEC("iter/cgroup")
int mixed_good(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cgrp = ctx->cgroup;

	if (!cgrp)
		return 0;
	BPF_SEQ_PRINTF(ctx->meta->seq, "cgroup_id: %llu\n", cgrp->kn->id);
	return 0;
}

SEC("iter/cgroup")
int mixed_bad(struct bpf_iter__cgroup *ctx)
{
	__u32 k = 0;
	__u64 *mixed_bad_unchecked = bpf_map_lookup_elem(&mixed_arr, &k);

	/* Past the end of the 8-byte value: rejected. */
	BPF_SEQ_PRINTF(ctx->meta->seq, "%llu\n", mixed_bad_unchecked[4]);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(mixed_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return 0;
}

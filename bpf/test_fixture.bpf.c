// SPDX-License-Identifier: GPL-2.0
/* Test fixture: a tp_btf program, a hash map, and a const volatile global. */
#include "cgview.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 fixture_magic = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} fixture_hash SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(fixture_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 k = 0;
	__u64 one = 1, *v = bpf_map_lookup_elem(&fixture_hash, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&fixture_hash, &k, &one, BPF_NOEXIST);
	return 0;
}

SEC("iter/cgroup")
int fixture_magic_view(struct bpf_iter__cgroup *ctx)
{
	if (!ctx->cgroup)
		return 0;
	BPF_SEQ_PRINTF(ctx->meta->seq, "magic: %llu\n", fixture_magic);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/* Test fixture: a program the verifier must reject (reads past a map value). */
#include "cgview.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} test_bad_arr SEC(".maps");

SEC("iter/cgroup")
int test_bad(struct bpf_iter__cgroup *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&test_bad_arr, &k);

	/* No NULL check, and an out-of-bounds offset: rejected. */
	BPF_SEQ_PRINTF(ctx->meta->seq, "%llu\n", v[4]);
	return 0;
}

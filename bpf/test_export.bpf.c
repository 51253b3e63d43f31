// SPDX-License-Identifier: GPL-2.0
/*
 * Test fixture for the exporter (test/export): a view that prints one key of
 * every kind the key conventions name (docs/views.md), with values the test
 * knows: a counter, a nanosecond counter, gauges, a text line, a histogram
 * in ns and one without unit, indexed keys holding a cgroup id, a
 * percentile and a legacy RFC key (both not exported).
 */
#include "cgview.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/cgroup")
int test_export(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	__u64 id;

	if (!cgrp)
		return 0;
	id = cgrp->kn->id;
	BPF_SEQ_PRINTF(seq, "cgroup_id: %llu\n", id);
	BPF_SEQ_PRINTF(seq, "name: %s\n", cgrp->kn->name);
	BPF_SEQ_PRINTF(seq, "level: %d\n", cgrp->level);
	BPF_SEQ_PRINTF(seq, "events_total: 42\n");
	BPF_SEQ_PRINTF(seq, "busy_ns_total: 1500000000\n");
	BPF_SEQ_PRINTF(seq, "last_ns: 2000\n");
	BPF_SEQ_PRINTF(seq, "size_lt_10: 1\nsize_lt_100: 3\nsize_lt_inf: 4\nsize_total: 250\n");
	BPF_SEQ_PRINTF(seq, "lat_ns_lt_1024: 1\nlat_ns_lt_2048: 2\nlat_ns_lt_4096: 2\n");
	BPF_SEQ_PRINTF(seq, "lat_ns_lt_inf: 3\nlat_ns_total: 10000\nlat_count: 3\n");
	BPF_SEQ_PRINTF(seq, "culprit_%llu_ns_total: 1000000000\n", id);
	BPF_SEQ_PRINTF(seq, "culprit_rest_ns_total: 3000000000\n");
	BPF_SEQ_PRINTF(seq, "p99_ns: 77\nqueue_self: 5\n");
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/* The `info` view: identity of the cgroup a view file is bound to. */
#include "cgview.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/cgroup")
int info(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;

	/* NULL marks the end of the iteration (and a cgroup that is gone). */
	if (!cgrp)
		return 0;

	BPF_SEQ_PRINTF(seq, "cgroup_id: %llu\n", cgrp->kn->id);
	BPF_SEQ_PRINTF(seq, "level: %d\n", cgrp->level);
	BPF_SEQ_PRINTF(seq, "name: %s\n", cgrp->kn->name);
	BPF_SEQ_PRINTF(seq, "hierarchy_id: %d\n", cgrp->root->hierarchy_id);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/* The `info` view: identity of the cgroup a view file is bound to (on the view kit). */
#include <cgview/cgview.h>

char LICENSE[] SEC("license") = "GPL";

SEC("iter/cgroup")
int info(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;

	/* NULL marks the end of the iteration (and a cgroup that is gone). */
	if (!cgrp)
		return 0;

	cgv_print_cgroup_id(seq, cgrp);
	cgv_print_int(seq, "level", cgrp->level);
	cgv_print_str(seq, "name", cgrp->kn->name);
	cgv_print_int(seq, "hierarchy_id", cgrp->root->hierarchy_id);
	return 0;
}

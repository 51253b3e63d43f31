// SPDX-License-Identifier: GPL-2.0
/*
 * info_bulk: the fast read path of the `info` view (not a view; see
 * bulk.h). Each record holds what info.bpf.c prints for the cgroup: its id,
 * level, name (kernfs name, NUL-terminated, at most 255 bytes) and
 * hierarchy id.
 */
#include <cgview/cgview.h>
#include "bulk.h"

char LICENSE[] SEC("license") = "GPL";

CGV_BULK_MAPS(struct info_bulk_rec);

SEC("iter/cgroup")
int info_bulk(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cgrp = ctx->cgroup;
	struct info_bulk_rec *rec;

	rec = cgv_bulk_slot(ctx);
	if (!rec || !cgrp)
		return 0;
	rec->id = cgrp->kn->id;
	rec->level = cgrp->level;
	rec->hierarchy_id = cgrp->root->hierarchy_id;
	if (bpf_probe_read_kernel_str(rec->name, sizeof(rec->name), cgrp->kn->name) < 0)
		rec->name[0] = 0;
	return 0;
}

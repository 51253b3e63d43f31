// SPDX-License-Identifier: GPL-2.0
/*
 * sched_lat_bulk: the fast read path of sched_lat and sched_lat_tree (not a
 * view; see bulk.h). Each record is a cgroup's id, its parent's id and a
 * copy of its `struct sl_stats`, looked up exactly as the sched_lat view
 * does (sched_lat_view.h cg_lookup): the values are the ones the view file
 * prints for the same cgroup at the same instant. The collector is not
 * changed: this object reuses its maps `sl_cgrp` and `sl_cg_v1` by name, as
 * the views do, so the scheduler path costs nothing more.
 */
#include <cgview/cgview.h>
#include "sched_lat_view.h"
#include "bulk.h"

char LICENSE[] SEC("license") = "GPL";

CGV_BULK_MAPS(struct sl_bulk_rec);

SEC("iter/cgroup")
int sched_lat_bulk(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cgrp = ctx->cgroup;
	struct cgroup_subsys_state *parent;
	struct sl_bulk_rec *rec;
	struct sl_cgroup *cg;

	rec = cgv_bulk_slot(ctx);
	if (!rec || !cgrp)
		return 0;
	rec->id = cgrp->kn->id;
	parent = cgrp->self.parent;
	rec->parent_id = parent ? parent->cgroup->kn->id : 0;
	cg = cg_lookup(cgrp);
	if (cg)
		__builtin_memcpy(&rec->st, &cg->st, sizeof(rec->st));
	else
		__builtin_memset(&rec->st, 0, sizeof(rec->st));
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * sched_lat_bulk: the fast read path of sched_lat and sched_lat_tree (not a
 * view). One read() of an iterator over a whole hierarchy copies every
 * cgroup's `struct sl_stats` into the array `slb_out`, which user space then
 * reads with one BPF_MAP_LOOKUP_BATCH (src/views/bulk.ts). Nothing is
 * printed: a cgroup_iter's output must fit in one read() (the kernel returns
 * -EOPNOTSUPP for a second one), and an empty output always does, so the
 * whole walk (under cgroup_mutex) happens in that one call.
 *
 * The collector is not changed: this object reuses its maps `sl_cgrp` and
 * `sl_cg_v1` by name, as the views do, and looks each cgroup up exactly as
 * the sched_lat view does (sched_lat_view.h cg_lookup). So the values are
 * the ones the view file prints for the same cgroup at the same instant, and
 * the scheduler path costs nothing more.
 *
 * Link: iter/cgroup, order DESCENDANTS_PRE, on the hierarchy's root cgroup.
 * Record i is the i-th cgroup of the pre-order walk (parents before their
 * children). The loader sizes `slb_out` (max_entries) before load; a walk
 * that finds more cgroups than that still counts them all (slb_hdr.count),
 * and the loader grows the array and reads again.
 */
#include <cgview/cgview.h>
#include "sched_lat_view.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);	/* set by the loader */
	__type(key, __u32);
	__type(value, struct sl_bulk_rec);
} slb_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_bulk_hdr);
} slb_hdr SEC(".maps");

SEC("iter/cgroup")
int sched_lat_bulk(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cgrp = ctx->cgroup;
	__u32 zero = 0, idx = (__u32)ctx->meta->seq_num;
	struct cgroup_subsys_state *parent;
	struct sl_bulk_rec *rec;
	struct sl_bulk_hdr *hdr;
	struct sl_cgroup *cg;

	hdr = bpf_map_lookup_elem(&slb_hdr, &zero);
	if (!hdr)
		return 0;
	if (!cgrp) {
		/* Called once more at the end of a complete walk. */
		hdr->done = 1;
		return 0;
	}
	/* seq_num numbers the cgroups shown: 0, 1, ... (the end call has no number of its own). */
	hdr->count = (__u64)idx + 1;
	rec = bpf_map_lookup_elem(&slb_out, &idx);
	if (!rec)
		return 0;	/* past the array: counted, read again with a larger one */
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

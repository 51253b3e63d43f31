/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cgview/storage.h: one entry of your own per cgroup, on cgroup v2 and v1.
 *
 * Declare it once (file scope), with the type of the entry:
 *
 *     struct my_entry { __u64 switches_total; __u64 lat[CGV_HIST_BUCKETS]; };
 *     CGV_STORAGE(my_store, struct my_entry, 16384);
 *
 * which declares
 *     my_store       BPF_MAP_TYPE_CGRP_STORAGE: cgroup v2 (the entry lives
 *                    and dies with the cgroup)
 *     my_store_v1    BPF_MAP_TYPE_HASH, cgroup id (cgrp->kn->id, __u64) ->
 *                    entry, up to the given count, no prealloc: cgroup v1,
 *                    whose cgroup pointers the verifier does not trust for
 *                    cgroup storage; entries are removed at rmdir
 *                    (cgv_storage_rmdir below)
 *     my_store_zero  a zeroed entry (const): the template v1 entries are made
 *                    from (an entry may be too big for the BPF stack); a view
 *                    may print it for a cgroup without an entry
 *     my_store_t     the entry type (what cgv_storage_get/lookup return pointers to)
 * Collector and view objects that share the storage both declare it the same
 * way (put the declaration in a header they both include): the daemon reuses
 * the collector's maps in the view by name. CGV_STORAGE_MAPS(v2, v1, type,
 * max) declares only the two maps, under names of your choice (no template).
 *
 * In a collector (tracing programs: tp_btf, fentry, ...):
 *
 *     const volatile __u32 v1_hierarchy_id = 0;   // 0: follow cgroup v2;
 *                                                 // N: the v1 hierarchy with id N (set before load)
 *     struct cgroup *cg = cgv_task_cgroup(task, v1_hierarchy_id);
 *     struct my_entry *e = cgv_storage_get(my_store, cg, v1_hierarchy_id, true);
 *     if (e) __sync_fetch_and_add(&e->switches_total, 1);
 *
 *   cgv_task_cgroup(p, hid)          the task's cgroup in the followed hierarchy
 *                                    (v2: p->cgroups->dfl_cgrp; v1: the css of
 *                                    hierarchy hid, which needs a controller
 *                                    bound to it), or NULL
 *   cgv_storage_get(S, cg, hid, create)
 *                                    the entry of cg, made (zeroed) first if
 *                                    create and there is none; NULL if none or
 *                                    it cannot be made (v1: the hash is full).
 *                                    With hid a const volatile 0 the verifier
 *                                    drops the v1 code: the v2 path costs one
 *                                    storage lookup.
 *   cgv_storage_rmdir(S, cg, hid)    in a SEC("tp_btf/cgroup_rmdir") program:
 *                                    drops cg's v1 entry (v2 entries go by themselves)
 *
 * In a view (SEC("iter/cgroup"), ctx->cgroup is trusted on both versions):
 *
 *     struct my_entry *e = cgv_storage_lookup(my_store, ctx->cgroup);   // NULL: nothing recorded
 *
 *   cgv_storage_lookup(S, cg)        picks the map by cg's hierarchy (id 0 is v2)
 *   cgv_storage_lookup_maps(v2, v1, cg)  the same for maps declared with CGV_STORAGE_MAPS (a void *)
 *
 * Counters in an entry only grow for the cgroup's life; the daemon keeps the
 * maps pinned across its restarts.
 */
#ifndef CGVIEW_STORAGE_H
#define CGVIEW_STORAGE_H

#define CGV_STORAGE_MAPS(v2name, v1name, value_type, v1_max_entries)  \
	struct {                                                      \
		__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);              \
		__uint(map_flags, BPF_F_NO_PREALLOC);                 \
		__type(key, int);                                     \
		__type(value, value_type);                            \
	} v2name SEC(".maps");                                        \
	struct {                                                      \
		__uint(type, BPF_MAP_TYPE_HASH);                      \
		__uint(map_flags, BPF_F_NO_PREALLOC);                 \
		__uint(max_entries, v1_max_entries);                  \
		__type(key, __u64); /* cgrp->kn->id */                \
		__type(value, value_type);                            \
	} v1name SEC(".maps")

#define CGV_STORAGE(name, value_type, v1_max_entries)                       \
	CGV_STORAGE_MAPS(name, name##_v1, value_type, v1_max_entries);      \
	typedef value_type name##_t;                                        \
	static const value_type name##_zero __attribute__((unused))

/* ---- which cgroup a task is charged to ---- */

static __always_inline struct cgroup *cgv__task_cgroup_v1(struct task_struct *p, __u32 hid)
{
	struct css_set *cset = p->cgroups;
	int i;

	/* The hierarchy's css is in whichever subsys slot its controller uses. */
#pragma unroll
	for (i = 0; i < CGROUP_SUBSYS_COUNT; i++) {
		struct cgroup_subsys_state *css = cset->subsys[i];
		struct cgroup *cgrp;

		if (!css)
			continue;
		cgrp = css->cgroup;
		if (cgrp && cgrp->root->hierarchy_id == hid)
			return cgrp;
	}
	return NULL;
}

/*
 * The cgroup of task p in hierarchy hid (0: cgroup v2). Its address is also
 * an identity for same-cgroup comparisons while a task of it runs or waits
 * (the task's css_set pins it). Not bpf_task_get_cgroup1(): that takes
 * css_set_lock, which must not be taken under a run-queue lock.
 */
static __always_inline struct cgroup *cgv_task_cgroup(struct task_struct *p, __u32 hid)
{
	if (!hid)
		return p->cgroups->dfl_cgrp;
	return cgv__task_cgroup_v1(p, hid);
}

/* ---- get or create, look up, drop ---- */

static __always_inline void *cgv__storage_get(void *v2map, void *v1map, const void *zero,
					      struct cgroup *cgrp, __u32 hid, bool create)
{
	void *e;
	__u64 id;

	if (!hid)
		return bpf_cgrp_storage_get(v2map, cgrp, 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	if (!cgrp)
		return NULL;
	id = cgrp->kn->id;
	e = bpf_map_lookup_elem(v1map, &id);
	if (e || !create)
		return e;
	bpf_map_update_elem(v1map, &id, zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(v1map, &id);
}

#define cgv_storage_get(name, cgrp, hid, create)                                             \
	((name##_t *)cgv__storage_get(&name, &name##_v1, &name##_zero, (cgrp), \
						     (hid), (create)))

/* The entry of a cgroup a view iterates (a trusted pointer); NULL when nothing was recorded. */
static __always_inline void *cgv_storage_lookup_maps(void *v2map, void *v1map, struct cgroup *cgrp)
{
	__u64 id;

	/* The v2 (default) hierarchy has hierarchy id 0. */
	if (cgrp->root->hierarchy_id == 0)
		return bpf_cgrp_storage_get(v2map, cgrp, 0, 0);
	id = cgrp->kn->id;
	return bpf_map_lookup_elem(v1map, &id);
}

#define cgv_storage_lookup(name, cgrp)                                                       \
	((name##_t *)cgv_storage_lookup_maps(&name, &name##_v1, (cgrp)))

/* Drops cgrp's v1 entry when cgrp (in a tp_btf/cgroup_rmdir program) is of hierarchy hid != 0. */
static __always_inline void cgv__storage_rmdir(void *v1map, struct cgroup *cgrp, __u32 hid)
{
	__u64 id;

	if (!hid || cgrp->root->hierarchy_id != hid)
		return;
	id = cgrp->kn->id;
	bpf_map_delete_elem(v1map, &id);
}

#define cgv_storage_rmdir(name, cgrp, hid) cgv__storage_rmdir(&name##_v1, (cgrp), (hid))

#endif

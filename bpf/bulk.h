/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The bulk read path's helper objects (sched_lat_bulk.bpf.c,
 * info_bulk.bpf.c; read by src/views/bulk.ts): not views. Each is an
 * iter/cgroup program linked to a hierarchy's root cgroup with order
 * DESCENDANTS_PRE that prints nothing and writes one record per cgroup into
 * the array `bulk_out`: a cgroup_iter's output must fit in one read() (the
 * kernel returns -EOPNOTSUPP for a second one) and an empty output always
 * does, so the whole walk happens in that one call (under cgroup_mutex).
 * Record i is the i-th cgroup of the pre-order walk (parents before their
 * children). The loader sizes `bulk_out` (max_entries) before load; a walk
 * that finds more cgroups than that still counts them all (`bulk_hdr`), and
 * the loader grows the array and reads again. Layouts in src/kernel/abi.ts,
 * checked by scripts/check-abi.mjs.
 */
#ifndef CGVIEW_BULK_H
#define CGVIEW_BULK_H

struct cgv_bulk_hdr {
	__u64 count;     /* cgroups the walk saw (records written: min(count, max_entries)) */
	__u64 done;      /* 1: the walk ended (the loader zeroes it before each read) */
};

/* A record of info_bulk.bpf.c: what the info view prints. */
struct info_bulk_rec {
	__u64 id;           /* cgrp->kn->id */
	__s32 level;        /* cgrp->level */
	__s32 hierarchy_id; /* cgrp->root->hierarchy_id */
	char name[256];     /* cgrp->kn->name (NAME_MAX 255 + NUL) */
};

/* The maps of a bulk object, records of type rec_type. */
#define CGV_BULK_MAPS(rec_type)                                 \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_ARRAY);               \
		__uint(max_entries, 1);	/* set by the loader */ \
		__type(key, __u32);                             \
		__type(value, rec_type);                        \
	} bulk_out SEC(".maps");                                \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_ARRAY);               \
		__uint(max_entries, 1);                         \
		__type(key, __u32);                             \
		__type(value, struct cgv_bulk_hdr);             \
	} bulk_hdr SEC(".maps")

/*
 * The record of this call's cgroup (counted in bulk_hdr), or NULL: at the
 * end of the walk (ctx->cgroup NULL: marks the walk done) or past the array.
 * The index is the program's own count, not ctx->meta->seq_num: the
 * iterator numbers a cgroup that is being removed too but does not run the
 * program for it, which would leave a stale record in its slot. One walk at
 * a time per object (the loader's reads are synchronous, and each walk
 * holds cgroup_mutex).
 */
#define cgv_bulk_slot(ctx)                                                     \
	({                                                                     \
		__u32 __zero = 0, __idx;                                       \
		struct cgv_bulk_hdr *__hdr = bpf_map_lookup_elem(&bulk_hdr, &__zero); \
		void *__rec = NULL;                                            \
		if (__hdr) {                                                   \
			if (!(ctx)->cgroup) {                                  \
				__hdr->done = 1;                               \
			} else {                                               \
				__idx = (__u32)__hdr->count;                   \
				__hdr->count = (__u64)__idx + 1;               \
				__rec = bpf_map_lookup_elem(&bulk_out, &__idx); \
			}                                                      \
		}                                                              \
		__rec;                                                         \
	})

#endif

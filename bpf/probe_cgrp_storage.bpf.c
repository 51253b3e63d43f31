// SPDX-License-Identifier: GPL-2.0
/*
 * Feature probe for `cgview doctor`: cgroup local storage
 * (BPF_MAP_TYPE_CGRP_STORAGE, Linux 6.2+), reached from a tp_btf program
 * through the task's default-hierarchy cgroup, as per-cgroup collectors do.
 */
#include "cgview.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} probe_cgrp_storage SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(probe_cgrp_storage_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 *n;

	n = bpf_cgrp_storage_get(&probe_cgrp_storage, prev->cgroups->dfl_cgrp, 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Test fixture of the view kit (bpf/include/cgview/, test/views/kit.test.ts):
 * a collector and its view in one object, using every part of the kit's API.
 * Per cgroup: how often its tasks were switched out, their on-CPU time
 * (sched_switch to sched_switch on a CPU), its largest run and a log2
 * histogram of the runs.
 */
#include <cgview/cgview.h>

char LICENSE[] SEC("license") = "GPL";

/* 0: cgroup v2; N: the v1 hierarchy with id N (set before load). */
const volatile __u32 v1_hierarchy_id = 0;

struct kit_entry {
	__u64 switches;
	__u64 run_ns;
	__u64 run_max_ns;
	__u64 run_hist[CGV_HIST_BUCKETS];
};

CGV_STORAGE(kit_store, struct kit_entry, 1024);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} kit_last SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(kit_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct kit_entry *e;
	__u64 now, last, d;
	__u64 *slot;

	slot = bpf_map_lookup_elem(&kit_last, &cpu);
	if (!slot)
		return 0;
	now = bpf_ktime_get_ns();
	last = *slot;
	*slot = now;
	if (!prev->pid || !last || now <= last)
		return 0;
	e = cgv_storage_get(kit_store, cgv_task_cgroup(prev, v1_hierarchy_id), v1_hierarchy_id, true);
	if (!e)
		return 0;
	d = now - last;
	__sync_fetch_and_add(&e->switches, 1);
	__sync_fetch_and_add(&e->run_ns, d);
	cgv_max(&e->run_max_ns, d);
	cgv_hist_add(e->run_hist, CGV_HIST_BUCKETS, d);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(kit_rmdir, struct cgroup *cgrp, const char *path)
{
	cgv_storage_rmdir(kit_store, cgrp, v1_hierarchy_id);
	return 0;
}

SEC("iter/cgroup")
int kit_view(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	const struct kit_entry *e;
	__u64 total;

	if (!cgrp)
		return 0;
	e = cgv_storage_lookup(kit_store, cgrp);
	if (!e)
		e = &kit_store_zero;
	cgv_print_cgroup_id(seq, cgrp);
	cgv_print_int(seq, "level", cgrp->level);
	cgv_print_str(seq, "name", cgrp->kn->name);
	cgv_print_counter(seq, "switches", e->switches);
	cgv_print_ns_counter(seq, "run", e->run_ns);
	cgv_print_ns_gauge(seq, "run_max", e->run_max_ns);
	total = cgv_print_hist(seq, "run_ns", e->run_hist, CGV_HIST_BUCKETS, 10);
	cgv_print_ns_gauge(seq, "p50", cgv_hist_percentile(e->run_hist, CGV_HIST_BUCKETS, total, 50));
	cgv_print_ns_gauge(seq, "p99", cgv_hist_percentile(e->run_hist, CGV_HIST_BUCKETS, total, 99));
	cgv_print_indexed(seq, "slot", 3, "seen_total", e->switches);
	cgv_print_indexed_rest(seq, "slot", "seen_total", 0);
	cgv_print_s64(seq, "minus_one", -1);
	return 0;
}

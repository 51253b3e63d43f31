/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cgview's view kit: everything a view or a collector needs, in one include.
 *
 *     #include <cgview/cgview.h>
 *
 * brings the kernel's types (vmlinux.h, made from the running kernel's BTF:
 * `make -C bpf` or `cgview build` put it on the include path), libbpf's
 * helpers (bpf_helpers.h, bpf_tracing.h, bpf_core_read.h), and the kit:
 *
 *   cgview/storage.h   per-cgroup storage: CGRP_STORAGE on cgroup v2, a hash
 *                      keyed by cgroup id on v1, one "get or create" call
 *   cgview/hist.h      log2 histograms: update, cumulative lines, percentiles
 *   cgview/atomic.h    lossless maximum across CPUs
 *   cgview/print.h     printing in the key conventions the exporter,
 *                      `cgview top` and the dashboard understand
 *
 * Reference: bpf/include/cgview/README.md. The built-in views (bpf/info.bpf.c,
 * bpf/sched_lat*.bpf.c) are written on it.
 */
#ifndef CGVIEW_KIT_H
#define CGVIEW_KIT_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "atomic.h"
#include "hist.h"
#include "print.h"
#include "storage.h"

#endif

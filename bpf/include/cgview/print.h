/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cgview/print.h: printing a view's `key: value` lines in the key
 * conventions (docs/views.md, "Key conventions"), so that `cgview cat
 * --json`, the exporter (/metrics), `cgview top` and the dashboard type
 * them with no configuration. Every key argument is a string literal (it
 * becomes part of the format: no run-time cost); `seq` is ctx->meta->seq.
 *
 *   cgv_print_cgroup_id(seq, cgrp)        cgroup_id: <cgrp->kn->id>     first line of every view
 *   cgv_print_counter(seq, "stem", v)     stem_total: v                 counter
 *   cgv_print_ns_counter(seq, "stem", v)  stem_ns_total: v              counter in ns -> stem_seconds_total
 *   cgv_print_ns_gauge(seq, "stem", v)    stem_ns: v                    gauge in ns -> stem_seconds
 *   cgv_print_u64(seq, "key", v)          key: v (unsigned)             a gauge (or any key spelled out)
 *   cgv_print_s64(seq, "key", v)          key: v (signed)               a gauge that may be negative
 *   cgv_print_int(seq, "key", v)          key: v (int, "%d")            a gauge from an int field (level)
 *   cgv_print_str(seq, "key", s)          key: s                        text (not a sample), e.g. a name
 *   cgv_print_indexed(seq, "family", i, "rest", v)
 *                                         family_<i>_rest: v            one series of a family, label family="<i>"
 *   cgv_print_indexed_rest(seq, "family", "rest", v)
 *                                         family_rest_rest: v           the family's remainder, label family="rest"
 *   cgv_print_hist(seq, "name", h, n, min_log2)   (cgview/hist.h)       histogram lines
 *
 * Conventions in short: `_total` is a monotonic counter (never reset while
 * the cgroup lives), `_ns` means nanoseconds, a histogram is cumulative
 * `<h>_lt_<B>` lines and `<h>_lt_inf`, its sum `<h>_total`; `p<N>_ns`
 * lines are percentiles for people (not exported); a family named
 * `culprit` or ending in `_cgroup` holds cgroup ids (shown with their
 * path); anything else numeric is a gauge, anything else text.
 */
#ifndef CGVIEW_PRINT_H
#define CGVIEW_PRINT_H

#define cgv_print_cgroup_id(seq, cgrp) BPF_SEQ_PRINTF(seq, "cgroup_id: %llu\n", (__u64)(cgrp)->kn->id)
#define cgv_print_u64(seq, key, v) BPF_SEQ_PRINTF(seq, key ": %llu\n", (__u64)(v))
#define cgv_print_s64(seq, key, v) BPF_SEQ_PRINTF(seq, key ": %lld\n", (__s64)(v))
#define cgv_print_int(seq, key, v) BPF_SEQ_PRINTF(seq, key ": %d\n", (int)(v))
#define cgv_print_str(seq, key, s) BPF_SEQ_PRINTF(seq, key ": %s\n", s)
#define cgv_print_counter(seq, stem, v) cgv_print_u64(seq, stem "_total", v)
#define cgv_print_ns_counter(seq, stem, v) cgv_print_u64(seq, stem "_ns_total", v)
#define cgv_print_ns_gauge(seq, stem, v) cgv_print_u64(seq, stem "_ns", v)
#define cgv_print_indexed(seq, family, i, rest, v)                                   \
	BPF_SEQ_PRINTF(seq, family "_%llu_" rest ": %llu\n", (__u64)(i), (__u64)(v))
#define cgv_print_indexed_rest(seq, family, rest, v) cgv_print_u64(seq, family "_rest_" rest, v)

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cgview/hist.h: log2 histograms.
 *
 * A histogram is an array of __u64 buckets in your map value:
 *
 *     __u64 lat[CGV_HIST_BUCKETS];         // or any count n <= 64
 *
 * Bucket i counts values v with 2^i <= v < 2^(i+1) (bucket 0 also counts
 * v = 0); the last bucket also counts everything larger (open-ended). With
 * the default 40 buckets and nanoseconds, the last one starts at 2^39 ns,
 * about 9 minutes.
 *
 *   cgv_log2(v)                         floor(log2(v)), 0 for v = 0
 *   cgv_hist_add(h, n, v)               count v (atomic add: any CPU may call it)
 *   cgv_hist_total(h, n)                all observations
 *   cgv_hist_percentile(h, n, total, pct)
 *                                       value at percentile pct (1..99),
 *                                       linear inside its bucket: within a
 *                                       factor 2 of the truth; a rank in the
 *                                       open-ended bucket gives its floor
 *   cgv_print_hist(seq, "name", h, n, min_log2)    (a macro; returns the total)
 *                                       prints the histogram in the key
 *                                       conventions (docs/views.md):
 *                                         name_lt_<2^k>: <observations < 2^k>
 *                                       for k = min_log2 .. n-1 (cumulative,
 *                                       growing bounds), then
 *                                         name_lt_inf: <all observations>
 *                                       Buckets below 2^min_log2 are folded
 *                                       into the first line. A name ending in
 *                                       _ns is exported in seconds
 *                                       (wait_ns -> cgview_<view>_wait_seconds);
 *                                       print its sum as name_total
 *                                       (cgv_print_u64(seq, "wait_ns_total", s))
 *                                       and the exporter makes it the _sum.
 *
 * Percentiles and bucket lines are computed by the printing (view) program
 * from a snapshot of the buckets: read each bucket once.
 */
#ifndef CGVIEW_HIST_H
#define CGVIEW_HIST_H

/* The default bucket count: 2^0 .. 2^39 and over. */
#define CGV_HIST_BUCKETS 40

/* floor(log2(v)); 0 for v = 0 and v = 1. */
static __always_inline __u32 cgv_log2(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

/* The bucket of v in a histogram of n buckets. */
static __always_inline __u32 cgv_hist_bucket(__u64 v, __u32 n)
{
	__u32 b = cgv_log2(v);

	return b >= n ? n - 1 : b;
}

/* Counts v in h[0..n) (atomic: safe from any CPU). */
static __always_inline void cgv_hist_add(__u64 *h, __u32 n, __u64 v)
{
	__sync_fetch_and_add(&h[cgv_hist_bucket(v, n) & 63], 1);
}

static __always_inline __u64 cgv_hist_total(const __u64 *h, __u32 n)
{
	__u64 t = 0;
	__u32 i;

	for (i = 0; i < n && i < 64; i++)
		t += h[i];
	return t;
}

/*
 * Value at percentile pct (1..99) of h[0..n) holding `total` observations:
 * the rank ceil(total * pct / 100), interpolated linearly inside the bucket
 * it falls in (so within a factor 2 of the truth); the open-ended last
 * bucket reports its floor; 0 when total is 0.
 */
static __always_inline __u64 cgv_hist_percentile(const __u64 *h, __u32 n, __u64 total, __u64 pct)
{
	__u64 target, cum = 0;
	__u32 i;

	if (!total)
		return 0;
	target = (total * pct + 99) / 100;
	for (i = 0; i < n && i < 64; i++) {
		__u64 c = h[i], lo, width;

		if (cum + c >= target && c) {
			lo = i ? 1ULL << i : 0;
			width = i ? 1ULL << i : 2;
			if (i == n - 1)
				return lo;	/* open-ended bucket: its floor */
			return lo + width * (target - cum) / c;
		}
		cum += c;
	}
	return 0;
}

/*
 * Prints h[0..n) as cumulative lines NAME_lt_<2^k> (k = min_log2 .. n-1)
 * and NAME_lt_inf (see above); NAME must be a string literal. Evaluates to
 * the total number of observations.
 */
#define cgv_print_hist(seq, name, h, n, min_log2)                                  \
	({                                                                         \
		__u64 __cum = 0, __b;                                              \
		int __i;                                                           \
		for (__i = 0; __i < (n); __i++) {                                  \
			__cum += (h)[__i];                                         \
			if (__i + 1 >= (min_log2) && __i < (n) - 1) {              \
				__b = 1ULL << (__i + 1);                           \
				BPF_SEQ_PRINTF(seq, name "_lt_%llu: %llu\n", __b,  \
					       __cum);                             \
			}                                                          \
		}                                                                  \
		BPF_SEQ_PRINTF(seq, name "_lt_inf: %llu\n", __cum);                \
		__cum;                                                             \
	})

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * The floor for the initial mirror: the least work any tool must do per
 * cgroup — mkdir in bpffs, then per view an iter/cgroup link create and a
 * pin — in a tight C loop with no checks. Input: lines "<cgroup id> <relative dir>"
 * (parents before children) on stdin.
 * Usage: floor OBJ PROG BPFFS_DIR NVIEWS [existing] < list
 * With "existing", the directories are there already (made before the clock
 * starts): the floor for pinning one more view over a mirrored tree.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 5 && !(argc == 6 && !strcmp(argv[5], "existing"))) {
		fprintf(stderr, "usage: floor OBJ PROG BPFFS_DIR NVIEWS [existing] < list\n");
		return 2;
	}
	int nviews = atoi(argv[4]);
	int existing = argc == 6;
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "load %s failed\n", argv[1]);
		return 1;
	}
	int prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, argv[2]));
	static char line[8192], path[8192];
	unsigned long long *ids = NULL;
	char **rels = NULL;
	size_t n = 0, cap = 0;
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long long id;
		char rel[4096];
		if (sscanf(line, "%llu %4095s", &id, rel) != 2)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			ids = realloc(ids, cap * sizeof(*ids));
			rels = realloc(rels, cap * sizeof(*rels));
		}
		ids[n] = id;
		rels[n++] = strdup(rel);
	}
	for (size_t i = 0; existing && i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", argv[3], rels[i]);
		if (mkdir(path, 0755)) {
			perror(path);
			return 1;
		}
	}
	double t0 = now();
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", argv[3], rels[i]);
		if (!existing && mkdir(path, 0755)) {
			perror(path);
			return 1;
		}
		for (int v = 0; v < nviews; v++) {
			union bpf_iter_link_info info = {};
			info.cgroup.order = BPF_CGROUP_ITER_SELF_ONLY;
			info.cgroup.cgroup_id = ids[i];
			LIBBPF_OPTS(bpf_link_create_opts, lo, .iter_info = &info, .iter_info_len = sizeof(info));
			int lfd = bpf_link_create(prog_fd, 0, BPF_TRACE_ITER, &lo);
			if (lfd < 0) {
				fprintf(stderr, "link_create %llu: %d\n", ids[i], lfd);
				return 1;
			}
			snprintf(path, sizeof(path), "%s/%s/v%d", argv[3], rels[i], v);
			if (bpf_obj_pin(lfd, path)) {
				perror(path);
				return 1;
			}
			close(lfd);
		}
	}
	double t1 = now();
	printf("%zu %.6f\n", n, t1 - t0);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * The floor for a /metrics scrape on the file path: read every view file
 * once (open, read to EOF, close) in a tight C loop, no parsing, no output.
 * Input: one path per line on stdin. Usage: scrape_floor ROUNDS < list
 * Prints the seconds of each round, space-separated.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	if (argc != 2) {
		fprintf(stderr, "usage: scrape_floor ROUNDS < list\n");
		return 2;
	}
	int rounds = atoi(argv[1]);
	static char line[8192], buf[65536];
	char **paths = NULL;
	size_t n = 0, cap = 0;
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = 0;
		if (!*line)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			paths = realloc(paths, cap * sizeof(*paths));
		}
		paths[n++] = strdup(line);
	}
	size_t bytes = 0;
	for (int r = 0; r < rounds; r++) {
		double t0 = now();
		for (size_t i = 0; i < n; i++) {
			int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				perror(paths[i]);
				return 1;
			}
			ssize_t k;
			while ((k = read(fd, buf, sizeof(buf))) > 0)
				bytes += k;
			close(fd);
		}
		printf("%s%.6f", r ? " " : "", now() - t0);
	}
	printf("\n");
	fprintf(stderr, "%zu files, %zu bytes read\n", n, bytes);
	return 0;
}

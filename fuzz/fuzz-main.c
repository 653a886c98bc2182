/*
 * Replay driver for the fuzz targets: linked with each fuzz/fuzz-<name>.c
 * instead of libFuzzer, so the corpus runs in every build (gcc, clang,
 * sanitizers) through plain `meson test --suite fuzz-corpus`.
 *
 *     fuzz-<name>-replay [FILE|DIR]...
 *
 * Runs the empty input first (as libFuzzer does), then every regular file
 * named, and every regular file below every directory named, in sorted
 * order. Each input is copied into a buffer of exactly its size, so an
 * out-of-bounds read trips ASan as it would under libFuzzer. Arguments that
 * start with '-' are libFuzzer options and are ignored.
 *
 * Exit status: 0 when every input ran, 1 when an input could not be read.
 * A crash in the target is a crash of this program.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned long n_inputs;

static int run_input(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "fuzz-main: cannot read '%s': %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (!buf) {
		fprintf(stderr, "fuzz-main: '%s' is too large\n", path);
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			fprintf(stderr, "fuzz-main: cannot read '%s': %s\n", path,
				k < 0 ? strerror(errno) : "file shrank");
			free(buf);
			close(fd);
			return -1;
		}
		got += (size_t)k;
	}
	close(fd);
	fprintf(stderr, "fuzz-main: %s (%zu bytes)\n", path, got);
	LLVMFuzzerTestOneInput(buf, got);
	free(buf);
	n_inputs++;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path);

static int run_dir(const char *path)
{
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	int r = 0;
	DIR *d;

	d = opendir(path);
	if (!d) {
		fprintf(stderr, "fuzz-main: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		size_t len;
		char *p;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nv;

			cap = cap ? 2 * cap : 64;
			nv = realloc(names, cap * sizeof(*names));
			if (!nv) {
				r = -1;
				break;
			}
			names = nv;
		}
		len = strlen(path) + 1 + strlen(de->d_name) + 1;
		p = malloc(len);
		if (!p) {
			r = -1;
			break;
		}
		snprintf(p, len, "%s/%s", path, de->d_name);
		names[n++] = p;
	}
	closedir(d);
	if (r < 0)
		fputs("fuzz-main: out of memory\n", stderr);
	else if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		if (r == 0 && run_path(names[i]) < 0)
			r = -1;
		free(names[i]);
	}
	free(names);
	return r;
}

static int run_path(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "fuzz-main: cannot stat '%s': %s\n", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return run_dir(path);
	if (S_ISREG(st.st_mode))
		return run_input(path);
	return 0; /* sockets, fifos: not inputs */
}

int main(int argc, char **argv)
{
	static const uint8_t empty[1];
	int i, r = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	LLVMFuzzerTestOneInput(empty, 0);
	n_inputs++;
	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		if (run_path(argv[i]) < 0)
			r = 1;
	}
	fprintf(stderr, "fuzz-main: %lu input(s) ran%s\n", n_inputs,
		r ? ", some could not be read" : "");
	return r;
}

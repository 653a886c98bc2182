/*
 * What drill.c (files, command and mirror jobs: keel restore --verify)
 * and drill-kind.c (image and db jobs) share: one drill under way.
 */
#ifndef KEEL_DAEMON_DRILL_INTERNAL_H
#define KEEL_DAEMON_DRILL_INTERNAL_H

#include <jansson.h>

#include "internal.h"

struct kl_drill {
	const struct kl_daemon_opts *o;
	const struct kl_daemon_repo *rp;  /* the job's: where the record goes */
	const struct kl_daemon_repo *src; /* where the drill restores from (a mirror's copy) */
	const struct kl_daemon_job *j;
	const struct kl_daemon_drill *dr;
	char host[256];
	int log_fd;
	struct kl_daemon_run *ret;
	/* a sample: the include patterns and the bytes they cover */
	char **includes;
	size_t n_includes;
	uint64_t bytes_sample, bytes_total;
};

/* Sets the drill's error (the first one set stays). */
void kl_daemon_drill_fail(struct kl_drill *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Runs argv with stdout to a fresh STATE-DIR/drills/JOB.out; returns its fd in *out_fd. */
int kl_daemon_drill_capture(struct kl_drill *d, struct kl_daemon_argv *a, int *out_fd);
/* The JSON document fd holds (from its start), NULL if none. */
json_t *kl_daemon_drill_load_fd(int fd, size_t flags);
/*
 * The newest snapshot of the job's host and paths (a mirror's: of the
 * copy, any host, no drill record) into d->ret->snapshot and its size
 * into d->bytes_total. Returns 1, 0 (none yet) or -1 (the error set).
 */
int kl_daemon_drill_newest(struct kl_drill *d);
/*
 * A fresh scratch directory SCRATCH/JOB.XXXXXX (mode 0700) into dir (at
 * least 4200 bytes); base_mode is the scratch base's when it is made.
 * Returns 0, or -1 with the drill's error set.
 */
int kl_daemon_drill_scratch(struct kl_drill *d, char *dir, size_t n, mode_t base_mode);
/* Removes the tree at dir, logging what it could not remove. */
void kl_daemon_drill_rmtree(struct kl_drill *d, const char *dir);

/*
 * The drills of image and db jobs (drill-kind.c): the newest restore
 * point restored into a scratch directory and proven, its id into
 * d->ret->snapshot, d->bytes_total set, the time until it was proven
 * into *seconds. Returns 1 (drilled: d->ret->error says whether it
 * failed) or 0 (nothing to drill yet).
 */
int kl_daemon_drill_image(struct kl_drill *d, double *seconds);
int kl_daemon_drill_db(struct kl_drill *d, double *seconds);
/* keel db restore JOB's NAME --target target --latest: 0, or -1 with the error set */
int kl_daemon_drill_db_restore(struct kl_drill *d, const char *target);
/*
 * The MariaDB drill (drill-maria.c) in the scratch directory dir: the
 * restore, a temporary server until it answers, the time into *seconds.
 * Returns 0, or -1 with the drill's error set.
 */
int kl_daemon_drill_maria(struct kl_drill *d, const char *dir, double *seconds);

#endif

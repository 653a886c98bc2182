/* keel status: the verified restore points of a job (cmd-status-verify.c). */
#ifndef KEEL_CLI_CMD_STATUS_H
#define KEEL_CLI_CMD_STATUS_H

#include "cli.h"

/* A restore point of a job: a snapshot (borrowed) and the moment it restores. */
struct kl_status_point {
	const struct kl_snapshot_ref *ref;
	int64_t time_ns;
};

struct kl_status_verified {
	bool have;	   /* a verified restore point exists */
	int64_t time_ns;   /* the newest one's moment */
	const char *by;	   /* "drill" (a successful drill restored it) or "check" (whole) */
	size_t unverified; /* newer restore points not verified (yet) */
	size_t incomplete; /* of those, found lacking data */
};

/*
 * The newest of v (sorted here, newest first) that a successful drill
 * restored (drilled: hex ids) or whose data is all there, looking at no
 * more than a few not yet known whole (remembered in STATE-DIR/verified/JOB).
 * Needs cli->repo open with the key. Returns 0 or the repository's error
 * (reported).
 */
int kl_cli_status_verified(struct kl_cli *cli, const char *state_dir, const char *job,
			   struct kl_status_point *v, size_t n, const char (*drilled)[65],
			   size_t n_drilled, struct kl_status_verified *ret);

#endif

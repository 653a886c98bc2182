/*
 * keel status: which of a job's restore points counts for its RPO
 * (docs/DAEMON.md, "Verified restore points"). Only a verified one: a
 * snapshot a successful drill restored, or one whose every blob (trees,
 * their parts, data) the index names in a pack the storage lists
 * (kl_presence_check, as keel snapshots --check). A snapshot is
 * immutable and prune never removes what a snapshot needs, so one found
 * whole is remembered in STATE-DIR/verified/JOB and never looked at
 * again: each status reads the trees of new snapshots only, and no data.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cmd-status.h"
#include "keel/fs.h"
#include "keel/query.h"

/* ids remembered per job (the newest verified is what counts) */
#define REMEMBERED 64
/* snapshots looked at per job and status, newest first, before giving up */
#define CHECKS_MAX 4

struct memory {
	char ids[REMEMBERED][2 * KL_ID_LEN + 1];
	size_t n;
};

static void memory_read(const char *state_dir, const char *job, struct memory *m)
{
	_cleanup_buf_ struct kl_buf text = KL_BUF_INIT(REMEMBERED * 80);
	char path[4200];
	const char *p, *e;

	m->n = 0;
	snprintf(path, sizeof(path), "%s/verified/%s", state_dir, job);
	if (kl_fs_read_all(AT_FDCWD, path, text.max, &text) < 0)
		return;
	for (p = (const char *)text.data; *p && m->n < REMEMBERED; p = *e ? e + 1 : e) {
		e = strchr(p, '\n');
		if (!e)
			e = p + strlen(p);
		if (e - p == 2 * KL_ID_LEN)
			snprintf(m->ids[m->n++], sizeof(m->ids[0]), "%.*s", (int)(e - p), p);
	}
}

static bool remembered(const struct memory *m, const char *hex)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->ids[i], hex))
			return true;
	return false;
}

/* Adds hex (the oldest falls out) and writes the file; a state directory we cannot write is
 * no error: the snapshot is looked at again next time. */
static void memory_add(const char *state_dir, const char *job, struct memory *m, const char *hex)
{
	_cleanup_buf_ struct kl_buf text = KL_BUF_INIT(REMEMBERED * 80);
	_cleanup_close_ int dfd = -1;
	char dir[4200];

	if (m->n == REMEMBERED) {
		memmove(m->ids[0], m->ids[1], (REMEMBERED - 1) * sizeof(m->ids[0]));
		m->n--;
	}
	snprintf(m->ids[m->n++], sizeof(m->ids[0]), "%s", hex);
	snprintf(dir, sizeof(dir), "%s/verified", state_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < m->n; i++)
		if (kl_buf_addstr(&text, m->ids[i]) < 0 || kl_buf_addch(&text, '\n') < 0)
			return;
	if (dfd >= 0)
		kl_fs_write_atomic(dfd, job, text.data, text.len, 0600, 0);
}

static int newest_first(const void *a, const void *b)
{
	const struct kl_status_point *x = a, *y = b;

	return (x->time_ns < y->time_ns) - (x->time_ns > y->time_ns);
}

int kl_cli_status_verified(struct kl_cli *cli, const char *state_dir, const char *job,
			   struct kl_status_point *v, size_t n, const char (*drilled)[65],
			   size_t n_drilled, struct kl_status_verified *ret)
{
	struct kl_presence pr = {0};
	struct memory m;
	size_t checks = 0;
	bool index = false;
	int rc = 0;

	memset(ret, 0, sizeof(*ret));
	memory_read(state_dir, job, &m);
	if (n)
		qsort(v, n, sizeof(*v), newest_first);
	for (size_t i = 0; i < n && rc >= 0 && !ret->have; i++) {
		char hex[2 * KL_ID_LEN + 1];
		uint64_t missing = 0;

		kl_id_hex(&v[i].ref->id, hex);
		for (size_t k = 0; k < n_drilled && !ret->have; k++)
			if (!strcmp(drilled[k], hex))
				ret->by = "drill";
		if (!ret->by && remembered(&m, hex))
			ret->by = "check";
		if (!ret->by && checks++ < CHECKS_MAX) {
			if (!index && (rc = kl_repo_load_index(cli->repo)) >= 0)
				index = true;
			if (rc >= 0)
				rc = kl_presence_check(cli->repo, &pr, &v[i].ref->s.tree, &missing);
			if (rc >= 0 && !missing) {
				ret->by = "check";
				memory_add(state_dir, job, &m, hex);
			}
			ret->incomplete += rc >= 0 && missing;
		}
		if (ret->by) {
			ret->have = true;
			ret->time_ns = v[i].time_ns;
		} else {
			ret->unverified++;
		}
	}
	kl_presence_release(&pr);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "job '%s': cannot look whether its snapshots are whole", job);
	}
	return rc;
}

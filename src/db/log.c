/*
 * What the streams of every engine share (docs/DATABASES.md): a log
 * record is the same snapshot for PostgreSQL's WAL, MariaDB's binary log
 * and SQLite's frames, tagged and owned alike, only its files and its
 * Database message differ; and a stream that lost its server waits and
 * warns the same way before each attempt to reconnect.
 */
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include "keel/ops.h"
#include "log.h"

int kl_db_log_store(struct kl_repo *r, const struct kl_db_log_rec *x,
		    const struct kl_snapshot_db *db, struct kl_id *id_ret)
{
	char tag[8 + KL_DB_NAME_MAX], *tags[2] = {(char *)"db", tag}, *paths[1] = {tag};
	struct kl_entry_backup *e = NULL;
	struct kl_snapshot snap = {0};
	struct kl_backup_result br;
	struct kl_backup_opts bo;
	struct kl_node n = {.type = KL_NODE_DIR, .mode = 0700};
	int rc;

	snprintf(tag, sizeof(tag), "db:%s", db->name);
	kl_backup_opts_init(&bo);
	bo.host = x->host;
	bo.tags = tags;
	bo.n_tags = 2;
	bo.threads = x->threads ? x->threads : 1;
	n.uid = (uint32_t)geteuid();
	n.gid = (uint32_t)getegid();
	n.mtime_sec = kl_time_now_ns() / KL_NSEC_PER_SEC;
	rc = kl_entry_backup_new(r, &bo, &e);
	if (rc >= 0 && x->time_ns)
		kl_entry_backup_set_time(e, x->time_ns);
	if (rc >= 0 && x->dir)
		rc = kl_entry_backup_add(e, x->dir, &n);
	for (size_t i = 0; rc >= 0 && i < x->n_files; i++) {
		n.type = KL_NODE_FILE;
		n.mode = 0600;
		n.size = x->files[i].len;
		rc = kl_entry_backup_add(e, x->files[i].path, &n);
		if (rc >= 0 && x->files[i].len)
			rc = kl_entry_backup_write(e, x->files[i].data, x->files[i].len);
		if (rc >= 0)
			rc = kl_entry_backup_end(e);
	}
	if (rc >= 0) {
		snap.kind = KL_SNAP_DBLOG;
		snap.paths = paths;
		snap.n_paths = 1;
		snap.has_db = true;
		snap.db = *db;
		snap.db.role = KL_DB_LOG;
		rc = kl_entry_backup_commit(e, &snap, &br);
	}
	if (rc >= 0 && id_ret)
		*id_ret = br.id;
	kl_entry_backup_free(e);
	return rc;
}

int kl_db_wait_stop(int stop_fd, int ms)
{
	struct pollfd pf = {stop_fd, POLLIN, 0};
	uint8_t sink[256];
	int n;

	if (stop_fd < 0) {
		usleep((useconds_t)ms * 1000);
		return 0;
	}
	n = poll(&pf, 1, ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (!n || !(pf.revents & POLLIN))
		return 0;
	if (read(stop_fd, sink, sizeof(sink)) < 0) {
		/* nothing to do: the signal was seen */
	}
	return 1;
}

int kl_db_reconnect_wait(const struct kl_db_stream_opts *o, const char *why, int *ms)
{
	char msg[640];
	int rc;

	snprintf(msg, sizeof(msg), "%s; reconnecting in %d.%d s", why, *ms / 1000,
		 *ms % 1000 / 100);
	if (o->report.warn)
		o->report.warn(o->report.ud, NULL, 0, msg);
	rc = kl_db_wait_stop(o->stop_fd, *ms);
	*ms = *ms * 2 > 10000 ? 10000 : *ms * 2;
	return rc > 0;
}

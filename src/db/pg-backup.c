/*
 * PostgreSQL base backups through the replication protocol (PostgreSQL
 * 15's BASE_BACKUP with options): the server sends one tar archive per
 * tablespace and then its backup manifest, as CopyOut messages ('n' a
 * new archive, 'd' data, 'p' progress, 'm' the manifest begins). keel
 * parses the archives as they arrive and stores their members through
 * the backup engine (kl_entry_backup_*), so the cluster's files become a
 * snapshot of kind 4 (docs/DATABASES.md).
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "pg-internal.h"

#define MANIFEST_MAX ((size_t)1 << 30)

struct pgb {
	struct kl_repo *r;
	struct kl_entry_backup *e;
	struct kl_tar tar;
	bool in_tar, in_manifest, saw_member;
	bool in_file;		/* the member being received is a file */
	char prefix[64];	/* "data" or "tablespaces/OID" */
	struct kl_buf path;	/* prefix/member */
	struct kl_buf manifest; /* backup_manifest, stored at the end */
};

/* ---- tar members into the snapshot ---- */

static int on_entry(void *ud, const struct kl_tar_entry *te)
{
	struct pgb *g = ud;
	struct kl_node n = {0};
	int rc;

	n.type = te->type;
	n.mode = te->mode;
	n.uid = te->uid;
	n.gid = te->gid;
	n.user = *te->user ? (char *)te->user : NULL;
	n.group = *te->group ? (char *)te->group : NULL;
	n.mtime_sec = n.atime_sec = n.ctime_sec = te->mtime;
	n.size = te->size;
	if (te->type == KL_NODE_SYMLINK) {
		n.link = (uint8_t *)te->link;
		n.link_len = strlen(te->link);
	}
	if (!g->saw_member) {
		/* the archive's top takes its first member's owner: the server's user */
		struct kl_node top = n;

		top.type = KL_NODE_DIR;
		top.mode = 0700;
		top.size = 0;
		top.link = NULL;
		top.link_len = 0;
		g->saw_member = true;
		if (strncmp(g->prefix, "data", 5)) {
			/* "tablespaces" too: the server's user must reach them */
			rc = kl_entry_backup_add(g->e, "tablespaces", &top);
			if (rc < 0)
				return rc;
		}
		rc = kl_entry_backup_add(g->e, g->prefix, &top);
		if (rc < 0)
			return rc;
	}
	kl_buf_clear(&g->path);
	rc = kl_buf_addf(&g->path, "%s/%s", g->prefix, te->path);
	if (rc < 0)
		return rc;
	g->in_file = te->type == KL_NODE_FILE;
	return kl_entry_backup_add(g->e, (const char *)g->path.data, &n);
}

static int on_data(void *ud, const uint8_t *p, size_t n)
{
	struct pgb *g = ud;

	return kl_entry_backup_write(g->e, p, n);
}

static int on_end(void *ud)
{
	struct pgb *g = ud;

	if (!g->in_file)
		return 0;
	g->in_file = false;
	return kl_entry_backup_end(g->e);
}

static const struct kl_tar_ops tar_ops = {on_entry, on_data, on_end};

static int end_archive(struct pgb *g)
{
	int rc = 0;

	if (g->in_tar) {
		rc = kl_tar_finish(&g->tar);
		kl_tar_release(&g->tar);
		g->in_tar = false;
		if (rc == -KL_ECORRUPT)
			rc = kl_repo_fail(g->r, -KL_EDBSERVER,
					  "the server's archive for '%s' ends in the middle",
					  g->prefix);
	}
	return rc;
}

/* 'n': the archive's name (base.tar or OID.tar) decides where its members go. */
static int new_archive(struct pgb *g, int decoded, const struct kl_pgm_backup *m)
{
	const char *name = m->name;
	size_t len;
	int rc;

	rc = end_archive(g);
	if (rc < 0)
		return rc;
	if (decoded < 0)
		return kl_repo_fail(g->r, -KL_EDBSERVER, "malformed new-archive message");
	len = strlen(name);
	if (!strcmp(name, "base.tar")) {
		snprintf(g->prefix, sizeof(g->prefix), "data");
	} else {
		if (len < 5 || len > 20 || strcmp(name + len - 4, ".tar") ||
		    strspn(name, "0123456789") != len - 4)
			return kl_repo_fail(g->r, -KL_EDBSERVER,
					    "unexpected archive '%.64s' (compressed or not a "
					    "tablespace?)",
					    name);
		snprintf(g->prefix, sizeof(g->prefix), "tablespaces/%.*s", (int)(len - 4), name);
	}
	kl_tar_init(&g->tar, &tar_ops, g);
	g->in_tar = true;
	g->saw_member = false;
	return 0;
}

static int copy_message(struct pgb *g, const char *p, size_t n)
{
	struct kl_pgm_backup m;
	int decoded = kl_pgm_backup_decode((const uint8_t *)p, n, &m), rc;

	if (!n)
		return kl_repo_fail(g->r, -KL_EDBSERVER, "empty message in the backup stream");
	switch (m.type) {
	case 'n':
		/* tests stop the server here (t7001) */
		kl_test_point("db-backup-archive");
		return new_archive(g, decoded, &m);
	case 'd':
		if (g->in_manifest)
			return kl_buf_add(&g->manifest, m.data, m.len) < 0
				       ? kl_repo_fail(g->r, -KL_EDBSERVER,
						      "backup manifest too big")
				       : 0;
		if (!g->in_tar)
			return kl_repo_fail(g->r, -KL_EDBSERVER, "archive data before any archive");
		rc = kl_tar_feed(&g->tar, m.data, m.len);
		if (rc == -KL_ECORRUPT)
			return kl_repo_fail(g->r, -KL_EDBSERVER,
					    "the server sent a malformed archive for '%s'",
					    g->prefix);
		return rc;
	case 'p':
		return 0; /* unused, so a malformed one (decoded < 0) is ignored as well */
	case 'm':
		rc = end_archive(g);
		g->in_manifest = true;
		return rc;
	default:
		return kl_repo_fail(g->r, -KL_EDBSERVER,
				    "unexpected message type 0x%02x in the backup stream",
				    (unsigned)m.type);
	}
}

/* A one-row result's field as an LSN and a timeline. */
static int position(struct kl_repo *r, PGresult *res, uint64_t *lsn, uint32_t *tli)
{
	char *end;
	unsigned long t;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 2 ||
	    kl_db_lsn_parse(PQgetvalue(res, 0, 0), lsn) < 0)
		return kl_repo_fail(r, -KL_EDBSERVER, "unexpected backup position from the server");
	t = strtoul(PQgetvalue(res, 0, 1), &end, 10);
	if (*end || !t || t > UINT32_MAX)
		return kl_repo_fail(r, -KL_EDBSERVER, "unexpected timeline from the server");
	*tli = (uint32_t)t;
	return 0;
}

struct bb {
	uint64_t start_lsn, stop_lsn;
	uint32_t tli, stop_tli;
};

/* Receives the archives and the manifest into g. */
static int receive(struct pgb *g, PGconn *conn, struct bb *bb)
{
	static const char cmd[] = "BASE_BACKUP (LABEL 'keel', CHECKPOINT 'fast', WAL true, "
				  "MANIFEST 'yes', WAIT false)";
	PGresult *res;
	int rc, n;

	if (!PQsendQuery(conn, cmd))
		return kl_pgc_fail(g->r, conn, -KL_EDBSERVER, "cannot start the base backup");
	res = PQgetResult(conn);
	rc = kl_pgc_expect(g->r, conn, res, PGRES_TUPLES_OK, "the server refused the base backup");
	if (rc >= 0)
		rc = position(g->r, res, &bb->start_lsn, &bb->tli);
	PQclear(res);
	if (rc < 0)
		return rc;
	res = PQgetResult(conn); /* the tablespaces */
	rc = kl_pgc_expect(g->r, conn, res, PGRES_TUPLES_OK, "the base backup failed");
	PQclear(res);
	if (rc < 0)
		return rc;
	res = PQgetResult(conn);
	rc = kl_pgc_expect(g->r, conn, res, PGRES_COPY_OUT, "the base backup failed");
	PQclear(res);
	while (rc >= 0) {
		char *buf = NULL;

		n = PQgetCopyData(conn, &buf, 0);
		if (n == -1)
			break;
		if (n < 0) {
			rc = kl_pgc_fail(g->r, conn, -KL_EDBSERVER, "the base backup broke off");
			break;
		}
		rc = copy_message(g, buf, (size_t)n);
		PQfreemem(buf);
	}
	if (rc >= 0)
		rc = end_archive(g);
	/* the end of the copy, the stop position, the command's end */
	bool have_stop = false;

	/* after a failure the copy is still open: PQfinish ends it, the server aborts */
	while (rc >= 0 && (res = PQgetResult(conn))) {
		ExecStatusType st = PQresultStatus(res);

		if (rc >= 0 && st == PGRES_TUPLES_OK && !have_stop) {
			rc = position(g->r, res, &bb->stop_lsn, &bb->stop_tli);
			have_stop = true;
		} else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			rc = kl_pgc_fail(g->r, conn, -KL_EDBSERVER, "the base backup failed");
		}
		PQclear(res);
	}
	if (rc >= 0 && !have_stop)
		rc = kl_repo_fail(g->r, -KL_EDBSERVER, "the server sent no stop position");
	if (rc >= 0 && !g->in_manifest)
		rc = kl_repo_fail(g->r, -KL_EDBSERVER, "the server sent no backup manifest");
	return rc;
}

static int store_manifest(struct pgb *g)
{
	struct kl_node n = {.type = KL_NODE_FILE, .mode = 0600};
	int rc;

	n.size = g->manifest.len;
	n.mtime_sec = n.atime_sec = n.ctime_sec = kl_time_now_ns() / KL_NSEC_PER_SEC;
	if (!g->saw_member) {
		/* no archive gave an owner: the files are this process's */
		n.uid = (uint32_t)geteuid();
		n.gid = (uint32_t)getegid();
	}
	rc = kl_entry_backup_add(g->e, "data/backup_manifest", &n);
	if (rc >= 0)
		rc = kl_entry_backup_write(g->e, g->manifest.data, g->manifest.len);
	if (rc >= 0)
		rc = kl_entry_backup_end(g->e);
	return rc;
}

static int commit(struct pgb *g, const struct kl_db_backup_opts *o, const char *name,
		  const char *sysid, PGconn *conn, const struct bb *bb,
		  struct kl_db_backup_result *ret)
{
	struct kl_backup_result br;
	struct kl_snapshot snap = {0};
	char path[8 + KL_DB_NAME_MAX], version[16], *paths[1] = {path};
	int rc;

	snprintf(path, sizeof(path), "db:%s", name);
	snprintf(version, sizeof(version), "%d", PQserverVersion(conn));
	snap.kind = KL_SNAP_DATABASE;
	snap.paths = paths;
	snap.n_paths = 1;
	snap.has_db = true;
	snap.db.engine = KL_DB_POSTGRESQL;
	snap.db.role = KL_DB_BASE;
	snap.db.name = (char *)name;
	snap.db.system_id = (char *)sysid;
	snap.db.timeline = bb->tli;
	snap.db.stop_timeline = bb->stop_tli;
	snap.db.start_lsn = bb->start_lsn;
	snap.db.stop_lsn = bb->stop_lsn;
	snap.db.server_version = version;
	rc = kl_entry_backup_commit(g->e, &snap, &br);
	if (rc < 0)
		return rc;
	ret->id = br.id;
	ret->stats = br.stats;
	ret->timeline = bb->tli;
	ret->start_lsn = bb->start_lsn;
	ret->stop_lsn = bb->stop_lsn;
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	snprintf(ret->system_id, sizeof(ret->system_id), "%s", sysid);
	return 0;
}

/*
 * Before BASE_BACKUP: the stream's slot, created (--create-slot) so that
 * it keeps the WAL from the backup's start on, or looked at, with a
 * warning when none does: until a stream runs, the server may recycle
 * that WAL, and the log would have a gap after this base backup.
 */
static int backup_slot(struct kl_repo *r, PGconn *conn, const struct kl_db_backup_opts *o,
		       const char *name, struct kl_db_backup_result *ret)
{
	char slot[8 + KL_DB_NAME_MAX], msg[320];
	struct kl_pgc_slot sl = {0};
	int rc = kl_pgc_slot_name(r, o->slot, name, slot, sizeof(slot));

	if (rc >= 0 && o->create_slot)
		rc = kl_pgc_slot_create(r, conn, slot, &ret->slot_created);
	if (rc >= 0)
		rc = kl_pgc_slot_read(r, conn, slot, &sl);
	if (rc < 0)
		return rc;
	ret->slot_reserved = sl.reserved;
	if (sl.reserved)
		return 0;
	snprintf(msg, sizeof(msg),
		 "no replication slot '%s' keeps the WAL from this base backup on: until 'keel db "
		 "stream' runs, the server may recycle it and the log will have a gap "
		 "(--create-slot creates the slot first; archive_command needs none)",
		 slot);
	if (o->report.warn)
		o->report.warn(o->report.ud, NULL, 0, msg);
	return 0;
}

int kl_db_backup(struct kl_repo *r, const struct kl_db_backup_opts *o,
		 struct kl_db_backup_result *ret)
{
	struct pgb g = {.r = r};
	struct kl_backup_opts bo;
	char sysid[32], name[KL_DB_NAME_MAX + 1], tag[8 + KL_DB_NAME_MAX];
	char *tags[2] = {(char *)"db", tag};
	struct bb bb = {0};
	PGconn *conn = NULL;
	uint32_t tli;
	uint64_t pos;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (o->name && !kl_db_name_valid(o->name))
		return kl_repo_fail(r, -KL_EUSAGE,
				    "invalid database name '%s' (1 to 64 of A-Z a-z 0-9 . _ -)",
				    o->name);
	kl_buf_init(&g.path, KL_TAR_MAX_NAME + 64);
	kl_buf_init(&g.manifest, MANIFEST_MAX);
	rc = kl_pgc_connect(r, o->conninfo, &conn);
	if (rc >= 0 && PQserverVersion(conn) < 150000)
		rc = kl_repo_fail(r, -KL_EDBSERVER,
				  "PostgreSQL %d is not supported: keel needs 15 or newer",
				  PQserverVersion(conn));
	if (rc >= 0)
		rc = kl_pgc_identify(r, conn, sysid, sizeof(sysid), &tli, &pos);
	if (rc >= 0) {
		snprintf(name, sizeof(name), "%s%s", o->name ? "" : "pg-",
			 o->name ? o->name : sysid);
		snprintf(tag, sizeof(tag), "db:%s", name);
		kl_backup_opts_init(&bo);
		bo.host = o->host;
		bo.tags = tags;
		bo.n_tags = 2;
		bo.threads = o->threads;
		bo.report = o->report;
		rc = backup_slot(r, conn, o, name, ret);
	}
	if (rc >= 0)
		rc = kl_entry_backup_new(r, &bo, &g.e);
	if (rc >= 0)
		rc = receive(&g, conn, &bb);
	if (rc >= 0)
		rc = store_manifest(&g);
	if (rc >= 0)
		rc = commit(&g, o, name, sysid, conn, &bb, ret);
	if (g.in_tar)
		kl_tar_release(&g.tar);
	kl_entry_backup_free(g.e);
	kl_buf_release(&g.path);
	kl_buf_release(&g.manifest);
	PQfinish(conn);
	return rc;
}

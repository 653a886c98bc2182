/*
 * MariaDB logical dumps (docs/DATABASES.md, "MariaDB"): mariadb-dump
 * --single-transaction --all-databases --routines --events --triggers,
 * its output streamed into a kind-4 snapshot of role 3 (dump/all.sql, tag
 * db-dump), and back out into a file.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maria-internal.h"

#define DUMP_PATH "dump/all.sql"

/* Streams mariadb-dump's output into e as DUMP_PATH. */
static int dump(struct kl_repo *r, struct kl_entry_backup *e, const struct kl_maria_tool *t,
		bool log_bin)
{
	char *argv[KL_ARRAY_SIZE(t->args) + 12];
	struct kl_node n = {.type = KL_NODE_FILE, .mode = 0600, .size = KL_ENTRY_SIZE_UNKNOWN};
	_cleanup_close_ int log_fd = -1;
	int pfd[2], rc, rc2;
	uint8_t *buf = NULL;
	size_t k = 0;
	pid_t pid;

	argv[k++] = (char *)"mariadb-dump";
	for (size_t i = 0; i < t->n; i++)
		argv[k++] = t->args[i];
	argv[k++] = (char *)"--single-transaction";
	argv[k++] = (char *)"--all-databases";
	argv[k++] = (char *)"--routines";
	argv[k++] = (char *)"--events";
	argv[k++] = (char *)"--triggers";
	/* the binlog position of the dump, as a comment: where a binlog replay would start */
	if (log_bin)
		argv[k++] = (char *)"--master-data=2";
	argv[k] = NULL;
	n.uid = (uint32_t)geteuid();
	n.gid = (uint32_t)getegid();
	n.mtime_sec = n.atime_sec = n.ctime_sec = kl_time_now_ns() / KL_NSEC_PER_SEC;
	rc = kl_maria_tmpfile(r, &log_fd);
	if (rc < 0)
		return rc;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	rc = kl_maria_child_start(r, argv, -1, pfd[1], log_fd, &pid);
	close(pfd[1]);
	if (rc < 0) {
		close(pfd[0]);
		return rc;
	}
	rc = kl_entry_backup_add(e, DUMP_PATH, &n);
	if (rc >= 0 && !(buf = kl_malloc(1 << 20)))
		rc = -ENOMEM;
	while (rc >= 0) {
		ssize_t got = read(pfd[0], buf, 1 << 20);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = got < 0 ? -errno : 0;
			break;
		}
		rc = kl_entry_backup_write(e, buf, (size_t)got);
	}
	if (rc < 0)
		kill(pid, SIGTERM);
	close(pfd[0]);
	kl_free(buf);
	rc2 = kl_maria_child_wait(r, pid, log_fd, "mariadb-dump");
	if (rc >= 0)
		rc = rc2;
	if (rc >= 0)
		rc = kl_entry_backup_end(e);
	return rc;
}

static int commit(struct kl_entry_backup *e, const char *name, const struct kl_maria_server *sv,
		  struct kl_db_dump_result *ret)
{
	struct kl_backup_result br;
	struct kl_snapshot snap = {0};
	char path[8 + KL_DB_NAME_MAX], *paths[1] = {path}, sid[16];
	int rc;

	snprintf(path, sizeof(path), "db:%s", name);
	snprintf(sid, sizeof(sid), "%" PRIu32, sv->server_id);
	snap.kind = KL_SNAP_DATABASE;
	snap.paths = paths;
	snap.n_paths = 1;
	snap.has_db = true;
	snap.db.engine = KL_DB_MARIADB;
	snap.db.role = KL_DB_DUMP;
	snap.db.name = (char *)name;
	snap.db.system_id = sid;
	snap.db.server_version = (char *)sv->version;
	snap.db.server_id = sv->server_id;
	snap.db.server_name = (char *)sv->hostname;
	rc = kl_entry_backup_commit(e, &snap, &br);
	if (rc < 0)
		return rc;
	ret->id = br.id;
	ret->stats = br.stats;
	ret->databases = 0;
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	return 0;
}

int kl_db_maria_dump(struct kl_repo *r, const struct kl_db_dump_opts *o,
		     struct kl_db_dump_result *ret)
{
	struct kl_maria_uri u = {0};
	struct kl_maria_tool t = {0};
	struct kl_maria_server sv;
	struct kl_entry_backup *e = NULL;
	struct kl_backup_opts bo;
	char name[KL_DB_NAME_MAX + 1], tag[8 + KL_DB_NAME_MAX];
	char *tags[3] = {(char *)"db", tag, (char *)"db-dump"};
	MYSQL *m = NULL;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (o->name && !kl_db_name_valid(o->name))
		return kl_repo_fail(r, -KL_EUSAGE,
				    "invalid database name '%s' (1 to 64 of A-Z a-z 0-9 . _ -)",
				    o->name);
	rc = kl_maria_open(r, o->conninfo, &u, &m, &sv);
	if (m)
		mysql_close(m);
	if (rc >= 0) {
		if (o->name)
			snprintf(name, sizeof(name), "%s", o->name);
		else
			kl_maria_default_name(&sv, name, sizeof(name));
		snprintf(tag, sizeof(tag), "db:%s", name);
		rc = kl_maria_tool_init(r, &u, &t);
	}
	if (rc >= 0) {
		kl_backup_opts_init(&bo);
		bo.host = o->host;
		bo.tags = tags;
		bo.n_tags = 3;
		bo.threads = o->threads;
		rc = kl_entry_backup_new(r, &bo, &e);
	}
	if (rc >= 0)
		rc = dump(r, e, &t, sv.log_bin);
	if (rc >= 0)
		rc = commit(e, name, &sv, ret);
	kl_entry_backup_free(e);
	kl_maria_tool_release(&t);
	kl_maria_uri_release(&u);
	return rc;
}

int kl_maria_restore_dump(struct kl_repo *r, const struct kl_db_info *d,
			  const struct kl_db_restore_opts *o, struct kl_id *base_ret)
{
	const struct kl_snapshot_ref *ref = NULL;
	struct kl_restore_opts ro = {0};
	struct kl_restore_stats st;
	char hex[2 * KL_ID_LEN + 1], tmp[4200], file[4300];
	int rc;

	for (size_t i = d->n_dumps; i-- > 0 && !ref;) {
		kl_id_hex(&d->dumps[i].id, hex);
		if (!o->base || !strncmp(hex, o->base, strlen(o->base)))
			ref = &d->dumps[i];
	}
	if (!ref)
		return kl_repo_fail(r, -KL_ENOTFOUND, "no dump%s%s of database '%s'",
				    o->base ? " " : "", o->base ? o->base : "", o->name);
	if (access(o->target, F_OK) == 0)
		return kl_repo_fail(r, -KL_EUSAGE,
				    "'%s' exists: a dump is restored into a new file", o->target);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.keel-tmp", o->target) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if (mkdir(tmp, 0700) < 0)
		return kl_repo_fail(r, -errno, "cannot create '%s'", tmp);
	ro.no_owner = true;
	ro.threads = o->threads;
	ro.report = o->report;
	ro.target = tmp;
	rc = kl_restore(r, &ref->s.tree, "/dump", &ro, &st);
	snprintf(file, sizeof(file), "%s/all.sql", tmp);
	if (rc >= 0 && rename(file, o->target) < 0)
		rc = kl_repo_fail(r, -errno, "cannot move the dump to '%s'", o->target);
	if (rc >= 0)
		*base_ret = ref->id;
	kl_maria_rmtree(tmp);
	return rc;
}

/*
 * Restores a PostgreSQL base backup as a data directory that starts with
 * plain pg_ctl (docs/DATABASES.md, "Restore"): the base backup's data/
 * becomes the target (mode 0700, the server's owner when run as root),
 * with the WAL the backup needs already in pg_wal and backup_label to
 * make the server replay it; each tablespace goes into
 * TARGET.tablespaces/OID, pg_tblspc/OID linking to it. The tree is restored beside the target and
 * renamed into place, so the target never holds half a restore.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/fs.h"
#include "pg-internal.h"

/* snprintf that fails rather than cut a path short */
static int path_fmt(char *out, size_t size, const char *a, const char *b)
{
	int n = snprintf(out, size, "%s%s", a, b);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int path_fmt3(char *out, size_t size, const char *a, const char *b, const char *c)
{
	int n = snprintf(out, size, "%s%s%s", a, b, c);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The target must not exist, or be an empty directory. */
static int check_target(struct kl_repo *r, const char *target)
{
	DIR *dir = opendir(target);
	struct dirent *de;
	bool empty = true;

	if (!dir) {
		if (errno == ENOENT)
			return 0;
		return kl_repo_fail(r, -errno, "cannot open restore target '%s'", target);
	}
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(dir);
	if (!empty)
		return kl_repo_fail(r, -KL_EUSAGE,
				    "restore target '%s' is not empty: a data directory is "
				    "restored into a new or empty directory",
				    target);
	return 0;
}

/*
 * PostgreSQL refuses a directory in pg_tblspc (it wants symlinks), so the
 * tablespaces go beside the data directory: tmp/tablespaces becomes
 * TARGET.tablespaces, and each pg_tblspc/OID a symlink to its OID there.
 */
static int place_tablespaces(struct kl_repo *r, const char *tmp, const char *target)
{
	char from[4096], dest[4096], link[4096], *abs;
	struct dirent *de;
	DIR *dir;
	int rc = 0;

	if (path_fmt(from, sizeof(from), tmp, "/tablespaces") < 0 ||
	    path_fmt(dest, sizeof(dest), target, ".tablespaces") < 0)
		return kl_repo_fail(r, -ENAMETOOLONG, "path too long: '%s'", target);
	if (rename(from, dest) < 0)
		return errno == ENOENT
			       ? 0
			       : kl_repo_fail(r, -errno, "cannot move tablespaces to '%s'", dest);
	abs = realpath(dest, NULL);
	if (!abs)
		return kl_repo_fail(r, -errno, "cannot resolve '%s'", dest);
	dir = opendir(abs);
	if (!dir)
		rc = kl_repo_fail(r, -errno, "cannot open '%s'", abs);
	while (rc >= 0 && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (path_fmt3(from, sizeof(from), abs, "/", de->d_name) < 0 ||
		    path_fmt3(link, sizeof(link), target, "/pg_tblspc/", de->d_name) < 0)
			rc = kl_repo_fail(r, -ENAMETOOLONG, "path too long: '%s'", target);
		else if (unlink(link) < 0 && errno != ENOENT)
			rc = kl_repo_fail(r, -errno, "cannot remove '%s'", link);
		else if (symlink(from, link) < 0)
			rc = kl_repo_fail(r, -errno, "cannot link '%s' to its tablespace", link);
	}
	if (dir)
		closedir(dir);
	free(abs);
	return rc;
}

/* The size of the base backup's WAL segments in DIR/pg_wal (16 MiB if none is there). */
static uint64_t segment_size(const char *target)
{
	char path[4096];
	uint64_t size = 16u << 20;
	struct dirent *de;
	struct stat st;
	DIR *dir;

	if (path_fmt(path, sizeof(path), target, "/pg_wal") < 0 || !(dir = opendir(path)))
		return size;
	while ((de = readdir(dir))) {
		if (strlen(de->d_name) == 24 && strspn(de->d_name, "0123456789ABCDEF") == 24 &&
		    fstatat(dirfd(dir), de->d_name, &st, 0) == 0 && st.st_size > 0) {
			size = (uint64_t)st.st_size;
			break;
		}
	}
	closedir(dir);
	return size;
}

/* How many of the first n bytes of p are upper-case hex digits, from the start. */
static size_t hex_prefix(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && ((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'A' && p[i] <= 'F')))
		i++;
	return i;
}

/* Writes one file of a log record's pg_wal into DIR/pg_wal (a segment padded to segsize). */
static int write_wal_file(struct kl_repo *r, const struct kl_node *n, const char *target,
			  uint64_t segsize)
{
	char name[64], path[4096];
	struct stat st;
	bool history = n->name_len == 16 && !memcmp(n->name + 8, ".history", 8) &&
		       hex_prefix(n->name, n->name_len) == 8;
	int fd = -1, rc = 0;

	if (n->type != KL_NODE_FILE || n->size > segsize ||
	    (!history &&
	     (n->name_len < 24 || hex_prefix(n->name, n->name_len) < 24 ||
	      (n->name_len != 24 && (n->name_len != 32 || memcmp(n->name + 24, ".partial", 8))))))
		return -KL_ECORRUPT;
	memcpy(name, n->name, history ? 16 : 24);
	name[history ? 16 : 24] = 0;
	if (path_fmt3(path, sizeof(path), target, "/pg_wal/", name) < 0)
		rc = -ENAMETOOLONG;
	if (rc >= 0 && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		rc = -errno;
	if (rc >= 0)
		rc = kl_dump_node(r, n, fd);
	if (rc >= 0 && !history && ftruncate(fd, (off_t)segsize) < 0)
		rc = -errno;
	if (rc >= 0 && stat(target, &st) == 0 && geteuid() == 0 &&
	    fchown(fd, st.st_uid, st.st_gid) < 0)
		rc = -errno;
	if (rc >= 0 && fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	return rc < 0 ? kl_repo_fail(r, rc, "cannot write WAL file '%s'", path) : 0;
}

/* Writes the files of log record ref (a segment, or a timeline's history) into DIR/pg_wal. */
static int write_wal(struct kl_repo *r, const struct kl_snapshot_ref *ref, const char *target,
		     uint64_t segsize)
{
	struct kl_node dir = {0};
	struct kl_tree t = {0};
	int rc;

	rc = kl_tree_lookup(r, &ref->s.tree, "/pg_wal", &dir);
	if (rc >= 0 &&
	    (!dir.has_subtree || (rc = kl_repo_read_tree(r, &dir.subtree, &t)) < 0 || t.n != 1))
		rc = rc < 0 ? rc : -KL_ECORRUPT;
	if (rc >= 0)
		rc = write_wal_file(r, &t.nodes[0], target, segsize);
	kl_node_release(&dir);
	kl_tree_release(&t);
	return rc == -KL_ECORRUPT
		       ? kl_repo_fail(r, rc, "log record of %s cannot be read", ref->s.db.name)
		       : rc;
}

/* By timeline, then start, then stop: the last of a (timeline, start) is its longest copy. */
static int cmp_seg(const void *a, const void *b)
{
	const struct kl_snapshot_db *x = &(*(const struct kl_snapshot_ref *const *)a)->s.db;
	const struct kl_snapshot_db *y = &(*(const struct kl_snapshot_ref *const *)b)->s.db;

	if (x->timeline != y->timeline)
		return x->timeline < y->timeline ? -1 : 1;
	if (x->start_lsn != y->start_lsn)
		return x->start_lsn < y->start_lsn ? -1 : 1;
	return x->stop_lsn < y->stop_lsn ? -1 : x->stop_lsn > y->stop_lsn;
}

/*
 * The WAL the log records hold from the base backup's start on, into
 * DIR/pg_wal: of each segment file (timeline and start), the newest
 * record (the longest copy), and every timeline's history file. At
 * start, PostgreSQL replays it all (backup_label), up to the newest
 * stored moment, following the timelines the history files name when a
 * recovery target is set (*timelines says whether any were written).
 */
static int apply_wal(struct kl_repo *r, const char *name, uint64_t base_start, const char *target,
		     uint64_t *count, bool *timelines)
{
	struct kl_db_list l;
	const struct kl_db_info *d;
	const struct kl_snapshot_ref **v = NULL;
	uint64_t segsize = segment_size(target);
	size_t n = 0;
	int rc = kl_db_list(r, &l);

	*count = 0;
	*timelines = false;
	if (rc < 0)
		return rc;
	d = kl_db_find(&l, name);
	if (d && d->n_logs && !(v = kl_malloc(d->n_logs * sizeof(*v))))
		rc = -ENOMEM;
	for (size_t i = 0; rc >= 0 && d && i < d->n_logs; i++) {
		const struct kl_snapshot_db *x = &d->logs[i].s.db;
		bool history = x->start_lsn == x->stop_lsn;

		if (history || x->stop_lsn > base_start)
			v[n++] = &d->logs[i];
		*timelines |= history;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_seg);
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		const struct kl_snapshot_db *x = &v[i]->s.db;

		if (i + 1 < n && v[i + 1]->s.db.timeline == x->timeline &&
		    v[i + 1]->s.db.start_lsn == x->start_lsn &&
		    v[i + 1]->s.db.stop_lsn != v[i + 1]->s.db.start_lsn &&
		    x->stop_lsn != x->start_lsn)
			continue;
		rc = write_wal(r, v[i], target, segsize);
		(*count)++;
	}
	kl_free(v);
	kl_db_list_release(&l);
	return rc;
}

/*
 * A directory restored as contents keeps the mode and owner mkdir gave it;
 * the server needs its own (the snapshot's node), as the old layout gave.
 */
static int own_like(struct kl_repo *r, const struct kl_id *tree, const char *path, const char *dir,
		    bool owner)
{
	struct kl_node nd;
	int rc = kl_tree_lookup(r, tree, path, &nd);

	if (rc < 0)
		return rc;
	if (owner && chown(dir, nd.uid, nd.gid) < 0)
		rc = kl_repo_fail(r, -errno, "cannot give '%s' its owner", dir);
	else if (chmod(dir, nd.mode & 07777) < 0)
		rc = kl_repo_fail(r, -errno, "cannot give '%s' its mode", dir);
	kl_node_release(&nd);
	return rc;
}

/* tmp/tablespaces receives the snapshot's tablespaces/ (place_tablespaces moves it) */
static int restore_tablespaces(struct kl_repo *r, const struct kl_id *tree, const char *tmp,
			       struct kl_restore_opts *ro, struct kl_restore_stats *st)
{
	char dir[4096];
	int rc;

	if (path_fmt(dir, sizeof(dir), tmp, "/tablespaces") < 0)
		return kl_repo_fail(r, -ENAMETOOLONG, "path too long: '%s'", tmp);
	if (mkdir(dir, 0700) < 0)
		return kl_repo_fail(r, -errno, "cannot create '%s'", dir);
	ro->target = dir;
	rc = kl_restore(r, tree, "/tablespaces", ro, st);
	return rc < 0 ? rc : own_like(r, tree, "/tablespaces", dir, !ro->no_owner);
}

int kl_db_restore(struct kl_repo *r, const struct kl_db_restore_opts *o, struct kl_id *base_ret)
{
	struct kl_restore_opts ro = {0};
	struct kl_restore_stats st;
	struct kl_id tree;
	struct kl_node tbs;
	uint64_t base_start = 0, n_wal;
	bool timelines = false;
	char tmp[4096], data[4096];
	int rc;

	if (o->latest + !!o->time + o->has_lsn != 1)
		return kl_repo_fail(r, -KL_EUSAGE, "give one of --latest, --time and --lsn");
	if (!o->target || !*o->target)
		return kl_repo_fail(r, -KL_EUSAGE, "no restore target given");
	if (path_fmt(tmp, sizeof(tmp), o->target, ".keel-restore") < 0)
		return kl_repo_fail(r, -ENAMETOOLONG, "restore target '%s' is too long", o->target);
	rc = kl_pgr_choose(r, o, base_ret, &tree, &base_start);
	if (rc >= 0)
		rc = check_target(r, o->target);
	if (rc >= 0 && path_fmt(data, sizeof(data), o->target, ".tablespaces") >= 0 &&
	    access(data, F_OK) == 0)
		rc = kl_repo_fail(r, -KL_EUSAGE, "'%s' exists: it would receive the tablespaces",
				  data);
	if (rc >= 0 && path_fmt(data, sizeof(data), tmp, "/data") < 0)
		rc = -ENAMETOOLONG;
	if (rc < 0)
		return rc;
	if (mkdir(tmp, 0700) < 0)
		return kl_repo_fail(r, -errno, "cannot create '%s'", tmp);
	/* not root: the files are this user's, who runs the server */
	ro.no_owner = geteuid() != 0;
	ro.threads = o->threads;
	ro.report = o->report;
	/* a directory's contents go into the target (SNAP:DIR, as restic) */
	ro.target = data;
	rc = mkdir(data, 0700) < 0 ? kl_repo_fail(r, -errno, "cannot create '%s'", data) : 0;
	if (rc >= 0)
		rc = kl_restore(r, &tree, "/data", &ro, &st);
	if (rc >= 0)
		rc = own_like(r, &tree, "/data", data, !ro.no_owner);
	if (rc >= 0 && kl_tree_lookup(r, &tree, "/tablespaces", &tbs) >= 0) {
		kl_node_release(&tbs);
		rc = restore_tablespaces(r, &tree, tmp, &ro, &st);
	} else if (rc >= 0) {
		/* no tablespaces: not an error, and its message must not stand for a later one */
		kl_repo_clear_err(r);
	}
	if (rc >= 0 && rename(data, o->target) < 0)
		rc = kl_repo_fail(r, -errno, "cannot move the data directory to '%s'", o->target);
	if (rc >= 0)
		rc = place_tablespaces(r, tmp, o->target);
	if (rc >= 0)
		rc = apply_wal(r, o->name, base_start, o->target, &n_wal, &timelines);
	if (rc >= 0)
		rc = kl_pgr_recovery(r, o, o->target, timelines);
	if (rc >= 0 && rmdir(tmp) < 0)
		rc = kl_repo_fail(r, -errno, "cannot remove '%s'", tmp);
	else if (rc < 0)
		kl_repo_fail(r, rc, "what was restored is in '%s'", tmp);
	return rc;
}

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

#include "keel/db.h"
#include "keel/fs.h"
#include "keel/repo.h"

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

static int newest_base(struct kl_repo *r, const char *name, struct kl_id *id_ret,
		       struct kl_id *tree_ret)
{
	struct kl_db_list l;
	const struct kl_db_info *d;
	int rc = kl_db_list(r, &l);

	if (rc < 0)
		return rc;
	d = kl_db_find(&l, name);
	if (!d || !d->n_bases) {
		rc = kl_repo_fail(r, -KL_ENOTFOUND, "no base backup of database '%s'", name);
	} else {
		*id_ret = d->bases[d->n_bases - 1].id;
		*tree_ret = d->bases[d->n_bases - 1].s.tree;
	}
	kl_db_list_release(&l);
	return rc;
}

int kl_db_restore(struct kl_repo *r, const struct kl_db_restore_opts *o, struct kl_id *base_ret)
{
	struct kl_restore_opts ro = {0};
	struct kl_restore_stats st;
	struct kl_id tree;
	struct kl_node tbs;
	char tmp[4096], data[4096];
	int rc;

	if (!o->latest)
		return kl_repo_fail(r, -KL_EUSAGE, "only --latest is supported so far");
	if (!o->target || !*o->target)
		return kl_repo_fail(r, -KL_EUSAGE, "no restore target given");
	if (path_fmt(tmp, sizeof(tmp), o->target, ".keel-restore") < 0)
		return kl_repo_fail(r, -ENAMETOOLONG, "restore target '%s' is too long", o->target);
	rc = newest_base(r, o->name, base_ret, &tree);
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
	ro.target = tmp;
	/* not root: the files are this user's, who runs the server */
	ro.no_owner = geteuid() != 0;
	ro.threads = o->threads;
	ro.report = o->report;
	rc = kl_restore(r, &tree, "/data", &ro, &st);
	if (rc >= 0 && kl_tree_lookup(r, &tree, "/tablespaces", &tbs) >= 0) {
		kl_node_release(&tbs);
		rc = kl_restore(r, &tree, "/tablespaces", &ro, &st);
	}
	if (rc >= 0 && rename(data, o->target) < 0)
		rc = kl_repo_fail(r, -errno, "cannot move the data directory to '%s'", o->target);
	if (rc >= 0)
		rc = place_tablespaces(r, tmp, o->target);
	if (rc >= 0 && rmdir(tmp) < 0)
		rc = kl_repo_fail(r, -errno, "cannot remove '%s'", tmp);
	else if (rc < 0)
		kl_repo_fail(r, rc, "what was restored is in '%s'", tmp);
	return rc;
}

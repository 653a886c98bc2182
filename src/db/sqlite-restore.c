/*
 * Restores a SQLite database as it was at a moment (docs/DATABASES.md,
 * "SQLite"): the newest base copy before it, and the frames the log
 * records hold from the copy's position on, up to the last commit keel
 * saw at or before the moment. The frames become a WAL beside the copy
 * (one generation: salts and checksums rewritten), SQLite itself reads
 * and checkpoints it, and the file is kept only if PRAGMA integrity_check
 * says "ok". Everything is written under TARGET.keel-tmp and renamed into
 * place at the end, so the target is never half a database.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keel/fs.h"
#include "pg-internal.h" /* kl_pgr_parse_time: --time is read as for PostgreSQL */
#include "sqlite-internal.h"

struct link {
	const struct kl_snapshot_ref *rec;
	uint32_t skip; /* its first frames, before the chain's position */
};

struct plan {
	const struct kl_snapshot_ref *base;
	struct link *v;
	size_t n;
	int64_t covered_ns; /* every commit up to this moment is in base + records */
};

/* The record that goes on from pos: same generation around it, or a switch starting at it. */
static const struct kl_snapshot_ref *next_record(const struct kl_db_info *d, uint64_t pos,
						 uint32_t *skip)
{
	const struct kl_snapshot_ref *best = NULL;

	for (size_t i = 0; i < d->n_logs; i++) {
		const struct kl_snapshot_db *x = &d->logs[i].s.db;
		bool same = KL_SQ_GEN(x->start_lsn) == KL_SQ_GEN(x->stop_lsn);

		if (x->stop_lsn <= pos || (same ? x->start_lsn > pos : x->start_lsn != pos))
			continue;
		if (!best || x->stop_lsn > best->s.db.stop_lsn)
			best = &d->logs[i];
	}
	if (best)
		*skip = KL_SQ_GEN(best->s.db.start_lsn) == KL_SQ_GEN(best->s.db.stop_lsn)
				? KL_SQ_FRAME(pos) - KL_SQ_FRAME(best->s.db.start_lsn)
				: 0;
	return best;
}

static int chain(const struct kl_db_info *d, const struct kl_snapshot_ref *base, struct plan *p)
{
	uint64_t pos = base->s.db.stop_lsn;
	const struct kl_snapshot_ref *rec;
	uint32_t skip;

	p->base = base;
	p->n = 0;
	p->covered_ns = base->s.time_ns;
	while ((rec = next_record(d, pos, &skip))) {
		struct link *v = kl_realloc(p->v, (p->n + 1) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->v = v;
		v[p->n].rec = rec;
		v[p->n++].skip = skip;
		pos = rec->s.db.stop_lsn;
		/* the record holds what keel had seen when it began storing it */
		p->covered_ns = rec->s.time_ns;
	}
	return 0;
}

static void fmt_time(int64_t ns, char *buf, size_t size)
{
	time_t t = (time_t)(ns / KL_NSEC_PER_SEC);
	struct tm tm;

	strftime(buf, size, "%Y-%m-%d %H:%M:%S+00", gmtime_r(&t, &tm));
}

/* The newest base copy whose chain covers the target. */
static int choose(struct kl_repo *r, const struct kl_db_info *d, const struct kl_db_restore_opts *o,
		  int64_t t, struct plan *p)
{
	char a[64], b[64];
	int rc;

	if (!d->n_bases)
		return kl_repo_fail(r, -KL_ENOTFOUND, "no base copy of database '%s'", o->name);
	for (size_t i = d->n_bases; i-- > 0;) {
		if (o->time && d->bases[i].s.time_ns > t)
			continue;
		rc = chain(d, &d->bases[i], p);
		if (rc < 0 || !o->time || t <= p->covered_ns)
			return rc;
		fmt_time(d->bases[i].s.time_ns, a, sizeof(a));
		fmt_time(p->covered_ns, b, sizeof(b));
		return kl_repo_fail(r, -KL_ENOTFOUND,
				    "the target is not covered: the repository holds '%s' from %s "
				    "to %s (then a gap, or not stored yet)",
				    o->name, a, b);
	}
	fmt_time(d->bases[0].s.time_ns, a, sizeof(a));
	return kl_repo_fail(r, -KL_ENOTFOUND,
			    "the target is before the oldest base copy of '%s' (taken %s)", o->name,
			    a);
}

/* A file of the snapshot's tree into fd (from its start); its mode into *mode if not NULL. */
static int dump_mode(struct kl_repo *r, const struct kl_id *tree, const char *path, int fd,
		     uint32_t *mode)
{
	struct kl_node n;
	int rc = kl_tree_lookup(r, tree, path, &n);

	if (rc >= 0 && n.type != KL_NODE_FILE)
		rc = -KL_ECORRUPT;
	if (rc >= 0 && (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0))
		rc = -errno;
	if (rc >= 0)
		rc = kl_dump_node(r, &n, fd);
	if (rc >= 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = -errno;
	if (rc >= 0 && n.type == KL_NODE_FILE)
		rc = n.size > (uint64_t)INT64_MAX ? -KL_ECORRUPT : 0;
	if (rc >= 0 && mode)
		*mode = n.mode & 0777;
	kl_node_release(&n);
	return rc < 0 ? kl_repo_fail(r, rc, "cannot read '%s' of a snapshot", path) : 0;
}

static int dump(struct kl_repo *r, const struct kl_id *tree, const char *path, int fd)
{
	return dump_mode(r, tree, path, fd, NULL);
}

static int read_all(int fd, uint8_t **ret, size_t *n_ret)
{
	struct stat st;
	uint8_t *p;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size > (64 << 20))
		return -KL_ECORRUPT;
	p = kl_malloc((size_t)st.st_size + 1);
	if (!p)
		return -ENOMEM;
	if (pread(fd, p, (size_t)st.st_size, 0) != st.st_size) {
		kl_free(p);
		return -EIO;
	}
	*ret = p;
	*n_ret = (size_t)st.st_size;
	return 0;
}

struct walout {
	int fd;
	struct kl_sqlite_wal_hdr h;
	uint32_t s[2];
	uint64_t frames;
	bool done; /* the target moment was reached */
};

/*
 * Appends link l's frames to the WAL, up to the last commit at or before t
 * (t < 0: all). scratch receives the record's files.
 */
static int append_record(struct kl_repo *r, const struct link *l, int64_t t, int scratch,
			 struct walout *w)
{
	const struct kl_snapshot_db *x = &l->rec->s.db;
	uint32_t last = KL_SQ_FRAME(x->stop_lsn), first, cut = 0;
	size_t fsz = KL_SQLITE_FRAME_HDR + w->h.page_size, n_c = 0, len = 0;
	struct kl_sqlite_commit *c = NULL;
	uint8_t *text = NULL, *f = NULL;
	int rc;

	first = KL_SQ_GEN(x->start_lsn) == KL_SQ_GEN(x->stop_lsn) ? KL_SQ_FRAME(x->start_lsn) + 1
								  : 1;
	if (x->page_size != w->h.page_size || first > last + 1)
		return kl_repo_fail(r, -KL_ECORRUPT, "a log record of '%s' does not fit", x->name);
	rc = dump(r, &l->rec->s.tree, "/wal/commits", scratch);
	if (rc >= 0)
		rc = read_all(scratch, &text, &len);
	if (rc >= 0)
		rc = kl_sqlite_commits_parse(text, len, first, last, &c, &n_c);
	kl_free(text);
	for (size_t i = 0; rc >= 0 && i < n_c; i++) {
		if (t >= 0 && c[i].time_ns > t) {
			w->done = true;
			break;
		}
		cut = c[i].frame;
	}
	kl_free(c);
	if (rc >= 0 && cut)
		rc = dump(r, &l->rec->s.tree, "/wal/frames", scratch);
	if (rc >= 0 && cut && !(f = kl_malloc(fsz)))
		rc = -ENOMEM;
	for (uint32_t i = first; rc >= 0 && cut && i <= cut; i++) {
		if (read(scratch, f, fsz) != (ssize_t)fsz)
			rc = -KL_ECORRUPT;
		else if (i > first - 1 + l->skip) {
			kl_sqlite_frame_seal(&w->h, f, w->s);
			rc = kl_fs_write_full(w->fd, f, fsz);
			w->frames++;
		}
	}
	kl_free(f);
	return rc < 0 ? kl_repo_fail(r, rc, "cannot restore the log of '%s'", x->name) : 0;
}

/* SQLite reads the WAL, checkpoints it into the file, and checks the result. */
static int finish_db(struct kl_repo *r, const char *tmp)
{
	sqlite3 *c = NULL;
	sqlite3_stmt *st = NULL;
	char first[256] = "";
	int rows = 0, rc = sqlite3_open_v2(tmp, &c, SQLITE_OPEN_READWRITE, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(c, "PRAGMA integrity_check", -1, &st, NULL);
	while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		if (rows++ == 0)
			snprintf(first, sizeof(first), "%s",
				 (const char *)sqlite3_column_text(st, 0));
	if (rc != SQLITE_OK)
		rc = kl_repo_fail(r, -KL_EDBSERVER, "SQLite cannot read the restored database: %s",
				  c ? sqlite3_errmsg(c) : sqlite3_errstr(rc));
	else if (rows != 1 || strcmp(first, "ok"))
		rc = kl_repo_fail(r, -KL_EDBSERVER,
				  "the restored database fails PRAGMA integrity_check (%s): it was "
				  "not kept",
				  first);
	sqlite3_finalize(st);
	if (sqlite3_close(c) != SQLITE_OK && rc >= 0)
		rc = kl_repo_fail(r, -KL_EDBSERVER, "cannot close the restored database");
	return rc;
}

static int write_wal(struct kl_repo *r, const struct plan *p, int64_t t, const char *dir,
		     const char *wal)
{
	struct walout w = {.fd = -1};
	uint8_t hdr[KL_SQLITE_WAL_HDR];
	int scratch, rc = 0;

	if (!p->n)
		return 0;
	w.h.page_size = p->base->s.db.page_size;
	w.h.salt1 = 0x6b65656c; /* any: the WAL is new */
	w.h.salt2 = 0x73716c74;
	kl_sqlite_wal_hdr_encode(&w.h, hdr);
	w.s[0] = w.h.s0;
	w.s[1] = w.h.s1;
	scratch = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (scratch < 0)
		return kl_repo_fail(r, -errno, "cannot create a scratch file in '%s'", dir);
	w.fd = open(wal, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w.fd < 0)
		rc = kl_repo_fail(r, -errno, "cannot create '%s'", wal);
	if (rc >= 0)
		rc = kl_fs_write_full(w.fd, hdr, sizeof(hdr));
	for (size_t i = 0; rc >= 0 && i < p->n && !w.done; i++)
		rc = append_record(r, &p->v[i], t, scratch, &w);
	if (rc >= 0 && fsync(w.fd) < 0)
		rc = kl_repo_fail(r, -errno, "cannot write '%s'", wal);
	if (w.fd >= 0)
		close(w.fd);
	close(scratch);
	return rc;
}

static int restore_files(struct kl_repo *r, const struct plan *p, int64_t t, const char *target)
{
	char tmp[4096], wal[4112], shm[4112], dir[4096], *slash;
	uint32_t mode = 0600;
	int fd, rc;

	snprintf(dir, sizeof(dir), "%s", target);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = 0;
	else if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof(dir), ".");
	if (snprintf(tmp, sizeof(tmp), "%s.keel-tmp", target) >= (int)sizeof(tmp))
		return kl_repo_fail(r, -ENAMETOOLONG, "restore target '%s' is too long", target);
	snprintf(wal, sizeof(wal), "%s-wal", tmp);
	snprintf(shm, sizeof(shm), "%s-shm", tmp);
	unlink(wal); /* a failed restore's leftovers: ours, by name */
	unlink(shm);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return kl_repo_fail(r, -errno, "cannot create '%s'", tmp);
	rc = dump_mode(r, &p->base->s.tree, "/sqlite/database", fd, &mode);
	/* the source's permissions (the owner is whoever restores) */
	if (rc >= 0 && fchmod(fd, mode) < 0)
		rc = kl_repo_fail(r, -errno, "cannot set the mode of '%s'", tmp);
	if (rc >= 0 && fsync(fd) < 0)
		rc = kl_repo_fail(r, -errno, "cannot write '%s'", tmp);
	close(fd);
	if (rc >= 0)
		rc = write_wal(r, p, t, dir, wal);
	if (rc >= 0)
		rc = finish_db(r, tmp);
	unlink(wal);
	unlink(shm);
	if (rc >= 0 && link(tmp, target) < 0)
		rc = kl_repo_fail(r, -errno, "cannot create '%s'", target);
	unlink(tmp);
	if (rc >= 0 && (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rc = kl_fs_fsync_dir(fd);
		close(fd);
	}
	return rc;
}

/* Restores o->name to o->target at t (-1: all); end_ret (if not NULL): the chain's last position.
 */
static int restore(struct kl_repo *r, const struct kl_db_restore_opts *o, int64_t t,
		   struct kl_id *base_ret, uint64_t *end_ret)
{
	struct plan p = {0};
	struct kl_db_list l;
	const struct kl_db_info *d;
	int rc = kl_db_list(r, &l);

	if (rc < 0)
		return rc;
	d = kl_db_find(&l, o->name);
	if (!d || d->engine != KL_DB_SQLITE)
		rc = kl_repo_fail(r, -KL_ENOTFOUND, "no SQLite database '%s' in the repository",
				  o->name);
	if (rc >= 0)
		rc = choose(r, d, o, t, &p);
	if (rc >= 0)
		rc = restore_files(r, &p, t, o->target);
	if (rc >= 0)
		*base_ret = p.base->id;
	if (rc >= 0 && end_ret)
		*end_ret = p.n ? p.v[p.n - 1].rec->s.db.stop_lsn : p.base->s.db.stop_lsn;
	kl_free(p.v);
	kl_db_list_release(&l);
	return rc;
}

int kl_db_sqlite_restore(struct kl_repo *r, const struct kl_db_restore_opts *o,
			 struct kl_id *base_ret)
{
	struct stat st;
	int64_t t = -1;

	if (o->has_lsn)
		return kl_repo_fail(r, -KL_EUSAGE,
				    "a SQLite database restores by --time or --latest");
	if (o->time && kl_pgr_parse_time(o->time, &t) < 0)
		return kl_repo_fail(r, -KL_EUSAGE,
				    "invalid --time '%s' (YYYY-MM-DD HH:MM:SS[.fffffffff] with an "
				    "offset: +00, +01:00, Z)",
				    o->time);
	if (lstat(o->target, &st) == 0 || errno != ENOENT)
		return kl_repo_fail(
			r, -KL_EUSAGE,
			"restore target '%s' exists: a database is restored as a new file",
			o->target);
	return restore(r, o, t, base_ret, NULL);
}

int kl_sq_rebuild(struct kl_repo *r, const char *name, const char *target, uint64_t *end_ret)
{
	struct kl_db_restore_opts o = {.name = name, .target = target, .latest = true};
	struct kl_id base;

	return restore(r, &o, -1, &base, end_ret);
}

int kl_db_sqlite_named(struct kl_repo *r, const char *name)
{
	struct kl_db_list l;
	const struct kl_db_info *d;
	int rc = kl_db_list(r, &l);

	if (rc < 0)
		return rc;
	d = kl_db_find(&l, name);
	rc = d && d->engine == KL_DB_SQLITE;
	kl_db_list_release(&l);
	return rc;
}

bool kl_db_sqlite_uri(const char *s)
{
	return kl_sq_uri_path(s) != NULL;
}

int kl_db_sqlite_spans(const struct kl_db_info *d, struct kl_db_span **ret, size_t *n_ret)
{
	struct kl_db_span *v = NULL;
	struct plan p = {0};
	size_t n = 0;
	int rc = 0;

	*ret = NULL;
	*n_ret = 0;
	/* bases are oldest first; a span that begins inside the one before extends it */
	for (size_t i = 0; i < d->n_bases && rc >= 0; i++) {
		rc = chain(d, &d->bases[i], &p);
		if (rc < 0)
			break;
		if (n && d->bases[i].s.time_ns <= v[n - 1].to_ns) {
			if (p.covered_ns > v[n - 1].to_ns)
				v[n - 1].to_ns = p.covered_ns;
			continue;
		}
		struct kl_db_span *nv = kl_realloc(v, (n + 1) * sizeof(*v));

		if (!nv) {
			rc = -ENOMEM;
			break;
		}
		v = nv;
		v[n].from_ns = d->bases[i].s.time_ns;
		v[n++].to_ns = p.covered_ns;
	}
	kl_free(p.v);
	if (rc < 0) {
		kl_free(v);
		return rc;
	}
	*ret = v;
	*n_ret = n;
	return 0;
}

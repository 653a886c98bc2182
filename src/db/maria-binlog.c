/*
 * The stored binary log read back (docs/DATABASES.md, "MariaDB's binary
 * log"): the files a replay needs from a base backup's coordinates to a
 * target, each put together from its records, under the server's names.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "maria-binlog.h"

void kl_mb_files_release(struct kl_mb_files *f)
{
	for (size_t i = 0; i < f->n; i++)
		kl_free(f->v[i]);
	kl_free(f->v);
	memset(f, 0, sizeof(*f));
}

static int cmp_start(const void *a, const void *b)
{
	const struct kl_snapshot_ref *x = *(const struct kl_snapshot_ref *const *)a;
	const struct kl_snapshot_ref *y = *(const struct kl_snapshot_ref *const *)b;

	return x->s.db.start_lsn < y->s.db.start_lsn   ? -1
	       : x->s.db.start_lsn > y->s.db.start_lsn ? 1
	       : x->s.db.stop_lsn > y->s.db.stop_lsn   ? -1
						       : x->s.db.stop_lsn < y->s.db.stop_lsn;
}

/* The one file of a record's tree, binlog/FILE, appended to fd at the record's offset. */
static int put_record(struct kl_repo *r, const struct kl_snapshot_ref *ref, int fd)
{
	const struct kl_snapshot_db *db = &ref->s.db;
	struct kl_tree root = {0}, dir = {0};
	const struct kl_node *n = NULL;
	int rc = kl_repo_read_tree(r, &ref->s.tree, &root);

	if (rc >= 0) {
		n = kl_tree_find(&root, (const uint8_t *)"binlog", 6);
		rc = n && n->has_subtree ? kl_repo_read_tree(r, &n->subtree, &dir) : -KL_ECORRUPT;
	}
	if (rc >= 0) {
		n = kl_tree_find(&dir, (const uint8_t *)db->log_file, strlen(db->log_file));
		if (!n || n->type != KL_NODE_FILE ||
		    (KL_MB_NO(db->stop_lsn) == KL_MB_NO(db->start_lsn) &&
		     n->size != KL_MB_OFF(db->stop_lsn) - KL_MB_OFF(db->start_lsn)))
			rc = -KL_ECORRUPT;
	}
	/* an overlap (two streams at once) writes the same bytes again */
	if (rc >= 0 && lseek(fd, KL_MB_OFF(db->start_lsn), SEEK_SET) < 0)
		rc = -errno;
	if (rc >= 0)
		rc = kl_dump_node(r, n, fd);
	kl_tree_release(&dir);
	kl_tree_release(&root);
	return rc;
}

/*
 * A complete file: its format description's in-use flag is clear, as the
 * server leaves it when it closes the file (the checksum ignores the flag).
 */
static int close_file(int fd)
{
	uint8_t flags;

	if (pread(fd, &flags, 1, KL_BINLOG_MAGIC_LEN + 17) == 1 && (flags & KL_BINLOG_F_IN_USE)) {
		flags &= (uint8_t)~KL_BINLOG_F_IN_USE;
		if (pwrite(fd, &flags, 1, KL_BINLOG_MAGIC_LEN + 17) != 1)
			return -errno;
	}
	return fsync(fd) < 0 ? -errno : 0;
}

struct fetch {
	struct kl_repo *r;
	const struct kl_mb_target *to;
	int dfd, fd;
	uint32_t cur; /* the file open in fd */
	uint64_t pos; /* the end of what was written */
	struct kl_mb_files *out;
};

static int open_file(struct fetch *f, const char *name, uint32_t no)
{
	char **v = kl_realloc(f->out->v, (f->out->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	f->out->v = v;
	if (!(v[f->out->n] = kl_strdup(name)))
		return -ENOMEM;
	f->out->n++;
	f->fd = openat(f->dfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f->fd < 0)
		return kl_repo_fail(f->r, -errno, "cannot create '%s'", name);
	f->cur = no;
	return 0;
}

/* Whether the record just written reaches the target. */
static bool reached(const struct fetch *f, const struct kl_snapshot_db *db)
{
	if (f->to->stop_lsn)
		return db->stop_lsn >= f->to->stop_lsn;
	return f->to->stop_time && db->binlog_time_max >= f->to->stop_time;
}

/* Writes the records v[0..n) (by start) from position f->pos on, until the target. */
static int write_all(struct fetch *f, struct kl_snapshot_ref **v, size_t n, bool *reached_ret)
{
	int rc = 0;

	for (size_t i = 0; rc >= 0 && i < n && !*reached_ret; i++) {
		const struct kl_snapshot_db *db = &v[i]->s.db;

		if (db->stop_lsn <= f->pos)
			continue;
		if (db->start_lsn > f->pos)
			return kl_repo_fail(f->r, -KL_EDBGAP,
					    "the binary log has a gap before '%s' at %" PRIu32,
					    db->log_file, KL_MB_OFF(db->start_lsn));
		if (f->fd < 0)
			rc = open_file(f, db->log_file, KL_MB_NO(db->start_lsn));
		if (rc >= 0)
			rc = put_record(f->r, v[i], f->fd);
		if (rc < 0)
			return kl_repo_fail(f->r, rc, "cannot read back the binary log '%s'",
					    db->log_file);
		f->pos = db->stop_lsn;
		*reached_ret = reached(f, db);
		if (KL_MB_NO(db->stop_lsn) != f->cur) { /* the file is complete */
			rc = close_file(f->fd);
			close(f->fd);
			f->fd = -1;
		}
	}
	return rc;
}

int kl_mb_fetch(struct kl_repo *r, const char *name, uint32_t from_no,
		const struct kl_mb_target *to, const char *dir, struct kl_mb_files *ret)
{
	struct fetch f = {.r = r, .to = to, .dfd = -1, .fd = -1, .out = ret};
	struct kl_snapshot_ref **v = NULL;
	const struct kl_db_info *d;
	struct kl_db_list l;
	bool done = false;
	int64_t newest = 0;
	size_t n = 0;
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = kl_db_list(r, &l);
	if (rc < 0)
		return rc;
	d = kl_db_find(&l, name);
	if (!d || d->engine != KL_DB_MARIADB || !d->n_logs)
		rc = kl_repo_fail(r, -KL_ENOTFOUND, "no binary log of '%s' in the repository",
				  name);
	if (rc >= 0 && !(v = kl_malloc(d->n_logs * sizeof(*v))))
		rc = -ENOMEM;
	for (size_t i = 0; rc >= 0 && i < d->n_logs; i++) {
		const struct kl_snapshot_db *db = &d->logs[i].s.db;

		if (!db->log_file || KL_MB_NO(db->stop_lsn) < from_no)
			continue;
		v[n++] = &d->logs[i];
		if (d->logs[i].s.time_end_ns > newest)
			newest = d->logs[i].s.time_end_ns;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_start);
	f.pos = KL_MB_POS(from_no, 0);
	if (rc >= 0 && (f.dfd = open(dir, O_DIRECTORY | O_CLOEXEC)) < 0)
		rc = kl_repo_fail(r, -errno, "cannot open '%s'", dir);
	if (rc >= 0)
		rc = write_all(&f, v, n, &done);
	if (f.fd >= 0 && fsync(f.fd) < 0 && rc >= 0)
		rc = -errno;
	/* stored up to now, the target is later: a time before the last store is covered */
	if (rc >= 0 && !done &&
	    (to->stop_lsn || (to->stop_time && to->stop_time > newest / KL_NSEC_PER_SEC)))
		rc = kl_repo_fail(r, -KL_ENOTFOUND,
				  "the target is not covered: the binary log of '%s' is stored up "
				  "to '%s' at %" PRIu32,
				  name, f.out->n ? f.out->v[f.out->n - 1] : "(none)",
				  KL_MB_OFF(f.pos));
	if (f.fd >= 0)
		close(f.fd);
	if (f.dfd >= 0)
		close(f.dfd);
	kl_free(v);
	kl_db_list_release(&l);
	return rc;
}

int kl_db_binlog_get(struct kl_repo *r, const char *name, const char *from, const char *stop_file,
		     uint64_t stop_pos, const char *dir, size_t *n_ret)
{
	struct kl_mb_target to = {0};
	struct kl_mb_files files;
	uint32_t no, stop_no = 0;
	char oldest[KL_BINLOG_NAME_MAX + 1] = "";
	struct kl_db_list l;
	const struct kl_db_info *d;
	int rc;

	*n_ret = 0;
	if (!from) {
		rc = kl_db_list(r, &l);
		if (rc < 0)
			return rc;
		d = kl_db_find(&l, name);
		for (size_t i = 0; d && i < d->n_logs; i++) {
			const struct kl_snapshot_db *db = &d->logs[i].s.db;

			/* logs are by stop: the first with a name is the oldest file */
			if (db->log_file) {
				snprintf(oldest, sizeof(oldest), "%s", db->log_file);
				break;
			}
		}
		kl_db_list_release(&l);
		if (!*oldest)
			return kl_repo_fail(r, -KL_ENOTFOUND,
					    "no binary log of '%s' in the repository", name);
		from = oldest;
	}
	if (kl_binlog_file_number(from, &no) < 0 ||
	    (stop_file && kl_binlog_file_number(stop_file, &stop_no) < 0))
		return kl_repo_fail(r, -KL_EUSAGE, "invalid binary log name");
	if (stop_file)
		to.stop_lsn = KL_MB_POS(stop_no, stop_pos);
	rc = kl_mb_fetch(r, name, no, &to, dir, &files);
	*n_ret = files.n;
	kl_mb_files_release(&files);
	return rc;
}

static int cmp_span(const void *a, const void *b)
{
	const struct kl_db_span *x = a, *y = b;

	return x->from_ns < y->from_ns ? -1 : x->from_ns > y->from_ns;
}

/* The newest time_end of the records that continue, without a hole, from pos on. */
static int64_t chain_end(struct kl_snapshot_ref **v, size_t n, uint64_t pos, int64_t t)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i]->s.db.stop_lsn <= pos)
			continue;
		if (v[i]->s.db.start_lsn > pos)
			break;
		pos = v[i]->s.db.stop_lsn;
		if (v[i]->s.time_end_ns > t)
			t = v[i]->s.time_end_ns;
	}
	return t;
}

int kl_db_maria_spans(const struct kl_db_info *d, struct kl_db_span **ret, size_t *n_ret)
{
	struct kl_snapshot_ref **v = kl_malloc((d->n_logs + 1) * sizeof(*v));
	struct kl_db_span *s = kl_malloc((d->n_bases + 1) * sizeof(*s));
	size_t n = 0, k = 0;

	*ret = NULL;
	*n_ret = 0;
	if (!v || !s) {
		kl_free(v);
		kl_free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < d->n_logs; i++)
		v[i] = &d->logs[i];
	if (d->n_logs)
		qsort(v, d->n_logs, sizeof(*v), cmp_start);
	for (size_t i = 0; i < d->n_bases; i++) {
		const struct kl_snapshot *b = &d->bases[i].s;

		s[n].from_ns = b->time_end_ns;
		s[n].to_ns = chain_end(v, d->n_logs, KL_MB_POS(KL_MB_NO(b->db.start_lsn), 0),
				       b->time_end_ns);
		n++;
	}
	if (n)
		qsort(s, n, sizeof(*s), cmp_span);
	for (size_t i = 0; i < n; i++) {
		if (k && s[i].from_ns <= s[k - 1].to_ns) {
			if (s[i].to_ns > s[k - 1].to_ns)
				s[k - 1].to_ns = s[i].to_ns;
			continue;
		}
		s[k++] = s[i];
	}
	kl_free(v);
	*ret = s;
	*n_ret = k;
	return 0;
}

int kl_maria_binlog_fetch(struct kl_repo *r, const char *name, uint64_t from,
			  const struct kl_db_restore_opts *o, int64_t t, const char *dir)
{
	struct kl_mb_target to = {0};
	struct kl_mb_files files;
	int rc;

	if (o->time) {
		/* mariadb-binlog stops before the first event at or after T: in whole seconds */
		to.stop_time = (t + KL_NSEC_PER_SEC - 1) / KL_NSEC_PER_SEC;
	} else if (o->has_lsn) {
		to.stop_lsn = o->lsn;
	}
	rc = kl_mb_fetch(r, name, KL_MB_NO(from), &to, dir, &files);
	kl_mb_files_release(&files);
	return rc;
}

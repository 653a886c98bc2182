/*
 * keel db check NAME (docs/DATABASES.md, "Check"): the log's continuity
 * per timeline from the oldest base backup on, and the data of every
 * snapshot of NAME that no earlier run verified (each file read back,
 * which authenticates and hashes every blob). What was verified is
 * remembered in a state file the caller names (the CLI: keel's cache
 * directory), so a daily check reads only what is new.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "keel/db.h"
#include "keel/fs.h"
#include "keel/repo.h"

struct span {
	uint64_t start, stop;
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void gap(const struct kl_report *rep, size_t *gaps, uint32_t tli, uint64_t from, uint64_t to,
		const char *why)
{
	char a[32], b[32], msg[160];

	kl_db_lsn_format(from, a, sizeof(a));
	kl_db_lsn_format(to, b, sizeof(b));
	if (why)
		snprintf(msg, sizeof(msg), "timeline %" PRIu32 ": %s", tli, why);
	else
		snprintf(msg, sizeof(msg), "gap on timeline %" PRIu32 " from %s to %s", tli, a, b);
	(*gaps)++;
	if (rep && rep->warn)
		rep->warn(rep->ud, NULL, 0, msg);
}

/* The history record of timeline tli: its switch point, or false. */
static bool switch_point(const struct kl_db_info *d, uint32_t tli, uint64_t *ret)
{
	for (size_t i = 0; i < d->n_logs; i++) {
		const struct kl_snapshot_db *x = &d->logs[i].s.db;

		if (x->timeline == tli && x->start_lsn == x->stop_lsn) {
			*ret = x->start_lsn;
			return true;
		}
	}
	return false;
}

/*
 * One timeline: what base backups and records hold of it must cover
 * [begin, end) without a hole. begin: the oldest base backup's start on
 * its timeline, or a later timeline's switch point (its history file);
 * end: where the next timeline switched away, or what is stored last.
 */
static int check_timeline(const struct kl_db_info *d, uint32_t tli, uint32_t next,
			  const struct kl_report *o, size_t *ret)
{
	const struct kl_snapshot_db *b0 = d->n_bases ? &d->bases[0].s.db : NULL;
	struct span *v = kl_malloc((d->n_logs + d->n_bases + 1) * sizeof(*v));
	uint64_t begin = 0, end = 0, pos, sw;
	bool has_begin = false;
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_bases; i++)
		if (d->bases[i].s.db.timeline == tli)
			v[n++] = (struct span){d->bases[i].s.db.start_lsn,
					       d->bases[i].s.db.stop_lsn};
	for (size_t i = 0; i < d->n_logs; i++) {
		const struct kl_snapshot_db *x = &d->logs[i].s.db;

		if (x->timeline == tli && x->start_lsn != x->stop_lsn)
			v[n++] = (struct span){x->start_lsn, x->stop_lsn};
	}
	if (b0 && b0->timeline == tli) {
		begin = b0->start_lsn;
		has_begin = true;
	} else if (b0 && tli > b0->timeline) {
		has_begin = switch_point(d, tli, &begin);
		if (!has_begin)
			gap(o, ret, tli, 0, 0, "no history file: where it begins is unknown");
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_span);
	if (!has_begin)
		begin = n ? v[0].start : 0;
	for (size_t i = 0; i < n; i++)
		end = v[i].stop > end ? v[i].stop : end;
	/* without the next timeline's history its own check reports that */
	if (next && switch_point(d, next, &sw))
		end = sw;
	pos = begin;
	for (size_t i = 0; i < n; i++) {
		if (v[i].stop <= pos)
			continue;
		if (v[i].start > pos)
			gap(o, ret, tli, pos, v[i].start, NULL);
		pos = v[i].stop;
	}
	if (pos < end)
		gap(o, ret, tli, pos, end, NULL);
	kl_free(v);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void kl_db_maria_pos_format(const struct kl_db_info *d, uint64_t pos, char *buf, size_t size)
{
	const char *file = NULL;
	int stem;

	/* the files' stem ("bin", "mysql-bin") from any name the database records */
	for (size_t i = 0; !file && i < d->n_logs; i++)
		file = d->logs[i].s.db.log_file;
	for (size_t i = 0; !file && i < d->n_bases; i++)
		file = d->bases[i].s.db.binlog_file;
	stem = file && strrchr(file, '.') ? (int)(strrchr(file, '.') - file) : 0;
	snprintf(buf, size, "%.*s.%06" PRIu32 ":%" PRIu32, stem, stem ? file : "binlog",
		 (uint32_t)(pos >> 32), (uint32_t)pos);
}

/* The records' ranges by start; *n_ret of them, v to kl_free. */
static struct span *maria_spans(const struct kl_db_info *d, size_t *n_ret)
{
	struct span *v = kl_malloc((d->n_logs + 1) * sizeof(*v));
	size_t n = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < d->n_logs; i++)
		v[n++] = (struct span){d->logs[i].s.db.start_lsn, d->logs[i].s.db.stop_lsn};
	if (n)
		qsort(v, n, sizeof(*v), cmp_span);
	*n_ret = n;
	return v;
}

/* Where the continuity check of a MariaDB log begins: the oldest base backup's file. */
static uint64_t maria_begin(const struct kl_db_info *d, const struct span *v, size_t n)
{
	return d->n_bases ? d->bases[0].s.db.start_lsn & ~(uint64_t)UINT32_MAX : n ? v[0].start : 0;
}

/*
 * MariaDB: one sequence of binlog files. From the start of the oldest base
 * backup's file (a replay reads it whole) to the end of what is stored.
 * Positions are the server's: FILE:OFFSET (offset 0: the file's start).
 */
static int maria_gaps(const struct kl_db_info *d, const struct kl_report *o, size_t *ret)
{
	size_t n = 0;
	struct span *v = maria_spans(d, &n);
	uint64_t pos;

	if (!v)
		return -ENOMEM;
	pos = maria_begin(d, v, n);
	for (size_t i = 0; i < n; i++) {
		if (v[i].stop <= pos)
			continue;
		if (v[i].start > pos) {
			char msg[2 * KL_BINLOG_NAME_MAX + 96], a[KL_BINLOG_NAME_MAX + 16],
				b[KL_BINLOG_NAME_MAX + 16];

			kl_db_maria_pos_format(d, pos, a, sizeof(a));
			kl_db_maria_pos_format(d, v[i].start, b, sizeof(b));
			snprintf(msg, sizeof(msg), "gap in the binary log from %s to %s", a, b);
			(*ret)++;
			if (o && o->warn)
				o->warn(o->ud, NULL, 0, msg);
		}
		pos = v[i].stop;
	}
	kl_free(v);
	return 0;
}

/* What db check reports of a MariaDB log: the range checked and the oldest base's position. */
static int maria_range(const struct kl_db_info *d, struct kl_db_check_result *ret)
{
	size_t n = 0;
	struct span *v = maria_spans(d, &n);
	uint64_t end;

	if (!v)
		return -ENOMEM;
	end = d->n_bases ? d->bases[d->n_bases - 1].s.db.stop_lsn : 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].stop > end)
			end = v[i].stop;
	kl_db_maria_pos_format(d, maria_begin(d, v, n), ret->log_from, sizeof(ret->log_from));
	kl_db_maria_pos_format(d, end, ret->log_to, sizeof(ret->log_to));
	if (d->n_bases) {
		const struct kl_snapshot_db *b = &d->bases[0].s.db;

		kl_db_maria_pos_format(d, b->stop_lsn, ret->base_position,
				       sizeof(ret->base_position));
		snprintf(ret->base_gtid, sizeof(ret->base_gtid), "%s", b->gtid ? b->gtid : "");
	}
	kl_free(v);
	return 0;
}

int kl_db_gaps(const struct kl_db_info *d, const struct kl_report *o, size_t *ret)
{
	uint32_t *t = kl_malloc((d->n_logs + d->n_bases + 1) * sizeof(*t));
	uint32_t oldest = d->n_bases ? d->bases[0].s.db.timeline : 0;
	size_t n = 0, k = 0;
	int rc = 0;

	if (d->engine == KL_DB_SQLITE) {
		kl_free(t);
		return kl_db_sqlite_gaps(d, o, ret);
	}
	if (!t)
		return -ENOMEM;
	if (d->engine == KL_DB_MARIADB) {
		kl_free(t);
		return maria_gaps(d, o, ret);
	}
	for (size_t i = 0; i < d->n_bases; i++)
		t[n++] = d->bases[i].s.db.timeline;
	for (size_t i = 0; i < d->n_logs; i++)
		t[n++] = d->logs[i].s.db.timeline;
	if (n)
		qsort(t, n, sizeof(*t), cmp_u32);
	for (size_t i = 0; i < n; i++) /* distinct, from the oldest base backup's on */
		if ((!k || t[k - 1] != t[i]) && t[i] >= oldest)
			t[k++] = t[i];
	for (size_t i = 0; rc >= 0 && i < k; i++)
		rc = check_timeline(d, t[i], i + 1 < k ? t[i + 1] : 0, o, ret);
	kl_free(t);
	return rc;
}

/* Reads every file below tree back (to /dev/null): each blob is authenticated and hashed. */
static int verify_tree(struct kl_repo *r, const struct kl_id *tree, int null_fd,
		       struct kl_db_check_result *ret, unsigned depth)
{
	struct kl_tree t = {0};
	int rc;

	if (depth > 512)
		return -KL_ECORRUPT;
	rc = kl_repo_read_tree(r, tree, &t);
	for (size_t i = 0; rc >= 0 && i < t.n; i++) {
		const struct kl_node *nd = &t.nodes[i];

		if (nd->has_subtree)
			rc = verify_tree(r, &nd->subtree, null_fd, ret, depth + 1);
		else if (nd->type == KL_NODE_FILE) {
			rc = kl_dump_node(r, nd, null_fd);
			ret->bytes_read += nd->size;
		}
	}
	kl_tree_release(&t);
	return rc;
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct kl_id));
}

/* The ids the state file lists (hex, one a line), sorted; a damaged file counts as empty. */
static int load_state(const char *path, struct kl_id **ret, size_t *n_ret)
{
	struct kl_buf b = KL_BUF_INIT(64u << 20);
	struct kl_id *v = NULL;
	size_t n = 0;
	int rc;

	*ret = NULL;
	*n_ret = 0;
	if (!path)
		return 0;
	rc = kl_fs_read_all(AT_FDCWD, path, b.max, &b);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	v = kl_malloc((b.len / (2 * KL_ID_LEN + 1) + 1) * sizeof(*v));
	if (!v) {
		kl_buf_release(&b);
		return -ENOMEM;
	}
	for (const char *p = (const char *)b.data, *end = p + b.len; p + 2 * KL_ID_LEN <= end;) {
		char hex[2 * KL_ID_LEN + 1];

		memcpy(hex, p, 2 * KL_ID_LEN);
		hex[2 * KL_ID_LEN] = 0;
		if (kl_id_parse(hex, &v[n]) >= 0)
			n++;
		p += 2 * KL_ID_LEN;
		while (p < end && *p != '\n')
			p++;
		p += p < end;
	}
	kl_buf_release(&b);
	if (n)
		qsort(v, n, sizeof(*v), cmp_id);
	*ret = v;
	*n_ret = n;
	return 0;
}

static int save_state(const char *path, const struct kl_id *v, size_t n)
{
	char *text = kl_malloc(n * (2 * KL_ID_LEN + 1) + 1), *slash, dir[4096];
	int dfd, rc;

	if (!text)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		kl_id_hex(&v[i], text + i * (2 * KL_ID_LEN + 1));
		text[(i + 1) * (2 * KL_ID_LEN + 1) - 1] = '\n';
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir) {
		kl_free(text);
		return -EINVAL;
	}
	*slash = 0;
	rc = kl_fs_mkdir_p(AT_FDCWD, dir, 0700);
	if (rc >= 0) {
		dfd = open(dir, O_DIRECTORY | O_CLOEXEC);
		rc = dfd < 0 ? -errno
			     : kl_fs_write_atomic(dfd, slash + 1, text, n * (2 * KL_ID_LEN + 1),
						  0600, 0);
		if (dfd >= 0)
			close(dfd);
	}
	kl_free(text);
	return rc;
}

/* Verifies one snapshot unless the state lists it; adds it to keep[] when it is sound. */
static int verify_one(struct kl_repo *r, const struct kl_db_check_opts *o,
		      const struct kl_db_info *d, const struct kl_snapshot_ref *ref,
		      const struct kl_id *old, size_t n_old, int null_fd, struct kl_id *keep,
		      size_t *n_keep, struct kl_db_check_result *ret)
{
	char hex[2 * KL_ID_LEN + 1], msg[128];
	int rc;

	ret->snapshots++;
	if (!o->all && n_old && bsearch(&ref->id, old, n_old, sizeof(*old), cmp_id)) {
		keep[(*n_keep)++] = ref->id;
		return 0;
	}
	rc = verify_tree(r, &ref->s.tree, null_fd, ret, 0);
	/* SQLite's frames carry their own checksum chain: it must go on from the record before */
	if (rc >= 0 && d->engine == KL_DB_SQLITE && ref->s.db.role == KL_DB_LOG)
		rc = kl_db_sqlite_check_frames(r, d, ref);
	ret->verified++;
	if (rc >= 0) {
		keep[(*n_keep)++] = ref->id;
		return 0;
	}
	if (rc != -KL_ECORRUPT && rc != -KL_ENOTFOUND)
		return rc; /* I/O: the next run tries again */
	kl_id_hex(&ref->id, hex);
	snprintf(msg, sizeof(msg), "snapshot %s cannot be read back", hex);
	ret->damaged++;
	kl_repo_clear_err(r);
	if (o->report.warn)
		o->report.warn(o->report.ud, NULL, rc, msg);
	return 0;
}

int kl_db_check(struct kl_repo *r, const struct kl_db_check_opts *o, struct kl_db_check_result *ret)
{
	struct kl_id *old = NULL, *keep = NULL;
	size_t n_old = 0, n_keep = 0;
	const struct kl_db_info *d;
	struct kl_db_list l;
	int null_fd = -1, rc;

	memset(ret, 0, sizeof(*ret));
	rc = kl_db_list(r, &l);
	if (rc < 0)
		return rc;
	d = kl_db_find(&l, o->name);
	if (!d) {
		rc = kl_repo_fail(r, -KL_ENOTFOUND, "no database '%s' in the repository", o->name);
		goto out;
	}
	rc = kl_db_gaps(d, &o->report, &ret->gaps);
	if (rc >= 0 && d->engine == KL_DB_MARIADB)
		rc = maria_range(d, ret);
	if (rc >= 0 && load_state(o->state_path, &old, &n_old) < 0)
		n_old = 0; /* unreadable: verify everything, and write it anew */
	if (rc >= 0 && !(keep = kl_malloc((d->n_bases + d->n_logs + 1) * sizeof(*keep))))
		rc = -ENOMEM;
	if (rc >= 0 && (null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		rc = kl_repo_fail(r, -errno, "cannot open /dev/null");
	for (size_t i = 0; rc >= 0 && i < d->n_bases + d->n_logs; i++)
		rc = verify_one(r, o, d, i < d->n_bases ? &d->bases[i] : &d->logs[i - d->n_bases],
				old, n_old, null_fd, keep, &n_keep, ret);
	if (rc >= 0 && o->state_path) {
		qsort(keep, n_keep, sizeof(*keep), cmp_id);
		rc = save_state(o->state_path, keep, n_keep);
		if (rc < 0)
			rc = kl_repo_fail(r, rc, "cannot write '%s'", o->state_path);
	}
	if (rc >= 0 && ret->damaged)
		rc = kl_repo_fail(r, -KL_ECORRUPT, "%zu snapshot%s of '%s' damaged", ret->damaged,
				  ret->damaged == 1 ? "" : "s", o->name);
	else if (rc >= 0 && ret->gaps)
		rc = kl_repo_fail(r, -KL_EDBGAP, "the log of '%s' has %zu gap%s", o->name,
				  ret->gaps, ret->gaps == 1 ? "" : "s");
out:
	if (null_fd >= 0)
		close(null_fd);
	kl_free(old);
	kl_free(keep);
	kl_db_list_release(&l);
	return rc;
}

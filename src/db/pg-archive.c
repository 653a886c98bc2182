/*
 * archive_command and restore_command (docs/DATABASES.md, "wal-push and
 * wal-get"): `keel db wal-push PATH` stores a whole WAL segment, or a
 * timeline history file, as a log record of its own, once (a segment
 * already stored complete with the same bytes is not stored again);
 * `keel db wal-get FILE DEST` writes the newest stored copy of FILE,
 * from wal-push or from the stream, a segment zero-padded to its size.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/fs.h"
#include "pg-internal.h"

#define SEG_MIN (1u << 20)
#define SEG_MAX (1u << 30)

/* What a WAL file's name says: a segment or a timeline's history. */
struct walname {
	bool history;
	uint32_t tli, log, seg; /* segment: TTTTTTTTLLLLLLLLSSSSSSSS */
};

static bool hex8(const char *p, uint32_t *ret)
{
	uint32_t v = 0;

	for (int i = 0; i < 8; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		if (d < 0)
			return false;
		v = v << 4 | (uint32_t)d;
	}
	*ret = v;
	return true;
}

/* 0, or -ENOENT for a name that is neither (PostgreSQL's .backup and .partial files). */
static int parse_walname(const char *name, struct walname *w)
{
	memset(w, 0, sizeof(*w));
	if (strlen(name) == 24 && hex8(name, &w->tli) && hex8(name + 8, &w->log) &&
	    hex8(name + 16, &w->seg) && w->tli)
		return 0;
	if (strlen(name) == 16 && !strcmp(name + 8, ".history") && hex8(name, &w->tli) && w->tli) {
		w->history = true;
		return 0;
	}
	return -ENOENT;
}

/* A segment's first LSN for a segment size, or false if the name does not fit it. */
static bool seg_start(const struct walname *w, uint32_t segsize, uint64_t *ret)
{
	uint64_t per = 0x100000000ull / segsize;

	if (w->seg >= per)
		return false;
	*ret = ((uint64_t)w->log * per + w->seg) * segsize;
	return true;
}

/* 1 if the stored file n holds exactly data (read back from the repository), else 0. */
static int same_content(struct kl_repo *r, const struct kl_node *n, const uint8_t *data, size_t len)
{
	int fd, rc;
	void *m;

	if (n->size != len)
		return 0;
	if (!len)
		return 1;
	fd = memfd_create("keel-wal", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = kl_dump_node(r, n, fd);
	if (rc >= 0) {
		m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			rc = -errno;
		} else {
			rc = !memcmp(m, data, len);
			munmap(m, len);
		}
	}
	close(fd);
	return rc;
}

/* The only file of a log record's pg_wal, into *ret (release it). */
static int record_file(struct kl_repo *r, const struct kl_snapshot_ref *ref, struct kl_tree *t)
{
	struct kl_node dir = {0};
	int rc = kl_tree_lookup(r, &ref->s.tree, "/pg_wal", &dir);

	if (rc >= 0 && (!dir.has_subtree || (rc = kl_repo_read_tree(r, &dir.subtree, t)) < 0 ||
			t->n != 1 || t->nodes[0].type != KL_NODE_FILE))
		rc = rc < 0 ? rc : -KL_ECORRUPT;
	kl_node_release(&dir);
	return rc < 0 ? kl_repo_fail(r, rc, "a log record of '%s' cannot be read", ref->s.db.name)
		      : 0;
}

/* Reads PATH whole (at most a segment's maximum). */
static int read_file(struct kl_repo *r, const char *path, struct kl_buf *b)
{
	int rc = kl_fs_read_all(AT_FDCWD, path, SEG_MAX, b);

	return rc < 0 ? kl_repo_fail(r, rc, "cannot read '%s'", path) : 0;
}

/* What a pushed file covers: its timeline and LSN range, the cluster and the segment size. */
static int describe(struct kl_repo *r, const char *base, const struct walname *w,
		    const struct kl_buf *b, struct kl_snapshot_db *d, char sysid[32])
{
	struct kl_pgm_walhdr h;
	struct kl_pg_switch sw[KL_PG_HISTORY_MAX];
	size_t n = 0;

	d->timeline = w->tli;
	if (w->history) {
		if (kl_pgm_history_parse((const char *)b->data, b->len, sw, KL_PG_HISTORY_MAX, &n) <
			    0 ||
		    !n || sw[n - 1].tli >= w->tli)
			return kl_repo_fail(r, -KL_ECORRUPT, "'%s' is not a timeline history file",
					    base);
		d->start_lsn = d->stop_lsn = sw[n - 1].end_lsn;
		return 0;
	}
	if (b->len < SEG_MIN || b->len > SEG_MAX || (b->len & (b->len - 1)) ||
	    !seg_start(w, (uint32_t)b->len, &d->start_lsn) ||
	    kl_pgm_walhdr_decode((const uint8_t *)b->data, b->len, &h) < 0 ||
	    h.pageaddr != d->start_lsn || h.seg_size != b->len || h.tli > w->tli)
		return kl_repo_fail(r, -KL_ECORRUPT,
				    "'%s' is not a WAL segment of the size its header says", base);
	d->stop_lsn = d->start_lsn + b->len;
	d->segment_size = (uint32_t)b->len;
	snprintf(sysid, 32, "%" PRIu64, h.sysid);
	d->system_id = sysid;
	return 0;
}

/*
 * The stored record of o->name that is file: for a history file, the one
 * of its timeline; for a segment, the longest copy of it (streamed copies
 * grow; wal-push stores complete ones). NULL if none.
 */
static const struct kl_snapshot_ref *find(const struct kl_db_info *d, const struct walname *w)
{
	const struct kl_snapshot_ref *best = NULL;

	for (size_t i = 0; d && i < d->n_logs; i++) {
		const struct kl_snapshot_db *x = &d->logs[i].s.db;
		uint32_t segsize = x->segment_size ? x->segment_size : 16u << 20;
		uint64_t start;

		if (x->timeline != w->tli || w->history != (x->start_lsn == x->stop_lsn))
			continue;
		if (!w->history && (!seg_start(w, segsize, &start) || x->start_lsn != start))
			continue;
		if (!best || x->stop_lsn > best->s.db.stop_lsn)
			best = &d->logs[i];
	}
	return best;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');

	return b ? b + 1 : path;
}

int kl_db_wal_push(struct kl_repo *r, const struct kl_db_wal_opts *o, const char *path,
		   struct kl_db_wal_result *ret)
{
	const char *base = base_name(path);
	struct kl_buf b = KL_BUF_INIT(SEG_MAX);
	struct kl_snapshot_db db = {.name = (char *)o->name};
	const struct kl_snapshot_ref *old;
	const struct kl_db_info *d;
	struct kl_db_list l = {0};
	struct kl_tree t = {0};
	struct walname w;
	char sysid[32];
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (!o->name || !kl_db_name_valid(o->name))
		return kl_repo_fail(r, -KL_EUSAGE, "invalid database name '%s'",
				    o->name ? o->name : "");
	if (parse_walname(base, &w) < 0) {
		ret->skipped = true; /* .backup, .partial: recovery reads neither */
		return 0;
	}
	rc = read_file(r, path, &b);
	if (rc >= 0)
		rc = describe(r, base, &w, &b, &db, sysid);
	if (rc >= 0)
		rc = kl_db_list(r, &l);
	d = rc >= 0 ? kl_db_find(&l, o->name) : NULL;
	if (d && d->system_id && db.system_id && strcmp(d->system_id, db.system_id))
		rc = kl_repo_fail(r, -KL_EUSAGE,
				  "'%s' is of another cluster (system %s) than database '%s' (%s)",
				  base, db.system_id, o->name, d->system_id);
	old = rc >= 0 ? find(d, &w) : NULL;
	if (old && old->s.db.stop_lsn == db.stop_lsn) {
		rc = record_file(r, old, &t);
		if (rc >= 0)
			rc = same_content(r, &t.nodes[0], (const uint8_t *)b.data, b.len);
		if (rc == 0)
			rc = kl_repo_fail(r, -EEXIST, "'%s' is stored already, with other content",
					  base);
		ret->already = rc > 0;
	}
	if (rc >= 0 && !ret->already)
		rc = kl_pgc_record(r, o->host, o->threads, &db, base, (const uint8_t *)b.data,
				   b.len, NULL);
	ret->start_lsn = db.start_lsn;
	ret->stop_lsn = db.stop_lsn;
	ret->timeline = db.timeline;
	kl_tree_release(&t);
	kl_db_list_release(&l);
	kl_buf_release(&b);
	return rc < 0 ? rc : 0;
}

int kl_db_wal_get(struct kl_repo *r, const struct kl_db_wal_opts *o, const char *file,
		  const char *dest, struct kl_db_wal_result *ret)
{
	const struct kl_snapshot_ref *ref;
	const struct kl_db_info *d;
	struct kl_db_list l;
	struct kl_tree t = {0};
	struct walname w;
	uint32_t segsize;
	int fd = -1, rc;

	memset(ret, 0, sizeof(*ret));
	if (parse_walname(file, &w) < 0)
		return kl_repo_fail(r, -KL_ENOTFOUND, "'%s' is not a WAL segment or history file",
				    file);
	rc = kl_db_list(r, &l);
	if (rc < 0)
		return rc;
	d = kl_db_find(&l, o->name);
	ref = find(d, &w);
	if (!ref) {
		rc = kl_repo_fail(r, -KL_ENOTFOUND, "database '%s' has no '%s' stored", o->name,
				  file);
		goto out;
	}
	segsize = ref->s.db.segment_size ? ref->s.db.segment_size : 16u << 20;
	rc = record_file(r, ref, &t);
	if (rc >= 0 && !w.history && t.nodes[0].size > segsize)
		rc = kl_repo_fail(r, -KL_ECORRUPT, "the stored '%s' is too long", file);
	if (rc >= 0 && (fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		rc = kl_repo_fail(r, -errno, "cannot create '%s'", dest);
	if (rc >= 0)
		rc = kl_dump_node(r, &t.nodes[0], fd);
	if (rc >= 0 && !w.history && ftruncate(fd, (off_t)segsize) < 0)
		rc = -errno;
	if (rc >= 0 && fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0 && close(fd) < 0 && rc >= 0)
		rc = -errno;
	if (rc < 0 && fd >= 0)
		kl_repo_fail(r, rc, "cannot write '%s'", dest);
	ret->start_lsn = ref->s.db.start_lsn;
	ret->stop_lsn = ref->s.db.stop_lsn;
	ret->timeline = ref->s.db.timeline;
out:
	kl_tree_release(&t);
	kl_db_list_release(&l);
	return rc;
}

/*
 * A SQLite database that keel follows (docs/DATABASES.md, "SQLite"): its
 * connections, the read transaction keel always holds so that the WAL
 * cannot be reset behind it, and the WAL read as frames.
 *
 * Why a read transaction is enough: SQLite resets (restarts) the WAL only
 * when every frame is checkpointed and no reader holds a read mark above
 * 0, and it checkpoints only frames at or below every reader's mark. A
 * reader that began while frames were not all checkpointed holds a mark
 * and blocks the reset; one that began when all were (mark 0) blocks every
 * checkpoint instead, so at most one reset can happen under it, and only
 * of a generation keel had read completely. keel hands the transaction
 * from one connection to the other (the new one begins before the old one
 * ends), so there is never a moment without it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sqlite-internal.h"

const char *kl_sq_uri_path(const char *uri)
{
	static const char scheme[] = "sqlite://";

	if (strncmp(uri, scheme, sizeof(scheme) - 1) || uri[sizeof(scheme) - 1] != '/')
		return NULL;
	return uri + sizeof(scheme) - 1;
}

int kl_sq_exec(struct kl_sqdb *d, sqlite3 *c, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c, sql, NULL, NULL, &msg);

	if (rc == SQLITE_OK)
		return 0;
	rc = kl_repo_fail(d->r, -KL_EDBSERVER, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	return rc;
}

static int sq_connect(struct kl_sqdb *d, sqlite3 **ret)
{
	int rc = sqlite3_open_v2(d->path, ret, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK)
		return kl_repo_fail(d->r, -KL_EDBCONNECT, "cannot open SQLite database '%s': %s",
				    d->path, *ret ? sqlite3_errmsg(*ret) : sqlite3_errstr(rc));
	sqlite3_busy_timeout(*ret, 5000);
	return 0;
}

/*
 * The writer lock, for a moment: SQLite's own busy handler tries at 1, 2,
 * 5, ... 100 ms and a writer committing back to back is free for only
 * microseconds between its transactions, so it could wait for ever; this
 * one tries every 200 us, as many times as *ud says.
 */
static int busy_often(void *ud, int n)
{
	if (n >= *(const int *)ud)
		return 0;
	usleep(200);
	return 1;
}

/* PRAGMA journal_mode, which also reads the header: a file that is not a database fails here. */
static int journal_mode(struct kl_sqdb *d, char *buf, size_t size)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(d->rd[0], "PRAGMA journal_mode", -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
		rc = 0;
	} else {
		rc = kl_repo_fail(d->r, -KL_EDBCONNECT, "'%s' is not a usable SQLite database: %s",
				  d->path, sqlite3_errmsg(d->rd[0]));
	}
	sqlite3_finalize(st);
	return rc;
}

int kl_sq_open(struct kl_repo *r, const char *path, bool need_wal, struct kl_sqdb *ret)
{
	char mode[32];
	struct stat st;
	int rc;

	memset(ret, 0, sizeof(*ret));
	ret->r = r;
	ret->dbfd = ret->w.fd = -1;
	ret->cur = -1;
	if (stat(path, &st) < 0)
		return kl_repo_fail(r, -KL_EDBCONNECT, "cannot open SQLite database '%s': %s", path,
				    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kl_repo_fail(r, -KL_EDBCONNECT,
				    "cannot open SQLite database '%s': not a regular file", path);
	ret->path = kl_strdup(path);
	ret->wal_path = kl_malloc(strlen(path) + 5);
	if (!ret->path || !ret->wal_path)
		return -ENOMEM;
	snprintf(ret->wal_path, strlen(path) + 5, "%s-wal", path);
	ret->dbfd = open(path, O_RDONLY | O_CLOEXEC);
	if (ret->dbfd < 0)
		return kl_repo_fail(r, -KL_EDBCONNECT, "cannot open SQLite database '%s': %s", path,
				    strerror(errno));
	rc = sq_connect(ret, &ret->rd[0]);
	if (rc >= 0)
		rc = journal_mode(ret, mode, sizeof(mode));
	if (rc < 0)
		return rc;
	ret->wal_mode = !strcmp(mode, "wal");
	if (need_wal && !ret->wal_mode)
		return kl_repo_fail(r, -KL_EDBCONNECT,
				    "SQLite database '%s' is not in WAL mode (journal_mode is %s): "
				    "keel follows the write-ahead log; switch it once with "
				    "sqlite3 '%s' 'PRAGMA journal_mode=WAL'",
				    path, mode, path);
	rc = sq_connect(ret, &ret->rd[1]);
	if (rc >= 0)
		rc = sq_connect(ret, &ret->wr);
	if (rc >= 0)
		kl_sq_writer_patience(ret, 25000); /* about 5 s */
	return rc;
}

void kl_sq_writer_patience(struct kl_sqdb *d, int tries)
{
	d->tries = tries;
	sqlite3_busy_handler(d->wr, busy_often, &d->tries);
}

void kl_sq_close(struct kl_sqdb *d)
{
	for (int i = 0; i < 2; i++)
		sqlite3_close(d->rd[i]);
	sqlite3_close(d->wr);
	if (d->dbfd >= 0)
		close(d->dbfd);
	if (d->w.fd >= 0)
		close(d->w.fd);
	kl_free(d->path);
	kl_free(d->wal_path);
	memset(d, 0, sizeof(*d));
	d->dbfd = d->w.fd = d->cur = -1;
}

static int begin_read(struct kl_sqdb *d, sqlite3 *c)
{
	/* BEGIN alone takes no lock: the first read does */
	int rc = kl_sq_exec(d, c, "BEGIN", "cannot begin a read transaction");

	if (rc >= 0)
		rc = kl_sq_exec(d, c, "SELECT count(*) FROM sqlite_schema",
				"cannot begin a read transaction");
	return rc;
}

int kl_sq_reader_end(struct kl_sqdb *d)
{
	int rc = 0;

	if (d->cur >= 0)
		rc = kl_sq_exec(d, d->rd[d->cur], "COMMIT", "cannot end a read transaction");
	d->cur = -1;
	return rc;
}

int kl_sq_reader_turn(struct kl_sqdb *d)
{
	int next = d->cur == 0 ? 1 : 0, rc = begin_read(d, d->rd[next]);

	if (rc < 0)
		return rc;
	rc = kl_sq_reader_end(d);
	d->cur = next;
	return rc;
}

int kl_sqw_header(struct kl_sqdb *d, struct kl_sqlite_wal_hdr *ret)
{
	uint8_t b[KL_SQLITE_WAL_HDR];
	ssize_t n;

	if (d->w.fd < 0) {
		d->w.fd = open(d->wal_path, O_RDONLY | O_CLOEXEC);
		if (d->w.fd < 0)
			return errno == ENOENT ? 0
					       : kl_repo_fail(d->r, -errno, "cannot open '%s'",
							      d->wal_path);
	}
	n = pread(d->w.fd, b, sizeof(b), 0);
	if (n < 0)
		return kl_repo_fail(d->r, -errno, "cannot read '%s'", d->wal_path);
	return kl_sqlite_wal_hdr_decode(b, (size_t)n, ret) < 0 ? 0 : 1;
}

void kl_sqw_reset(struct kl_sqw *w, const struct kl_sqlite_wal_hdr *h)
{
	w->has_hdr = true;
	w->h = *h;
	w->end = 0;
	w->s[0] = h->s0;
	w->s[1] = h->s1;
	w->db_pages = 0;
}

static int add_commit(struct kl_sq_commits *c, uint32_t frame, int64_t stamp)
{
	if (!c)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct kl_sqlite_commit *v = kl_realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n].frame = frame;
	c->v[c->n++].time_ns = stamp;
	return 0;
}

#define BATCH 64

int kl_sqw_scan(struct kl_sqdb *d, struct kl_buf *out, struct kl_sq_commits *commits, int64_t stamp,
		uint32_t limit)
{
	struct kl_sqw *w = &d->w;
	size_t fsz = KL_SQLITE_FRAME_HDR + w->h.page_size, keep = out ? out->len : 0;
	uint32_t s[2] = {w->s[0], w->s[1]}, idx = w->end, start = w->end;
	uint8_t *batch;
	int rc = 0;

	if (!w->has_hdr || w->fd < 0)
		return 0;
	batch = kl_malloc(BATCH * fsz);
	if (!batch)
		return -ENOMEM;
	for (bool more = true; more && rc >= 0;) {
		ssize_t k = pread(w->fd, batch, BATCH * fsz,
				  (off_t)KL_SQLITE_WAL_HDR + (off_t)idx * (off_t)fsz);
		size_t nfr;

		if (k < 0) {
			rc = kl_repo_fail(d->r, -errno, "cannot read '%s'", d->wal_path);
			break;
		}
		nfr = (size_t)k / fsz;
		more = nfr == BATCH;
		for (size_t i = 0; i < nfr && rc >= 0; i++) {
			const uint8_t *f = batch + i * fsz;
			struct kl_sqlite_frame fr;

			if (idx >= limit || !kl_sqlite_frame_check(&w->h, f, s, &fr)) {
				more = false;
				break;
			}
			idx++;
			if (out && (rc = kl_buf_add(out, f, fsz)) < 0)
				break;
			if (fr.db_pages) {
				w->end = idx;
				w->s[0] = s[0];
				w->s[1] = s[1];
				w->db_pages = fr.db_pages;
				keep = out ? out->len : 0;
				rc = add_commit(commits, idx, stamp);
			}
		}
	}
	kl_free(batch);
	if (out)
		out->len = keep;
	return rc < 0 ? rc : (int)(w->end - start);
}

int kl_sq_newest(struct kl_repo *r, const char *name, bool *found, struct kl_sq_pos *ret,
		 uint32_t *max_gen)
{
	struct kl_db_list l;
	const struct kl_db_info *d;
	const struct kl_snapshot *best = NULL;
	int rc = kl_db_list(r, &l);

	*found = false;
	*max_gen = 0;
	memset(ret, 0, sizeof(*ret));
	if (rc < 0)
		return rc;
	d = kl_db_find(&l, name);
	if (d && d->engine != KL_DB_SQLITE) {
		rc = kl_repo_fail(r, -KL_EUSAGE,
				  "database '%s' in the repository is not a SQLite database", name);
		goto out;
	}
	for (size_t i = 0; d && i < d->n_bases + d->n_logs; i++) {
		const struct kl_snapshot *s =
			i < d->n_bases ? &d->bases[i].s : &d->logs[i - d->n_bases].s;

		if (KL_SQ_GEN(s->db.stop_lsn) > *max_gen)
			*max_gen = KL_SQ_GEN(s->db.stop_lsn);
		/* the newest: the highest position, and of equal ones the later one */
		if (!best || s->db.stop_lsn > best->db.stop_lsn ||
		    (s->db.stop_lsn == best->db.stop_lsn && s->time_end_ns > best->time_end_ns))
			best = s;
	}
	if (best) {
		*found = true;
		ret->pos = best->db.stop_lsn;
		ret->salt1 = best->db.wal_salt1;
		ret->salt2 = best->db.wal_salt2;
		ret->ckpt_seq = best->db.wal_ckpt_seq;
		ret->page_size = best->db.page_size;
		ret->checksum = best->db.wal_checksum;
	}
out:
	kl_db_list_release(&l);
	return rc;
}

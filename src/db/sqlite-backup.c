/*
 * Base copies of a live SQLite database (docs/DATABASES.md, "SQLite"):
 * with writers held off for a moment (BEGIN IMMEDIATE), keel reads the WAL
 * to its last commit frame F and begins a read transaction, which then
 * sees exactly the database as of F. The copy is the database file's pages
 * with, for each page the WAL holds at or below F, its newest frame: what
 * that transaction reads. Checkpoints may copy frames at or below F into
 * the file meanwhile, but only pages the copy takes from the WAL anyway;
 * frames above F are never copied while the transaction lasts.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sqlite-internal.h"

#define RUN 256			/* pages read at once */
#define FIXED_CHUNK (64u << 10) /* a multiple of every page size */

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The page size and size in pages of the database file itself (its header). */
static int file_geometry(struct kl_sqdb *d, uint32_t *ps, uint32_t *pages)
{
	uint8_t h[100];
	struct stat st;
	uint32_t v;

	if (pread(d->dbfd, h, sizeof(h), 0) != (ssize_t)sizeof(h) || fstat(d->dbfd, &st) < 0)
		return kl_repo_fail(d->r, -KL_EDBSERVER, "cannot read the header of '%s'", d->path);
	v = (uint32_t)h[16] << 8 | h[17];
	*ps = v == 1 ? 65536 : v;
	if (*ps < 512 || (*ps & (*ps - 1)))
		return kl_repo_fail(d->r, -KL_EDBSERVER, "'%s' has an invalid page size", d->path);
	/* the in-header size is valid when the change counter matches "version valid for" */
	v = get_be32(h + 28);
	if (v && get_be32(h + 24) == get_be32(h + 92))
		*pages = v;
	else
		*pages = (uint32_t)((uint64_t)st.st_size / *ps);
	return 0;
}

/* map[p - 1]: the newest frame (1-based) at or below w->end holding page p; 0: none. */
static int build_map(struct kl_sqdb *d, uint32_t pages, uint32_t **ret)
{
	size_t fsz = KL_SQLITE_FRAME_HDR + d->w.h.page_size;
	uint8_t hdr[KL_SQLITE_FRAME_HDR];
	uint32_t *map = kl_calloc(pages ? pages : 1, sizeof(*map));

	*ret = NULL;
	if (!map)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->w.end; i++) {
		uint32_t pgno;

		if (pread(d->w.fd, hdr, sizeof(hdr),
			  (off_t)KL_SQLITE_WAL_HDR + (off_t)i * (off_t)fsz) !=
		    (ssize_t)sizeof(hdr)) {
			kl_free(map);
			return kl_repo_fail(d->r, -EIO, "cannot read '%s'", d->wal_path);
		}
		pgno = get_be32(hdr);
		if (pgno && pgno <= pages)
			map[pgno - 1] = i + 1;
	}
	*ret = map;
	return 0;
}

static int copy_pages(struct kl_sqdb *d, struct kl_entry_backup *e, uint32_t ps, uint32_t pages,
		      const uint32_t *map)
{
	size_t fsz = KL_SQLITE_FRAME_HDR + (size_t)ps;
	uint8_t *buf = kl_malloc((size_t)RUN * ps);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (uint32_t p = 0; p < pages && rc >= 0; p += RUN) {
		uint32_t run = pages - p < RUN ? pages - p : RUN;
		ssize_t n = pread(d->dbfd, buf, (size_t)run * ps, (off_t)p * ps);

		if (n < 0) {
			rc = kl_repo_fail(d->r, -errno, "cannot read '%s'", d->path);
			break;
		}
		/* pages past the file's end are in the WAL (or were never written) */
		memset(buf + n, 0, (size_t)run * ps - (size_t)n);
		for (uint32_t i = 0; map && i < run && rc >= 0; i++) {
			uint32_t f = map[p + i];

			if (f && pread(d->w.fd, buf + (size_t)i * ps, ps,
				       (off_t)KL_SQLITE_WAL_HDR + (off_t)(f - 1) * (off_t)fsz +
					       KL_SQLITE_FRAME_HDR) != (ssize_t)ps)
				rc = kl_repo_fail(d->r, -EIO, "cannot read '%s'", d->wal_path);
		}
		if (rc >= 0)
			rc = kl_entry_backup_write(e, buf, (size_t)run * ps);
	}
	kl_free(buf);
	return rc;
}

/* Writers held off: the WAL read to its last commit, and a read transaction begun there. */
static int freeze_and_read(struct kl_sqdb *d)
{
	struct kl_sqlite_wal_hdr h;
	int rc = kl_sq_exec(d, d->wr, "BEGIN IMMEDIATE", "cannot hold writers off for the copy");

	if (rc < 0)
		return rc;
	if (d->wal_mode) {
		rc = kl_sqw_header(d, &h);
		if (rc > 0) {
			if (!d->w.has_hdr || h.salt1 != d->w.h.salt1 || h.salt2 != d->w.h.salt2)
				kl_sqw_reset(&d->w, &h);
			rc = kl_sqw_scan(d, NULL, NULL, 0, UINT32_MAX);
		} else if (rc == 0) {
			d->w.has_hdr = false;
			d->w.end = 0;
			d->w.db_pages = 0;
		}
	}
	if (rc >= 0)
		rc = kl_sq_reader_turn(d);
	kl_sq_exec(d, d->wr, "ROLLBACK", "cannot let writers go on");
	return rc;
}

static void fill_db(struct kl_snapshot_db *db, const struct kl_sq_pos *pos)
{
	db->engine = KL_DB_SQLITE;
	db->timeline = KL_SQ_GEN(pos->pos);
	db->wal_salt1 = pos->salt1;
	db->wal_salt2 = pos->salt2;
	db->wal_ckpt_seq = pos->ckpt_seq;
	db->wal_checksum = pos->checksum;
	db->page_size = pos->page_size;
	db->server_version = (char *)sqlite3_libversion();
}

int kl_sq_base(struct kl_sqdb *d, const struct kl_sq_base_opts *o, struct kl_sq_pos *pos_ret,
	       struct kl_backup_result *ret)
{
	char tag[8 + KL_DB_NAME_MAX], *tags[2] = {(char *)"db", tag}, *paths[1] = {tag};
	struct kl_node dir = {.type = KL_NODE_DIR, .mode = 0700}, f = {.type = KL_NODE_FILE};
	struct kl_entry_backup *e = NULL;
	struct kl_snapshot snap = {0};
	struct kl_backup_opts bo;
	uint32_t ps = 0, pages = 0, *map = NULL;
	struct stat st;
	int rc;

	snprintf(tag, sizeof(tag), "db:%s", o->name);
	rc = freeze_and_read(d);
	if (rc >= 0)
		rc = file_geometry(d, &ps, &pages);
	if (rc >= 0 && d->w.has_hdr) {
		if (d->w.h.page_size != ps)
			rc = kl_repo_fail(d->r, -KL_EDBSERVER,
					  "the WAL's page size is not the database's");
		if (d->w.db_pages)
			pages = d->w.db_pages;
		if (rc >= 0 && d->w.end)
			rc = build_map(d, pages, &map);
	}
	if (rc < 0)
		return rc;
	memset(pos_ret, 0, sizeof(*pos_ret));
	pos_ret->pos = KL_SQ_POS(o->gen, d->w.has_hdr ? d->w.end : 0);
	pos_ret->page_size = ps;
	if (d->w.has_hdr) {
		pos_ret->salt1 = d->w.h.salt1;
		pos_ret->salt2 = d->w.h.salt2;
		pos_ret->ckpt_seq = d->w.h.ckpt_seq;
		pos_ret->checksum = (uint64_t)d->w.s[0] << 32 | d->w.s[1];
	}
	kl_backup_opts_init(&bo);
	bo.host = o->host;
	bo.tags = tags;
	bo.n_tags = 2;
	bo.threads = o->threads;
	bo.report = o->report;
	/* the snapshot's time is after the read transaction began: no later commit is in it */
	rc = kl_entry_backup_new(d->r, &bo, &e);
	if (rc >= 0 && fstat(d->dbfd, &st) == 0) {
		dir.uid = f.uid = st.st_uid;
		dir.gid = f.gid = st.st_gid;
		f.mode = st.st_mode & 07777;
		dir.mtime_sec = f.mtime_sec = st.st_mtim.tv_sec;
	}
	f.size = (uint64_t)pages * ps;
	if (rc >= 0)
		rc = kl_entry_backup_add(e, "sqlite", &dir);
	if (rc >= 0)
		rc = kl_entry_backup_add(e, "sqlite/database", &f);
	/*
	 * Pages never move in the file: fixed chunks aligned to them cost one
	 * chunk per changed page's 64 KiB, where content-defined ones cost a
	 * chunk of the chunker's average size (docs/DATABASES.md measures it).
	 */
	if (rc >= 0)
		kl_entry_backup_fixed(e, FIXED_CHUNK);
	if (rc >= 0)
		rc = copy_pages(d, e, ps, pages, map);
	if (rc >= 0)
		rc = kl_entry_backup_end(e);
	if (rc >= 0) {
		snap.kind = KL_SNAP_DATABASE;
		snap.paths = paths;
		snap.n_paths = 1;
		snap.has_db = true;
		fill_db(&snap.db, pos_ret);
		snap.db.role = KL_DB_BASE;
		snap.db.name = (char *)o->name;
		snap.db.system_id = (char *)o->source;
		snap.db.start_lsn = snap.db.stop_lsn = pos_ret->pos;
		rc = kl_entry_backup_commit(e, &snap, ret);
	}
	kl_entry_backup_free(e);
	kl_free(map);
	return rc;
}

/* The database's name: --name, else the file's name with what a name cannot hold as '_'. */
int kl_sq_name(struct kl_repo *r, const char *given, const char *path, char *buf, size_t size)
{
	const char *base = strrchr(path, '/');

	if (given) {
		if (!kl_db_name_valid(given))
			return kl_repo_fail(r, -KL_EUSAGE,
					    "invalid database name '%s' (1 to 64 of A-Z a-z 0-9 . "
					    "_ -)",
					    given);
		snprintf(buf, size, "%s", given);
		return 0;
	}
	snprintf(buf, size, "%.64s", base ? base + 1 : path);
	for (char *p = buf; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			*p = '_';
	return kl_db_name_valid(buf) ? 0
				     : kl_repo_fail(r, -KL_EUSAGE, "give the database a --name");
}

int kl_db_sqlite_backup(struct kl_repo *r, const struct kl_db_backup_opts *o,
			struct kl_db_backup_result *ret)
{
	const char *path = kl_sq_uri_path(o->conninfo);
	struct kl_sq_base_opts bo = {0};
	struct kl_sqdb d;
	struct kl_sq_pos last, pos;
	struct kl_backup_result br;
	uint32_t max_gen;
	bool found;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (!path)
		return kl_repo_fail(r, -KL_EUSAGE, "not a sqlite:///PATH: '%s'", o->conninfo);
	rc = kl_sq_name(r, o->name, path, ret->name, sizeof(ret->name));
	if (rc >= 0)
		rc = kl_sq_newest(r, ret->name, &found, &last, &max_gen);
	if (rc < 0)
		return rc;
	rc = kl_sq_open(r, path, false, &d);
	bo.name = ret->name;
	bo.host = o->host;
	bo.source = path;
	bo.threads = o->threads;
	bo.report = o->report;
	/*
	 * The same generation as the repository's newest position if the WAL
	 * still holds it (a stream continues across this copy), else a new one.
	 */
	bo.gen = max_gen + 1;
	if (rc >= 0 && found && d.wal_mode) {
		struct kl_sqlite_wal_hdr h;

		if (kl_sqw_header(&d, &h) > 0 && h.salt1 == last.salt1 && h.salt2 == last.salt2)
			bo.gen = KL_SQ_GEN(last.pos);
	}
	if (rc >= 0)
		rc = kl_sq_base(&d, &bo, &pos, &br);
	kl_sq_close(&d);
	if (rc < 0)
		return rc;
	ret->id = br.id;
	ret->stats = br.stats;
	ret->timeline = KL_SQ_GEN(pos.pos);
	ret->start_lsn = ret->stop_lsn = pos.pos;
	snprintf(ret->system_id, sizeof(ret->system_id), "sqlite");
	return 0;
}

/*
 * Snapshots: the root of one backup. Written once, last, as the commit
 * point; read by every listing, so decoding must be cheap and strict.
 */
#include "keel/format.h"
#include "format-internal.h"

enum {
	F_VERSION = 1,
	F_KIND,
	F_TIME_NS,
	F_TIME_END_NS,
	F_HOST,
	F_USER,
	F_UID,
	F_GID,
	F_PATHS,
	F_TAGS,
	F_EXCLUDES,
	F_TREE,
	F_PARENT,
	F_PROGRAM_VERSION,
	F_PARTIAL,
	F_STATS,
	F_DB,		    /* 17: databases */
	F_IMAGE_CHUNK_SIZE, /* 18: disk images */
	F_IMAGE_METHOD,
	/* 20..22, 24..63: reserved for later kinds (25, 26, 32: images) */
	F_ORIGINAL = 23, /* keel copy */
	F_IMAGE_IDENT,	 /* 25: disk images */
	F_IMAGE_CONSISTENCY,
	F_IMAGE_BITMAP = 32, /* disk images: --dirty-bitmap NAME */
	F_READ_START_NS = 64,
	F_REPLACES,
};

/* Stats fields in order; the message is all uint64. */
#define STATS_FIELDS 10
static uint64_t *stats_field(struct kl_snapshot_stats *st, unsigned i)
{
	uint64_t *f[STATS_FIELDS] = {
		&st->files_new,	   &st->files_changed, &st->files_unmodified, &st->dirs,
		&st->bytes_total,  &st->bytes_read,    &st->blobs_new,	      &st->bytes_added,
		&st->bytes_stored, &st->errors,
	};

	return f[i];
}

static void strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		kl_free(v[i]);
	kl_free(v);
}

void kl_snapshot_release(struct kl_snapshot *s)
{
	if (!s)
		return;
	kl_free(s->host);
	kl_free(s->user);
	strv_free(s->paths, s->n_paths);
	strv_free(s->tags, s->n_tags);
	strv_free(s->excludes, s->n_excludes);
	kl_free(s->program_version);
	kl_free(s->db.name);
	kl_free(s->db.system_id);
	kl_free(s->db.server_version);
	kl_free(s->db.binlog_file);
	kl_free(s->db.log_file);
	kl_free(s->db.gtid);
	kl_free(s->db.server_name);
	kl_free(s->db.stop_gtid);
	kl_free(s->db.time_zone);
	kl_free(s->image_method);
	strv_free(s->image_ident, s->n_image_ident);
	kl_free(s->image_consistency);
	kl_free(s->image_bitmap);
	memset(s, 0, sizeof(*s));
}

static bool strv_valid(char *const *v, size_t n)
{
	size_t i;

	if (n > KL_SNAPSHOT_MAX_STRINGS || (n && !v))
		return false;
	for (i = 0; i < n; i++)
		if (!v[i])
			return false;
	return true;
}

bool kl_db_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (!n || n > KL_DB_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool kl_db_binlog_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	/* it becomes a file name in a restore's directory: no '/', no leading '.' */
	if (!n || n > KL_BINLOG_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool db_valid(const struct kl_snapshot *s)
{
	const struct kl_snapshot_db *d = &s->db;
	bool is_db = s->kind == KL_SNAP_DATABASE || s->kind == KL_SNAP_DBLOG;

	if (!is_db)
		return !s->has_db;
	if (!s->has_db || d->engine < KL_DB_POSTGRESQL || d->engine > KL_DB_SQLITE ||
	    !kl_db_name_valid(d->name) || d->stop_lsn < d->start_lsn ||
	    (d->log_file && !kl_db_binlog_name_valid(d->log_file)))
		return false;
	if (s->kind == KL_SNAP_DBLOG)
		return d->role == KL_DB_LOG;
	return d->role == KL_DB_BASE || d->role == KL_DB_DUMP;
}

static bool snapshot_valid(const struct kl_snapshot *s)
{
	return s->kind >= KL_SNAP_FILES && s->kind <= KL_SNAP_DBLOG && db_valid(s) &&
	       strv_valid(s->paths, s->n_paths) && strv_valid(s->tags, s->n_tags) &&
	       strv_valid(s->excludes, s->n_excludes) &&
	       strv_valid(s->image_ident, s->n_image_ident);
}

enum {
	D_ENGINE = 1,
	D_ROLE,
	D_NAME,
	D_SYSTEM_ID,
	D_TIMELINE,
	D_START_LSN,
	D_STOP_LSN,
	D_SERVER_VERSION,
	D_STOP_TIMELINE,
	D_WAL_SALT1, /* 10..14: SQLite */
	D_WAL_SALT2,
	D_WAL_CKPT_SEQ,
	D_WAL_CHECKSUM,
	D_PAGE_SIZE,
	D_SEGMENT_SIZE = 15,
	D_BINLOG_FILE = 16, /* 16..21: MariaDB; 22 reserved for it */
	D_BINLOG_POS,
	D_GTID,
	D_SERVER_ID,
	D_SERVER_NAME,
	D_STOP_GTID,
	D_LOG_FILE = 23, /* 23..27: MariaDB log records */
	D_BINLOG_TIME_MIN,
	D_BINLOG_TIME_MAX,
	D_BINLOG_CHECKSUM_ALG,
	D_BINLOG_SERVER_ID,
	D_TIME_ZONE = 30, /* 30, 31: MariaDB base backups, the server's time zone */
	D_UTC_OFFSET,
	D_FIELDS = D_UTC_OFFSET,
};

static int binlog_encode(const struct kl_snapshot_db *d, struct kl_buf *out)
{
	int r = kl_pb_put_str(out, D_LOG_FILE, d->log_file);

	if (r >= 0)
		r = kl_pb_put_sint_nz(out, D_BINLOG_TIME_MIN, d->binlog_time_min);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, D_BINLOG_TIME_MAX, d->binlog_time_max);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_BINLOG_CHECKSUM_ALG, d->binlog_checksum_alg);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_BINLOG_SERVER_ID, d->binlog_server_id);
	if (r >= 0)
		r = kl_pb_put_str(out, D_TIME_ZONE, d->time_zone);
	/* 0 (UTC) is a value, not "unknown": written whenever it was measured */
	if (r >= 0 && d->has_utc_offset)
		r = kl_pb_put_sint(out, D_UTC_OFFSET, d->utc_offset);
	return r;
}

static int binlog_decode(const struct kl_pb_field *f, struct kl_snapshot_db *d)
{
	switch (f->num) {
	case D_LOG_FILE:
		return kl_pb_strdup(f, &d->log_file);
	case D_BINLOG_TIME_MIN:
		return kl_pb_get_s64(f, &d->binlog_time_min);
	case D_BINLOG_TIME_MAX:
		return kl_pb_get_s64(f, &d->binlog_time_max);
	case D_BINLOG_CHECKSUM_ALG:
		return kl_pb_get_u32(f, &d->binlog_checksum_alg);
	case D_BINLOG_SERVER_ID:
		return kl_pb_get_u32(f, &d->binlog_server_id);
	case D_TIME_ZONE:
		return kl_pb_strdup(f, &d->time_zone);
	case D_UTC_OFFSET:
		d->has_utc_offset = true;
		return kl_pb_get_s32(f, &d->utc_offset);
	}
	return 0;
}

static int db_encode(const struct kl_snapshot_db *d, struct kl_buf *out)
{
	size_t mark;
	int r = kl_pb_begin(out, F_DB, &mark);

	if (r >= 0)
		r = kl_pb_put_uint(out, D_ENGINE, d->engine);
	if (r >= 0)
		r = kl_pb_put_uint(out, D_ROLE, d->role);
	if (r >= 0)
		r = kl_pb_put_str(out, D_NAME, d->name);
	if (r >= 0)
		r = kl_pb_put_str(out, D_SYSTEM_ID, d->system_id);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_TIMELINE, d->timeline);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_START_LSN, d->start_lsn);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_STOP_LSN, d->stop_lsn);
	if (r >= 0)
		r = kl_pb_put_str(out, D_SERVER_VERSION, d->server_version);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_STOP_TIMELINE, d->stop_timeline);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_SEGMENT_SIZE, d->segment_size);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_WAL_SALT1, d->wal_salt1);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_WAL_SALT2, d->wal_salt2);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_WAL_CKPT_SEQ, d->wal_ckpt_seq);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_WAL_CHECKSUM, d->wal_checksum);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_PAGE_SIZE, d->page_size);
	if (r >= 0)
		r = kl_pb_put_str(out, D_BINLOG_FILE, d->binlog_file);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_BINLOG_POS, d->binlog_pos);
	if (r >= 0)
		r = kl_pb_put_str(out, D_GTID, d->gtid);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, D_SERVER_ID, d->server_id);
	if (r >= 0)
		r = kl_pb_put_str(out, D_SERVER_NAME, d->server_name);
	if (r >= 0)
		r = kl_pb_put_str(out, D_STOP_GTID, d->stop_gtid);
	if (r >= 0)
		r = binlog_encode(d, out);
	if (r >= 0)
		r = kl_pb_end(out, mark);
	return r;
}

static int db_decode(const struct kl_pb_field *df, struct kl_snapshot_db *d)
{
	struct kl_pb_reader rd = {df->p, df->len};
	struct kl_pb_field f;
	uint64_t seen = 0;
	int r;

	if (df->wire != KL_PB_LEN)
		return -KL_ECORRUPT;
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num > D_FIELDS)
			continue;
		r = kl_pb_once(&seen, f.num);
		if (r < 0)
			return r;
		switch (f.num) {
		case D_ENGINE:
			r = kl_pb_get_u32(&f, &d->engine);
			break;
		case D_ROLE:
			r = kl_pb_get_u32(&f, &d->role);
			break;
		case D_NAME:
			r = kl_pb_strdup(&f, &d->name);
			break;
		case D_SYSTEM_ID:
			r = kl_pb_strdup(&f, &d->system_id);
			break;
		case D_TIMELINE:
			r = kl_pb_get_u32(&f, &d->timeline);
			break;
		case D_START_LSN:
			r = kl_pb_get_u64(&f, &d->start_lsn);
			break;
		case D_STOP_LSN:
			r = kl_pb_get_u64(&f, &d->stop_lsn);
			break;
		case D_SERVER_VERSION:
			r = kl_pb_strdup(&f, &d->server_version);
			break;
		case D_STOP_TIMELINE:
			r = kl_pb_get_u32(&f, &d->stop_timeline);
			break;
		case D_SEGMENT_SIZE:
			r = kl_pb_get_u32(&f, &d->segment_size);
			break;
		case D_WAL_SALT1:
			r = kl_pb_get_u32(&f, &d->wal_salt1);
			break;
		case D_WAL_SALT2:
			r = kl_pb_get_u32(&f, &d->wal_salt2);
			break;
		case D_WAL_CKPT_SEQ:
			r = kl_pb_get_u32(&f, &d->wal_ckpt_seq);
			break;
		case D_WAL_CHECKSUM:
			r = kl_pb_get_u64(&f, &d->wal_checksum);
			break;
		case D_PAGE_SIZE:
			r = kl_pb_get_u32(&f, &d->page_size);
			break;
		case D_BINLOG_FILE:
			r = kl_pb_strdup(&f, &d->binlog_file);
			break;
		case D_BINLOG_POS:
			r = kl_pb_get_u64(&f, &d->binlog_pos);
			break;
		case D_GTID:
			r = kl_pb_strdup(&f, &d->gtid);
			break;
		case D_SERVER_ID:
			r = kl_pb_get_u32(&f, &d->server_id);
			break;
		case D_SERVER_NAME:
			r = kl_pb_strdup(&f, &d->server_name);
			break;
		case D_STOP_GTID:
			r = kl_pb_strdup(&f, &d->stop_gtid);
			break;
		default:
			r = binlog_decode(&f, d);
		}
		if (r < 0)
			return r;
	}
	return r;
}

static int strv_encode(struct kl_buf *out, uint32_t field, char *const *v, size_t n)
{
	size_t i;
	int r = 0;

	for (i = 0; r >= 0 && i < n; i++)
		r = kl_pb_put_str(out, field, v[i]);
	return r;
}

static int stats_encode(const struct kl_snapshot_stats *st, struct kl_buf *out)
{
	struct kl_snapshot_stats copy = *st;
	uint64_t any = 0;
	size_t mark;
	unsigned i;
	int r;

	for (i = 0; i < STATS_FIELDS; i++)
		any |= *stats_field(&copy, i);
	if (!any)
		return 0; /* an all-default message is omitted like any default */
	r = kl_pb_begin(out, F_STATS, &mark);
	for (i = 0; r >= 0 && i < STATS_FIELDS; i++)
		r = kl_pb_put_uint_nz(out, i + 1, *stats_field(&copy, i));
	if (r >= 0)
		r = kl_pb_end(out, mark);
	return r;
}

int kl_snapshot_encode(const struct kl_snapshot *s, struct kl_buf *out)
{
	size_t start = out->len;
	int r;

	if (!snapshot_valid(s))
		return -EINVAL;
	r = kl_pb_put_uint(out, F_VERSION, KL_FORMAT_VERSION);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_KIND, s->kind);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_TIME_NS, s->time_ns);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_TIME_END_NS, s->time_end_ns);
	if (r >= 0)
		r = kl_pb_put_str(out, F_HOST, s->host);
	if (r >= 0)
		r = kl_pb_put_str(out, F_USER, s->user);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_UID, s->uid);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_GID, s->gid);
	if (r >= 0)
		r = strv_encode(out, F_PATHS, s->paths, s->n_paths);
	if (r >= 0)
		r = strv_encode(out, F_TAGS, s->tags, s->n_tags);
	if (r >= 0)
		r = strv_encode(out, F_EXCLUDES, s->excludes, s->n_excludes);
	if (r >= 0)
		r = kl_pb_put_bytes(out, F_TREE, s->tree.b, KL_ID_LEN);
	if (r >= 0 && s->has_parent)
		r = kl_pb_put_bytes(out, F_PARENT, s->parent.b, KL_ID_LEN);
	if (r >= 0)
		r = kl_pb_put_str(out, F_PROGRAM_VERSION, s->program_version);
	if (r >= 0 && s->partial)
		r = kl_pb_put_uint(out, F_PARTIAL, 1);
	if (r >= 0)
		r = stats_encode(&s->stats, out);
	if (r >= 0 && s->has_db)
		r = db_encode(&s->db, out);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_IMAGE_CHUNK_SIZE, s->image_chunk_size);
	if (r >= 0)
		r = kl_pb_put_str(out, F_IMAGE_METHOD, s->image_method);
	if (r >= 0 && s->has_original)
		r = kl_pb_put_bytes(out, F_ORIGINAL, s->original.b, KL_ID_LEN);
	if (r >= 0)
		r = strv_encode(out, F_IMAGE_IDENT, s->image_ident, s->n_image_ident);
	if (r >= 0)
		r = kl_pb_put_str(out, F_IMAGE_CONSISTENCY, s->image_consistency);
	if (r >= 0)
		r = kl_pb_put_str(out, F_IMAGE_BITMAP, s->image_bitmap);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_READ_START_NS, s->read_start_ns);
	if (r >= 0 && s->has_replaces)
		r = kl_pb_put_bytes(out, F_REPLACES, s->replaces.b, KL_ID_LEN);
	if (r < 0) {
		kl_buf_setlen(out, start);
		return r;
	}
	return 0;
}

static int stats_decode(const struct kl_pb_field *sf, struct kl_snapshot_stats *st)
{
	struct kl_pb_reader rd = {sf->p, sf->len};
	struct kl_pb_field f;
	uint64_t seen = 0;
	int r;

	if (sf->wire != KL_PB_LEN)
		return -KL_ECORRUPT;
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num > STATS_FIELDS)
			continue;
		r = kl_pb_once(&seen, f.num);
		if (r >= 0)
			r = kl_pb_get_u64(&f, stats_field(st, f.num - 1));
		if (r < 0)
			return r;
	}
	return r;
}

/* Appends a string to a vector allocated with room for all of them. */
static int strv_push(const struct kl_pb_field *f, char **v, size_t *n, size_t cap)
{
	if (KL_NEVER(!v || *n >= cap))
		return -KL_ECORRUPT;
	return kl_pb_strdup(f, &v[(*n)++]);
}

static int strv_alloc(size_t count, size_t msg_len, char ***ret)
{
	if (count > KL_SNAPSHOT_MAX_STRINGS || count > msg_len / KL_PB_MIN_STRING)
		return -KL_ECORRUPT;
	if (!count)
		return 0;
	*ret = kl_calloc(count, sizeof(char *));
	return *ret ? 0 : -ENOMEM;
}

static int snapshot_decode(const uint8_t *p, size_t n, struct kl_snapshot *s)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	struct kl_pb_scan sc;
	uint64_t seen = 0;
	int r;

	r = kl_pb_scan(p, n, &sc);
	if (r < 0)
		return r;
	r = kl_pb_check_version(&sc, KL_FORMAT_VERSION);
	if (r < 0)
		return r;
	/* vectors are sized from the scan; strv_push() fills them */
	r = strv_alloc(sc.count[F_PATHS], n, &s->paths);
	if (r >= 0)
		r = strv_alloc(sc.count[F_TAGS], n, &s->tags);
	if (r >= 0)
		r = strv_alloc(sc.count[F_EXCLUDES], n, &s->excludes);
	if (r >= 0)
		r = strv_alloc(sc.count[F_IMAGE_IDENT], n, &s->image_ident);
	if (r < 0)
		return r;

	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if ((f.num <= F_IMAGE_METHOD || f.num == F_ORIGINAL ||
		     f.num == F_IMAGE_CONSISTENCY || f.num == F_IMAGE_BITMAP) &&
		    f.num != F_PATHS && f.num != F_TAGS && f.num != F_EXCLUDES) {
			r = kl_pb_once(&seen, f.num);
			if (r < 0)
				return r;
		}
		switch (f.num) {
		case F_VERSION:
			break; /* checked by the scan */
		case F_KIND:
			r = kl_pb_get_u32(&f, &s->kind);
			break;
		case F_TIME_NS:
			r = kl_pb_get_s64(&f, &s->time_ns);
			break;
		case F_TIME_END_NS:
			r = kl_pb_get_s64(&f, &s->time_end_ns);
			break;
		case F_HOST:
			r = kl_pb_strdup(&f, &s->host);
			break;
		case F_USER:
			r = kl_pb_strdup(&f, &s->user);
			break;
		case F_UID:
			r = kl_pb_get_u32(&f, &s->uid);
			break;
		case F_GID:
			r = kl_pb_get_u32(&f, &s->gid);
			break;
		case F_PATHS:
			r = strv_push(&f, s->paths, &s->n_paths, sc.count[F_PATHS]);
			break;
		case F_TAGS:
			r = strv_push(&f, s->tags, &s->n_tags, sc.count[F_TAGS]);
			break;
		case F_EXCLUDES:
			r = strv_push(&f, s->excludes, &s->n_excludes, sc.count[F_EXCLUDES]);
			break;
		case F_TREE:
			r = kl_pb_get_id(&f, &s->tree);
			break;
		case F_PARENT:
			r = kl_pb_get_id(&f, &s->parent);
			s->has_parent = r >= 0;
			break;
		case F_PROGRAM_VERSION:
			r = kl_pb_strdup(&f, &s->program_version);
			break;
		case F_PARTIAL:
			r = kl_pb_get_bool(&f, &s->partial);
			break;
		case F_STATS:
			r = stats_decode(&f, &s->stats);
			break;
		case F_DB:
			r = db_decode(&f, &s->db);
			s->has_db = true;
			break;
		case F_IMAGE_CHUNK_SIZE:
			r = kl_pb_get_u32(&f, &s->image_chunk_size);
			break;
		case F_IMAGE_METHOD:
			r = kl_pb_strdup(&f, &s->image_method);
			break;
		case F_IMAGE_IDENT:
			r = strv_push(&f, s->image_ident, &s->n_image_ident,
				      sc.count[F_IMAGE_IDENT]);
			break;
		case F_IMAGE_CONSISTENCY:
			r = kl_pb_strdup(&f, &s->image_consistency);
			break;
		case F_IMAGE_BITMAP:
			r = kl_pb_strdup(&f, &s->image_bitmap);
			break;
		case F_ORIGINAL:
			r = kl_pb_get_id(&f, &s->original);
			s->has_original = r >= 0;
			break;
		case F_READ_START_NS:
			r = kl_pb_get_s64(&f, &s->read_start_ns);
			break;
		case F_REPLACES:
			/* at most once (the seen bits stop at F_STATS) */
			r = s->has_replaces ? -KL_ECORRUPT : kl_pb_get_id(&f, &s->replaces);
			s->has_replaces = r >= 0;
			break;
		default:
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!(seen & (1u << F_TREE)) || !snapshot_valid(s))
		return -KL_ECORRUPT;
	return 0;
}

int kl_snapshot_decode(const uint8_t *p, size_t n, struct kl_snapshot *ret)
{
	struct kl_snapshot s = {0};
	int r;

	memset(ret, 0, sizeof(*ret));
	r = snapshot_decode(p, n, &s);
	if (r < 0) {
		kl_snapshot_release(&s);
		return r;
	}
	*ret = s;
	return 0;
}

/*
 * Image backup: the main thread walks each source chunk by chunk, skips
 * unallocated chunks without reading them (SEEK_DATA), reads the others
 * and hands those that are not all zeros to the backup pipeline, whose
 * workers hash, deduplicate, compress, seal and pack them on every core.
 * Holes become the id of a zero chunk, stored once. Then the root tree,
 * the index file, and the snapshot last (the commit point).
 */
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>

#include "image-internal.h"
#include "keel/pipeline.h"

/* What one image is read from: a file or device, or an NBD export. */
struct img_src {
	const char *path;
	int fd; /* -1: nbd or overlay */
	struct kl_img_nbd *nbd;
	struct kl_img_ovsrc *ov; /* --from-overlay, read through exp */
	struct kl_image_export *exp;
	const struct kl_node *parent; /* --dirty-bitmap: this image in the parent */
};

struct img_backup {
	struct kl_repo *r;
	const struct kl_image_backup_opts *o;
	uint32_t chunk;
	struct kl_pipeline pl;
	bool pl_started;
	struct kl_packer *meta; /* zero chunks and the tree */
	struct kl_img_zero zero;
	struct kl_image_backup_result *res;
	struct kl_snapshot parent_snap; /* --dirty-bitmap: the parent */
	struct kl_tree parent_tree;	/* and its images */
	bool have_parent_tree;
};

/* The id of a zero chunk of len bytes, stored the first time. */
static int zero_chunk(struct img_backup *b, size_t len, struct kl_id *ret)
{
	const struct kl_id *id;
	bool fresh;
	int rc = kl_img_zero_id(&b->zero, kl_repo_keys(b->r), len, &id, &fresh);

	if (rc < 0)
		return rc;
	*ret = *id;
	if (!fresh)
		return 0;
	rc = kl_repo_claim(b->r, id);
	if (rc == 0) {
		_cleanup_free_ uint8_t *buf = kl_calloc(1, len ? len : 1);

		rc = buf ? kl_packer_add(b->meta, KL_BLOB_DATA, id, buf, len) : -ENOMEM;
	}
	return rc < 0 ? rc : 0;
}

/* Waits until the pipeline completed f (the only file in flight). */
static void wait_file(struct img_backup *b, struct kl_file_job *f)
{
	for (;;) {
		struct kl_file_job *d = kl_pipeline_take_done(&b->pl, true);

		if (d == f)
			return;
		/* nothing else is ever in flight; NULL cannot happen while f's chunks are */
		if (KL_NEVER(d != NULL))
			continue;
	}
}

enum { CH_DATA, CH_HOLE, CH_CLEAN };

static int src_is_hole(struct img_src *src, uint64_t off, size_t len)
{
	if (src->exp) {
		uint64_t run;
		bool zero;

		kl_image_export_extent(src->exp, off, len, &run, &zero);
		return zero && run >= len;
	}
	return src->nbd ? kl_img_nbd_is_zero(src->nbd, off, len)
			: kl_img_range_is_hole(src->fd, off, len);
}

static size_t chunk_len(const struct img_backup *b, const struct kl_node *n, uint64_t i)
{
	uint64_t off = i * b->chunk;

	return (size_t)(n->size - off < b->chunk ? n->size - off : b->chunk);
}

/* What chunk i is: clean (the parent's id), a hole (the zero id), or data to read. */
static int classify_chunk(struct img_backup *b, struct img_src *src, struct kl_node *n, uint64_t i,
			  uint8_t *state)
{
	uint64_t off = i * b->chunk;
	size_t len = chunk_len(b, n, i);
	int rc;

	if (src->parent) {
		rc = kl_img_nbd_is_dirty(src->nbd, off, len);
		if (rc < 0)
			return kl_repo_fail(b->r, rc, "cannot read the dirty bitmap of '%s'",
					    src->path);
		if (rc == 0) {
			n->content[i] = src->parent->content[i];
			b->res->chunks_clean++;
			*state = CH_CLEAN;
			return 0;
		}
	}
	rc = src_is_hole(src, off, len);
	if (rc < 0)
		return kl_repo_fail(b->r, rc, "cannot get the allocation of '%s'", src->path);
	*state = rc > 0 ? CH_HOLE : CH_DATA;
	if (rc == 0)
		return 0;
	b->res->chunks_hole++;
	n->flags |= KL_NODE_SPARSE;
	return zero_chunk(b, len, &n->content[i]);
}

/* Data chunk i: read (an NBD source's read was started ahead) and submitted. */
static int read_data(struct img_backup *b, struct img_src *src, struct kl_file_job *f,
		     struct kl_node *n, uint64_t i, uint8_t *state)
{
	uint64_t off = i * b->chunk;
	size_t len = chunk_len(b, n, i);
	uint8_t *buf = NULL;
	int rc;

	if (src->nbd)
		rc = kl_img_nbd_take_read(src->nbd, off, len, &buf);
	else if (!(buf = kl_malloc(len)))
		return -ENOMEM;
	else
		rc = src->exp ? kl_image_export_read(src->exp, buf, len, off)
			      : kl_fs_pread_full(src->fd, buf, len, off);
	if (rc < 0) {
		kl_free(buf);
		return kl_repo_fail(b->r, rc, "cannot read '%s' at offset %llu", src->path,
				    (unsigned long long)off);
	}
	b->res->bytes_read += len;
	if (!kl_img_is_zero(buf, len))
		return kl_pipeline_submit(&b->pl, f, buf, len);
	kl_free(buf);
	b->res->chunks_zero++;
	*state = CH_HOLE;
	n->flags |= KL_NODE_SPARSE;
	return zero_chunk(b, len, &n->content[i]);
}

/* How far read_image has classified the chunks and started their reads. */
struct ahead {
	uint64_t classified, started;
};

/*
 * Classifies the chunks up to i at least; of an NBD source, further on,
 * starting the reads of data chunks while the window has room, so that
 * several requests are in flight while the chunks are taken in order.
 */
static int read_ahead(struct img_backup *b, struct img_src *src, struct kl_node *n, uint64_t i,
		      struct ahead *a, uint8_t *state)
{
	int rc;

	while (a->started < n->n_content) {
		uint64_t k = a->started;

		if (k == a->classified) {
			if (!src->nbd && k > i)
				break;
			rc = classify_chunk(b, src, n, k, &state[k]);
			if (rc < 0)
				return rc;
			a->classified++;
		}
		if (src->nbd && state[k] == CH_DATA) {
			rc = kl_img_nbd_start_read(src->nbd, k * b->chunk, chunk_len(b, n, k));
			if (rc < 0)
				return kl_repo_fail(b->r, rc, "cannot read '%s' at offset %llu",
						    src->path, (unsigned long long)k * b->chunk);
			if (rc == 0)
				break; /* full: the reads before k are taken first */
		}
		a->started++;
	}
	return 0;
}

/* What the image holds, from its first bytes, into b->res->ident (one per source). */
static int ident_source(struct img_backup *b, struct img_src *src, uint64_t size)
{
	size_t len = size < KL_IMAGE_IDENT_READ ? (size_t)size : KL_IMAGE_IDENT_READ;
	_cleanup_free_ uint8_t *buf = kl_calloc(1, len ? len : 1);
	char text[KL_IMAGE_IDENT_LEN] = "";
	char *copy;
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = !len	? 0
	     : src->nbd ? kl_img_nbd_read(src->nbd, buf, len, 0)
	     : src->exp ? kl_image_export_read(src->exp, buf, len, 0)
			: kl_fs_pread_full(src->fd, buf, len, 0);
	if (rc < 0)
		return kl_repo_fail(b->r, rc, "cannot read '%s' at offset 0", src->path);
	kl_image_ident(buf, len, text, sizeof(text));
	copy = kl_strdup(text);
	if (!copy)
		return -ENOMEM;
	b->res->ident[b->res->n_ident++] = copy;
	return 0;
}

/* Reads the chunks of src into n->content. */
static int read_image(struct img_backup *b, struct img_src *src, struct kl_node *n)
{
	uint64_t size = n->size, nchunks = (size + b->chunk - 1) / b->chunk;
	struct kl_file_job *f = kl_calloc(1, sizeof(*f));
	_cleanup_free_ uint8_t *state = NULL;
	struct ahead a = {0};
	int rc = 0;
	uint64_t i;

	if (nchunks > SIZE_MAX / sizeof(struct kl_id))
		rc = -EFBIG;
	n->content = rc >= 0 ? kl_calloc(nchunks ? nchunks : 1, sizeof(struct kl_id)) : NULL;
	state = kl_calloc(nchunks ? nchunks : 1, 1);
	if (!f || !n->content || !state) {
		kl_free(f);
		return rc < 0 ? rc : -ENOMEM;
	}
	n->n_content = nchunks;
	if (src->parent && (src->parent->flags & KL_NODE_SPARSE))
		n->flags |= KL_NODE_SPARSE; /* clean chunks may be the parent's holes */
	atomic_init(&f->pending, 1);
	for (i = 0; i < nchunks && rc >= 0; i++) {
		rc = read_ahead(b, src, n, i, &a, state);
		if (rc >= 0 && state[i] == CH_DATA)
			rc = read_data(b, src, f, n, i, &state[i]);
	}
	kl_pipeline_file_sealed(&b->pl, f);
	wait_file(b, f);
	b->res->chunks += nchunks;
	for (uint64_t k = 0, j = 0; rc >= 0 && k < nchunks && j < f->n_chunks; k++) {
		struct kl_chunk_job *c = f->chunks[j];

		if (state[k] != CH_DATA)
			continue;
		n->content[k] = c->id;
		if (c->is_new) {
			b->res->chunks_new++;
			b->res->bytes_new += c->len;
		}
		j++;
	}
	kl_file_job_free(f);
	return rc;
}

/* Metadata for an NBD export's node: it has none of its own. */
static void uri_stat(struct stat *st)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0600;
	st->st_uid = geteuid();
	st->st_gid = getegid();
	st->st_mtim = st->st_atim = st->st_ctim = now;
}

/* Opens src: a file or device, or through libnbd a qcow2 file or NBD URI. */
static int open_source(struct img_backup *b, struct img_src *src, uint64_t *size, struct stat *st,
		       bool *is_dev)
{
	bool uri = kl_img_is_nbd_uri(src->path);
	struct kl_err err = {0};
	int rc;

	*is_dev = false;
	if (b->o->from_overlay) {
		const struct kl_node *n;

		if (b->o->dirty_bitmap)
			return kl_repo_fail(b->r, -KL_EUSAGE,
					    "--dirty-bitmap and --from-overlay do not go together");
		rc = kl_img_ovsrc_open(b->r, src->path, &src->ov);
		if (rc < 0)
			return rc;
		src->exp = kl_img_ovsrc_export(src->ov);
		n = kl_img_ovsrc_node(src->ov);
		*size = n->size;
		if (stat(src->path, st) < 0)
			return kl_repo_fail(b->r, -errno, "cannot stat '%s'", src->path);
		/* the image's own metadata; the overlay's times (when it was written) */
		st->st_mode = S_IFREG | (n->mode & 07777);
		st->st_uid = n->uid;
		st->st_gid = n->gid;
		return 0;
	}
	if (uri || kl_img_is_qcow2(src->path)) {
		if (uri)
			uri_stat(st);
		else if (stat(src->path, st) < 0)
			return kl_repo_fail(b->r, -errno, "cannot stat '%s'", src->path);
		rc = kl_img_nbd_open(src->path, !uri, b->o->dirty_bitmap, &src->nbd, size, &err);
		return rc < 0 ? kl_repo_fail(b->r, rc, "%s", err.msg) : 0;
	}
	if (b->o->dirty_bitmap)
		return kl_repo_fail(b->r, -KL_EUSAGE,
				    "--dirty-bitmap needs a qcow2 file or an NBD export, not '%s'",
				    src->path);
	src->fd = kl_image_open(src->path, O_RDONLY | O_NOATIME, size, is_dev);
	if (src->fd == -EINVAL)
		return kl_repo_fail(b->r, -KL_EUSAGE,
				    "'%s' is neither a file nor a block device (nor an NBD URI)",
				    src->path);
	if (src->fd < 0)
		return kl_repo_fail(b->r, src->fd, "cannot open '%s'", src->path);
	if (fstat(src->fd, st) < 0)
		return kl_repo_fail(b->r, -errno, "cannot stat '%s'", src->path);
	return 0;
}

static void fill_node(struct kl_node *n, const struct stat *st, uint64_t size, bool is_dev)
{
	n->type = KL_NODE_FILE;
	n->mode = st->st_mode & 07777;
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	n->size = size;
	n->mtime_sec = st->st_mtim.tv_sec;
	n->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	n->atime_sec = st->st_atim.tv_sec;
	n->atime_nsec = (uint32_t)st->st_atim.tv_nsec;
	n->ctime_sec = st->st_ctim.tv_sec;
	n->ctime_nsec = (uint32_t)st->st_ctim.tv_nsec;
	n->rdev = is_dev ? st->st_rdev : 0;
	n->nlink = 1;
}

/* One source: its node, filled and added to root. */
static int backup_source(struct img_backup *b, size_t idx, struct kl_tree *root)
{
	const char *path = b->o->sources[idx], *name = b->o->name;
	const char *from = b->o->read_from && b->o->read_from[idx] ? b->o->read_from[idx] : path;
	struct img_src src = {.path = from, .fd = -1};
	char ov_name[256];
	struct kl_node n = {0};
	struct stat st;
	uint64_t size = 0;
	bool is_dev;
	int rc = open_source(b, &src, &size, &st, &is_dev);

	if (rc < 0)
		goto out;
	if (!name && src.ov) {
		const struct kl_node *on = kl_img_ovsrc_node(src.ov);

		/* the image's name in its snapshot (the overlay's header checked it) */
		snprintf(ov_name, sizeof(ov_name), "%.*s", (int)on->name_len,
			 (const char *)on->name);
		name = ov_name;
	}
	if (!name && kl_img_is_nbd_uri(path))
		name = "disk"; /* a URI has no file name: --name says better */
	if (!name)
		name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
		rc = kl_repo_fail(b->r, -KL_EUSAGE, "invalid image name '%s' (use --name)", name);
		goto out;
	}
	n.name_len = strlen(name);
	n.name = kl_memdup(name, n.name_len);
	if (!n.name) {
		rc = -ENOMEM;
		goto out;
	}
	fill_node(&n, &st, size, is_dev);
	rc = ident_source(b, &src, size);
	if (rc >= 0 && src.nbd && b->o->dirty_bitmap && b->have_parent_tree) {
		struct kl_img_bitmap_parent bp = {.r = b->r,
						  .snap = &b->parent_snap,
						  .tree = &b->parent_tree,
						  .chunk = b->chunk,
						  .n_sources = b->o->n_sources,
						  .ident = b->res->ident[idx],
						  .bitmap = b->o->dirty_bitmap,
						  .note = b->res->note,
						  .note_len = sizeof(b->res->note)};

		rc = kl_img_bitmap_parent(&bp, src.nbd, src.path, &n, idx, &src.parent);
	}
	if (rc >= 0 && src.parent)
		b->res->images_bitmap++;
	if (rc >= 0)
		rc = read_image(b, &src, &n);
	if (rc >= 0) {
		b->res->images++;
		b->res->bytes_total += size;
		if (kl_tree_find(root, n.name, n.name_len))
			rc = kl_repo_fail(b->r, -KL_EUSAGE, "two images named '%s'", name);
	}
	if (rc >= 0)
		rc = kl_tree_add(root, &n);
	if (rc >= 0)
		kl_tree_sort(root);
out:
	if (rc < 0)
		kl_node_release(&n);
	if (src.fd >= 0)
		close(src.fd);
	kl_img_nbd_free(src.nbd);
	kl_img_ovsrc_free(src.ov);
	return rc;
}

static int store_tree_blob(void *ud, const uint8_t *p, size_t n, struct kl_id *ret)
{
	struct img_backup *b = ud;

	return kl_packer_store(b->meta, KL_BLOB_TREE, p, n, ret);
}

/* The sources as the snapshot names them: absolute, as given otherwise. */
static int snapshot_paths(const struct kl_image_backup_opts *o, char ***ret)
{
	char **v = kl_calloc(o->n_sources ? o->n_sources : 1, sizeof(*v));
	char cwd[4096];
	bool have_cwd = getcwd(cwd, sizeof(cwd)) != NULL;

	*ret = v;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < o->n_sources; i++) {
		const char *s = o->sources[i];

		if (s[0] == '/' || !have_cwd || kl_img_is_nbd_uri(s)) {
			v[i] = kl_strdup(s);
		} else {
			size_t len = strlen(cwd) + strlen(s) + 2;

			if ((v[i] = kl_malloc(len)))
				snprintf(v[i], len, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", s);
		}
		if (!v[i])
			return -ENOMEM;
	}
	return 0;
}

static void host_name(char *host, size_t n)
{
	if (gethostname(host, n) < 0)
		snprintf(host, n, "localhost");
	host[n - 1] = 0;
}

static bool same_paths(const struct kl_snapshot *s, char **paths, size_t n)
{
	if (s->n_paths != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s->paths[i], paths[i]))
			return false;
	return true;
}

/*
 * The newest image snapshot of the same sources on this host: the next
 * backup keeps its chunk size (or nothing would deduplicate) and names it
 * as its parent. Returns 1 with one, 0 without.
 */
static int find_parent(struct img_backup *b, char **paths, size_t n, struct kl_id *id_ret,
		       uint32_t *chunk_ret)
{
	struct kl_snapshot_list l;
	char host[256];
	int rc = kl_repo_list_snapshots(b->r, &l);

	if (rc < 0)
		return kl_repo_fail(b->r, rc, "cannot list the snapshots to find the parent");
	host_name(host, sizeof(host));
	rc = 0;
	for (size_t i = l.n; i-- > 0;) {
		const struct kl_snapshot *s = &l.v[i].s;

		if (s->kind == KL_SNAP_DISK && s->host && !strcmp(s->host, host) &&
		    same_paths(s, paths, n) && s->image_chunk_size) {
			*id_ret = l.v[i].id;
			*chunk_ret = s->image_chunk_size;
			rc = 1;
			break;
		}
	}
	kl_snapshot_list_release(&l);
	return rc;
}

/* --from-overlay, first backup: the chunks of the served image, which then deduplicate. */
static int overlay_chunk_size(struct img_backup *b, uint32_t *ret)
{
	struct kl_img_ovsrc *s;
	int rc = kl_img_ovsrc_open(b->r, b->o->sources[0], &s);

	if (rc < 0)
		return rc;
	*ret = kl_img_ovsrc_chunk_size(s);
	kl_img_ovsrc_free(s);
	return 0;
}

/* The parent's images, for --dirty-bitmap. */
static int load_parent_tree(struct img_backup *b)
{
	int rc = kl_repo_load_snapshot(b->r, &b->res->parent, &b->parent_snap);

	if (rc >= 0)
		rc = kl_repo_read_tree(b->r, &b->parent_snap.tree, &b->parent_tree);
	if (rc < 0)
		return kl_repo_fail(b->r, rc, "cannot read the parent snapshot's images");
	b->have_parent_tree = true;
	return 0;
}

static int save_snapshot(struct img_backup *b, const struct kl_tree *root, char **paths,
			 int64_t start_ns)
{
	const struct kl_image_backup_opts *o = b->o;
	struct kl_snapshot s = {0};
	struct kl_image_backup_result *res = b->res;
	char host[256], user[256], pwbuf[4096];
	struct passwd pw, *pwr = NULL;
	int rc;

	rc = kl_tree_store(root, KL_TREE_BLOB_NODES, store_tree_blob, b, &s.tree);
	if (rc >= 0)
		rc = kl_packer_flush(b->meta);
	if (rc >= 0) {
		struct kl_write_stats ws;

		kl_packer_stats(b->meta, &ws);
		res->bytes_stored += ws.bytes_stored;
		rc = kl_repo_flush_index(b->r);
	}
	if (rc >= 0) {
		host_name(host, sizeof(host));
		if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pwr) == 0 && pwr)
			snprintf(user, sizeof(user), "%s", pwr->pw_name);
		else
			snprintf(user, sizeof(user), "%u", (unsigned)geteuid());
		s.kind = KL_SNAP_DISK;
		s.time_ns = s.read_start_ns = start_ns;
		s.time_end_ns = kl_time_now_ns();
		s.host = host;
		s.user = user;
		s.uid = (uint32_t)geteuid();
		s.gid = (uint32_t)getegid();
		s.paths = paths;
		s.n_paths = o->n_sources;
		s.tags = o->tags;
		s.n_tags = o->n_tags;
		s.program_version = (char *)"keel " KEEL_VERSION;
		s.image_chunk_size = b->chunk;
		s.image_method = (char *)res->method;
		s.image_ident = res->ident;
		s.n_image_ident = res->n_ident;
		s.image_consistency = (char *)o->consistency;
		/* so that the next --dirty-bitmap backup knows which bitmap ran since */
		s.image_bitmap = (char *)o->dirty_bitmap;
		s.has_parent = res->has_parent;
		s.parent = res->parent;
		s.stats.files_new = res->images;
		s.stats.bytes_total = res->bytes_total;
		s.stats.bytes_read = res->bytes_read;
		s.stats.blobs_new = res->chunks_new;
		s.stats.bytes_added = res->bytes_new;
		s.stats.bytes_stored = res->bytes_stored;
		rc = kl_repo_save_snapshot(b->r, &s, &res->id);
	}
	return rc;
}

void kl_image_backup_result_release(struct kl_image_backup_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_ident; i++)
		kl_free(r->ident[i]);
	kl_free(r->ident);
	r->ident = NULL;
	r->n_ident = 0;
}

int kl_image_backup(struct kl_repo *r, const struct kl_image_backup_opts *o,
		    struct kl_image_backup_result *ret)
{
	struct img_backup b = {.r = r, .o = o, .res = ret};
	struct kl_tree root = {0};
	struct kl_write_stats ws = {0};
	char **paths = NULL;
	int64_t start_ns = kl_time_now_ns();
	uint32_t parent_chunk = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = o->threads ? o->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
	int rc, prc;

	memset(ret, 0, sizeof(*ret));
	if (!o->n_sources)
		return kl_repo_fail(r, -KL_EUSAGE, "nothing to back up");
	rc = snapshot_paths(o, &paths);
	if (rc >= 0 && !(ret->ident = kl_calloc(o->n_sources, sizeof(char *))))
		rc = -ENOMEM;
	if (rc >= 0)
		rc = find_parent(&b, paths, o->n_sources, &ret->parent, &b.chunk);
	if (rc < 0)
		goto out;
	ret->has_parent = rc > 0;
	parent_chunk = b.chunk;
	if (o->chunk_size)
		b.chunk = o->chunk_size;
	else if (!b.chunk && o->from_overlay)
		rc = overlay_chunk_size(&b, &b.chunk);
	if (rc < 0)
		goto out;
	if (!b.chunk)
		b.chunk = KL_IMAGE_CHUNK_DEFAULT;
	ret->chunk_size = b.chunk;
	rc = 0;
	if (b.chunk < KL_IMAGE_CHUNK_MIN || b.chunk > KL_IMAGE_CHUNK_MAX ||
	    (b.chunk & (b.chunk - 1)))
		rc = kl_repo_fail(r, -KL_EUSAGE,
				  "chunk size %u is not a power of two from 64 KiB to 16 MiB",
				  b.chunk);
	if (rc >= 0 && o->name && o->n_sources > 1)
		rc = kl_repo_fail(r, -KL_EUSAGE, "--name needs exactly one source");
	/* clean chunks keep the parent's ids: only with the same chunks */
	if (rc >= 0 && o->dirty_bitmap && ret->has_parent && parent_chunk == b.chunk)
		rc = load_parent_tree(&b);
	else if (rc >= 0 && o->dirty_bitmap && ret->has_parent)
		snprintf(ret->note, sizeof(ret->note),
			 "--dirty-bitmap: every image read in full: the parent snapshot's chunks "
			 "are of %u bytes, not %u",
			 parent_chunk, b.chunk);
	if (rc >= 0)
		rc = kl_packer_new(r, &b.meta);
	if (rc >= 0) {
		rc = kl_pipeline_start(&b.pl, r, threads, false);
		b.pl_started = true;
		/* every worker a chunk and one queued behind it, whatever the chunk size */
		b.pl.max_in_flight = (size_t)b.chunk * (b.pl.n_threads * 2 + 2);
	}
	for (size_t i = 0; rc >= 0 && i < o->n_sources; i++)
		rc = backup_source(&b, i, &root);
	if (b.pl_started) {
		prc = kl_pipeline_finish(&b.pl, &ws);
		if (rc >= 0)
			rc = prc;
		ret->bytes_stored = ws.bytes_stored;
	}
	ret->method = ret->images_bitmap && ret->images_bitmap == ret->images
			      ? KL_IMAGE_METHOD_DIRTY
			      : KL_IMAGE_METHOD_READ;
	if (rc >= 0)
		rc = save_snapshot(&b, &root, paths, start_ns);
	kl_tree_release(&root);
	kl_tree_release(&b.parent_tree);
	kl_snapshot_release(&b.parent_snap);
	kl_packer_free(b.meta);
out:
	for (size_t i = 0; paths && i < o->n_sources; i++)
		kl_free(paths[i]);
	kl_free(paths);
	return rc;
}

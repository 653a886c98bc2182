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

struct img_backup {
	struct kl_repo *r;
	const struct kl_image_backup_opts *o;
	uint32_t chunk;
	struct kl_pipeline pl;
	bool pl_started;
	struct kl_packer *meta; /* zero chunks and the tree */
	struct kl_img_zero zero;
	struct kl_image_backup_result *res;
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

/* Reads the chunks of fd into n->content; holes[i] marks a zero chunk. */
static int read_image(struct img_backup *b, int fd, const char *path, struct kl_node *n)
{
	uint64_t size = n->size, nchunks = (size + b->chunk - 1) / b->chunk;
	struct kl_file_job *f = kl_calloc(1, sizeof(*f));
	_cleanup_free_ bool *hole = NULL;
	int rc = 0, read_rc = 0;
	uint64_t i;

	if (nchunks > SIZE_MAX / sizeof(struct kl_id))
		rc = -EFBIG;
	n->content = rc >= 0 ? kl_calloc(nchunks ? nchunks : 1, sizeof(struct kl_id)) : NULL;
	hole = kl_calloc(nchunks ? nchunks : 1, sizeof(bool));
	if (!f || !n->content || !hole) {
		kl_free(f);
		return rc < 0 ? rc : -ENOMEM;
	}
	n->n_content = nchunks;
	atomic_init(&f->pending, 1);
	for (i = 0; i < nchunks && rc >= 0; i++) {
		uint64_t off = i * b->chunk;
		size_t len = (size_t)(size - off < b->chunk ? size - off : b->chunk);
		uint8_t *buf;

		if (kl_img_range_is_hole(fd, off, len)) {
			b->res->chunks_hole++;
			hole[i] = true;
		} else if (!(buf = kl_malloc(len))) {
			rc = -ENOMEM;
		} else if ((read_rc = kl_fs_pread_full(fd, buf, len, off)) < 0) {
			kl_free(buf);
			rc = kl_repo_fail(b->r, read_rc, "cannot read '%s' at offset %llu", path,
					  (unsigned long long)off);
		} else {
			b->res->bytes_read += len;
			if (kl_img_is_zero(buf, len)) {
				kl_free(buf);
				b->res->chunks_zero++;
				hole[i] = true;
			} else {
				rc = kl_pipeline_submit(&b->pl, f, buf, len);
			}
		}
		if (rc >= 0 && hole[i]) {
			rc = zero_chunk(b, len, &n->content[i]);
			n->flags |= KL_NODE_SPARSE;
		}
	}
	kl_pipeline_file_sealed(&b->pl, f);
	wait_file(b, f);
	b->res->chunks += nchunks;
	for (uint64_t k = 0, j = 0; rc >= 0 && k < nchunks && j < f->n_chunks; k++) {
		struct kl_chunk_job *c = f->chunks[j];

		if (hole[k])
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

/* One source: its node, filled and added to root. */
static int backup_source(struct img_backup *b, const char *path, struct kl_tree *root)
{
	const char *name = b->o->name;
	struct kl_node n = {0};
	struct stat st;
	uint64_t size;
	bool is_dev;
	_cleanup_close_ int fd = kl_image_open(path, O_RDONLY | O_NOATIME, &size, &is_dev);
	int rc;

	if (fd == -EINVAL)
		return kl_repo_fail(b->r, -KL_EUSAGE, "'%s' is neither a file nor a block device",
				    path);
	if (fd < 0)
		return kl_repo_fail(b->r, fd, "cannot open '%s'", path);
	if (!name) {
		name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	}
	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return kl_repo_fail(b->r, -KL_EUSAGE, "invalid image name '%s' (use --name)", name);
	if (fstat(fd, &st) < 0)
		return kl_repo_fail(b->r, -errno, "cannot stat '%s'", path);
	n.name_len = strlen(name);
	n.name = kl_memdup(name, n.name_len);
	if (!n.name)
		return -ENOMEM;
	n.type = KL_NODE_FILE;
	n.mode = st.st_mode & 07777;
	n.uid = st.st_uid;
	n.gid = st.st_gid;
	n.size = size;
	n.mtime_sec = st.st_mtim.tv_sec;
	n.mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
	n.atime_sec = st.st_atim.tv_sec;
	n.atime_nsec = (uint32_t)st.st_atim.tv_nsec;
	n.ctime_sec = st.st_ctim.tv_sec;
	n.ctime_nsec = (uint32_t)st.st_ctim.tv_nsec;
	n.rdev = is_dev ? st.st_rdev : 0;
	n.nlink = 1;
	rc = read_image(b, fd, path, &n);
	if (rc >= 0) {
		b->res->images++;
		b->res->bytes_total += size;
		if (kl_tree_find(root, n.name, n.name_len))
			rc = kl_repo_fail(b->r, -KL_EUSAGE, "two images named '%s'", name);
	}
	if (rc >= 0)
		rc = kl_tree_add(root, &n);
	if (rc < 0)
		kl_node_release(&n);
	else
		kl_tree_sort(root);
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

		if (s[0] == '/' || !have_cwd) {
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
		s.image_method = (char *)KL_IMAGE_METHOD_READ;
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

int kl_image_backup(struct kl_repo *r, const struct kl_image_backup_opts *o,
		    struct kl_image_backup_result *ret)
{
	struct img_backup b = {.r = r, .o = o, .res = ret};
	struct kl_tree root = {0};
	struct kl_write_stats ws = {0};
	char **paths = NULL;
	int64_t start_ns = kl_time_now_ns();
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = o->threads ? o->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
	int rc, prc;

	memset(ret, 0, sizeof(*ret));
	if (!o->n_sources)
		return kl_repo_fail(r, -KL_EUSAGE, "nothing to back up");
	rc = snapshot_paths(o, &paths);
	if (rc >= 0)
		rc = find_parent(&b, paths, o->n_sources, &ret->parent, &b.chunk);
	if (rc < 0)
		goto out;
	ret->has_parent = rc > 0;
	if (o->chunk_size)
		b.chunk = o->chunk_size;
	else if (!b.chunk)
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
	if (rc >= 0)
		rc = kl_packer_new(r, &b.meta);
	if (rc >= 0) {
		rc = kl_pipeline_start(&b.pl, r, threads, false);
		b.pl_started = true;
		/* every worker a chunk and one queued behind it, whatever the chunk size */
		b.pl.max_in_flight = (size_t)b.chunk * (b.pl.n_threads * 2 + 2);
	}
	for (size_t i = 0; rc >= 0 && i < o->n_sources; i++)
		rc = backup_source(&b, o->sources[i], &root);
	if (b.pl_started) {
		prc = kl_pipeline_finish(&b.pl, &ws);
		if (rc >= 0)
			rc = prc;
		ret->bytes_stored = ws.bytes_stored;
	}
	if (rc >= 0)
		rc = save_snapshot(&b, &root, paths, start_ns);
	kl_tree_release(&root);
	kl_packer_free(b.meta);
out:
	for (size_t i = 0; paths && i < o->n_sources; i++)
		kl_free(paths[i]);
	kl_free(paths);
	return rc;
}

/*
 * nbdkit-keel-plugin.so: serves one image of an image snapshot over NBD
 * from inside nbdkit, which speaks the protocol (docs/IMAGES.md, "Serving
 * an image"). `keel image serve` starts nbdkit with it, holding the
 * repository's lock, and hands the password over through an inherited
 * pipe (password-fd=N), never argv:
 *
 *   nbdkit ... nbdkit-keel-plugin.so repo=LOCATION snapshot=ID image=NAME \
 *          password-fd=N [overlay=FILE] [cache=SIZE] [readahead=N] [fetchers=N]
 *
 * The work is src/image/export.c's; this file is the glue to nbdkit's API.
 */
#include <sodium.h>
#include <sys/prctl.h>
#include <stdlib.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "keel/fs.h"
#include "keel/image.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#define PASS_MAX 4096

/*
 * nbdkit's callbacks take no user data before a connection opens: the
 * configuration and the export live in this one static of the plugin,
 * which is a program of its own inside nbdkit (set by config, freed by
 * unload).
 */
static struct plugin_state {
	const char *repo, *image, *overlay;
	struct kl_id snapshot;
	bool have_snapshot;
	int password_fd;
	uint64_t cache;
	unsigned readahead, fetchers;
	struct kl_repo *r;
	struct kl_snapshot snap;
	struct kl_tree tree;
	struct kl_image_export *e;
} g = {.password_fd = -1, .readahead = 8};

/* nbdkit_error with the repository's detail and the error's text. */
static int fail(int rc, const char *what)
{
	struct kl_err err = {0}, detail = {0};

	if (g.r)
		kl_repo_take_err(g.r, &err, &detail);
	nbdkit_error("%s%s%s%s%s: %s", what, err.code ? ": " : "", err.code ? err.msg : "",
		     detail.code ? ": " : "", detail.code ? detail.msg : "", kl_strerror(rc));
	nbdkit_set_error(rc > -4096 && rc < 0 ? -rc : EIO);
	return -1;
}

/* What keel's main() does first: libsodium (guarded memory, randomness), no core dumps. */
static void keel_load(void)
{
	if (kl_crypto_init() < 0)
		nbdkit_error("cannot initialise libsodium");
	prctl(PR_SET_DUMPABLE, 0);
}

static int keel_config(const char *key, const char *value)
{
	uint64_t v;

	if (!strcmp(key, "repo")) {
		g.repo = value;
	} else if (!strcmp(key, "snapshot")) {
		if (kl_id_parse(value, &g.snapshot) < 0) {
			nbdkit_error("snapshot must be a full snapshot id, not '%s'", value);
			return -1;
		}
		g.have_snapshot = true;
	} else if (!strcmp(key, "image")) {
		g.image = value;
	} else if (!strcmp(key, "overlay")) {
		g.overlay = value;
	} else if (!strcmp(key, "password-fd")) {
		if (kl_parse_uint(value, 0, INT32_MAX, &v) < 0) {
			nbdkit_error("invalid password-fd '%s'", value);
			return -1;
		}
		g.password_fd = (int)v;
	} else if (!strcmp(key, "cache")) {
		if (kl_parse_size(value, &g.cache) < 0) {
			nbdkit_error("invalid cache size '%s'", value);
			return -1;
		}
	} else if (!strcmp(key, "readahead") || !strcmp(key, "fetchers")) {
		if (kl_parse_uint(value, 0, 256, &v) < 0) {
			nbdkit_error("invalid %s '%s'", key, value);
			return -1;
		}
		*(key[0] == 'r' ? &g.readahead : &g.fetchers) = (unsigned)v;
	} else {
		nbdkit_error("unknown parameter '%s'", key);
		return -1;
	}
	return 0;
}

static int keel_config_complete(void)
{
	if (!g.repo || !g.have_snapshot) {
		nbdkit_error("repo= and snapshot= are required");
		return -1;
	}
	return 0;
}

/* From the pipe keel image serve filled (then closed), else KEEL_PASSWORD. */
static int read_password(struct kl_pass **ret)
{
	char *buf;
	size_t got = 0;
	int rc;

	if (g.password_fd < 0) {
		const char *p = getenv("KEEL_PASSWORD");

		if (!p || !*p)
			return -KL_EBADPASS;
		return kl_pass_new(p, strlen(p), ret);
	}
	buf = sodium_malloc(PASS_MAX);
	if (!buf)
		return -ENOMEM;
	rc = kl_fs_read_full(g.password_fd, buf, PASS_MAX, &got);
	close(g.password_fd);
	g.password_fd = -1;
	if (rc >= 0 && (got == 0 || got == PASS_MAX))
		rc = -KL_EBADPASS;
	if (rc >= 0)
		rc = kl_pass_new(buf, got, ret);
	sodium_free(buf);
	return rc;
}

/* The image named, or the snapshot's only one. */
static int pick_image(const struct kl_node **ret)
{
	const char *name = g.image && *g.image == '/' ? g.image + 1 : g.image;

	if (name && *name) {
		*ret = kl_tree_find(&g.tree, (const uint8_t *)name, strlen(name));
		if (!*ret) {
			nbdkit_error("no image '%s' in the snapshot", name);
			return -1;
		}
	} else if (g.tree.n == 1) {
		*ret = &g.tree.nodes[0];
	} else {
		nbdkit_error("the snapshot holds %zu images: name one (keel: SNAPSHOT:IMAGE; "
			     "nbdkit: image=NAME)",
			     g.tree.n);
		return -1;
	}
	return 0;
}

static int open_overlay(const struct kl_node *n, struct kl_image_overlay **ret)
{
	struct kl_image_overlay_hdr h = {.block_size = KL_IMAGE_OVERLAY_BLOCK_DEFAULT,
					 .image_size = n->size,
					 .snapshot = g.snapshot};
	struct kl_err err = {0};
	int rc;

	*ret = NULL;
	if (!g.overlay)
		return 0;
	if (n->name_len >= sizeof(h.name))
		return fail(-KL_EUSAGE, "the image's name is too long for an overlay");
	memcpy(h.name, n->name, n->name_len);
	if (h.block_size > g.snap.image_chunk_size)
		h.block_size = g.snap.image_chunk_size;
	rc = kl_image_overlay_open(g.overlay, &h, ret, &err);
	if (rc < 0) {
		nbdkit_error("%s: %s", err.code ? err.msg : "cannot open the overlay",
			     kl_strerror(rc));
		return -1;
	}
	return 0;
}

/* Everything that can fail before a client connects: nbdkit exits with it. */
static int keel_get_ready(void)
{
	struct kl_image_export_opts o = {
		.cache_bytes = (size_t)g.cache, .readahead = g.readahead, .fetchers = g.fetchers};
	struct kl_err detail = {0};
	struct kl_pass *pass = NULL;
	const struct kl_node *n;
	int rc;

	rc = kl_repo_open_err(g.repo, &detail, &g.r);
	if (rc < 0) {
		nbdkit_error("cannot open repository '%s': %s%s%s", g.repo,
			     detail.code ? detail.msg : "", detail.code ? ": " : "",
			     kl_strerror(rc));
		return -1;
	}
	rc = read_password(&pass);
	if (rc >= 0) {
		rc = kl_repo_unlock(g.r, pass);
		kl_pass_free(pass);
	}
	if (rc >= 0)
		rc = kl_repo_load_index(g.r);
	if (rc >= 0)
		rc = kl_repo_load_snapshot(g.r, &g.snapshot, &g.snap);
	if (rc < 0)
		return fail(rc, "cannot open the snapshot");
	if (g.snap.kind != KL_SNAP_DISK) {
		nbdkit_error("the snapshot is not an image snapshot");
		return -1;
	}
	rc = kl_repo_read_tree(g.r, &g.snap.tree, &g.tree);
	if (rc < 0)
		return fail(rc, "cannot read the snapshot's images");
	if (pick_image(&n) < 0 || open_overlay(n, &o.overlay) < 0)
		return -1;
	rc = kl_image_export_open(g.r, n, g.snap.image_chunk_size, &o, &g.e);
	if (rc < 0) {
		kl_image_overlay_free(o.overlay);
		return fail(rc, "cannot serve the image");
	}
	nbdkit_debug("serving '%.*s': %llu bytes in chunks of %u%s", (int)n->name_len,
		     (const char *)n->name, (unsigned long long)n->size, g.snap.image_chunk_size,
		     g.overlay ? ", writes to the overlay" : ", read-only");
	return 0;
}

/* Threads only now: nbdkit may have forked into the background. */
static int keel_after_fork(void)
{
	int rc = kl_image_export_start(g.e);

	return rc < 0 ? fail(rc, "cannot start the read-ahead threads") : 0;
}

static void keel_unload(void)
{
	if (g.e) {
		struct kl_image_export_stats st;

		kl_image_export_stats(g.e, &st);
		nbdkit_debug(
			"chunks fetched %llu (ahead %llu), cache hits %llu, overlay blocks %llu "
			"(%llu new)",
			(unsigned long long)st.fetched, (unsigned long long)st.fetched_ahead,
			(unsigned long long)st.hits, (unsigned long long)st.overlay_blocks,
			(unsigned long long)st.overlay_blocks_new);
		if (kl_image_export_flush(g.e) < 0)
			nbdkit_error("cannot sync the overlay");
	}
	kl_image_export_free(g.e);
	kl_tree_release(&g.tree);
	kl_snapshot_release(&g.snap);
	kl_repo_free(g.r);
	if (g.password_fd >= 0)
		close(g.password_fd);
}

static void *keel_open(int readonly)
{
	return &g; /* every connection shares the export and its cache */
}

static int64_t keel_get_size(void *h)
{
	return (int64_t)kl_image_export_size(g.e);
}

static int keel_can_write(void *h)
{
	return kl_image_export_writable(g.e);
}

static int keel_can_multi_conn(void *h)
{
	return 1; /* one export, one overlay: a flush covers every connection's writes */
}

static int keel_can_flush(void *h)
{
	return 1;
}

static int keel_can_extents(void *h)
{
	return 1;
}

static int keel_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	int rc = kl_image_export_read(g.e, buf, count, offset);

	return rc < 0 ? fail(rc, "read failed") : 0;
}

static int keel_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	int rc = kl_image_export_write(g.e, buf, count, offset);

	if (rc >= 0 && (flags & NBDKIT_FLAG_FUA))
		rc = kl_image_export_flush(g.e);
	return rc < 0 ? fail(rc, "write to the overlay failed") : 0;
}

static int keel_flush(void *h, uint32_t flags)
{
	int rc = kl_image_export_flush(g.e);

	return rc < 0 ? fail(rc, "cannot sync the overlay") : 0;
}

/* Zero chunks outside the overlay are holes: copies and boots skip them. */
static int keel_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags,
			struct nbdkit_extents *ex)
{
	uint64_t end = offset + count;

	while (offset < end) {
		uint64_t run;
		bool zero;

		kl_image_export_extent(g.e, offset, end - offset, &run, &zero);
		if (!run)
			break;
		if (nbdkit_add_extent(ex, offset, run,
				      zero ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0) < 0)
			return -1;
		offset += run;
		if (flags & NBDKIT_FLAG_REQ_ONE)
			break;
	}
	return 0;
}

static struct nbdkit_plugin plugin = {
	.name = "keel",
	.longname = "keel image snapshots",
	.version = KEEL_VERSION,
	.description = "serves an image of a keel repository's image snapshot",
	.load = keel_load,
	.config = keel_config,
	.config_complete = keel_config_complete,
	.config_help = "repo=LOCATION snapshot=ID [image=NAME] [password-fd=N] [overlay=FILE]\n"
		       "[cache=SIZE] [readahead=N] [fetchers=N]",
	.get_ready = keel_get_ready,
	.after_fork = keel_after_fork,
	.unload = keel_unload,
	.open = keel_open,
	.get_size = keel_get_size,
	.can_write = keel_can_write,
	.can_multi_conn = keel_can_multi_conn,
	.can_flush = keel_can_flush,
	.can_extents = keel_can_extents,
	.pread = keel_pread,
	.pwrite = keel_pwrite,
	.flush = keel_flush,
	.extents = keel_extents,
	.errno_is_preserved = 0,
};

/* nbdkit's macro defines the one exported function, which no header declares */
struct nbdkit_plugin *plugin_init(void);
NBDKIT_REGISTER_PLUGIN(plugin)

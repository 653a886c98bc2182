/*
 * A local cache of a remote repository's metadata (keel issue #5): a
 * backend that wraps an S3 or ssh:// backend and keeps a copy of every
 * whole snapshot and index object it reads or writes, so that listing
 * snapshots, ls and an incremental backup do not download them again.
 *
 * Those objects are named by the SHA-256 of their bytes and never change,
 * so an entry needs no invalidation, only a check: its bytes must hash to
 * its name, else it is removed and the object fetched again (the
 * repository layer then authenticates it as usual). The remote stays the
 * truth about which objects exist: list() always asks it, an entry is
 * served without asking only for a name the last listing (or this
 * process's own write) showed, and entries no longer listed are deleted.
 * The cache can therefore be deleted, damaged or shared by several keel
 * processes at any time: every file is written to a temporary name and
 * renamed, and every failure of the cache only costs a download.
 *
 * Layout (docs/S3.md): BASE/CACHEDIR.TAG, BASE/<key>/snapshots/<name>,
 * BASE/<key>/index/<name>, where key is the SHA-256 of the repository's
 * config object as stored: the same repository reached through another
 * endpoint, host alias or ssh user shares the entries, and a repository
 * created anew at the same location gets its own. Until the config has
 * been read or written (kl_repo_unlock, kl_repo_create) nothing is cached.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keel/backend.h"
#include "keel/crypto.h"
#include "keel/fs.h"

/* leaves room below PATH_MAX for "/<key>/snapshots/<name>.tmp.<random>" */
#define BASE_MAX 3000
#define PATH_LEN 4096
/* temporary files of a process that died are removed after an hour */
#define STALE_TMP_S 3600

static const char cachedir_tag[] = "Signature: 8a477f597d28d172789f06886806bc55\n"
				   "# This file is a cache directory tag created by keel.\n"
				   "# For information about cache directory tags, see:\n"
				   "#\thttps://bford.info/cachedir/\n";

/* The cached object types, as indexes of struct cache's known[]. */
enum { CACHED_SNAPSHOT, CACHED_INDEX, N_CACHED };

static int cached_slot(enum kl_obj_type t)
{
	if (t == KL_OBJ_SNAPSHOT)
		return CACHED_SNAPSHOT;
	if (t == KL_OBJ_INDEX)
		return CACHED_INDEX;
	return -1;
}

/* ---- set of names the remote is known to hold --------------------------- */

struct slot {
	struct kl_id id;
	uint64_t gen; /* 0: never used */
	bool dead;    /* removed; keeps probe sequences intact */
};

/* Open addressing with linear probing; ids are SHA-256, so any 8 bytes hash well. */
struct name_set {
	struct slot *v;
	size_t cap;  /* 0 or a power of two */
	size_t used; /* slots with gen != 0, dead ones too */
};

static size_t slot_hash(const struct kl_id *id, size_t cap)
{
	uint64_t h;

	memcpy(&h, id->b, sizeof(h));
	return (size_t)h & (cap - 1);
}

/* The slot holding id (live or dead), or the empty slot that ends its probe sequence. */
static struct slot *set_probe(const struct name_set *s, const struct kl_id *id)
{
	size_t i = slot_hash(id, s->cap);

	while (s->v[i].gen && memcmp(s->v[i].id.b, id->b, KL_ID_LEN))
		i = (i + 1) & (s->cap - 1);
	return &s->v[i];
}

static bool set_has(const struct name_set *s, const struct kl_id *id)
{
	const struct slot *e;

	if (!s->cap)
		return false;
	e = set_probe(s, id);
	return e->gen && !e->dead;
}

/* Rehashes into a table a quarter full of live names; dead slots are dropped. */
static int set_grow(struct name_set *s)
{
	struct slot *old = s->v, *v;
	size_t old_cap = s->cap, live = 0, cap = 64;

	for (size_t i = 0; i < old_cap; i++)
		live += old[i].gen && !old[i].dead;
	while (cap < 4 * (live + 1))
		cap *= 2;
	v = kl_calloc(cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->cap = cap;
	s->used = 0;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].gen || old[i].dead)
			continue;
		*set_probe(s, &old[i].id) = old[i];
		s->used++;
	}
	kl_free(old);
	return 0;
}

/* Adds id, or raises its generation to gen. */
static int set_mark(struct name_set *s, const struct kl_id *id, uint64_t gen)
{
	struct slot *e;
	int r;

	if ((s->used + 1) * 2 > s->cap) {
		r = set_grow(s);
		if (r < 0)
			return r;
	}
	e = set_probe(s, id);
	if (!e->gen) {
		e->id = *id;
		s->used++;
	} else if (!e->dead && e->gen > gen) {
		return 0;
	}
	e->gen = gen;
	e->dead = false;
	return 0;
}

static void set_drop(struct name_set *s, const struct kl_id *id)
{
	struct slot *e;

	if (!s->cap)
		return;
	e = set_probe(s, id);
	if (e->gen)
		e->dead = true;
}

/* Removes every name not marked since generation gen began. */
static void set_sweep(struct name_set *s, uint64_t gen)
{
	for (size_t i = 0; i < s->cap; i++)
		if (s->v[i].gen && s->v[i].gen < gen)
			s->v[i].dead = true;
}

/* ---- the wrapper -------------------------------------------------------- */

struct cache {
	struct kl_backend b;
	struct kl_backend *inner;
	char *base;
	pthread_mutex_t lock; /* for everything below */
	char *dir;	      /* base/<key>; NULL until the config was seen, then fixed */
	struct name_set known[N_CACHED];
	uint64_t gen; /* from 1 (0 marks an empty slot); bumped when a listing starts */
};

static const struct kl_backend_ops cache_ops;

/* A name is 64 lowercase hex digits (docs/FORMAT.md); anything else is passed through. */
static int parse_name(const char *name, struct kl_id *ret)
{
	size_t i;

	for (i = 0; i < 2 * KL_ID_LEN; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return -EINVAL;
	if (name[i])
		return -EINVAL;
	return kl_hex_decode(name, KL_ID_LEN, ret->b);
}

static const char *cache_dir(struct cache *c)
{
	const char *dir;

	pthread_mutex_lock(&c->lock);
	dir = c->dir;
	pthread_mutex_unlock(&c->lock);
	return dir;
}

static void mark(struct cache *c, int k, const struct kl_id *id)
{
	pthread_mutex_lock(&c->lock);
	/* out of memory: the name is not served from the cache, nothing worse */
	(void)set_mark(&c->known[k], id, c->gen);
	pthread_mutex_unlock(&c->lock);
}

static bool known(struct cache *c, int k, const struct kl_id *id)
{
	bool r;

	pthread_mutex_lock(&c->lock);
	r = set_has(&c->known[k], id);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Fixes the directory once the repository's config bytes are known. */
static void learn_config(struct cache *c, const void *data, size_t len)
{
	char hex[2 * KL_ID_LEN + 1];
	struct kl_id id;
	size_t n;
	char *dir;

	if (cache_dir(c))
		return;
	kl_sha256(data, len, &id);
	kl_hex_encode(id.b, KL_ID_LEN, hex);
	n = strlen(c->base) + sizeof(hex) + 1;
	dir = kl_malloc(n);
	if (!dir)
		return; /* uncached, but working */
	snprintf(dir, n, "%s/%s", c->base, hex);
	pthread_mutex_lock(&c->lock);
	if (!c->dir)
		c->dir = KL_TAKE_PTR(dir);
	pthread_mutex_unlock(&c->lock);
	kl_free(dir);
}

static void entry_path(const char *dir, enum kl_obj_type t, const char *name, char path[PATH_LEN])
{
	snprintf(path, PATH_LEN, "%s/%s/%s", dir, kl_obj_type_name(t), name);
}

/* Creates BASE (tagged) and dir/<type> after they were deleted or never made. */
static int prepare(struct cache *c, const char *dir, enum kl_obj_type t)
{
	char path[PATH_LEN];
	int r;

	r = kl_fs_mkdir_p(AT_FDCWD, c->base, 0700);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/CACHEDIR.TAG", c->base);
	r = kl_fs_write_atomic(AT_FDCWD, path, cachedir_tag, sizeof(cachedir_tag) - 1, 0644,
			       KL_FS_NOREPLACE | KL_FS_NOSYNC);
	if (r < 0 && r != -EEXIST)
		return r;
	snprintf(path, sizeof(path), "%s/%s", dir, kl_obj_type_name(t));
	return kl_fs_mkdir_p(AT_FDCWD, path, 0700);
}

/*
 * No fsync: after a crash an entry may be incomplete, which its check
 * finds. Concurrent writers of one name write the same bytes, so a rename
 * over an existing entry is harmless (and repairs a damaged one).
 */
static void entry_write(struct cache *c, const char *dir, enum kl_obj_type t, const char *name,
			const void *data, size_t len)
{
	char path[PATH_LEN];
	int r;

	entry_path(dir, t, name, path);
	r = kl_fs_write_atomic(AT_FDCWD, path, data, len, 0600, KL_FS_NOSYNC);
	if (r == -ENOENT && prepare(c, dir, t) >= 0)
		kl_fs_write_atomic(AT_FDCWD, path, data, len, 0600, KL_FS_NOSYNC);
}

/*
 * Appends the entry to out if its bytes hash to id. A damaged entry is
 * removed. Returns 0, or < 0 for a miss (out unchanged).
 */
static int entry_read(const char *dir, enum kl_obj_type t, const char *name, const struct kl_id *id,
		      struct kl_buf *out)
{
	char path[PATH_LEN];
	_cleanup_close_ int fd = -1;
	size_t start = out->len, got = 0;
	struct kl_id have;
	struct stat st;
	int r;

	entry_path(dir, t, name, path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	r = kl_buf_grow(out, (size_t)st.st_size);
	if (r < 0)
		return r;
	r = kl_fs_read_full(fd, out->data + start, (size_t)st.st_size, &got);
	if (r >= 0) {
		kl_sha256(out->data + start, got, &have);
		if (got != (size_t)st.st_size || memcmp(have.b, id->b, KL_ID_LEN))
			r = -KL_ECORRUPT;
	}
	if (r < 0) {
		kl_buf_setlen(out, start);
		if (r == -KL_ECORRUPT)
			unlink(path);
		return r;
	}
	return kl_buf_setlen(out, start + got);
}

static void entry_remove(const char *dir, enum kl_obj_type t, const char *name)
{
	char path[PATH_LEN];

	entry_path(dir, t, name, path);
	unlink(path);
}

/* After a listing: deletes the entries of objects that are gone, and stale temporary files. */
static void prune_dir(struct cache *c, const char *dir, int k, enum kl_obj_type t)
{
	char path[PATH_LEN];
	struct dirent *de;
	time_t now = time(NULL);
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, kl_obj_type_name(t));
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct kl_id id;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (parse_name(de->d_name, &id) >= 0) {
			if (!known(c, k, &id))
				unlinkat(dirfd(d), de->d_name, 0);
		} else if (strstr(de->d_name, ".tmp.") &&
			   fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			   now - st.st_mtime > STALE_TMP_S) {
			unlinkat(dirfd(d), de->d_name, 0);
		}
	}
	closedir(d);
}

struct list_ctx {
	struct cache *c;
	int k;
	uint64_t gen;
	bool incomplete;
	kl_list_cb cb;
	void *ud;
};

static int list_one(const char *name, uint64_t size, void *ud)
{
	struct list_ctx *x = ud;
	struct kl_id id;

	/* marked before the caller's callback, which may get() the object */
	if (parse_name(name, &id) >= 0) {
		pthread_mutex_lock(&x->c->lock);
		if (set_mark(&x->c->known[x->k], &id, x->gen) < 0)
			x->incomplete = true;
		pthread_mutex_unlock(&x->c->lock);
	}
	return x->cb(name, size, x->ud);
}

static int cache_list(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud)
{
	struct cache *c = (struct cache *)b;
	struct list_ctx x = {.c = c, .k = cached_slot(t), .cb = cb, .ud = ud};
	const char *dir;
	int r;

	if (x.k < 0)
		return c->inner->ops->list(c->inner, t, cb, ud);
	pthread_mutex_lock(&c->lock);
	x.gen = ++c->gen;
	pthread_mutex_unlock(&c->lock);
	r = c->inner->ops->list(c->inner, t, list_one, &x);
	/* a listing stopped early or short of memory says nothing of what is gone */
	if (r < 0 || x.incomplete)
		return r;
	pthread_mutex_lock(&c->lock);
	set_sweep(&c->known[x.k], x.gen);
	dir = c->dir;
	pthread_mutex_unlock(&c->lock);
	if (dir)
		prune_dir(c, dir, x.k, t);
	return r;
}

static int cache_get(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t off,
		     uint64_t len, struct kl_buf *out)
{
	struct cache *c = (struct cache *)b;
	int k = cached_slot(t);
	size_t start = out->len;
	const char *dir;
	struct kl_id id, have;
	int r;

	if (t == KL_OBJ_CONFIG && !off && !len) {
		r = c->inner->ops->get(c->inner, t, name, off, len, out);
		if (r >= 0)
			learn_config(c, out->data + start, out->len - start);
		return r;
	}
	if (k < 0 || off || len || parse_name(name, &id) < 0)
		return c->inner->ops->get(c->inner, t, name, off, len, out);
	dir = cache_dir(c);
	if (dir && known(c, k, &id) && entry_read(dir, t, name, &id, out) >= 0)
		return 0;
	r = c->inner->ops->get(c->inner, t, name, off, len, out);
	if (r == -ENOENT) {
		pthread_mutex_lock(&c->lock);
		set_drop(&c->known[k], &id);
		pthread_mutex_unlock(&c->lock);
		if (dir)
			entry_remove(dir, t, name);
	}
	if (r < 0)
		return r;
	kl_sha256(out->data + start, out->len - start, &have);
	/* damaged on the remote: the repository layer reports it, the cache keeps out */
	if (memcmp(have.b, id.b, KL_ID_LEN))
		return r;
	mark(c, k, &id);
	if (dir)
		entry_write(c, dir, t, name, out->data + start, out->len - start);
	return r;
}

static int cache_put(struct kl_backend *b, enum kl_obj_type t, const char *name, const void *data,
		     size_t len)
{
	struct cache *c = (struct cache *)b;
	int k = cached_slot(t);
	struct kl_id id, have;
	const char *dir;
	int r;

	r = c->inner->ops->put(c->inner, t, name, data, len);
	if (t == KL_OBJ_CONFIG && r >= 0)
		learn_config(c, data, len);
	/* -EEXIST: the remote holds these very bytes, the name says so */
	if ((r < 0 && r != -EEXIST) || k < 0 || parse_name(name, &id) < 0)
		return r;
	kl_sha256(data, len, &have);
	if (memcmp(have.b, id.b, KL_ID_LEN))
		return r;
	mark(c, k, &id);
	dir = cache_dir(c);
	if (dir)
		entry_write(c, dir, t, name, data, len);
	return r;
}

static int cache_del(struct kl_backend *b, enum kl_obj_type t, const char *name)
{
	struct cache *c = (struct cache *)b;
	int k = cached_slot(t);
	struct kl_id id;
	const char *dir;
	int r;

	r = c->inner->ops->del(c->inner, t, name);
	if ((r < 0 && r != -ENOENT) || k < 0 || parse_name(name, &id) < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	set_drop(&c->known[k], &id);
	dir = c->dir;
	pthread_mutex_unlock(&c->lock);
	if (dir)
		entry_remove(dir, t, name);
	return r;
}

static int cache_stat(struct kl_backend *b, enum kl_obj_type t, const char *name,
		      uint64_t *size_ret)
{
	struct cache *c = (struct cache *)b;

	return c->inner->ops->stat(c->inner, t, name, size_ret);
}

static int cache_create(struct kl_backend *b)
{
	struct cache *c = (struct cache *)b;

	return c->inner->ops->create(c->inner);
}

static int cache_sweep_tmp(struct kl_backend *b, uint64_t min_age_s, bool remove,
			   struct kl_tmp_stats *ret)
{
	struct cache *c = (struct cache *)b;

	if (!c->inner->ops->sweep_tmp) {
		memset(ret, 0, sizeof(*ret));
		return 0;
	}
	return c->inner->ops->sweep_tmp(c->inner, min_age_s, remove, ret);
}

static void cache_free(struct kl_backend *b)
{
	struct cache *c = (struct cache *)b;

	kl_backend_free(c->inner);
	for (int k = 0; k < N_CACHED; k++)
		kl_free(c->known[k].v);
	pthread_mutex_destroy(&c->lock);
	kl_free(c->dir);
	kl_free(c->base);
	kl_free(c->b.location);
	kl_free(c);
}

static const struct kl_backend_ops cache_ops = {
	.scheme = "cache",
	.list = cache_list,
	.get = cache_get,
	.put = cache_put,
	.del = cache_del,
	.stat = cache_stat,
	.create = cache_create,
	.sweep_tmp = cache_sweep_tmp,
	.free = cache_free,
};

int kl_backend_cache_new(struct kl_backend *inner, const char *base, struct kl_backend **ret)
{
	struct cache *c;

	if (strlen(base) > BASE_MAX || base[0] != '/') {
		*ret = inner; /* no room for the entries' names: work uncached */
		return 0;
	}
	c = kl_calloc(1, sizeof(*c));
	if (!c) {
		kl_backend_free(inner);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->b.ops = &cache_ops;
	c->b.append_only = inner->append_only;
	c->inner = inner;
	c->gen = 1;
	c->b.location = kl_strdup(inner->location ? inner->location : "");
	c->base = kl_strdup(base);
	if (!c->b.location || !c->base) {
		cache_free(&c->b);
		return -ENOMEM;
	}
	*ret = &c->b;
	return 0;
}

struct kl_backend *kl_backend_unwrap(struct kl_backend *b)
{
	return b && b->ops == &cache_ops ? ((struct cache *)b)->inner : b;
}

/* a b c concatenated, in *ret (the caller's to free) */
static int concat(const char *a, const char *b, const char *c, char **ret)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;

	*ret = kl_malloc(n);
	if (!*ret)
		return -ENOMEM;
	snprintf(*ret, n, "%s%s%s", a, b, c);
	return 0;
}

int kl_backend_cache_base(char **ret)
{
	const char *off = getenv("KEEL_NO_CACHE"), *dir = getenv("KEEL_CACHE_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char cwd[PATH_LEN];

	*ret = NULL;
	if (off && *off && strcmp(off, "0"))
		return 0;
	if (dir && *dir) {
		if (dir[0] == '/')
			return concat(dir, "", "", ret);
		/* made absolute now: the cache must not move if keel changes directory */
		if (!getcwd(cwd, sizeof(cwd)))
			return 0;
		return concat(cwd, strcmp(cwd, "/") ? "/" : "", dir, ret);
	}
	/* the XDG base directory spec: a relative value is to be ignored */
	if (xdg && xdg[0] == '/')
		return concat(xdg, "/keel", "", ret);
	if (home && home[0] == '/')
		return concat(home, "/.cache/keel", "", ret);
	return 0;
}

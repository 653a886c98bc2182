/*
 * Local directory backend. Layout (docs/FORMAT.md): config, keys/<id>,
 * snapshots/<id>, index/<id>, data/<first two hex digits>/<id>, locks/<id>.
 * Every write goes through kl_fs_write_atomic, so readers never see a
 * partial object.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "keel/backend.h"
#include "keel/fs.h"

/*
 * Open pack files, kept for the ranged reads that restore and check make
 * blob by blob: without it every blob costs an open, fstat and close.
 * Packs never change once written, so a cached descriptor stays valid
 * (but across a delete: pack_fd_forget()).
 */
#define FD_CACHE 16

struct cached_fd {
	char name[2 * 32 + 1];
	int fd; /* -1: free */
	uint64_t size;
	unsigned refs;
	uint64_t last_use;
};

struct local {
	struct kl_backend b;
	int rootfd;
	char *root;
	pthread_mutex_t lock;
	struct cached_fd cache[FD_CACHE];
	uint64_t tick;
};

/*
 * Returns an open descriptor for a pack and its size; *slot is the cache
 * entry to release, or -1 when the caller must close the descriptor.
 */
static int pack_fd(struct local *l, const char *path, const char *name, uint64_t *size, int *slot)
{
	struct cached_fd *victim = NULL;
	struct stat st;
	int fd;

	*slot = -1;
	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < FD_CACHE; i++) {
		struct cached_fd *c = &l->cache[i];

		if (c->fd >= 0 && !strcmp(c->name, name)) {
			c->refs++;
			c->last_use = ++l->tick;
			*size = c->size;
			*slot = i;
			pthread_mutex_unlock(&l->lock);
			return c->fd;
		}
	}
	pthread_mutex_unlock(&l->lock);
	fd = openat(l->rootfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*size = (uint64_t)st.st_size;
	if (strlen(name) >= sizeof(victim->name))
		return fd;
	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < FD_CACHE; i++) {
		struct cached_fd *c = &l->cache[i];

		if (c->fd >= 0 && !strcmp(c->name, name)) {
			victim = NULL; /* another thread cached it meanwhile: ours stays uncached */
			break;
		}
		if (c->refs)
			continue;
		if (!victim || c->fd < 0 || (victim->fd >= 0 && c->last_use < victim->last_use))
			victim = c;
	}
	if (victim) {
		if (victim->fd >= 0)
			close(victim->fd);
		snprintf(victim->name, sizeof(victim->name), "%s", name);
		victim->fd = fd;
		victim->size = *size;
		victim->refs = 1;
		victim->last_use = ++l->tick;
		*slot = (int)(victim - l->cache);
	}
	pthread_mutex_unlock(&l->lock);
	return fd;
}

static void pack_fd_release(struct local *l, int fd, int slot)
{
	if (slot < 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&l->lock);
	l->cache[slot].refs--;
	pthread_mutex_unlock(&l->lock);
}

/*
 * A deleted pack may come back under its name (keel mirror replaces a
 * damaged copy): its cached descriptor must not serve the old file. One
 * in use is only unnamed, and closed when evicted.
 */
static void pack_fd_forget(struct local *l, const char *name)
{
	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < FD_CACHE; i++) {
		struct cached_fd *c = &l->cache[i];

		if (c->fd < 0 || strcmp(c->name, name))
			continue;
		c->name[0] = 0;
		if (!c->refs) {
			close(c->fd);
			c->fd = -1;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

static bool is_object_name(const char *n)
{
	return n[0] != '.' && !strstr(n, ".tmp.");
}

/*
 * A name must stay inside its directory, and be one that listings show:
 * a pack named "..x" would otherwise land at the top ("data/../..x"), and
 * names starting with a dot or holding ".tmp." could never be listed
 * (or would be swept as temporary files). keel serve passes names from
 * the network here.
 */
static int obj_path(enum kl_obj_type t, const char *name, char *out, size_t n)
{
	int w;

	if (t == KL_OBJ_CONFIG)
		w = snprintf(out, n, "config");
	else if (!*name || strchr(name, '/') || !is_object_name(name))
		return -EINVAL;
	else if (t == KL_OBJ_DATA)
		w = strlen(name) < 2 ? -1 : snprintf(out, n, "data/%.2s/%s", name, name);
	else
		w = snprintf(out, n, "%s/%s", kl_obj_type_name(t), name);
	if (w < 0 || (size_t)w >= n)
		return -EINVAL;
	return 0;
}

/* New fan-out directories must survive a power loss before packs go in them. */
static int fsync_data_dir(struct local *l)
{
	_cleanup_close_ int dfd = openat(l->rootfd, "data", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return -errno;
	return kl_fs_fsync_dir(dfd);
}

static int list_dir(int dfd, kl_list_cb cb, void *ud)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int r = 0;

	if (!d) {
		close(dfd);
		return -errno;
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat st;

		if (!is_object_name(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			r = -errno;
			break;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		r = cb(de->d_name, (uint64_t)st.st_size, ud);
		if (r < 0)
			break;
	}
	if (!de && errno && r >= 0)
		r = -errno;
	closedir(d);
	return r;
}

static int local_list(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud)
{
	struct local *l = (struct local *)b;
	int fd, r;
	if (l->rootfd < 0)
		return -ENOENT;

	if (t == KL_OBJ_CONFIG) {
		struct stat st;

		if (fstatat(l->rootfd, "config", &st, 0) < 0)
			return errno == ENOENT ? 0 : -errno;
		return cb("config", (uint64_t)st.st_size, ud);
	}
	if (t != KL_OBJ_DATA) {
		fd = openat(l->rootfd, kl_obj_type_name(t), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return errno == ENOENT ? 0 : -errno;
		return list_dir(fd, cb, ud);
	}
	for (int i = 0; i < 256; i++) {
		char sub[16];

		snprintf(sub, sizeof(sub), "data/%02x", i);
		fd = openat(l->rootfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		r = list_dir(fd, cb, ud);
		if (r < 0)
			return r;
	}
	return 0;
}

static int local_get(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t off,
		     uint64_t len, struct kl_buf *out)
{
	struct local *l = (struct local *)b;
	char path[512];
	uint64_t size = 0;
	int fd, slot = -1, r;

	if (l->rootfd < 0)
		return -ENOENT;
	r = obj_path(t, name, path, sizeof(path));
	if (r < 0)
		return r;
	if (t == KL_OBJ_DATA) {
		fd = pack_fd(l, path, name, &size, &slot);
		if (fd < 0)
			return fd;
	} else {
		struct stat st;

		fd = openat(l->rootfd, path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (fstat(fd, &st) < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		size = (uint64_t)st.st_size;
	}
	if (off > size || (len && len > size - off))
		r = -KL_ECORRUPT; /* the object is shorter than its index says */
	else if (!len)
		len = size - off;
	if (r >= 0 && len > SIZE_MAX / 2)
		r = -E2BIG;
	if (r >= 0)
		r = kl_buf_grow(out, (size_t)len);
	if (r >= 0)
		r = kl_fs_pread_full(fd, out->data + out->len, (size_t)len, off);
	pack_fd_release(l, fd, slot);
	if (r < 0)
		return r;
	out->len += (size_t)len;
	out->data[out->len] = 0;
	return 0;
}

static int local_put(struct kl_backend *b, enum kl_obj_type t, const char *name, const void *data,
		     size_t len)
{
	struct local *l = (struct local *)b;
	char path[512];
	int r;
	if (l->rootfd < 0)
		return -ENOENT;

	r = obj_path(t, name, path, sizeof(path));
	if (r < 0)
		return r;
	r = kl_fs_write_atomic(l->rootfd, path, data, len, t == KL_OBJ_KEY ? 0600 : 0644,
			       t == KL_OBJ_CONFIG ? 0 : KL_FS_NOREPLACE);
	if (r == -ENOENT && t == KL_OBJ_DATA) {
		/* a repository made by an older layout tool may lack the fan-out dir */
		char sub[8];

		snprintf(sub, sizeof(sub), "data/%.2s", name);
		if (mkdirat(l->rootfd, "data", 0700) < 0 && errno != EEXIST)
			return -errno;
		if (mkdirat(l->rootfd, sub, 0755) < 0 && errno != EEXIST)
			return -errno;
		r = fsync_data_dir(l);
		if (r < 0)
			return r;
		r = kl_fs_write_atomic(l->rootfd, path, data, len, 0644, KL_FS_NOREPLACE);
	} else if (r == -ENOENT && t != KL_OBJ_CONFIG) {
		/*
		 * git, and rsync or cp of files only, keep no empty directory: a
		 * copied repository may lack locks/ (or snapshots/, index/).
		 */
		if (mkdirat(l->rootfd, kl_obj_type_name(t), 0700) < 0 && errno != EEXIST)
			return -errno;
		r = kl_fs_fsync_dir(l->rootfd);
		if (r < 0)
			return r;
		r = kl_fs_write_atomic(l->rootfd, path, data, len, t == KL_OBJ_KEY ? 0600 : 0644,
				       KL_FS_NOREPLACE);
	}
	return r;
}

static int local_del(struct kl_backend *b, enum kl_obj_type t, const char *name)
{
	struct local *l = (struct local *)b;
	char path[512], dir[512];
	_cleanup_close_ int dfd = -1;
	char *slash;
	int r;
	if (l->rootfd < 0)
		return -ENOENT;

	r = obj_path(t, name, path, sizeof(path));
	if (r < 0)
		return r;
	if (t == KL_OBJ_DATA)
		pack_fd_forget(l, name);
	if (unlinkat(l->rootfd, path, 0) < 0)
		return -errno;
	memcpy(dir, path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (!slash)
		return kl_fs_fsync_dir(l->rootfd);
	*slash = 0;
	dfd = openat(l->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	return kl_fs_fsync_dir(dfd);
}

static int local_stat(struct kl_backend *b, enum kl_obj_type t, const char *name,
		      uint64_t *size_ret)
{
	struct local *l = (struct local *)b;
	char path[512];
	struct stat st;
	int r;
	if (l->rootfd < 0)
		return -ENOENT;

	r = obj_path(t, name, path, sizeof(path));
	if (r < 0)
		return r;
	if (fstatat(l->rootfd, path, &st, 0) < 0)
		return -errno;
	*size_ret = (uint64_t)st.st_size;
	return 0;
}

/*
 * init makes a repository in a new or empty directory only: one that holds
 * anything else (a home directory, a mistyped path) is refused, so that a
 * repository never mixes with files that prune or a user might touch. The
 * directories of a repository are allowed (those that hold objects are
 * refused earlier, with their own message), and keel's temporary files,
 * and lost+found (an empty file system mounted there).
 */
static int foreign_entry(struct local *l)
{
	static const char *const ours[] = {"keys", "snapshots", "index",
					   "data", "locks",	"lost+found"};
	int fd = openat(l->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while (r == 0 && (de = readdir(d))) {
		bool known = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
			     strstr(de->d_name, ".tmp.");

		for (size_t i = 0; !known && i < KL_ARRAY_SIZE(ours); i++)
			known = !strcmp(de->d_name, ours[i]);
		if (!known)
			r = kl_backend_fail(&l->b, -ENOTEMPTY,
					    "the directory is not empty and is not a keel "
					    "repository (it holds '%s'): choose a new or empty "
					    "directory",
					    de->d_name);
	}
	closedir(d);
	return r;
}

static int local_create(struct kl_backend *b)
{
	struct local *l = (struct local *)b;
	static const char *const dirs[] = {"keys", "snapshots", "index", "data", "locks"};
	struct stat st;
	int r;

	if (l->rootfd < 0) {
		r = kl_fs_mkdir_p(AT_FDCWD, l->root, 0700);
		if (r < 0)
			return r;
		l->rootfd = open(l->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (l->rootfd < 0)
			return -errno;
	}
	if (fstatat(l->rootfd, "config", &st, 0) == 0)
		return -EEXIST;
	r = foreign_entry(l);
	if (r < 0)
		return r;
	for (size_t i = 0; i < KL_ARRAY_SIZE(dirs); i++)
		if (mkdirat(l->rootfd, dirs[i], 0700) < 0 && errno != EEXIST)
			return -errno;
	for (int i = 0; i < 256; i++) {
		char sub[16];

		snprintf(sub, sizeof(sub), "data/%02x", i);
		if (mkdirat(l->rootfd, sub, 0700) < 0 && errno != EEXIST)
			return -errno;
	}
	r = fsync_data_dir(l);
	if (r < 0)
		return r;
	r = kl_fs_fsync_dir(l->rootfd);
	return r;
}

/*
 * Temporary files of one directory: "<name>.tmp.<random>", as
 * kl_fs_write_atomic names them. Only files older than min_age_s are
 * removed: a write in flight (another process's backup) renames its file
 * within seconds of creating it, and keeps it fresh while it writes.
 */
static int sweep_dir(int rootfd, const char *dir, int64_t now, uint64_t min_age_s, bool remove,
		     struct kl_tmp_stats *st)
{
	int fd = openat(rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat sb;
		int64_t age;

		if (de->d_name[0] == '.' || !strstr(de->d_name, ".tmp."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue; /* renamed meanwhile, or not ours */
		st->files++;
		st->bytes += (uint64_t)sb.st_size;
		age = now - (int64_t)sb.st_mtim.tv_sec;
		if (age < 0 || (uint64_t)age < min_age_s)
			continue;
		st->stale++;
		st->stale_bytes += (uint64_t)sb.st_size;
		if (!remove)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
			st->removed++;
			st->removed_bytes += (uint64_t)sb.st_size;
		} else if (errno != ENOENT) {
			r = -errno;
			break;
		}
	}
	if (!de && errno && r >= 0)
		r = -errno;
	closedir(d);
	return r;
}

static int local_sweep_tmp(struct kl_backend *b, uint64_t min_age_s, bool remove,
			   struct kl_tmp_stats *ret)
{
	static const char *const dirs[] = {".", "keys", "snapshots", "index", "locks"};
	struct local *l = (struct local *)b;
	struct timespec now;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (l->rootfd < 0)
		return -ENOENT;
	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; i < KL_ARRAY_SIZE(dirs); i++) {
		r = sweep_dir(l->rootfd, dirs[i], now.tv_sec, min_age_s, remove, ret);
		if (r < 0)
			return r;
	}
	for (int i = 0; i < 256; i++) {
		char sub[16];

		snprintf(sub, sizeof(sub), "data/%02x", i);
		r = sweep_dir(l->rootfd, sub, now.tv_sec, min_age_s, remove, ret);
		if (r < 0)
			return r;
	}
	return 0;
}

static void local_free(struct kl_backend *b)
{
	struct local *l = (struct local *)b;

	if (l->rootfd >= 0)
		close(l->rootfd);
	for (int i = 0; i < FD_CACHE; i++)
		if (l->cache[i].fd >= 0)
			close(l->cache[i].fd);
	pthread_mutex_destroy(&l->lock);
	kl_free(l->root);
	kl_free(l->b.location);
	kl_free(l);
}

static const struct kl_backend_ops local_ops = {
	.scheme = "local",
	.list = local_list,
	.get = local_get,
	.put = local_put,
	.del = local_del,
	.stat = local_stat,
	.create = local_create,
	.sweep_tmp = local_sweep_tmp,
	.free = local_free,
};

/*
 * A missing directory is not an error here: create() makes it, and every
 * other operation fails with -ENOENT, which the repository layer reports
 * as "no repository". Opening must never create anything.
 */
int kl_backend_local_open(const char *path, struct kl_backend **ret)
{
	struct local *l;
	int r;

	if (!*path)
		return -KL_EUSAGE;
	l = kl_calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->b.ops = &local_ops;
	l->rootfd = -1;
	pthread_mutex_init(&l->lock, NULL);
	for (int i = 0; i < FD_CACHE; i++)
		l->cache[i].fd = -1;
	l->root = kl_strdup(path);
	l->b.location = kl_strdup(path);
	if (!l->root || !l->b.location) {
		local_free(&l->b);
		return -ENOMEM;
	}
	l->rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->rootfd < 0 && errno != ENOENT) {
		r = -errno;
		local_free(&l->b);
		return r;
	}
	*ret = &l->b;
	return 0;
}

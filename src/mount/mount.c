/*
 * keel mount: sets the caches up, mounts through libfuse3 and serves until
 * the file system is unmounted. libfuse's multi-threaded loop is used: the
 * repository's read paths (index lookups, blob and tree reads, the
 * backends) are thread-safe, as the restore workers already rely on, and a
 * slow fetch from S3 must not hold up every other reader.
 *
 * Stopping: main() has SIGINT and SIGTERM blocked in every thread and
 * takes them with sigwait() (src/cli/signals.c), so libfuse's own signal
 * handlers cannot be used. The CLI hands over a descriptor that becomes
 * readable at the first signal; a thread here waits for it and unmounts
 * as fusermount3 -u does. Either way, the kernel then ends the connection,
 * the loop's reads fail with ENODEV and fuse_loop_mt() returns 0.
 */
#define FUSE_USE_VERSION 35
#include <fuse.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "mount-internal.h"

extern char **environ;

static int load_tree(void *ud, const struct kl_id *id, void **value, size_t *cost)
{
	struct kl_mount *m = ud;
	struct kl_tree *t = kl_calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	rc = kl_repo_read_tree(m->repo, id, t);
	if (rc < 0) {
		kl_free(t);
		return rc;
	}
	*value = t;
	*cost = 1;
	return 0;
}

static void drop_tree(void *value)
{
	kl_tree_release(value);
	kl_free(value);
}

static int load_blob(void *ud, const struct kl_id *id, void **value, size_t *cost)
{
	struct kl_mount *m = ud;
	struct kl_buf *b = kl_malloc(sizeof(*b));
	int rc;

	if (!b)
		return -ENOMEM;
	kl_buf_init(b, KL_BUF_MAX_DEFAULT);
	rc = kl_repo_read_blob(m->repo, id, b);
	if (rc < 0) {
		kl_buf_release(b);
		kl_free(b);
		return rc;
	}
	*value = b;
	*cost = b->len + 256;
	return 0;
}

static void drop_blob(void *value)
{
	kl_buf_release(value);
	kl_free(value);
}

static void refresh(struct kl_mount *m)
{
	struct kl_mview *old, *nv = NULL;
	int rc;

	pthread_mutex_lock(&m->view_mu);
	old = m->view;
	__atomic_add_fetch(&old->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&m->view_mu);
	rc = kl_mview_build(m->repo, m->o->filter, old, &nv);
	/* new snapshots become visible only once the index knows their blobs */
	if (rc >= 0 && nv->n_new)
		rc = kl_repo_refresh_index(m->repo);
	if (rc < 0) {
		/* the storage is away for now: keep showing what was there, try again later */
		kl_repo_clear_err(m->repo);
		kl_mview_unref(nv);
		nv = NULL;
	}
	pthread_mutex_lock(&m->view_mu);
	if (nv) {
		kl_mview_unref(m->view);
		m->view = nv;
	}
	m->refreshed_ns = kl_time_mono_ns();
	pthread_mutex_unlock(&m->view_mu);
	kl_mview_unref(old);
}

struct kl_mview *kl_mount_view(struct kl_mount *m, bool want_fresh)
{
	struct kl_mview *v;
	bool stale;

	if (want_fresh) {
		pthread_mutex_lock(&m->view_mu);
		stale = kl_time_mono_ns() - m->refreshed_ns >= KL_MOUNT_REFRESH_NS;
		pthread_mutex_unlock(&m->view_mu);
		/* one refresh at a time; the others go on with the view they have */
		if (stale && !pthread_mutex_trylock(&m->refresh_mu)) {
			pthread_mutex_lock(&m->view_mu);
			stale = kl_time_mono_ns() - m->refreshed_ns >= KL_MOUNT_REFRESH_NS;
			pthread_mutex_unlock(&m->view_mu);
			if (stale)
				refresh(m);
			pthread_mutex_unlock(&m->refresh_mu);
		}
	}
	pthread_mutex_lock(&m->view_mu);
	v = m->view;
	__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&m->view_mu);
	return v;
}

/* Unmounts as fusermount3 -u does: lazily, so that a busy mount goes once its last user does. */
static void unmount_now(const char *mnt)
{
	char *argv[] = {(char *)"fusermount3", (char *)"-u", (char *)"-z",
			(char *)"-q",	       (char *)mnt,  NULL};
	pid_t pid;
	int st;

	if (geteuid() == 0 && umount2(mnt, MNT_DETACH) == 0)
		return;
	/* not root: the setuid helper that mounted it unmounts it */
	if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) == 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
}

struct stopper {
	int stop_fd, quit_fd;
	const char *mnt;
};

static void *stop_main(void *arg)
{
	struct stopper *s = arg;
	struct pollfd p[2] = {{.fd = s->stop_fd, .events = POLLIN},
			      {.fd = s->quit_fd, .events = POLLIN}};

	while (poll(p, 2, -1) < 0 && errno == EINTR)
		;
	if (p[0].revents && !p[1].revents)
		unmount_now(s->mnt);
	return NULL;
}

static int mount_init(struct kl_mount *m, struct kl_repo *r, const struct kl_mount_opts *o)
{
	uint64_t cache = o->cache_bytes ? o->cache_bytes : KL_MOUNT_CACHE_DEFAULT;

	memset(m, 0, sizeof(*m));
	m->repo = r;
	m->o = o;
	m->uid = geteuid();
	m->gid = getegid();
	pthread_mutex_init(&m->view_mu, NULL);
	pthread_mutex_init(&m->refresh_mu, NULL);
	pthread_mutex_init(&m->zero_mu, NULL);
	pthread_mutex_init(&m->ra_mu, NULL);
	pthread_mutex_init(&m->files_mu, NULL);
	pthread_cond_init(&m->ra_cv, NULL);
	/* trees are counted (a tree's memory is near its blob's size); blobs by bytes */
	kl_mcache_init(&m->trees, SIZE_MAX, 256, load_tree, drop_tree, m);
	kl_mcache_init(&m->blobs, (size_t)cache, 4096, load_blob, drop_blob, m);
	m->refreshed_ns = kl_time_mono_ns();
	return kl_mview_build(r, o->filter, NULL, &m->view);
}

static void mount_release(struct kl_mount *m)
{
	kl_mount_close_files(m);
	pthread_mutex_destroy(&m->files_mu);
	kl_mcache_release(&m->blobs);
	kl_mcache_release(&m->trees);
	kl_mview_unref(m->view);
	pthread_cond_destroy(&m->ra_cv);
	pthread_mutex_destroy(&m->ra_mu);
	pthread_mutex_destroy(&m->zero_mu);
	pthread_mutex_destroy(&m->refresh_mu);
	pthread_mutex_destroy(&m->view_mu);
}

/* Serves the mounted file system f until it is unmounted. */
static int serve(struct kl_mount *m, struct fuse *f, const char *mnt)
{
	struct fuse_loop_config cfg = {.clone_fd = 0, .max_idle_threads = 4};
	struct stopper s = {.stop_fd = m->o->stop_fd, .quit_fd = -1, .mnt = mnt};
	pthread_t stop_thread;
	bool stopper = false, ra = false;
	int quit[2] = {-1, -1}, rc;

	if (s.stop_fd >= 0 && pipe2(quit, O_CLOEXEC) == 0) {
		s.quit_fd = quit[0];
		stopper = !pthread_create(&stop_thread, NULL, stop_main, &s);
	}
	ra = !pthread_create(&m->ra_thread, NULL, kl_mount_readahead_main, m);
	if (m->o->ready)
		m->o->ready(m->o->ud, m->view->n);
	rc = fuse_loop_mt(f, &cfg);
	if (stopper) {
		/* unmounted by someone else: the stopper has nothing left to do */
		if (write(quit[1], "q", 1) < 0)
			pthread_cancel(stop_thread);
		pthread_join(stop_thread, NULL);
	}
	if (quit[0] >= 0) {
		close(quit[0]);
		close(quit[1]);
	}
	if (ra) {
		pthread_mutex_lock(&m->ra_mu);
		m->ra_stop = true;
		pthread_cond_signal(&m->ra_cv);
		pthread_mutex_unlock(&m->ra_mu);
		pthread_join(m->ra_thread, NULL);
	}
	return rc == 0 ? 0 : -EIO;
}

int kl_mount(struct kl_repo *r, const struct kl_mount_opts *o)
{
	char opts[128];
	char *argv[] = {(char *)"keel", (char *)"-o", opts, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	_cleanup_free_ char *mnt = NULL;
	struct kl_mount m;
	struct fuse *f;
	int rc;

	if (access("/dev/fuse", R_OK | W_OK) < 0)
		return kl_repo_fail(r, -ENODEV, "cannot use /dev/fuse: %s", strerror(errno));
	mnt = realpath(o->mountpoint, NULL);
	if (!mnt)
		return kl_repo_fail(r, -errno, "mount point '%s'", o->mountpoint);
	snprintf(opts, sizeof(opts), "ro,default_permissions,fsname=keel,subtype=keel%s",
		 o->allow_other ? ",allow_other" : "");
	rc = mount_init(&m, r, o);
	if (rc < 0) {
		mount_release(&m);
		return kl_repo_fail(r, rc, "cannot list the snapshots");
	}
	f = fuse_new(&args, kl_mount_ops(), sizeof(struct fuse_operations), &m);
	if (!f) {
		rc = kl_repo_fail(r, -EIO, "cannot set FUSE up");
	} else if (fuse_mount(f, mnt) != 0) {
		rc = kl_repo_fail(r, -EIO, "cannot mount at '%s'", mnt);
	} else {
		rc = serve(&m, f, mnt);
		fuse_unmount(f);
	}
	if (f)
		fuse_destroy(f);
	fuse_opt_free_args(&args);
	mount_release(&m);
	return rc;
}

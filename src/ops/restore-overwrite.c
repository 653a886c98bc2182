/*
 * Restore onto what is there already (--overwrite, restic 0.17's names):
 * whether a node's place in the target holds the same thing, and the
 * counts of what was done with each node.
 *
 * "The same" is exact, not a guess from size and mtime: a regular file
 * has the node's size and each piece of it, cut at the lengths of the
 * node's blobs, hashes to that blob's id (the content check restore
 * --verify makes). Reading the file costs a local read; a restore that
 * trusted an mtime could leave a file with other content in place
 * without a word. A symlink is the same with the same target, a FIFO or
 * socket as one of its type, a device with the same number. What is the
 * same is left in place and gets the node's metadata.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "keel/fs.h"
#include "restore-internal.h"

#define LINK_MAX_LEN 65536

const char *kl_rs_rel(const struct rctx *c, const char *path)
{
	size_t n = strlen(path);

	return n >= c->rel_off ? path + c->rel_off : "";
}

bool kl_rs_snapshot_newer(const struct kl_node *nd, const struct stat *st)
{
	if (nd->mtime_sec != (int64_t)st->st_mtim.tv_sec)
		return nd->mtime_sec > (int64_t)st->st_mtim.tv_sec;
	return nd->mtime_nsec > (uint32_t)st->st_mtim.tv_nsec;
}

/* Whether the open regular file fd holds exactly the node's content. */
static bool same_content(struct rctx *c, int fd, const struct kl_node *nd, struct kl_buf *buf)
{
	uint64_t off = 0;

	for (size_t i = 0; i < nd->n_content; i++) {
		struct kl_blob_loc loc;
		struct kl_id got;
		size_t n;

		if (!kl_repo_lookup(c->r, &nd->content[i], &loc))
			return false; /* its length is unknown: restore it (and report why) */
		n = loc.e.raw_length;
		if (off + n > nd->size)
			return false;
		kl_buf_clear(buf);
		if (kl_buf_grow(buf, n) < 0 || kl_fs_pread_full(fd, buf->data, n, off) < 0)
			return false;
		kl_blob_id(kl_repo_keys(c->r), buf->data, n, &got);
		if (!kl_id_eq(&got, &nd->content[i]))
			return false;
		off += n;
	}
	return off == nd->size;
}

/* A regular file that is there: the same as the node? Opens it for that. */
static bool same_file(struct rctx *c, int dirfd, const char *name, const struct kl_node *nd,
		      struct kl_buf *buf, int *fd_ret)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != nd->size)
		return false;
	if (!same_content(c, fd, nd, buf))
		return false;
	if (fd_ret)
		*fd_ret = KL_TAKE_FD(fd);
	return true;
}

static bool same_link(int dirfd, const char *name, const struct kl_node *nd)
{
	_cleanup_free_ char *got = NULL;
	ssize_t n;

	if (!nd->link_len || nd->link_len >= LINK_MAX_LEN)
		return false;
	got = kl_malloc(nd->link_len + 1);
	if (!got)
		return false;
	n = readlinkat(dirfd, name, got, nd->link_len + 1);
	return n == (ssize_t)nd->link_len && !memcmp(got, nd->link, nd->link_len);
}

static bool same_node(struct rctx *c, int dirfd, const char *name, const struct kl_node *nd,
		      const struct stat *st, struct kl_buf *buf, int *fd_ret)
{
	switch (nd->type) {
	case KL_NODE_FILE:
		return S_ISREG(st->st_mode) && same_file(c, dirfd, name, nd, buf, fd_ret);
	case KL_NODE_SYMLINK:
		return S_ISLNK(st->st_mode) && same_link(dirfd, name, nd);
	case KL_NODE_FIFO:
		return S_ISFIFO(st->st_mode);
	case KL_NODE_SOCK:
		return S_ISSOCK(st->st_mode);
	case KL_NODE_CHR:
		return S_ISCHR(st->st_mode) && (uint64_t)st->st_rdev == nd->rdev;
	case KL_NODE_BLK:
		return S_ISBLK(st->st_mode) && (uint64_t)st->st_rdev == nd->rdev;
	default:
		return false;
	}
}

int kl_rs_decide(struct rctx *c, int dirfd, const char *name, const struct kl_node *nd,
		 struct kl_buf *buf, int *fd_ret)
{
	struct stat st;

	if (fd_ret)
		*fd_ret = -1;
	if (dirfd < 0)
		return KL_RESTORE_CREATE;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? KL_RESTORE_CREATE : -errno;
	switch (c->o->overwrite) {
	case KL_OVERWRITE_NEVER:
		return KL_RESTORE_SKIP;
	case KL_OVERWRITE_ALWAYS:
		return KL_RESTORE_REPLACE;
	case KL_OVERWRITE_IF_NEWER:
		if (!kl_rs_snapshot_newer(nd, &st))
			return KL_RESTORE_SKIP;
		break;
	case KL_OVERWRITE_IF_CHANGED:
		break;
	}
	if (same_node(c, dirfd, name, nd, &st, buf, fd_ret))
		return KL_RESTORE_UNCHANGED;
	return KL_RESTORE_REPLACE;
}

void kl_rs_count_locked(struct rctx *c, enum kl_restore_action a, const char *path,
			const struct kl_node *nd)
{
	bool dir = nd && nd->type == KL_NODE_DIR;

	switch (a) {
	case KL_RESTORE_CREATE:
		c->st.created++;
		break;
	case KL_RESTORE_REPLACE:
		c->st.replaced++;
		break;
	case KL_RESTORE_UNCHANGED:
		c->st.unchanged++;
		break;
	case KL_RESTORE_SKIP:
		c->st.skipped++;
		break;
	case KL_RESTORE_DELETE:
		c->st.deleted++;
		break;
	}
	if ((a == KL_RESTORE_UNCHANGED || a == KL_RESTORE_SKIP) && nd && nd->type == KL_NODE_FILE &&
	    !c->o->dry_run) {
		/* nothing to write: done as far as the progress goes */
		c->prog.files_done++;
		c->prog.bytes_done += nd->size;
		kl_rs_progress_locked(c, path, false);
	}
	if (!c->o->action)
		return;
	if (c->o->dry_run || a == KL_RESTORE_CREATE || a == KL_RESTORE_REPLACE ||
	    a == KL_RESTORE_DELETE)
		c->o->action(c->o->action_ud, a, a == KL_RESTORE_DELETE ? path : kl_rs_rel(c, path),
			     dir);
}

void kl_rs_count(struct rctx *c, enum kl_restore_action a, const char *path,
		 const struct kl_node *nd)
{
	pthread_mutex_lock(&c->lock);
	kl_rs_count_locked(c, a, path, nd);
	pthread_mutex_unlock(&c->lock);
}

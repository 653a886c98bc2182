/*
 * Restore's walk: the trees depth first, on a stack of its own. It creates
 * directories, symlinks, FIFOs, devices and hard links itself and hands
 * regular files to the workers.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "restore-internal.h"

/*
 * Whether a worker may create the file rather than the walk: not when it
 * has other names (the walk links them to it right away), nor when several
 * workers write it (every part needs the descriptor).
 */
static bool worker_creates(const struct rctx *c, const struct kl_node *nd)
{
	return c->nthreads > 0 && nd->nlink < 2 && !kl_rs_is_split(c, nd);
}

/* Leaves the creation of f, named name in d, to the worker that writes it. */
static int defer_creation(struct rctx *c, struct dirh *d, struct rfile *f, const char *name)
{
	f->dirfd = fcntl(d->fd, F_DUPFD_CLOEXEC, 0);
	if (f->dirfd < 0)
		return -errno;
	/* the target's root gets no metadata, so nothing waits for its files */
	if (d->depth && !d->pend) {
		d->pend = kl_calloc(1, sizeof(*d->pend));
		if (!d->pend) {
			close(KL_TAKE_FD(f->dirfd));
			return -ENOMEM;
		}
		d->pend->fd = -1;
	}
	/* kl_rs_name_copy bounded it by NAME_MAX, the size of f->name less one */
	memcpy(f->name, name, strlen(name) + 1);
	f->dir = d->pend;
	if (f->dir) {
		pthread_mutex_lock(&c->lock);
		f->dir->pending++;
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

/* Hands a regular file to the workers, creating it first if they cannot. */
static void restore_file(struct rctx *c, struct worker *inline_w, struct dirh *d,
			 struct kl_node *nd, const char *name)
{
	const char *path = (const char *)c->path.data;
	struct rfile *f;
	int rc;

	f = kl_calloc(1, sizeof(*f));
	if (f) {
		f->fd = -1;
		f->dirfd = -1;
		f->path = kl_strdup(path);
	}
	if (!f || !f->path) {
		kl_free(f);
		kl_rs_fail(c, path, -ENOMEM, "cannot restore file");
		return;
	}
	if (!worker_creates(c, nd) || defer_creation(c, d, f, name) < 0) {
		f->fd = kl_rs_create_file(c, path, d->fd, name, nd, &inline_w->check,
					  &f->unchanged);
		if (f->fd < 0) {
			kl_rs_rfile_free(f);
			return;
		}
		if (nd->nlink > 1 && (rc = kl_rs_link_add(c, nd)) < 0)
			kl_rs_fail(c, path, rc, "cannot remember hard link");
	}
	f->node = *nd; /* take the node out of its tree: the workers own it now */
	memset(nd, 0, sizeof(*nd));
	c->files_seen++;
	c->bytes_seen += f->node.size;
	if (f->unchanged || (!f->node.n_content && f->fd >= 0)) {
		f->known_end = true;
		kl_rs_finish_file(c, f);
		return;
	}
	kl_rs_queue_file(c, inline_w, f);
}

static int create_special(struct rctx *c, struct dirh *d, const struct kl_node *nd,
			  const char *name)
{
	_cleanup_free_ char *target = NULL;
	mode_t kind;

	for (int attempt = 0;; attempt++) {
		int rc;

		switch (nd->type) {
		case KL_NODE_SYMLINK:
			if (!target) {
				if (!nd->link_len || memchr(nd->link, 0, nd->link_len))
					return -KL_ECORRUPT;
				target = kl_strndup((const char *)nd->link, nd->link_len);
				if (!target)
					return -ENOMEM;
			}
			rc = symlinkat(target, d->fd, name);
			break;
		case KL_NODE_FIFO:
			rc = mkfifoat(d->fd, name, 0600);
			break;
		case KL_NODE_SOCK:
			/* an unbound socket inode, as rsync --specials makes: no privilege needed
			 */
			rc = mknodat(d->fd, name, S_IFSOCK | 0600, 0);
			break;
		default:
			kind = nd->type == KL_NODE_CHR ? S_IFCHR : S_IFBLK;
			rc = mknodat(d->fd, name, kind | 0600, (dev_t)nd->rdev);
			break;
		}
		if (rc == 0)
			return 0;
		if (errno != EEXIST || attempt)
			return -errno;
		rc = kl_rs_clear_way(d->fd, name);
		if (rc < 0)
			return rc;
	}
}

/* Symlinks, FIFOs, sockets and devices: created and finished here, by name. */
static void restore_special(struct rctx *c, struct dirh *d, const struct kl_node *nd,
			    const char *name)
{
	const char *path = (const char *)c->path.data;
	int rc, a;

	a = kl_rs_decide(c, d->fd, name, nd, NULL, NULL);
	if (a == KL_RESTORE_SKIP) {
		kl_rs_count(c, a, path, nd);
		return;
	}
	if (a == KL_RESTORE_UNCHANGED) {
		kl_rs_count(c, a, path, nd);
		if (nd->nlink > 1 && (rc = kl_rs_link_add(c, nd)) < 0)
			kl_rs_fail(c, path, rc, "cannot remember hard link");
		kl_rs_apply_meta(c, path, -1, d->fd, name, nd);
		return;
	}
	rc = create_special(c, d, nd, name);
	if (rc == -EPERM && (nd->type == KL_NODE_CHR || nd->type == KL_NODE_BLK)) {
		kl_rs_omitted(c, path, &c->st.specials_omitted, NULL,
			      "device not restored: creating devices needs privilege");
		return;
	}
	if (rc < 0) {
		kl_rs_fail(c, path, rc,
			   nd->type == KL_NODE_SYMLINK ? "cannot create symlink"
						       : "cannot create special file");
		return;
	}
	kl_rs_count(c, a == KL_RESTORE_REPLACE ? a : KL_RESTORE_CREATE, path, nd);
	if (nd->nlink > 1 && (rc = kl_rs_link_add(c, nd)) < 0)
		kl_rs_fail(c, path, rc, "cannot remember hard link");
	kl_rs_apply_meta(c, path, -1, d->fd, name, nd);
	c->st.others++;
}

/*
 * A directory being restored: the walk keeps these on a stack of its own,
 * not the thread's, so a tree of any depth can be restored.
 */
struct rframe {
	struct rframe *up;
	struct dirh d;
	struct kl_node *nd; /* its node, in the tree of the frame above (or the top) */
	struct kl_tree t;   /* its children */
	size_t next;	    /* the next child to restore */
	size_t base;	    /* c->path.len of its own path */
	bool all;
};

/*
 * Starts the directory node nd below d (c->path is its path): creates it
 * unless all is false (then it is only on the way to included nodes and
 * is created when the first of them is), and reads its children.
 */
static struct rframe *dir_begin(struct rctx *c, struct rframe *up, struct dirh *parent,
				struct kl_node *nd, bool all)
{
	struct rframe *f = kl_calloc(1, sizeof(*f));
	int rc;

	if (!f) {
		kl_rs_fail(c, (const char *)c->path.data, -ENOMEM, "cannot restore directory");
		return NULL;
	}
	f->up = up;
	f->d.parent = parent;
	f->d.name = nd->name;
	f->d.name_len = nd->name_len;
	f->d.fd = -1;
	f->d.depth = parent->depth + 1;
	f->d.path_len = c->path.len;
	f->nd = nd;
	f->base = c->path.len;
	f->all = all;
	if (all) {
		rc = kl_rs_dir_ensure(c, &f->d);
		if (rc == KL_RS_KEPT) {
			kl_free(f);
			return NULL;
		}
		if (rc < 0) {
			kl_rs_fail(c, (const char *)c->path.data, rc, "cannot create directory");
			kl_free(f);
			return NULL;
		}
	}
	rc = nd->has_subtree ? kl_repo_read_tree(c->r, &nd->subtree, &f->t) : -KL_ECORRUPT;
	/*
	 * --delete: before its children are restored, while the tree still has
	 * every name (the walk hands nodes over to the workers), and before
	 * its metadata (a removal changes its mtime)
	 */
	if (rc >= 0 && c->o->delete_extra && all && f->d.fd >= 0)
		kl_rs_delete_extra(c, f->d.fd, &f->t);
	if (rc == -KL_ENOTFOUND)
		kl_rs_fail(c, (const char *)c->path.data, rc,
			   "directory listing is not in the index; what is below is not restored "
			   "(run 'keel repair index'; if no pack holds it, it is lost)");
	else if (rc < 0)
		kl_rs_fail(c, (const char *)c->path.data, rc,
			   "directory listing is damaged; what is below is not restored");
	return f;
}

/* All of f's children are done: its metadata, then back to its parent. */
static struct rframe *dir_end(struct rctx *c, struct rframe *f)
{
	struct rframe *up = f->up;

	kl_buf_setlen(&c->path, f->base);
	kl_rs_dir_finish(c, &f->d, f->nd);
	kl_tree_release(&f->t);
	kl_free(f);
	return up;
}

/*
 * Restores nd below d (c->path holds its snapshot path). Returns the
 * frame of a directory whose children are to be restored next, or NULL.
 */
static struct rframe *restore_node(struct rctx *c, struct worker *inline_w, struct rframe *up,
				   struct dirh *d, struct kl_node *nd, bool all)
{
	const char *path = (const char *)c->path.data;
	char name[NAME_MAX + 1];
	int rc;

	if (c->o->excludes.n && kl_patterns_match(&c->o->excludes, path))
		return NULL; /* an excluded directory is skipped whole */
	if (!all && kl_patterns_match(&c->o->includes, path))
		all = true; /* a directory that matches covers what is below it */
	if (nd->type == KL_NODE_DIR) {
		if (all || kl_patterns_may_match_below(&c->o->includes, path))
			return dir_begin(c, up, d, nd, all);
		return NULL;
	}
	if (!all)
		return NULL;
	rc = kl_rs_name_copy(name, nd->name, nd->name_len);
	if (rc >= 0)
		rc = kl_rs_dir_ensure(c, d);
	if (rc == KL_RS_KEPT)
		return NULL;
	if (rc < 0) {
		kl_rs_fail(c, path, rc, "cannot restore");
		return NULL;
	}
	if (kl_rs_restore_as_link(c, d, nd, name))
		return NULL;
	if (nd->type == KL_NODE_FILE)
		restore_file(c, inline_w, d, nd, name);
	else
		restore_special(c, d, nd, name);
	return NULL;
}

/* Restores nd below d and, for a directory, everything below it, depth first. */
void kl_rs_restore_tree(struct rctx *c, struct worker *inline_w, struct dirh *d, struct kl_node *nd,
			bool all)
{
	struct rframe *f = restore_node(c, inline_w, NULL, d, nd, all);

	while (f) {
		struct kl_node *k;
		struct rframe *kf;
		int rc;

		if (f->next >= f->t.n || kl_rs_stopped(c)) {
			f = dir_end(c, f);
			continue;
		}
		k = &f->t.nodes[f->next++];
		kl_buf_setlen(&c->path, f->base);
		rc = kl_buf_addch(&c->path, '/');
		if (rc >= 0)
			rc = kl_buf_add(&c->path, k->name, k->name_len);
		if (rc < 0) {
			kl_rs_fail(c, (const char *)c->path.data, rc, "cannot restore");
			f->next = f->t.n;
			continue;
		}
		kf = restore_node(c, inline_w, f, &f->d, k, f->all);
		if (kf)
			f = kf;
	}
}

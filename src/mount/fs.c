/*
 * The FUSE operations (libfuse3's path-based API). Every call resolves its
 * path afresh: the layout part in the current view, the rest through the
 * snapshot's trees, which stay decoded in the tree cache, so a lookup
 * costs a few binary searches. Snapshots never change, so the kernel may
 * keep file pages between opens (kernel_cache); the layout directories do
 * change, so attributes and entries are cached for a second only and
 * missing names not at all (a new snapshot shows at the next listing).
 */
#define FUSE_USE_VERSION 35
#include <fuse.h>
#include <stdio.h>
#include <sys/sysmacros.h>

#include "mount-internal.h"

/* What one path names, with the references that keep it alive. */
struct mres {
	struct kl_mpath p;
	struct kl_mview *view;
	struct kl_mcache_ent *tree; /* the tree holding node */
	const struct kl_node *node; /* NULL: a layout entry or a snapshot's root */
	struct kl_id parent;	    /* the tree holding node */
};

static struct kl_mount *mount_of(void)
{
	return fuse_get_context()->private_data;
}

static void mres_release(struct kl_mount *m, struct mres *r)
{
	kl_mcache_put(&m->trees, r->tree);
	kl_mview_unref(r->view);
	memset(r, 0, sizeof(*r));
}

/* The node at rest ("/a/b") below a snapshot's tree. */
static int resolve_tree(struct kl_mount *m, struct mres *r)
{
	const char *s = r->p.rest;
	struct kl_id cur = r->p.snap->s.tree;

	for (;;) {
		const struct kl_tree *t;
		const struct kl_node *n;
		const char *e;
		int rc;

		while (*s == '/')
			s++;
		if (!*s)
			return 0;
		e = strchrnul(s, '/');
		rc = kl_mcache_get(&m->trees, &cur, &r->tree);
		if (rc < 0) {
			kl_repo_clear_err(m->repo);
			return kl_mount_errno(rc);
		}
		t = r->tree->value;
		n = kl_tree_find(t, (const uint8_t *)s, (size_t)(e - s));
		if (!n)
			return -ENOENT;
		r->parent = cur;
		s = e;
		while (*s == '/')
			s++;
		if (!*s) {
			r->node = n;
			return 0;
		}
		if (n->type != KL_NODE_DIR)
			return -ENOTDIR;
		if (!n->has_subtree)
			return -ENOENT; /* an empty directory */
		cur = n->subtree;
		kl_mcache_put(&m->trees, r->tree);
		r->tree = NULL;
	}
}

static int resolve(struct kl_mount *m, const char *path, struct mres *r)
{
	int rc;

	memset(r, 0, sizeof(*r));
	r->view = kl_mount_view(m, false);
	rc = kl_mview_resolve(r->view, path, &r->p);
	if (rc == -ENOENT) {
		/* perhaps a snapshot newer than the view: look again (refreshes are rate-limited)
		 */
		kl_mview_unref(r->view);
		r->view = kl_mount_view(m, true);
		rc = kl_mview_resolve(r->view, path, &r->p);
	}
	if (rc >= 0 && r->p.kind == KL_MPATH_SNAP)
		rc = resolve_tree(m, r);
	if (rc < 0)
		mres_release(m, r);
	return rc;
}

static void set_time(struct timespec *ts, int64_t sec, uint32_t nsec)
{
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = nsec < KL_NSEC_PER_SEC ? nsec : 0;
}

static void node_stat(const struct mres *r, struct stat *st)
{
	static const mode_t types[] = {0,	S_IFREG, S_IFDIR, S_IFLNK,
				       S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK};
	const struct kl_node *n = r->node;

	st->st_mode = (n->type >= 1 && n->type <= 7 ? types[n->type] : S_IFREG) | (n->mode & 07777);
	st->st_uid = n->uid;
	st->st_gid = n->gid;
	st->st_nlink = n->nlink ? (nlink_t)n->nlink : 1;
	st->st_rdev = (dev_t)n->rdev;
	if (n->type == KL_NODE_FILE)
		st->st_size = (off_t)n->size;
	else if (n->type == KL_NODE_SYMLINK)
		st->st_size = (off_t)n->link_len;
	set_time(&st->st_mtim, n->mtime_sec, n->mtime_nsec);
	set_time(&st->st_atim, n->atime_sec, n->atime_nsec);
	set_time(&st->st_ctim, n->ctime_sec, n->ctime_nsec);
	if (n->type == KL_NODE_FILE && n->nlink > 1) {
		/* hard links keep their structure: one inode per (snapshot, original inode) */
		uint64_t di[2] = {n->dev, n->inode};

		st->st_ino = kl_mount_ino(r->p.snap->id.b, KL_ID_LEN, di, sizeof(di));
	} else {
		st->st_ino = kl_mount_ino(r->parent.b, KL_ID_LEN, n->name, n->name_len);
	}
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct kl_mount *m = mount_of();
	struct mres r;
	int rc = resolve(m, path, &r);

	(void)fi;
	if (rc < 0)
		return rc;
	memset(st, 0, sizeof(*st));
	st->st_blksize = 4096;
	if (r.node) {
		node_stat(&r, st);
	} else if (r.p.kind == KL_MPATH_SNAP) {
		const struct kl_snapshot *s = &r.p.snap->s;

		/* a snapshot's root has no metadata of its own: the snapshot's */
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		st->st_uid = s->uid;
		st->st_gid = s->gid;
		set_time(&st->st_mtim, kl_time_floor_sec(s->time_ns),
			 (uint32_t)(s->time_ns - kl_time_floor_sec(s->time_ns) * KL_NSEC_PER_SEC));
		st->st_atim = st->st_ctim = st->st_mtim;
		st->st_ino = kl_mount_ino(r.p.snap->id.b, KL_ID_LEN, NULL, 0);
	} else {
		st->st_mode = r.p.kind == KL_MPATH_LINK ? S_IFLNK | 0777 : S_IFDIR | 0555;
		st->st_nlink = r.p.kind == KL_MPATH_LINK ? 1 : 2;
		st->st_size = r.p.kind == KL_MPATH_LINK ? (off_t)strlen(r.p.link) : 0;
		st->st_uid = m->uid;
		st->st_gid = m->gid;
		set_time(&st->st_mtim, kl_time_floor_sec(r.view->newest_ns), 0);
		st->st_atim = st->st_ctim = st->st_mtim;
		st->st_ino = strcmp(path, "/") ? kl_mount_ino(path, strlen(path), NULL, 0) : 1;
	}
	st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
	mres_release(m, &r);
	return 0;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	struct kl_mount *m = mount_of();
	struct mres r;
	const void *target = NULL;
	size_t len = 0;
	int rc = resolve(m, path, &r);

	if (rc < 0)
		return rc;
	if (r.p.kind == KL_MPATH_LINK) {
		target = r.p.link;
		len = strlen(r.p.link);
	} else if (r.node && r.node->type == KL_NODE_SYMLINK) {
		target = r.node->link;
		len = r.node->link_len;
	} else {
		rc = -EINVAL;
	}
	if (rc >= 0 && size) {
		/* cut to the buffer, NUL-terminated, as FUSE's readlink wants */
		len = KL_MIN(len, size - 1);
		memcpy(buf, target, len);
		buf[len] = 0;
	}
	mres_release(m, &r);
	return rc;
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fill_one(void *ud, const char *name)
{
	struct fill_ctx *c = ud;

	return c->filler(c->buf, name, NULL, 0, 0) ? -ENOBUFS : 0;
}

static int fill_tree(struct kl_mount *m, const struct kl_id *id, struct fill_ctx *c)
{
	struct kl_mcache_ent *e;
	const struct kl_tree *t;
	char *name = NULL;
	int rc = kl_mcache_get(&m->trees, id, &e);

	if (rc < 0) {
		kl_repo_clear_err(m->repo);
		return kl_mount_errno(rc);
	}
	t = e->value;
	for (size_t i = 0; rc >= 0 && i < t->n; i++) {
		name = kl_strndup((const char *)t->nodes[i].name, t->nodes[i].name_len);
		rc = name ? fill_one(c, name) : -ENOMEM;
		kl_free(name);
	}
	kl_mcache_put(&m->trees, e);
	return rc == -ENOBUFS ? 0 : rc;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct kl_mount *m = mount_of();
	struct fill_ctx c = {buf, filler};
	struct mres r;
	int rc = resolve(m, path, &r);

	(void)off, (void)fi, (void)flags;
	if (rc < 0)
		return rc;
	if (r.p.kind == KL_MPATH_DIR) {
		/* a listing of the layout is when new snapshots are looked for */
		kl_mview_unref(r.view);
		r.view = kl_mount_view(m, true);
		rc = kl_mview_resolve(r.view, path, &r.p);
	}
	if (rc >= 0 && r.p.kind == KL_MPATH_LINK)
		rc = -ENOTDIR;
	if (rc >= 0 && r.node && r.node->type != KL_NODE_DIR)
		rc = -ENOTDIR;
	if (rc >= 0) {
		fill_one(&c, ".");
		fill_one(&c, "..");
	}
	if (rc < 0) {
		/* nothing more */
	} else if (r.p.kind == KL_MPATH_DIR) {
		rc = kl_mview_list(r.view, &r.p, fill_one, &c);
		rc = rc == -ENOBUFS ? 0 : rc;
	} else if (!r.node) {
		rc = fill_tree(m, &r.p.snap->s.tree, &c);
	} else if (r.node->has_subtree) {
		rc = fill_tree(m, &r.node->subtree, &c);
	}
	mres_release(m, &r);
	return rc;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct kl_mount *m = mount_of();
	struct kl_mfile *f;
	struct mres r;
	int rc;

	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	rc = resolve(m, path, &r);
	if (rc < 0)
		return rc;
	if (!r.node || r.node->type == KL_NODE_DIR)
		rc = -EISDIR;
	else if (r.node->type != KL_NODE_FILE)
		rc = -EACCES; /* devices and fifos are shown, not opened through the mount */
	else
		rc = kl_mfile_open(m, r.node, &f);
	mres_release(m, &r);
	if (rc < 0)
		return rc;
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->keep_cache = 1; /* a snapshot's file never changes */
	return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	if (off < 0)
		return -EINVAL;
	return kl_mfile_read(mount_of(), (struct kl_mfile *)(uintptr_t)fi->fh, buf, size,
			     (uint64_t)off);
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	kl_mfile_close(mount_of(), (struct kl_mfile *)(uintptr_t)fi->fh);
	return 0;
}

static off_t op_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
	(void)path;
	return (off_t)kl_mfile_seek((struct kl_mfile *)(uintptr_t)fi->fh, off, whence);
}

static int op_getxattr(const char *path, const char *name, char *value, size_t size)
{
	struct kl_mount *m = mount_of();
	struct mres r;
	int rc = resolve(m, path, &r);

	if (rc < 0)
		return rc;
	rc = -ENODATA;
	for (size_t i = 0; r.node && i < r.node->n_xattrs; i++) {
		const struct kl_xattr *x = &r.node->xattrs[i];

		if (strcmp(x->name, name))
			continue;
		if (x->value_len > INT32_MAX)
			rc = -E2BIG;
		else if (size && size < x->value_len)
			rc = -ERANGE;
		else
			rc = (int)x->value_len;
		if (rc > 0 && size)
			memcpy(value, x->value, x->value_len);
		break;
	}
	mres_release(m, &r);
	return rc;
}

static int op_listxattr(const char *path, char *list, size_t size)
{
	struct kl_mount *m = mount_of();
	struct mres r;
	size_t need = 0;
	int rc = resolve(m, path, &r);

	if (rc < 0)
		return rc;
	for (size_t i = 0; r.node && i < r.node->n_xattrs; i++)
		need += strlen(r.node->xattrs[i].name) + 1;
	if (need > INT32_MAX)
		rc = -E2BIG;
	else if (size && size < need)
		rc = -ERANGE;
	for (size_t i = 0, at = 0; rc >= 0 && size && r.node && i < r.node->n_xattrs; i++) {
		size_t n = strlen(r.node->xattrs[i].name) + 1;

		memcpy(list + at, r.node->xattrs[i].name, n);
		at += n;
	}
	mres_release(m, &r);
	return rc < 0 ? rc : (int)need;
}

static int op_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_namemax = 255;
	st->f_flag = ST_RDONLY;
	return 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->use_ino = 1;
	cfg->kernel_cache = 1;
	cfg->entry_timeout = 1;
	cfg->attr_timeout = 1;
	cfg->negative_timeout = 0;
	/* ACLs are xattrs the kernel reads only when told so (and then enforces them too) */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	return mount_of();
}

static const struct fuse_operations ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.lseek = op_lseek,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.statfs = op_statfs,
};

const struct fuse_operations *kl_mount_ops(void)
{
	return &ops;
}

/*
 * Before a restore: one walk of the trees it will restore, for what must
 * be known at the start. The totals of files and bytes, so the progress
 * has a percentage and an ETA from the first second; whether the include
 * patterns match anything at all (a restore of nothing is an error, not
 * a success); and with --dry-run what the restore would do with each
 * node, decided as the restore decides (restore-overwrite.c) from what
 * is in the target, which is only looked at: directories are opened
 * with O_NOFOLLOW, nothing is created, written or removed.
 *
 * Trees are read twice when the restore follows (they are small beside
 * the data), and only when a total, a dry run or include patterns ask.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "link-hash.h"
#include "restore-internal.h"

#define PLAN_BUF_MAX ((size_t)128 << 20)

/*
 * The first name of a multiply linked inode, as the restore will leave it:
 * its later names are linked to it (restore-links.c), so one that is
 * there already is unchanged only when it is that very file, kept.
 */
struct plink {
	uint64_t dev, ino; /* in the snapshot */
	bool used;	   /* else an empty slot */
	bool kept;	   /* the first name's file that is there stays */
	dev_t tdev;	   /* that file, when kept */
	ino_t tino;
};

struct pframe {
	struct pframe *up;
	struct kl_tree t;
	size_t next, base;
	int fd;	  /* the directory in the target, or -1 (not there, or to be replaced) */
	bool own; /* fd is ours to close */
	bool all; /* every node below is restored */
	bool tree_ok;
};

struct plan {
	struct rctx *c;
	struct kl_buf buf; /* file pieces being hashed */
	bool full;	   /* all of it; else only until an include pattern matches */
	struct plink *links;
	size_t n_links, cap_links;
};

static struct plink *plink_slot(struct plink *v, size_t cap, uint64_t dev, uint64_t ino)
{
	size_t mask = cap - 1, i;

	for (i = kl_link_hash(dev, ino, mask);; i = (i + 1) & mask)
		if (!v[i].used || (v[i].dev == dev && v[i].ino == ino))
			return &v[i];
}

static struct plink *plink_find(struct plan *p, const struct kl_node *nd)
{
	struct plink *e;

	if (!p->cap_links)
		return NULL;
	e = plink_slot(p->links, p->cap_links, nd->dev, nd->inode);
	return e->used ? e : NULL;
}

/* Remembers the first name of nd's inode; kept: the file at dirfd/name stays. */
static void plink_add(struct plan *p, const struct kl_node *nd, int dirfd, const char *name,
		      bool kept)
{
	struct plink *e;
	struct stat st;

	if ((p->n_links + 1) * 2 > p->cap_links) {
		size_t ncap = p->cap_links ? p->cap_links * 2 : 64;
		struct plink *v = kl_calloc(ncap, sizeof(*v));

		if (!v)
			return; /* the listing is a little less exact, nothing worse */
		for (size_t i = 0; i < p->cap_links; i++)
			if (p->links[i].used)
				*plink_slot(v, ncap, p->links[i].dev, p->links[i].ino) =
					p->links[i];
		kl_free(p->links);
		p->links = v;
		p->cap_links = ncap;
	}
	e = plink_slot(p->links, p->cap_links, nd->dev, nd->inode);
	e->used = true;
	e->dev = nd->dev;
	e->ino = nd->inode;
	e->kept = kept && dirfd >= 0 && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (e->kept) {
		e->tdev = st.st_dev;
		e->tino = st.st_ino;
	}
	p->n_links++;
}

/* A later name of an inode whose first name is planned: as kl_rs_restore_as_link decides. */
static enum kl_restore_action plan_link(struct rctx *c, const struct plink *e, int dirfd,
					const char *name, const struct kl_node *nd)
{
	struct stat st;

	if (dirfd < 0 || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return KL_RESTORE_CREATE;
	if (c->o->overwrite == KL_OVERWRITE_NEVER ||
	    (c->o->overwrite == KL_OVERWRITE_IF_NEWER && !kl_rs_snapshot_newer(nd, &st)))
		return KL_RESTORE_SKIP;
	if (e->kept && st.st_dev == e->tdev && st.st_ino == e->tino)
		return KL_RESTORE_UNCHANGED;
	return KL_RESTORE_REPLACE;
}

/*
 * Where the directory node nd (c->path) is in the target below parent_fd:
 * an open descriptor, -1 when it is not there, or KL_RS_KEPT when a
 * non-directory there is kept (--overwrite never, if-newer).
 */
static int plan_dir_fd(struct rctx *c, int parent_fd, const char *name, bool all)
{
	const char *path = (const char *)c->path.data;
	struct stat st;
	int fd;

	if (parent_fd < 0 || !c->o->dry_run)
		return -1;
	if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		return fd >= 0 ? fd : -1;
	}
	if (c->o->overwrite == KL_OVERWRITE_NEVER || c->o->overwrite == KL_OVERWRITE_IF_NEWER) {
		if (all)
			kl_rs_count(c, KL_RESTORE_SKIP, path, NULL);
		return KL_RS_KEPT;
	}
	if (all)
		kl_rs_count(c, KL_RESTORE_REPLACE, path, NULL);
	return -1;
}

static struct pframe *plan_push(struct plan *p, struct pframe *up, const struct kl_node *nd, int fd,
				bool own, bool all)
{
	struct rctx *c = p->c;
	struct pframe *f = kl_calloc(1, sizeof(*f));

	if (!f) {
		if (own && fd >= 0)
			close(fd);
		return NULL;
	}
	f->up = up;
	f->fd = fd;
	f->own = own;
	f->all = all;
	f->base = c->path.len;
	/* an unreadable tree is reported by the restore itself */
	f->tree_ok = nd->has_subtree && kl_repo_read_tree(c->r, &nd->subtree, &f->t) >= 0;
	if (!f->tree_ok)
		kl_repo_clear_err(c->r);
	/* as the restore does, before the children */
	if (c->o->dry_run && c->o->delete_extra && f->all && f->fd >= 0 && f->tree_ok)
		kl_rs_delete_extra(c, f->fd, &f->t);
	return f;
}

static struct pframe *plan_pop(struct plan *p, struct pframe *f)
{
	struct rctx *c = p->c;
	struct pframe *up = f->up;

	kl_buf_setlen(&c->path, f->base);
	if (f->own && f->fd >= 0)
		close(f->fd);
	kl_tree_release(&f->t);
	kl_free(f);
	return up;
}

/* One node below parent_fd (c->path is its path): a frame for a directory, or NULL. */
static struct pframe *plan_node(struct plan *p, struct pframe *up, int parent_fd,
				const struct kl_node *nd, bool all)
{
	struct rctx *c = p->c;
	const char *path = (const char *)c->path.data;
	const struct plink *link;
	char name[NAME_MAX + 1];
	int fd, a;

	if (c->o->excludes.n && kl_patterns_match(&c->o->excludes, path))
		return NULL;
	if (!all && kl_patterns_match(&c->o->includes, path))
		all = c->matched = true;
	if (kl_rs_name_copy(name, nd->name, nd->name_len) < 0)
		return NULL; /* reported by the restore */
	if (nd->type == KL_NODE_DIR) {
		if (!all && !kl_patterns_may_match_below(&c->o->includes, path))
			return NULL;
		fd = plan_dir_fd(c, parent_fd, name, all);
		if (fd == KL_RS_KEPT)
			return NULL;
		return plan_push(p, up, nd, fd, true, all);
	}
	if (!all)
		return NULL;
	if (nd->type == KL_NODE_FILE) {
		c->prog.files_total++;
		c->prog.bytes_total += nd->size;
	}
	if (!c->o->dry_run)
		return NULL;
	link = nd->nlink > 1 ? plink_find(p, nd) : NULL;
	if (link) {
		a = (int)plan_link(c, link, parent_fd, name, nd);
	} else {
		a = kl_rs_decide(c, parent_fd, name, nd, &p->buf, &fd);
		if (fd >= 0)
			close(fd);
		if (a < 0)
			a = KL_RESTORE_REPLACE;
		/* a kept first name is not linked to: its later names stand alone */
		if (nd->nlink > 1 && a != KL_RESTORE_SKIP)
			plink_add(p, nd, parent_fd, name, a == KL_RESTORE_UNCHANGED);
	}
	kl_rs_count(c, (enum kl_restore_action)a, path, nd);
	return NULL;
}

int kl_rs_plan(struct rctx *c, const struct kl_node *top, bool contents, bool full)
{
	struct plan p = {.c = c, .buf = KL_BUF_INIT(PLAN_BUF_MAX), .full = full};
	struct pframe *f;
	size_t base = c->path.len;
	bool all = c->all;
	int rc = 0;

	if (!all && base && kl_patterns_match(&c->o->includes, (const char *)c->path.data))
		all = c->matched = true;
	if (contents) {
		f = plan_push(&p, NULL, top, c->rootfd, false, all);
	} else {
		/* a single file (or the node at path): its own name in the target */
		f = plan_node(&p, NULL, c->rootfd, top, all);
	}
	/* no worker runs yet: the counts and totals need no lock */
	while (f) {
		const struct kl_node *k;
		struct pframe *kf;

		if (f->next >= f->t.n || (!p.full && c->matched)) {
			f = plan_pop(&p, f);
			continue;
		}
		k = &f->t.nodes[f->next++];
		kl_buf_setlen(&c->path, f->base);
		rc = kl_buf_addch(&c->path, '/');
		if (rc >= 0)
			rc = kl_buf_add(&c->path, k->name, k->name_len);
		if (rc < 0)
			break;
		kf = plan_node(&p, f, f->fd, k, f->all);
		if (kf)
			f = kf;
	}
	while (f)
		f = plan_pop(&p, f);
	kl_buf_setlen(&c->path, base);
	kl_buf_release(&p.buf);
	kl_free(p.links);
	return rc < 0 ? rc : 0;
}

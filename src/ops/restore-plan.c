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

#include "restore-internal.h"

#define PLAN_BUF_MAX ((size_t)128 << 20)

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
};

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
	if (c->o->dry_run && c->o->delete_extra && f->fd >= 0 && f->tree_ok)
		kl_rs_delete_extra(c, f->fd, &f->t, f->all);
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
	a = kl_rs_decide(c, parent_fd, name, nd, &p->buf, &fd);
	if (fd >= 0)
		close(fd);
	kl_rs_count(c, a < 0 ? KL_RESTORE_REPLACE : (enum kl_restore_action)a, path, nd);
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
	return rc < 0 ? rc : 0;
}

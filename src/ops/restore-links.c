/*
 * Restore's hard links: where the first name of a multiply linked inode
 * went, by (dev, inode), and linking its later names to it.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "link-hash.h"
#include "restore-internal.h"

static struct link_ent *link_slot(struct link_ent *v, size_t cap, uint64_t dev, uint64_t ino)
{
	size_t mask = cap - 1, i;

	for (i = kl_link_hash(dev, ino, mask);; i = (i + 1) & mask)
		if (!v[i].rel || (v[i].dev == dev && v[i].ino == ino))
			return &v[i];
}

static const char *link_find(struct rctx *c, const struct kl_node *nd)
{
	if (!c->cap_links)
		return NULL;
	return link_slot(c->links, c->cap_links, nd->dev, nd->inode)->rel;
}

/* Remembers where the first name of a multiply linked inode went. */
int kl_rs_link_add(struct rctx *c, const struct kl_node *nd)
{
	struct link_ent *e;

	if ((c->n_links + 1) * 2 > c->cap_links) {
		size_t ncap = c->cap_links ? c->cap_links * 2 : 256;
		struct link_ent *v = kl_calloc(ncap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < c->cap_links; i++)
			if (c->links[i].rel)
				*link_slot(v, ncap, c->links[i].dev, c->links[i].ino) = c->links[i];
		kl_free(c->links);
		c->links = v;
		c->cap_links = ncap;
	}
	e = link_slot(c->links, c->cap_links, nd->dev, nd->inode);
	if (e->rel)
		return 0;
	e->rel = kl_strdup((const char *)c->path.data + c->rel_off);
	if (!e->rel)
		return -ENOMEM;
	e->dev = nd->dev;
	e->ino = nd->inode;
	c->n_links++;
	return 0;
}

void kl_rs_links_release(struct rctx *c)
{
	for (size_t i = 0; i < c->cap_links; i++)
		kl_free(c->links[i].rel);
	kl_free(c->links);
}

/*
 * Links dirfd/name to the earlier name rel (below the target). The walk
 * from the target goes one directory at a time with O_NOFOLLOW, so it
 * works for any depth and cannot leave the target. there: what is at
 * dirfd/name, or NULL. Returns 1 when it is that file already, 2 when
 * something else was replaced.
 */
static int link_to(struct rctx *c, const char *rel, int dirfd, const char *name,
		   const struct stat *there)
{
	struct stat first;
	_cleanup_close_ int cur = -1;
	const char *s = rel, *e;
	char comp[NAME_MAX + 1];
	int from = c->rootfd, next, rc;

	for (;;) {
		e = strchrnul(s, '/');
		if ((size_t)(e - s) > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(comp, s, (size_t)(e - s));
		comp[e - s] = 0;
		if (!*e)
			break;
		next = openat(from, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return -errno;
		if (cur >= 0)
			close(cur);
		from = cur = next;
		s = e + 1;
	}
	if (there && fstatat(from, comp, &first, AT_SYMLINK_NOFOLLOW) == 0 &&
	    first.st_dev == there->st_dev && first.st_ino == there->st_ino)
		return 1;
	if (linkat(from, comp, dirfd, name, 0) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	rc = kl_rs_clear_way(dirfd, name);
	if (rc < 0)
		return rc;
	return linkat(from, comp, dirfd, name, 0) < 0 ? -errno : 2;
}

/*
 * A later name of an inode restored before: link it. Returns true when
 * done (or reported); false to restore the node as a node of its own.
 */
bool kl_rs_restore_as_link(struct rctx *c, struct dirh *d, const struct kl_node *nd,
			   const char *name)
{
	const char *path = (const char *)c->path.data;
	const char *rel;
	struct stat st;
	bool there;
	int rc;

	if (nd->nlink < 2 || nd->type == KL_NODE_DIR)
		return false;
	rel = link_find(c, nd);
	if (!rel)
		return false;
	there = fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (there &&
	    (c->o->overwrite == KL_OVERWRITE_NEVER ||
	     (c->o->overwrite == KL_OVERWRITE_IF_NEWER && !kl_rs_snapshot_newer(nd, &st)))) {
		kl_rs_count(c, KL_RESTORE_SKIP, path, nd);
		return true;
	}
	rc = link_to(c, rel, d->fd, name, there ? &st : NULL);
	if (rc == 1) {
		/* that name of the file is there already */
		kl_rs_count(c, KL_RESTORE_UNCHANGED, path, nd);
		return true;
	}
	if (rc >= 0)
		kl_rs_count(c, rc == 2 ? KL_RESTORE_REPLACE : KL_RESTORE_CREATE, path, nd);
	if (rc < 0) {
		/* the first name is gone or unreachable: a copy keeps the data */
		kl_rs_fail(c, path, rc, "cannot create hard link; restoring it as a separate copy");
		return false;
	}
	/* if the file turns out damaged, this name is renamed too */
	if (nd->type == KL_NODE_FILE &&
	    (rc = kl_rs_name_add(&c->lnames, &c->n_lnames, &c->cap_lnames, path, c->rel_off, nd)) <
		    0)
		kl_rs_fail(c, path, rc, "cannot remember hard link");
	pthread_mutex_lock(&c->lock);
	if (nd->type == KL_NODE_FILE) {
		c->st.files++;
		c->prog.files_done++; /* the totals count every name */
		c->prog.bytes_done += nd->size;
	} else
		c->st.others++;
	pthread_mutex_unlock(&c->lock);
	return true;
}

/*
 * Hard links: a file with several names is read and chunked once per
 * backup. The first name read registers its inode here; a later name of
 * the same inode, with the same size, mtime and ctime (so the same
 * content), takes the first name's chunk list instead of reading the
 * file again: at once when that list is known, or when the first name's
 * file job completes (until then the later name holds its directory
 * open, like a file in flight). Restore links the names again by
 * (dev, inode), which the nodes keep.
 */
#include "backup-internal.h"
#include "link-hash.h"

struct link_follower {
	struct dir_job *d;
	size_t slot;
	struct link_follower *next;
};

struct kl_bk_link {
	uint64_t dev, ino;
	/* what the first name's stat said, to tell whether a later name has the same content */
	uint64_t size;
	int64_t mtime_sec, ctime_sec;
	uint32_t mtime_nsec, ctime_nsec;
	/* the first name, while its content is in flight */
	struct dir_job *d;
	size_t slot;
	bool done;
	/* once done: its content and what the node says about it */
	struct kl_id *content;
	size_t n_content;
	uint64_t node_size;
	uint32_t node_flags;
	struct link_follower *followers;
};

static struct kl_bk_link **link_slot(struct kl_bk_link **v, size_t cap, uint64_t dev, uint64_t ino)
{
	size_t mask = cap - 1;

	for (size_t i = kl_link_hash(dev, ino, mask);; i = (i + 1) & mask)
		if (!v[i] || (v[i]->dev == dev && v[i]->ino == ino))
			return &v[i];
}

static struct kl_bk_link *link_find(struct backup *b, uint64_t dev, uint64_t ino)
{
	if (!b->cap_links)
		return NULL;
	return *link_slot(b->links, b->cap_links, dev, ino);
}

static bool same_content(const struct kl_bk_link *l, const struct stat *st)
{
	return l->size == (uint64_t)st->st_size && l->mtime_sec == st->st_mtim.tv_sec &&
	       l->mtime_nsec == (uint32_t)st->st_mtim.tv_nsec &&
	       l->ctime_sec == st->st_ctim.tv_sec && l->ctime_nsec == (uint32_t)st->st_ctim.tv_nsec;
}

/* Gives node n the link's content. */
static int take_content(const struct kl_bk_link *l, struct kl_node *n)
{
	if (l->n_content) {
		n->content = kl_memdup(l->content, l->n_content * sizeof(*l->content));
		if (!n->content)
			return -ENOMEM;
	}
	n->n_content = l->n_content;
	n->size = l->node_size;
	n->flags |= l->node_flags & (KL_NODE_PARTIAL | KL_NODE_CHANGED);
	return 0;
}

int kl_bk_link_reuse(struct backup *b, struct dir_job *d, size_t slot, const struct stat *st)
{
	struct kl_node *n = &d->tree.nodes[slot];
	struct kl_bk_link *l;
	struct link_follower *fw;
	int rc;

	if (n->nlink < 2)
		return 0;
	l = link_find(b, n->dev, n->inode);
	if (!l || !same_content(l, st))
		return 0;
	if (l->done) {
		rc = take_content(l, n);
		if (rc < 0)
			return rc;
		b->prog.files_done++;
		return 1;
	}
	fw = kl_calloc(1, sizeof(*fw));
	if (!fw)
		return -ENOMEM;
	fw->d = d;
	fw->slot = slot;
	fw->next = l->followers;
	l->followers = fw;
	d->pending++;
	return 1;
}

int kl_bk_link_add(struct backup *b, struct dir_job *d, size_t slot, const struct stat *st,
		   bool done)
{
	const struct kl_node *n = &d->tree.nodes[slot];
	struct kl_bk_link *l, **pos;

	if (n->nlink < 2 || n->type != KL_NODE_FILE)
		return 0;
	if (link_find(b, n->dev, n->inode))
		return 0; /* changed since its first name was read: that one stays the reference */
	if ((b->n_links + 1) * 2 > b->cap_links) {
		size_t ncap = b->cap_links ? b->cap_links * 2 : 256;
		struct kl_bk_link **v = kl_calloc(ncap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < b->cap_links; i++)
			if (b->links[i])
				*link_slot(v, ncap, b->links[i]->dev, b->links[i]->ino) =
					b->links[i];
		kl_free(b->links);
		b->links = v;
		b->cap_links = ncap;
	}
	l = kl_calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->dev = n->dev;
	l->ino = n->inode;
	l->size = (uint64_t)st->st_size;
	l->mtime_sec = st->st_mtim.tv_sec;
	l->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	l->ctime_sec = st->st_ctim.tv_sec;
	l->ctime_nsec = (uint32_t)st->st_ctim.tv_nsec;
	l->d = d;
	l->slot = slot;
	pos = link_slot(b->links, b->cap_links, l->dev, l->ino);
	*pos = l;
	b->n_links++;
	if (done)
		return kl_bk_link_done(b, d, slot);
	return 0;
}

int kl_bk_link_done(struct backup *b, struct dir_job *d, size_t slot)
{
	const struct kl_node *n = &d->tree.nodes[slot];
	struct kl_bk_link *l;
	int rc = 0;

	if (n->nlink < 2)
		return 0;
	l = link_find(b, n->dev, n->inode);
	if (!l || l->done || l->d != d || l->slot != slot)
		return 0;
	l->done = true;
	l->d = NULL;
	if (n->n_content) {
		l->content = kl_memdup(n->content, n->n_content * sizeof(*n->content));
		if (!l->content)
			return -ENOMEM;
	}
	l->n_content = n->n_content;
	l->node_size = n->size;
	l->node_flags = n->flags;
	/* a follower's directory may finish here, so each is taken off the list first */
	while (l->followers) {
		struct link_follower *fw = l->followers;

		l->followers = fw->next;
		if (rc >= 0)
			rc = take_content(l, &fw->d->tree.nodes[fw->slot]);
		b->prog.files_done++;
		if (rc >= 0)
			rc = kl_bk_child_done(b, fw->d);
		kl_free(fw);
	}
	return rc;
}

void kl_bk_links_free(struct backup *b)
{
	for (size_t i = 0; i < b->cap_links; i++) {
		struct kl_bk_link *l = b->links[i];

		if (!l)
			continue;
		while (l->followers) {
			struct link_follower *fw = l->followers;

			l->followers = fw->next;
			kl_free(fw);
		}
		kl_free(l->content);
		kl_free(l);
	}
	kl_free(b->links);
	b->links = NULL;
	b->cap_links = b->n_links = 0;
}

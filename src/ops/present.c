/*
 * Whether a snapshot's data is all in the repository, without reading
 * any data: every blob reachable from its root tree must be named by an
 * index file and lie in a pack the storage lists. A copy made by hand
 * (rsync, rclone) in the wrong order, an interrupted one, or packs lost
 * from a mirror leave snapshots that would restore only in part; keel
 * snapshots marks them (docs/COPY.md, "Snapshots whose data is not all
 * there").
 */
#include "keel/query.h"

void kl_presence_release(struct kl_presence *p)
{
	kl_idset_release(&p->packs);
	kl_idset_release(&p->whole);
	memset(p, 0, sizeof(*p));
}

static int add_pack(const char *name, uint64_t size, void *ud)
{
	struct kl_id id;

	(void)size;
	if (kl_id_parse(name, &id) < 0)
		return 0; /* not a pack's name: a temporary file */
	return kl_idset_add(ud, &id) < 0 ? -ENOMEM : 0;
}

static bool blob_present(struct kl_repo *r, struct kl_presence *p, const struct kl_id *id)
{
	struct kl_blob_loc loc;

	return kl_repo_lookup(r, id, &loc) == 1 && kl_idset_has(&p->packs, &loc.pack);
}

/* Counts what is missing below tree (present itself); 0 or an error. */
static int check_tree(struct kl_repo *r, struct kl_presence *p, const struct kl_id *tree,
		      uint64_t *missing)
{
	struct kl_tree t = {0};
	uint64_t before = *missing;
	int rc;

	if (kl_idset_has(&p->whole, tree))
		return 0;
	rc = kl_repo_cancelled(r);
	if (rc < 0)
		return rc;
	rc = kl_repo_read_tree(r, tree, &t);
	if (rc == -KL_ECORRUPT || rc == -KL_ENOTFOUND || rc == -ENOENT) {
		/* a part of it is gone or damaged: the directory cannot be restored whole */
		kl_repo_clear_err(r);
		(*missing)++;
		return 0;
	}
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < t.n_more; i++)
		*missing += !blob_present(r, p, &t.more[i]);
	for (size_t i = 0; i < t.n && rc >= 0; i++) {
		const struct kl_node *n = &t.nodes[i];

		for (size_t k = 0; k < n->n_content; k++)
			*missing += !blob_present(r, p, &n->content[k]);
		if (n->type != KL_NODE_DIR)
			continue;
		if (!blob_present(r, p, &n->subtree))
			(*missing)++;
		else
			rc = check_tree(r, p, &n->subtree, missing);
	}
	kl_tree_release(&t);
	if (rc >= 0 && *missing == before)
		rc = kl_idset_add(&p->whole, tree);
	return rc < 0 ? rc : 0;
}

int kl_presence_check(struct kl_repo *r, struct kl_presence *p, const struct kl_id *tree,
		      uint64_t *missing_ret)
{
	int rc;

	*missing_ret = 0;
	if (!p->listed) {
		rc = kl_repo_list(r, KL_OBJ_DATA, add_pack, &p->packs);
		if (rc < 0)
			return kl_repo_fail(r, rc, "cannot list the packs");
		p->listed = true;
	}
	if (!blob_present(r, p, tree)) {
		*missing_ret = 1;
		return 0;
	}
	return check_tree(r, p, tree, missing_ret);
}

/*
 * Prune's marking: every blob a snapshot uses, reading index files written
 * since the start when a snapshot is newer than them.
 */
#include <stdlib.h>

#include "prune-internal.h"

/*
 * A snapshot newer than our index (a backup finished after we loaded it)
 * needs the index files written since: read them once per snapshot.
 */
static bool known(struct prune *p, const struct kl_id *id)
{
	if (kl_repo_lookup(p->r, id, NULL))
		return true;
	if (p->refreshed || kl_repo_refresh_index(p->r) < 0)
		return false;
	p->refreshed = true;
	return kl_repo_lookup(p->r, id, NULL);
}

static int mark_tree(struct prune *p, const struct kl_id *root, const struct kl_id *snap)
{
	struct kl_id *stack = NULL;
	size_t n = 0, cap = 0;
	char hex[2 * KL_ID_LEN + 1], shex[2 * KL_ID_LEN + 1];
	int rc = 0;

	kl_id_hex(snap, shex);
	if (kl_array_grow(&stack, &cap, n, sizeof(*stack), 64) < 0)
		return -ENOMEM;
	stack[n++] = *root;
	while (rc >= 0 && n) {
		struct kl_id id = stack[--n];
		struct kl_tree t = {0};

		rc = kl_repo_cancelled(p->r); /* SIGINT, SIGTERM */
		if (rc < 0)
			break;
		rc = kl_idset_add(&p->used, &id);
		if (rc <= 0)
			continue; /* marked already, with everything below it */
		/*
		 * a tree missing from fresh is deleted with its pack by
		 * finish_now: a failure here must end the prune, not be lost
		 */
		if (p->fresh && (rc = kl_idset_add(p->fresh, &id)) < 0)
			break;
		rc = known(p, &id) ? kl_repo_read_tree(p->r, &id, &t) : -KL_ENOTFOUND;
		if (rc < 0) {
			/*
			 * A failing disk or lack of memory says nothing about the
			 * repository: that error, not "damaged", is the answer.
			 */
			int code = rc > -KL_EUSAGE && rc != -E2BIG ? rc : -KL_ECORRUPT;

			kl_id_hex(&id, hex);
			rc = kl_repo_fail(
				p->r, code,
				"snapshot %.8s: tree %.16s cannot be read (%s); prune deletes "
				"nothing while it cannot tell what is used: run keel check",
				shex, hex, kl_strerror(rc));
			break;
		}
		/* a directory split over several tree blobs: its other parts are used too */
		for (size_t i = 0; rc >= 0 && i < t.n_more; i++) {
			rc = kl_idset_add(&p->used, &t.more[i]);
			if (rc > 0 && p->fresh)
				rc = kl_idset_add(p->fresh, &t.more[i]);
		}
		for (size_t i = 0; rc >= 0 && i < t.n; i++) {
			const struct kl_node *nd = &t.nodes[i];

			for (size_t j = 0; rc >= 0 && j < nd->n_content; j++) {
				if (!known(p, &nd->content[j])) {
					kl_id_hex(&nd->content[j], hex);
					rc = kl_repo_fail(
						p->r, -KL_ECORRUPT,
						"snapshot %.8s uses blob %.16s, which no index "
						"names; prune deletes nothing: run keel check",
						shex, hex);
					break;
				}
				rc = kl_idset_add(&p->used, &nd->content[j]);
				if (rc > 0 && p->fresh)
					rc = kl_idset_add(p->fresh, &nd->content[j]);
			}
			if (rc >= 0 && nd->has_subtree) {
				rc = kl_array_grow(&stack, &cap, n, sizeof(*stack), 64);
				if (rc >= 0)
					stack[n++] = nd->subtree;
			}
		}
		kl_tree_release(&t);
	}
	kl_free(stack);
	return rc < 0 ? rc : 0;
}

int kl_prune_mark_snapshots(struct prune *p)
{
	struct kl_snapshot_list l;
	int rc;

	rc = kl_repo_list_snapshots(p->r, &l);
	if (rc < 0)
		return rc;
	if (l.n_damaged) {
		char hex[2 * KL_ID_LEN + 1];

		kl_id_hex(&l.damaged[0], hex);
		rc = kl_repo_fail(
			p->r, -KL_ECORRUPT,
			"snapshot %.16s cannot be read; prune deletes nothing while it cannot "
			"tell what is used: 'keel repair snapshots --forget' removes it",
			hex);
	}
	for (size_t i = 0; rc >= 0 && i < l.n; i++) {
		rc = kl_idset_add(&p->snaps, &l.v[i].id);
		if (rc > 0) {
			p->refreshed = false;
			p->st->snapshots++;
			rc = mark_tree(p, &l.v[i].s.tree, &l.v[i].id);
		}
	}
	kl_snapshot_list_release(&l);
	return rc < 0 ? rc : 0;
}

static bool among(const struct kl_id *v, size_t n, const struct kl_id *id)
{
	for (size_t i = 0; i < n; i++)
		if (kl_id_eq(&v[i], id))
			return true;
	return false;
}

/*
 * Two hosts can store the same new blob, each in its own pack and index
 * file, while prune runs. The in-memory index keeps one copy, so the other
 * pack looks unused and is condemned: an index file left live that names
 * it would then name a deleted pack (t6007's soak found it). So a
 * refreshed file is either superseded by the new index, which lists every
 * pack it names that survives, or, when one of its packs was written after
 * prune listed the packs, left alone with all its packs kept.
 */
static int take_one(struct prune *p, const struct kl_id *id)
{
	struct kl_index_file f = {0};
	bool all_known = true;
	int rc;

	rc = kl_repo_get_index_file(p->r, id, &f);
	if (rc < 0) {
		kl_repo_clear_err(p->r);
		p->unresolved = true; /* its packs are unknown: condemn nothing this run */
		return 0;
	}
	for (size_t i = 0; i < f.n && all_known; i++)
		all_known = kl_prune_find_pack(p, &f.packs[i].pack) != NULL;
	for (size_t i = 0; i < f.n && !all_known; i++) {
		struct pack_info *pi = kl_prune_find_pack(p, &f.packs[i].pack);

		if (pi)
			pi->pinned = true;
	}
	if (all_known && !f.deleting) {
		rc = kl_array_grow(&p->more_files, &p->cap_more_files, p->n_more_files,
				   sizeof(*p->more_files), 8);
		if (rc >= 0)
			p->more_files[p->n_more_files++] = *id;
	}
	kl_index_file_release(&f);
	return rc < 0 ? rc : 0;
}

int kl_prune_take_refreshed(struct prune *p)
{
	struct kl_id *files = NULL, *recs = NULL;
	size_t n_files = 0, n_recs = 0;
	int rc;

	rc = kl_repo_index_files(p->r, &files, &n_files, &recs, &n_recs);
	for (size_t i = 0; rc >= 0 && i < n_files; i++)
		if (!among(p->start_files, p->n_start_files, &files[i]))
			rc = take_one(p, &files[i]);
	kl_free(files);
	kl_free(recs);
	return rc;
}

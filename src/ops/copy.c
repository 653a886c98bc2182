/*
 * keel copy (docs/COPY.md): the snapshots, one after the other. Each is
 * committed as a backup is: its packs, an index file naming them, then
 * the snapshot, which records the original it was copied from; a
 * snapshot whose original DEST holds already is skipped. Before copying
 * one, a copy DEST made earlier of a related snapshot (same host and
 * paths) is walked beside its original to learn what DEST holds.
 */
#include "copy-internal.h"

const struct kl_id *kl_copy_key(const struct kl_snapshot_ref *s)
{
	return s->s.has_original ? &s->s.original : &s->id;
}

static bool same_origin(const struct kl_snapshot *a, const struct kl_snapshot *b)
{
	if ((a->host == NULL) != (b->host == NULL) || (a->host && strcmp(a->host, b->host)))
		return false;
	if (a->n_paths != b->n_paths)
		return false;
	for (size_t i = 0; i < a->n_paths; i++)
		if (strcmp(a->paths[i], b->paths[i]))
			return false;
	return true;
}

/*
 * The newest copies in DEST of the same host and paths whose original is
 * in SOURCE seed the maps (a few at most: each costs a walk of trees).
 */
static int seed(struct kl_copy_run *c, const struct kl_snapshot_ref *s,
		const struct kl_snapshot_list *dl)
{
	unsigned tried = 0;
	int rc = 0;

	for (size_t i = dl->n; i-- > 0 && tried < 2 && rc >= 0;) {
		const struct kl_snapshot_ref *d = &dl->v[i];
		struct kl_snapshot orig;

		/* kind 0: a copy made in this run, whose trees the maps hold already */
		if (!d->s.has_original || !d->s.kind || !same_origin(&d->s, &s->s))
			continue;
		if (kl_repo_load_snapshot(c->src, &d->s.original, &orig) < 0) {
			kl_repo_clear_err(c->src); /* a copy of something SOURCE no longer has */
			continue;
		}
		tried++;
		rc = kl_copy_seed(c, &orig.tree, &d->s.tree);
		kl_snapshot_release(&orig);
	}
	return rc < 0 ? rc : 0;
}

/* DEST's id of SOURCE's snapshot id, if DEST has a copy of it. */
static const struct kl_id *copy_of(const struct kl_snapshot_list *dl, const struct kl_id *src_id)
{
	for (size_t i = dl->n; i-- > 0;)
		if (kl_id_eq(kl_copy_key(&dl->v[i]), src_id))
			return &dl->v[i].id;
	return NULL;
}

/* Stores the snapshot's data and trees, then (but on a dry run) the snapshot. */
static int copy_one(struct kl_copy_run *c, const struct kl_snapshot_ref *s,
		    const struct kl_snapshot_list *dl, struct kl_id *ret)
{
	struct kl_snapshot ns = s->s;
	struct kl_write_stats ws = {0};
	const struct kl_id *parent;
	int rc, prc;

	memset(ret, 0, sizeof(*ret));
	rc = kl_pipeline_start(&c->pl, c->dst, c->threads, c->o->dry_run);
	if (rc >= 0)
		rc = kl_copy_dir(c, &s->s.tree, &ns.tree);
	prc = kl_pipeline_finish(&c->pl, &ws);
	if (rc >= 0)
		rc = prc;
	c->st->bytes_stored += ws.bytes_stored;
	if (rc < 0 || c->o->dry_run)
		return rc;
	rc = kl_packer_flush(c->trees);
	if (rc >= 0)
		rc = kl_repo_wait_writes(c->dst);
	/* packs durable, no index file names them yet: the next copy adopts them */
	kl_test_point("copy-before-index");
	if (rc >= 0)
		rc = kl_repo_flush_index(c->dst);
	if (rc < 0)
		return rc;
	/* a parent names a snapshot of DEST, or none */
	parent = s->s.has_parent ? copy_of(dl, &s->s.parent) : NULL;
	ns.has_parent = parent != NULL;
	if (parent)
		ns.parent = *parent;
	ns.has_replaces = false;
	ns.has_original = true;
	ns.original = *kl_copy_key(s);
	return kl_repo_save_snapshot(c->dst, &ns, ret);
}

/* Adds the copy just made to dl, so later snapshots find their parent and skip repeats. */
static int note_copy(struct kl_snapshot_list *dl, const struct kl_snapshot_ref *s,
		     const struct kl_id *id)
{
	struct kl_snapshot_ref *v = kl_realloc(dl->v, (dl->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	dl->v = v;
	memset(&v[dl->n], 0, sizeof(v[dl->n]));
	v[dl->n].id = *id;
	v[dl->n].s.has_original = true;
	v[dl->n].s.original = *kl_copy_key(s);
	v[dl->n].s.tree = s->s.tree; /* never seeded from: it has no host or paths */
	v[dl->n].s.kind = 0;
	dl->n++;
	return 0;
}

static int copy_all(struct kl_copy_run *c, const struct kl_snapshot_ref *snaps, size_t n,
		    struct kl_snapshot_list *dl)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc >= 0; i++) {
		const struct kl_snapshot_ref *s = &snaps[i];
		struct kl_id id;

		if (copy_of(dl, kl_copy_key(s))) {
			c->st->snapshots_skipped++;
			if (c->o->snapshot)
				c->o->snapshot(c->o->ud, s, NULL);
			continue;
		}
		/* a disk image keeps its fixed chunks, whatever DEST's chunker */
		c->fixed = !c->same_chunker && s->s.kind == KL_SNAP_DISK;
		c->reuse = c->same_chunker || c->fixed;
		rc = seed(c, s, dl);
		if (rc >= 0)
			rc = copy_one(c, s, dl, &id);
		if (rc >= 0)
			rc = note_copy(dl, s, &id);
		if (rc < 0)
			break;
		c->st->snapshots_copied++;
		if (c->o->snapshot)
			c->o->snapshot(c->o->ud, s, &id);
	}
	return rc;
}

int kl_copy(struct kl_repo *dst, struct kl_repo *src, const struct kl_snapshot_ref *snaps, size_t n,
	    const struct kl_copy_opts *o, struct kl_copy_stats *ret)
{
	struct kl_copy_run c = {.src = src, .dst = dst, .o = o, .st = ret};
	struct kl_snapshot_list dl = {0};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int rc;

	memset(ret, 0, sizeof(*ret));
	c.same_chunker = kl_repo_same_chunker(src, dst);
	ret->rechunked = !c.same_chunker;
	c.threads = o->threads ? o->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
	kl_buf_init(&c.blob, (size_t)64 << 20);
	kl_buf_init(&c.pend, (size_t)256 << 20);
	rc = kl_repo_list_snapshots(dst, &dl);
	if (rc < 0)
		rc = kl_repo_fail(dst, rc, "cannot list the snapshots of the destination");
	if (rc >= 0 && !o->dry_run) {
		/* packs a killed copy or backup left without an index file are reused, not stored
		 * again */
		int adopted = kl_repo_adopt_orphans(dst);

		rc = adopted < 0 ? adopted : kl_packer_new(dst, &c.trees);
	}
	if (rc >= 0)
		rc = copy_all(&c, snaps, n, &dl);
	if (c.trees) {
		struct kl_write_stats ws;

		kl_packer_stats(c.trees, &ws);
		ret->bytes_stored += ws.bytes_stored;
		kl_packer_free(c.trees);
	}
	c.prog.last = true;
	if (o->report.progress)
		o->report.progress(o->report.ud, &c.prog);
	kl_snapshot_list_release(&dl);
	kl_copy_map_release(&c.tree_map);
	kl_copy_map_release(&c.file_map);
	kl_copy_map_release(&c.blob_map);
	kl_buf_release(&c.blob);
	kl_buf_release(&c.pend);
	return rc;
}

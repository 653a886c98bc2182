/*
 * keel copy's walk: one directory of SOURCE at a time. Its files' data
 * is read from SOURCE (opened, checked against its id), cut again with
 * DEST's chunker unless both cut alike, and handed to the backup
 * pipeline, whose workers hash with DEST's key, skip what DEST has and
 * pack the rest; the directory waits for its files, then for its
 * subdirectories, and is written as a tree with DEST's ids.
 */
#include "copy-internal.h"

/* A file of the directory being copied whose chunks are in the pipeline. */
struct pend_file {
	struct kl_node *node;
	struct kl_file_job *f;
	struct kl_id key;  /* of SOURCE's content (file_map) */
	struct kl_id *src; /* reuse: SOURCE's blob ids */
	size_t *slot;	   /* reuse: the chunk of each blob, SIZE_MAX: known */
	bool done;
};

static void progress(struct kl_copy_run *c, bool last)
{
	int64_t now;

	if (!c->o->report.progress)
		return;
	now = kl_time_now_ns();
	if (!last && now < c->next_progress_ns)
		return;
	c->next_progress_ns = now + KL_NSEC_PER_SEC / 4;
	c->prog.last = last;
	c->o->report.progress(c->o->report.ud, &c->prog);
}

/* Reads one data blob of SOURCE into c->blob. */
static int read_blob(struct kl_copy_run *c, const struct kl_id *id)
{
	int rc = kl_repo_read_blob(c->src, id, &c->blob);

	if (rc < 0) {
		char hex[2 * KL_ID_LEN + 1];

		kl_id_hex(id, hex);
		return kl_repo_fail(c->src, rc, "cannot read data blob %s of the source", hex);
	}
	c->st->blobs_read++;
	c->st->bytes_read += c->blob.len;
	c->prog.bytes_done += c->blob.len;
	return kl_repo_cancelled(c->dst);
}

static int submit(struct kl_copy_run *c, struct kl_file_job *f, const uint8_t *p, size_t n)
{
	uint8_t *data = kl_memdup(p, n ? n : 1);

	return data ? kl_pipeline_submit(&c->pl, f, data, n) : -ENOMEM;
}

/* Re-chunking: cuts what is pending, all of it at the end of the file. */
static int cut_pending(struct kl_copy_run *c, struct kl_file_job *f, bool end)
{
	const struct kl_cdc *cdc = kl_repo_cdc(c->dst);
	size_t off = 0;
	int rc = 0;

	while (rc >= 0 && off < c->pend.len && (end || c->pend.len - off >= cdc->max)) {
		size_t cut = kl_cdc_next(cdc, c->pend.data + off, c->pend.len - off);

		rc = submit(c, f, c->pend.data + off, cut);
		off += cut;
	}
	memmove(c->pend.data, c->pend.data + off, c->pend.len - off);
	kl_buf_setlen(&c->pend, c->pend.len - off);
	return rc;
}

static int feed_rechunk(struct kl_copy_run *c, struct pend_file *pf)
{
	int rc = 0;

	kl_buf_clear(&c->pend);
	for (size_t i = 0; i < pf->node->n_content && rc >= 0; i++) {
		rc = read_blob(c, &pf->node->content[i]);
		if (rc >= 0)
			rc = kl_buf_add(&c->pend, c->blob.data, c->blob.len);
		if (rc >= 0)
			rc = cut_pending(c, pf->f, false);
	}
	return rc < 0 ? rc : cut_pending(c, pf->f, true);
}

static int feed_reuse(struct kl_copy_run *c, struct pend_file *pf)
{
	struct kl_node *n = pf->node;
	int rc = 0;

	pf->src = kl_memdup(n->content, n->n_content * sizeof(*n->content));
	pf->slot = kl_calloc(n->n_content, sizeof(*pf->slot));
	if (!pf->src || !pf->slot)
		return -ENOMEM;
	for (size_t i = 0; i < n->n_content && rc >= 0; i++) {
		const struct kl_id *known = kl_copy_map_get(&c->blob_map, &n->content[i], NULL);

		pf->slot[i] = SIZE_MAX;
		if (known) {
			n->content[i] = *known;
			continue;
		}
		rc = read_blob(c, &n->content[i]);
		pf->slot[i] = pf->f->n_chunks;
		if (rc >= 0)
			rc = submit(c, pf->f, c->blob.data, c->blob.len);
	}
	return rc;
}

/* Starts a file: 1 when its content was known (node rewritten), 0 when in the pipeline. */
static int start_file(struct kl_copy_run *c, struct kl_node *n, struct pend_file *pf)
{
	const struct kl_id *known;
	size_t nk = 0;
	int rc;

	c->st->files++;
	c->prog.files_done++;
	pf->node = n;
	kl_copy_content_key(c, n, &pf->key);
	known = kl_copy_map_get(&c->file_map, &pf->key, &nk);
	if (known) {
		struct kl_id *v = nk ? kl_memdup(known, nk * sizeof(*known)) : NULL;

		if (nk && !v)
			return -ENOMEM;
		kl_free(n->content);
		n->content = v;
		n->n_content = nk;
		c->st->files_known++;
		c->prog.bytes_done += n->size;
		return 1;
	}
	pf->f = kl_calloc(1, sizeof(*pf->f));
	if (!pf->f)
		return -ENOMEM;
	atomic_init(&pf->f->pending, 1);
	pf->f->owner = pf;
	rc = c->reuse ? feed_reuse(c, pf) : feed_rechunk(c, pf);
	/* queued chunks complete whatever happened: the file job is freed once done */
	kl_pipeline_file_sealed(&c->pl, pf->f);
	return rc < 0 ? rc : 0;
}

/* A file's chunks are all hashed (and stored): its node gets DEST's ids. */
static int finish_file(struct kl_copy_run *c, struct pend_file *pf)
{
	struct kl_node *n = pf->node;
	struct kl_file_job *f = pf->f;
	int rc = 0;

	for (size_t i = 0; i < f->n_chunks; i++) {
		if (f->chunks[i]->is_new) {
			c->st->blobs_new++;
			c->st->bytes_new += f->chunks[i]->len;
		}
	}
	if (c->reuse) {
		for (size_t i = 0; i < n->n_content && rc >= 0; i++) {
			if (pf->slot[i] == SIZE_MAX)
				continue;
			n->content[i] = f->chunks[pf->slot[i]]->id;
			rc = kl_copy_map_put(&c->blob_map, &pf->src[i], &n->content[i], 1);
		}
	} else {
		struct kl_id *v = kl_calloc(f->n_chunks ? f->n_chunks : 1, sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < f->n_chunks; i++)
			v[i] = f->chunks[i]->id;
		kl_free(n->content);
		n->content = v;
		n->n_content = f->n_chunks;
	}
	if (rc >= 0)
		rc = kl_copy_map_put(&c->file_map, &pf->key, n->content, n->n_content);
	return rc;
}

/* Waits for the files in flight (all of them this directory's). */
static int wait_files(struct kl_copy_run *c, struct pend_file *pf, size_t n_pending)
{
	int rc = 0;

	while (n_pending) {
		struct kl_file_job *d = kl_pipeline_take_done(&c->pl, true);

		if (KL_NEVER(!d))
			return -EIO;
		while (d) {
			struct kl_file_job *next = d->next_done;

			((struct pend_file *)d->owner)->done = true;
			n_pending--;
			d = next;
		}
	}
	rc = c->pl.error;
	for (size_t i = 0; pf && pf[i].node && rc >= 0; i++)
		if (pf[i].f)
			rc = finish_file(c, &pf[i]);
	return rc;
}

static void pend_release(struct pend_file *pf, size_t n)
{
	for (size_t i = 0; pf && i < n; i++) {
		kl_file_job_free(pf[i].f);
		kl_free(pf[i].src);
		kl_free(pf[i].slot);
	}
	kl_free(pf);
}

static int store_tree(void *ud, const uint8_t *p, size_t n, struct kl_id *ret)
{
	struct kl_copy_run *c = ud;

	kl_tree_blob_id(kl_repo_keys(c->dst), p, n, ret);
	if (kl_repo_lookup(c->dst, ret, NULL) == 1)
		return 0;
	c->st->trees_new++;
	return c->trees ? kl_packer_store(c->trees, KL_BLOB_TREE, p, n, ret) : 0;
}

/* The files of t: started, waited for, rewritten. */
static int copy_files(struct kl_copy_run *c, struct kl_tree *t)
{
	struct pend_file *pf = kl_calloc(t->n + 1, sizeof(*pf));
	size_t np = 0, n_started = 0;
	int rc = pf ? 0 : -ENOMEM;

	for (size_t i = 0; i < t->n && rc >= 0; i++) {
		struct kl_node *n = &t->nodes[i];

		if (n->type != KL_NODE_FILE || !n->n_content)
			continue;
		rc = start_file(c, n, &pf[np]);
		if (pf[np].f)
			n_started++;
		if (rc == 1 && !pf[np].f)
			memset(&pf[np], 0, sizeof(pf[np]));
		else
			np++;
		progress(c, false);
	}
	if (pf) {
		int wrc = wait_files(c, rc >= 0 ? pf : NULL, n_started);

		if (rc >= 0)
			rc = wrc;
	}
	pend_release(pf, np);
	return rc < 0 ? rc : 0;
}

int kl_copy_dir(struct kl_copy_run *c, const struct kl_id *src_tree, struct kl_id *ret)
{
	const struct kl_id *known;
	struct kl_tree t = {0};
	struct kl_id key;
	int rc;

	kl_copy_tree_key(c, src_tree, &key);
	known = kl_copy_map_get(&c->tree_map, &key, NULL);
	if (known) {
		*ret = *known;
		return 0;
	}
	rc = kl_repo_read_tree(c->src, src_tree, &t);
	if (rc < 0) {
		char hex[2 * KL_ID_LEN + 1];

		kl_id_hex(src_tree, hex);
		return kl_repo_fail(c->src, rc, "cannot read tree %s of the source", hex);
	}
	rc = copy_files(c, &t);
	for (size_t i = 0; i < t.n && rc >= 0; i++)
		if (t.nodes[i].type == KL_NODE_DIR)
			rc = kl_copy_dir(c, &t.nodes[i].subtree, &t.nodes[i].subtree);
	if (rc >= 0) {
		c->st->trees++;
		rc = kl_tree_store(&t, KL_TREE_BLOB_NODES, store_tree, c, ret);
	}
	if (rc >= 0)
		rc = kl_copy_map_put(&c->tree_map, &key, ret, 1);
	kl_tree_release(&t);
	return rc;
}

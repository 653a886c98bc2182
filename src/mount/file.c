/*
 * Reading a file of a mounted snapshot: at open, where each blob begins
 * (the index gives every blob's plaintext length, so no data is read);
 * a read finds its blobs by binary search and copies from the blob cache.
 * A sequential reader gets the next blob fetched in the background (one
 * read-ahead thread: the kernel's own read-ahead already asks for the
 * next pages in parallel, and this machine class has few cores), so a
 * fetch from slow storage overlaps the copying of the blob before it.
 */
#include <stdio.h>

#include "keel/crypto.h"
#include "mount-internal.h"

struct kl_mfile {
	struct kl_mfile *prev, *next; /* the mount's open files (m->files_mu) */
	size_t n;
	struct kl_id *ids;
	uint64_t *offs; /* n + 1: where blob i begins; offs[n] the end */
	uint8_t *zero;	/* per blob: a hole of a sparse file (NULL: none) */
	uint64_t size;
	pthread_mutex_t mu;
	uint64_t next_off; /* where a sequential read goes on (under mu) */
	size_t ra_done;	   /* blobs below this were handed to read-ahead (under mu) */
};

int kl_mount_errno(int rc)
{
	if (rc >= 0)
		return rc;
	if (rc == -KL_EINTERRUPTED)
		return -EINTR;
	if (rc <= -1000)
		return -EIO; /* the kernel knows errno only; the detail is lost here */
	return rc;
}

uint64_t kl_mount_ino(const void *a, size_t na, const void *b, size_t nb)
{
	const uint8_t *p = a;
	uint64_t h = 14695981039346656037ull; /* FNV-1a */

	for (size_t i = 0; i < na; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	p = b;
	for (size_t i = 0; i < nb; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h < 2 ? h + 2 : h; /* 0 is no inode, 1 the root's */
}

/*
 * The id of len zero bytes, computed once per length: a sparse file's
 * holes are blobs of zeros, and knowing their ids saves fetching them and
 * lets SEEK_HOLE find them.
 */
static int zero_id(struct kl_mount *m, uint32_t len, struct kl_id *ret)
{
	const struct kl_keys *k = kl_repo_keys(m->repo);
	uint8_t *zeros;

	pthread_mutex_lock(&m->zero_mu);
	for (size_t i = 0; i < m->n_zeros; i++) {
		if (m->zeros[i].len == len) {
			*ret = m->zeros[i].id;
			pthread_mutex_unlock(&m->zero_mu);
			return 0;
		}
	}
	pthread_mutex_unlock(&m->zero_mu);
	zeros = kl_calloc(1, len);
	if (!zeros)
		return -ENOMEM;
	kl_blob_id(k, zeros, len, ret);
	kl_free(zeros);
	pthread_mutex_lock(&m->zero_mu);
	if (m->n_zeros < KL_ARRAY_SIZE(m->zeros)) {
		m->zeros[m->n_zeros].len = len;
		m->zeros[m->n_zeros].id = *ret;
		m->n_zeros++;
	}
	pthread_mutex_unlock(&m->zero_mu);
	return 0;
}

/*
 * Whether a blob of a sparse file is all zeros. Only a blob that zstd
 * shrank to a sliver can be (zeros compress about a thousandfold), so
 * only for those is the id of zeros computed and compared.
 */
static int blob_is_zero(struct kl_mount *m, const struct kl_blob_loc *loc)
{
	struct kl_id z;
	int rc;

	if (loc->e.compression != KL_COMP_ZSTD || loc->e.raw_length < 4096 ||
	    loc->e.length > loc->e.raw_length / 64)
		return 0;
	rc = zero_id(m, loc->e.raw_length, &z);
	if (rc < 0)
		return rc;
	return kl_id_eq(&z, &loc->e.id);
}

void kl_mfile_free(struct kl_mfile *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->mu);
	kl_free(f->ids);
	kl_free(f->offs);
	kl_free(f->zero);
	kl_free(f);
}

static int mfile_new(size_t n, bool sparse, struct kl_mfile **ret)
{
	struct kl_mfile *f = kl_calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->mu, NULL);
	f->n = n;
	f->ids = kl_calloc(n ? n : 1, sizeof(*f->ids));
	f->offs = kl_calloc(n + 1, sizeof(*f->offs));
	if (sparse)
		f->zero = kl_calloc(n ? n : 1, 1);
	if (!f->ids || !f->offs || (sparse && !f->zero)) {
		kl_mfile_free(f);
		return -ENOMEM;
	}
	*ret = f;
	return 0;
}

int kl_mfile_open(struct kl_mount *m, const struct kl_node *n, struct kl_mfile **ret)
{
	bool sparse = n->flags & KL_NODE_SPARSE;
	struct kl_mfile *f = NULL;
	int rc = mfile_new(n->n_content, sparse, &f);

	for (size_t i = 0; rc >= 0 && i < n->n_content; i++) {
		struct kl_blob_loc loc;

		f->ids[i] = n->content[i];
		rc = kl_repo_lookup(m->repo, &n->content[i], &loc);
		if (rc == 0)
			rc = -EIO; /* a blob no index knows: 'keel check' names it */
		if (rc >= 0 && sparse) {
			rc = blob_is_zero(m, &loc);
			if (rc >= 0)
				f->zero[i] = rc > 0;
		}
		if (rc >= 0)
			f->offs[i + 1] = f->offs[i] + loc.e.raw_length;
	}
	if (rc < 0) {
		kl_repo_clear_err(m->repo); /* the kernel gets an errno, the detail has no reader */
		kl_mfile_free(f);
		return kl_mount_errno(rc);
	}
	/* a file cut short by a read error has fewer bytes than its size: serve what is there */
	f->size = KL_MIN(n->size, f->offs[f->n]);
	pthread_mutex_lock(&m->files_mu);
	f->next = m->files;
	if (m->files)
		m->files->prev = f;
	m->files = f;
	pthread_mutex_unlock(&m->files_mu);
	*ret = f;
	return 0;
}

void kl_mfile_close(struct kl_mount *m, struct kl_mfile *f)
{
	pthread_mutex_lock(&m->files_mu);
	if (f->prev)
		f->prev->next = f->next;
	else
		m->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&m->files_mu);
	kl_mfile_free(f);
}

void kl_mount_close_files(struct kl_mount *m)
{
	/*
	 * Files still open when the connection ended: a lazy unmount while a
	 * reader held one, whose release the kernel never sent.
	 */
	while (m->files)
		kl_mfile_close(m, m->files);
}

/* The blob that holds byte off (< f->offs[f->n]). */
static size_t find_blob(const struct kl_mfile *f, uint64_t off)
{
	size_t lo = 0, hi = f->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->offs[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static void readahead_push(struct kl_mount *m, const struct kl_id *id)
{
	pthread_mutex_lock(&m->ra_mu);
	if (m->ra_n < KL_ARRAY_SIZE(m->ra_q)) {
		m->ra_q[(m->ra_head + m->ra_n) % KL_ARRAY_SIZE(m->ra_q)] = *id;
		m->ra_n++;
		pthread_cond_signal(&m->ra_cv);
	}
	/* a full queue: the reader is far ahead of storage already, and one blob less does no harm
	 */
	pthread_mutex_unlock(&m->ra_mu);
}

void *kl_mount_readahead_main(void *arg)
{
	struct kl_mount *m = arg;

	pthread_mutex_lock(&m->ra_mu);
	for (;;) {
		struct kl_mcache_ent *e;
		struct kl_id id;

		while (!m->ra_stop && !m->ra_n)
			pthread_cond_wait(&m->ra_cv, &m->ra_mu);
		if (m->ra_stop)
			break;
		id = m->ra_q[m->ra_head];
		m->ra_head = (m->ra_head + 1) % KL_ARRAY_SIZE(m->ra_q);
		m->ra_n--;
		pthread_mutex_unlock(&m->ra_mu);
		/* an error here is the reader's to meet when it gets there */
		if (kl_mcache_get(&m->blobs, &id, &e) >= 0)
			kl_mcache_put(&m->blobs, e);
		else
			kl_repo_clear_err(m->repo);
		pthread_mutex_lock(&m->ra_mu);
	}
	pthread_mutex_unlock(&m->ra_mu);
	return NULL;
}

/* After a read of [off, end) that ended in blob last: the next blob, when sequential. */
static void maybe_readahead(struct kl_mount *m, struct kl_mfile *f, uint64_t off, uint64_t end,
			    size_t last)
{
	size_t next = last + 1;
	bool seq;

	pthread_mutex_lock(&f->mu);
	seq = off == f->next_off || off == 0;
	f->next_off = end;
	if (seq && next < f->n && next >= f->ra_done)
		f->ra_done = next + 1;
	else
		seq = false;
	pthread_mutex_unlock(&f->mu);
	if (seq && !(f->zero && f->zero[next]))
		readahead_push(m, &f->ids[next]);
}

int kl_mfile_read(struct kl_mount *m, struct kl_mfile *f, char *buf, size_t size, uint64_t off)
{
	size_t done = 0, i;

	if (off >= f->size || !size)
		return 0;
	if (size > f->size - off)
		size = (size_t)(f->size - off);
	i = find_blob(f, off);
	while (done < size) {
		uint64_t at = off + done, in = at - f->offs[i];
		size_t n = (size_t)KL_MIN((uint64_t)(size - done), f->offs[i + 1] - at);
		struct kl_mcache_ent *e;
		int rc;

		if (f->zero && f->zero[i]) {
			memset(buf + done, 0, n);
		} else {
			const struct kl_buf *b;

			rc = kl_mcache_get(&m->blobs, &f->ids[i], &e);
			/*
			 * The whole read fails, not only its end: FUSE takes a short
			 * read for the end of the file and fills the rest with zeros.
			 */
			if (rc < 0) {
				kl_repo_clear_err(m->repo);
				return kl_mount_errno(rc);
			}
			b = e->value;
			if (b->len != f->offs[i + 1] - f->offs[i]) {
				kl_mcache_put(&m->blobs, e);
				return -EIO; /* the index and the blob disagree */
			}
			memcpy(buf + done, b->data + in, n);
			kl_mcache_put(&m->blobs, e);
		}
		done += n;
		if (done < size)
			i++;
	}
	maybe_readahead(m, f, off, off + done, i);
	return (int)done;
}

int64_t kl_mfile_seek(struct kl_mfile *f, int64_t off, int whence)
{
	size_t i;

	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= f->size)
		return -ENXIO;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	for (i = find_blob(f, (uint64_t)off); i < f->n && f->offs[i] < f->size; i++) {
		bool hole = f->zero && f->zero[i];

		if (hole == (whence == SEEK_HOLE))
			return KL_MAX(off, (int64_t)f->offs[i]);
	}
	/* past the last data: SEEK_DATA finds none, SEEK_HOLE the end (an implicit hole) */
	return whence == SEEK_DATA ? -ENXIO : (int64_t)f->size;
}

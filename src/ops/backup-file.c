/*
 * Files of the backup: a changed file is opened, read and cut into chunks
 * for the pipeline; an unchanged one takes its parent snapshot's chunks.
 */
#include <fcntl.h>

#include "backup-internal.h"

int kl_bk_open_noatime(int dfd, const char *name, int flags)
{
	int fd = openat(dfd, name, flags | O_NOATIME);

	/*
	 * Asked again for every entry: the kernel allows O_NOATIME to the
	 * owner (or CAP_FOWNER), so a refusal for one file says nothing of
	 * the next.
	 */
	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, name, flags);
	return fd < 0 ? -errno : fd;
}

/*
 * Reads fd to the end, submitting chunks for f. Returns bytes read or a
 * negative error; on a read error after some data, the chunks so far stay
 * submitted and *read_err is set.
 */
int kl_bk_read_chunks(struct backup *b, int fd, struct kl_file_job *f, uint64_t *total,
		      int *read_err)
{
	const struct kl_cdc *cdc = kl_repo_cdc(b->r);
	size_t len = 0, off;
	bool eof = false;
	int rc;

	*total = 0;
	*read_err = 0;
	for (;;) {
		while (!eof && len < b->rbuf_cap) {
			ssize_t n = read(fd, b->rbuf + len, b->rbuf_cap - len);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				*read_err = -errno;
				eof = true;
				break;
			}
			if (n == 0)
				eof = true;
			len += (size_t)n;
			*total += (uint64_t)n;
		}
		rc = kl_repo_cancelled(b->r); /* a big file stops within one buffer */
		if (rc < 0)
			return rc;
		off = 0;
		while (len - off >= cdc->max || (eof && off < len)) {
			size_t cut = kl_cdc_next(cdc, b->rbuf + off, len - off);
			uint8_t *chunk = kl_memdup(b->rbuf + off, cut);

			if (!chunk)
				return -ENOMEM;
			rc = kl_pipeline_submit(&b->pl, f, chunk, cut);
			if (rc < 0)
				return rc;
			off += cut;
			b->prog.bytes_done += cut;
			kl_bk_progress(b, NULL, false);
		}
		if (eof)
			return 0;
		memmove(b->rbuf, b->rbuf + off, len - off);
		len -= off;
	}
}

int kl_bk_backup_file(struct backup *b, struct dir_job *d, size_t slot, int dfd, const char *name,
		      const char *path)
{
	struct kl_node *n = &d->tree.nodes[slot];
	struct kl_file_job *f;
	_cleanup_close_ int fd = -1;
	struct stat before, after;
	uint64_t total;
	int rc, read_err, flags;

	fd = kl_bk_open_noatime(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		kl_bk_warn(b, path, fd, "cannot open");
		return fd;
	}
	if (fstat(fd, &before) < 0) {
		rc = -errno;
		kl_bk_warn(b, path, rc, "cannot stat");
		return rc;
	}
	if (!S_ISREG(before.st_mode)) {
		kl_bk_warn(b, path, -EINVAL, "replaced while being backed up");
		return -EINVAL;
	}
	/*
	 * The O_NONBLOCK was only for opening (a FIFO swapped in must not hang
	 * us); the O_NOATIME stays, or reading would set the file's atime.
	 */
	flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	f = kl_calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	atomic_init(&f->pending, 1);
	f->owner = d;
	f->slot = slot;
	d->pending++;
	rc = kl_bk_read_chunks(b, fd, f, &total, &read_err);
	kl_pipeline_file_sealed(&b->pl, f);
	if (rc < 0) {
		b->error = rc;
		return rc;
	}
	b->st.bytes_read += total;
	n->size = total;
	if (read_err) {
		n->flags |= KL_NODE_PARTIAL;
		kl_bk_warn(b, path, read_err, "read error; file saved up to the error");
	} else if (fstat(fd, &after) == 0 && (after.st_size != before.st_size ||
					      after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
					      after.st_mtim.tv_nsec != before.st_mtim.tv_nsec ||
					      after.st_ctim.tv_sec != before.st_ctim.tv_sec ||
					      after.st_ctim.tv_nsec != before.st_ctim.tv_nsec ||
					      total != (uint64_t)before.st_size)) {
		n->flags |= KL_NODE_CHANGED;
		kl_bk_warn(b, path, 0, "file changed while it was read");
	}
	/* the node keeps the metadata seen before reading, when it matched the content */
	return 0;
}

/*
 * An unchanged file reuses its parent's chunk ids only if they are all
 * still stored: after a pack was lost, reading the file again heals the
 * repository instead of carrying the damage into every new snapshot.
 */
bool kl_bk_all_stored(struct backup *b, const struct kl_node *oldn)
{
	for (size_t i = 0; i < oldn->n_content; i++)
		if (kl_repo_lookup(b->r, &oldn->content[i], NULL) != 1)
			return false;
	return true;
}

/*
 * A stream that finds the WAL gone (docs/DATABASES.md, "SQLite", "The
 * stream"): when the last connection to a WAL database closes, SQLite
 * checkpoints every frame into the database file and removes the WAL. If
 * keel had stored all of them, nothing was lost: the file is then exactly
 * the database at keel's last position, which keel can tell by rebuilding
 * that database from the repository (as a restore does) and comparing
 * the two. If frames keel never saw reached the file, the two differ and
 * the stream takes a new base copy (a real gap).
 *
 * The file must not change while it is compared: keel's read transaction
 * began when the WAL held no frame, so it reads the file alone, and a
 * reader that reads the file alone keeps every checkpoint from writing it
 * (sqlite-conn.c). Writers may append to the WAL meanwhile; the stream
 * follows those frames from the first.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sqlite-internal.h"

int kl_sqw_empty(struct kl_sqdb *d)
{
	struct kl_sqlite_wal_hdr h;
	struct kl_sqlite_frame fr;
	uint32_t s[2];
	uint8_t *f;
	size_t fsz;
	ssize_t n;
	int rc = kl_sqw_header(d, &h);

	if (rc <= 0)
		return rc < 0 ? rc : 1;
	fsz = KL_SQLITE_FRAME_HDR + h.page_size;
	f = kl_malloc(fsz);
	if (!f)
		return -ENOMEM;
	s[0] = h.s0;
	s[1] = h.s1;
	n = pread(d->w.fd, f, fsz, KL_SQLITE_WAL_HDR);
	if (n < 0)
		rc = kl_repo_fail(d->r, -errno, "cannot read '%s'", d->wal_path);
	else
		rc = n != (ssize_t)fsz || !kl_sqlite_frame_check(&h, f, s, &fr);
	kl_free(f);
	return rc;
}

/* Whether the files a and b hold the same bytes. */
static int same_bytes(struct kl_repo *r, int a, int b)
{
	const size_t blk = 1u << 20;
	uint8_t *x = kl_malloc(2 * blk);
	struct stat sa, sb;
	int rc = 1;

	if (!x)
		return -ENOMEM;
	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		rc = kl_repo_fail(r, -errno, "cannot stat the database");
	else if (sa.st_size != sb.st_size)
		rc = 0;
	for (off_t off = 0; rc == 1 && off < sa.st_size; off += (off_t)blk) {
		ssize_t m = pread(a, x, blk, off), n = pread(b, x + blk, blk, off);

		if (m < 0 || n < 0)
			rc = kl_repo_fail(r, -errno, "cannot read the database");
		else if (m != n || !m || memcmp(x, x + blk, (size_t)m))
			rc = 0;
	}
	kl_free(x);
	return rc;
}

int kl_sq_file_is(struct kl_sqdb *d, const char *name, const struct kl_sq_pos *last)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4096], path[4200];
	uint64_t end = 0;
	int fd, rc;

	if (snprintf(dir, sizeof(dir), "%s/keel-sqlite-XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
	    (int)sizeof(dir))
		return kl_repo_fail(d->r, -ENAMETOOLONG, "TMPDIR is too long");
	if (!mkdtemp(dir))
		return kl_repo_fail(d->r, -errno, "cannot create a directory in '%s'",
				    tmp && *tmp ? tmp : "/tmp");
	snprintf(path, sizeof(path), "%s/database", dir);
	rc = kl_sq_rebuild(d->r, name, path, &end);
	if (rc < 0) {
		/*
		 * Not rebuilt (it fails integrity_check, TMPDIR is full, ...): keel
		 * cannot tell, so a base copy, as before it could
		 */
		kl_repo_clear_err(d->r);
		rc = 0;
	} else if (rc >= 0 && end != last->pos) {
		rc = 0; /* the newest chain does not end at the newest position */
	} else if (rc >= 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? kl_repo_fail(d->r, -errno, "cannot open '%s'", path)
			    : same_bytes(d->r, d->dbfd, fd);
		if (fd >= 0)
			close(fd);
	}
	unlink(path);
	rmdir(dir);
	return rc;
}

/*
 * treecmp: compares two file trees with everything a backup tool must
 * restore: type, permission bits (setuid, setgid, sticky too), owner,
 * size, content, mtime (and atime) with nanoseconds, symlink targets,
 * device numbers, every extended attribute (POSIX ACLs included, compared
 * by value), the hard-link structure, sparseness and the set of names in
 * each directory. Symlinks are never followed.
 *
 *     treecmp [--ignore-atime] [--ignore-owner] [--ignore-ctime] [--exact-holes]
 *             [--ignore-sockets] A B
 *
 * Exit status: 0 identical, 1 differences (one line each on stderr),
 * 2 usage error or a tree that could not be read.
 *
 * Test-only code: not part of libkeel. It walks with openat() relative to
 * directory descriptors, so paths longer than PATH_MAX work, and it opens
 * with O_NOATIME where allowed, so comparing does not disturb atimes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#define READ_CHUNK (1u << 20)

struct opts {
	bool ignore_atime;
	bool ignore_owner;
	bool check_ctime;
	bool exact_holes;
	bool ignore_sockets;
};

/* One non-directory that has more than one link on either side. */
struct link_rec {
	dev_t adev, bdev;
	ino_t aino, bino;
	char *path;
};

struct walk {
	struct opts o;
	unsigned long ndiff;
	unsigned long nerr;
	struct link_rec *links;
	size_t nlinks, links_cap;
	uint8_t *buf_a, *buf_b;
};

/* A data extent of a file, from SEEK_DATA/SEEK_HOLE. */
struct extent {
	off_t start, end;
};

struct extent_map {
	struct extent *e;
	size_t n, cap;
	off_t data_bytes;
	bool has_hole;
	bool precise; /* false: the file system has no SEEK_DATA, st_blocks was used */
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fputs("treecmp: out of memory\n", stderr);
		exit(2);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fputs("treecmp: out of memory\n", stderr);
		exit(2);
	}
	return q;
}

static char *path_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *p = xmalloc(dl + 1 + nl + 1);

	if (dl == 0) {
		memcpy(p, name, nl + 1);
		return p;
	}
	memcpy(p, dir, dl);
	p[dl] = '/';
	memcpy(p + dl + 1, name, nl + 1);
	return p;
}

/* Names are arbitrary bytes: print them so that every line stays one line. */
static void put_escaped(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!*p) {
		fputc('.', f);
		return;
	}
	for (; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p >= 0x20 && *p < 0x7f)
			fputc(*p, f);
		else
			fprintf(f, "\\x%02x", *p);
	}
}

static void put_hex(FILE *f, const uint8_t *p, size_t n)
{
	size_t i, lim = n > 32 ? 32 : n;

	if (n == 0) {
		fputs("(empty)", f);
		return;
	}
	fputs("0x", f);
	for (i = 0; i < lim; i++)
		fprintf(f, "%02x", p[i]);
	if (lim < n)
		fprintf(f, "... (%zu bytes)", n);
}

__attribute__((format(printf, 3, 4))) static void diff(struct walk *w, const char *path,
						       const char *fmt, ...)
{
	va_list ap;

	w->ndiff++;
	fputs("treecmp: ", stderr);
	put_escaped(stderr, path);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

__attribute__((format(printf, 4, 5))) static void fail(struct walk *w, const char *path, int err,
						       const char *fmt, ...)
{
	va_list ap;

	w->nerr++;
	fputs("treecmp: error: ", stderr);
	put_escaped(stderr, path);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(err));
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG:
		return "regular file";
	case S_IFDIR:
		return "directory";
	case S_IFLNK:
		return "symlink";
	case S_IFIFO:
		return "fifo";
	case S_IFCHR:
		return "character device";
	case S_IFBLK:
		return "block device";
	case S_IFSOCK:
		return "socket";
	default:
		return "unknown type";
	}
}

/* Opens without following symlinks and, where we may, without touching atime. */
static int open_noatime(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);

	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/*
 * A path that the l*xattr() calls accept for an entry of an open directory,
 * however long the full path is: /proc/self/fd/N/name, where N is followed
 * but name is not.
 */
static char *xattr_path(int dirfd, const char *name)
{
	char prefix[48];

	if (dirfd == AT_FDCWD)
		return path_join("", name);
	snprintf(prefix, sizeof(prefix), "/proc/self/fd/%d", dirfd);
	return path_join(prefix, name);
}

/* ---- extended attributes ---------------------------------------------- */

struct xattr_list {
	char *raw;
	char **names;
	size_t n;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int xattr_list_get(const char *path, struct xattr_list *ret)
{
	ssize_t len;
	size_t i, n = 0;
	char *p;

	memset(ret, 0, sizeof(*ret));
	for (;;) {
		len = llistxattr(path, NULL, 0);
		if (len < 0) {
			if (errno == ENOTSUP)
				return 0;
			return -errno;
		}
		free(ret->raw);
		ret->raw = xmalloc((size_t)len + 1);
		len = llistxattr(path, ret->raw, (size_t)len);
		if (len >= 0)
			break;
		if (errno != ERANGE)
			return -errno;
	}
	ret->raw[len] = '\0';
	for (i = 0; i < (size_t)len; i++)
		if (ret->raw[i] == '\0')
			n++;
	ret->names = xmalloc(n * sizeof(char *));
	for (p = ret->raw; p < ret->raw + len; p += strlen(p) + 1)
		if (*p)
			ret->names[ret->n++] = p;
	qsort(ret->names, ret->n, sizeof(char *), cmp_str);
	return 0;
}

static void xattr_list_free(struct xattr_list *l)
{
	free(l->raw);
	free(l->names);
}

static int xattr_value(const char *path, const char *name, uint8_t **ret, size_t *len_ret)
{
	ssize_t len;
	uint8_t *v = NULL;

	for (;;) {
		len = lgetxattr(path, name, NULL, 0);
		if (len < 0)
			return -errno;
		free(v);
		v = xmalloc((size_t)len);
		len = lgetxattr(path, name, v, (size_t)len);
		if (len >= 0)
			break;
		if (errno != ERANGE) {
			free(v);
			return -errno;
		}
	}
	*ret = v;
	*len_ret = (size_t)len;
	return 0;
}

static void compare_xattrs(struct walk *w, const char *path, int adir, const char *aname, int bdir,
			   const char *bname)
{
	char *ap = xattr_path(adir, aname), *bp = xattr_path(bdir, bname);
	struct xattr_list la, lb;
	size_t i = 0, j = 0;
	int r;

	r = xattr_list_get(ap, &la);
	if (r < 0) {
		fail(w, path, -r, "cannot list xattrs in A");
		xattr_list_free(&la);
		goto out;
	}
	r = xattr_list_get(bp, &lb);
	if (r < 0) {
		fail(w, path, -r, "cannot list xattrs in B");
		xattr_list_free(&la);
		xattr_list_free(&lb);
		goto out;
	}
	while (i < la.n || j < lb.n) {
		int c = i >= la.n ? 1 : j >= lb.n ? -1 : strcmp(la.names[i], lb.names[j]);

		if (c < 0) {
			diff(w, path, "xattr %s only in A", la.names[i++]);
		} else if (c > 0) {
			diff(w, path, "xattr %s only in B", lb.names[j++]);
		} else {
			uint8_t *va = NULL, *vb = NULL;
			size_t na = 0, nb = 0;

			r = xattr_value(ap, la.names[i], &va, &na);
			if (r < 0)
				fail(w, path, -r, "cannot read xattr %s in A", la.names[i]);
			else if ((r = xattr_value(bp, lb.names[j], &vb, &nb)) < 0)
				fail(w, path, -r, "cannot read xattr %s in B", lb.names[j]);
			else if (na != nb || memcmp(va, vb, na) != 0) {
				w->ndiff++;
				fputs("treecmp: ", stderr);
				put_escaped(stderr, path);
				fprintf(stderr, ": xattr %s differs: A=", la.names[i]);
				put_hex(stderr, va, na);
				fputs(" B=", stderr);
				put_hex(stderr, vb, nb);
				fputc('\n', stderr);
			}
			free(va);
			free(vb);
			i++;
			j++;
		}
	}
	xattr_list_free(&la);
	xattr_list_free(&lb);
out:
	free(ap);
	free(bp);
}

/* ---- regular files -------------------------------------------------------- */

static int extent_map_get(int fd, const struct stat *st, struct extent_map *m)
{
	off_t pos = 0, size = st->st_size;

	memset(m, 0, sizeof(*m));
	m->precise = true;
	while (pos < size) {
		off_t d = lseek(fd, pos, SEEK_DATA), h;

		if (d < 0) {
			if (errno == ENXIO)
				break; /* only a hole from pos to the end */
			if (errno == EINVAL)
				goto fallback;
			return -errno;
		}
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return -errno;
		if (h > size)
			h = size;
		if (m->n == m->cap) {
			m->cap = m->cap ? 2 * m->cap : 8;
			m->e = xrealloc(m->e, m->cap * sizeof(*m->e));
		}
		m->e[m->n].start = d;
		m->e[m->n].end = h;
		m->n++;
		m->data_bytes += h - d;
		pos = h;
	}
	m->has_hole = m->data_bytes < size;
	return 0;

fallback:
	/* No SEEK_DATA here: a file with fewer blocks than its size is sparse. */
	m->precise = false;
	m->n = 0;
	m->data_bytes = (off_t)st->st_blocks * 512;
	if (m->data_bytes > size)
		m->data_bytes = size;
	m->has_hole = (off_t)st->st_blocks * 512 < size;
	return 0;
}

static void compare_holes(struct walk *w, const char *path, int afd, const struct stat *sa, int bfd,
			  const struct stat *sb)
{
	struct extent_map ma, mb;
	int r;

	if (sa->st_size == 0 && sb->st_size == 0)
		return;
	r = extent_map_get(afd, sa, &ma);
	if (r < 0) {
		fail(w, path, -r, "cannot map holes in A");
		return;
	}
	r = extent_map_get(bfd, sb, &mb);
	if (r < 0) {
		fail(w, path, -r, "cannot map holes in B");
		free(ma.e);
		return;
	}
	if (ma.has_hole != mb.has_hole) {
		diff(w, path,
		     "sparseness differs: A %s (%lld of %lld bytes data), B %s (%lld of %lld bytes "
		     "data)",
		     ma.has_hole ? "sparse" : "dense", (long long)ma.data_bytes,
		     (long long)sa->st_size, mb.has_hole ? "sparse" : "dense",
		     (long long)mb.data_bytes, (long long)sb->st_size);
	} else if (w->o.exact_holes && ma.precise && mb.precise) {
		bool same = ma.n == mb.n;
		size_t i;

		for (i = 0; same && i < ma.n; i++)
			same = ma.e[i].start == mb.e[i].start && ma.e[i].end == mb.e[i].end;
		if (!same)
			diff(w, path,
			     "hole map differs: A %zu data extents (%lld bytes), B %zu (%lld "
			     "bytes)",
			     ma.n, (long long)ma.data_bytes, mb.n, (long long)mb.data_bytes);
	}
	free(ma.e);
	free(mb.e);
}

static ssize_t read_full(int fd, uint8_t *buf, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, buf + got, n - got, (off_t)(off + got));

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

static void compare_content(struct walk *w, const char *path, int afd, int bfd)
{
	uint64_t off = 0;

	for (;;) {
		ssize_t na = read_full(afd, w->buf_a, READ_CHUNK, off);
		ssize_t nb = read_full(bfd, w->buf_b, READ_CHUNK, off);
		ssize_t i, lim;

		if (na < 0) {
			fail(w, path, errno, "cannot read A");
			return;
		}
		if (nb < 0) {
			fail(w, path, errno, "cannot read B");
			return;
		}
		lim = na < nb ? na : nb;
		if (memcmp(w->buf_a, w->buf_b, (size_t)lim) != 0) {
			for (i = 0; i < lim && w->buf_a[i] == w->buf_b[i]; i++)
				;
			diff(w, path, "content differs at byte %llu",
			     (unsigned long long)(off + (uint64_t)i));
			return;
		}
		if (na != nb) {
			diff(w, path, "content differs: one side ends at byte %llu",
			     (unsigned long long)(off + (uint64_t)lim));
			return;
		}
		if (na == 0)
			return;
		off += (uint64_t)na;
	}
}

static void compare_file(struct walk *w, const char *path, int adir, const char *aname,
			 const struct stat *sa, int bdir, const char *bname, const struct stat *sb)
{
	int afd, bfd;

	if (sa->st_size != sb->st_size)
		diff(w, path, "size differs: A=%lld B=%lld", (long long)sa->st_size,
		     (long long)sb->st_size);
	afd = open_noatime(adir, aname, O_RDONLY);
	if (afd < 0) {
		fail(w, path, errno, "cannot open A");
		return;
	}
	bfd = open_noatime(bdir, bname, O_RDONLY);
	if (bfd < 0) {
		fail(w, path, errno, "cannot open B");
		close(afd);
		return;
	}
	compare_holes(w, path, afd, sa, bfd, sb);
	if (sa->st_size == sb->st_size)
		compare_content(w, path, afd, bfd);
	close(afd);
	close(bfd);
}

/* ---- symlinks ------------------------------------------------------------ */

static int read_link(int dirfd, const char *name, char **ret, size_t *len_ret)
{
	size_t cap = 256;

	for (;;) {
		char *p = xmalloc(cap);
		ssize_t n = readlinkat(dirfd, name, p, cap);

		if (n < 0) {
			free(p);
			return -errno;
		}
		if ((size_t)n < cap) {
			*ret = p;
			*len_ret = (size_t)n;
			return 0;
		}
		free(p);
		cap *= 2;
	}
}

static void compare_symlink(struct walk *w, const char *path, int adir, const char *aname, int bdir,
			    const char *bname)
{
	char *la = NULL, *lb = NULL;
	size_t na = 0, nb = 0;
	int r;

	r = read_link(adir, aname, &la, &na);
	if (r < 0) {
		fail(w, path, -r, "cannot read symlink in A");
		return;
	}
	r = read_link(bdir, bname, &lb, &nb);
	if (r < 0) {
		fail(w, path, -r, "cannot read symlink in B");
		free(la);
		return;
	}
	if (na != nb || memcmp(la, lb, na) != 0) {
		w->ndiff++;
		la = xrealloc(la, na + 1);
		lb = xrealloc(lb, nb + 1);
		la[na] = '\0';
		lb[nb] = '\0';
		fputs("treecmp: ", stderr);
		put_escaped(stderr, path);
		fputs(": symlink target differs: A=", stderr);
		put_escaped(stderr, la);
		fputs(" B=", stderr);
		put_escaped(stderr, lb);
		fputc('\n', stderr);
	}
	free(la);
	free(lb);
}

/* ---- hard links ---------------------------------------------------------- */

static void link_record(struct walk *w, const char *path, const struct stat *sa,
			const struct stat *sb)
{
	struct link_rec *l;

	if (sa->st_nlink < 2 && sb->st_nlink < 2)
		return;
	if (w->nlinks == w->links_cap) {
		w->links_cap = w->links_cap ? 2 * w->links_cap : 64;
		w->links = xrealloc(w->links, w->links_cap * sizeof(*w->links));
	}
	l = &w->links[w->nlinks++];
	l->adev = sa->st_dev;
	l->aino = sa->st_ino;
	l->bdev = sb->st_dev;
	l->bino = sb->st_ino;
	l->path = path_join("", path);
}

static int cmp_key(dev_t d1, ino_t i1, dev_t d2, ino_t i2)
{
	if (d1 != d2)
		return d1 < d2 ? -1 : 1;
	if (i1 != i2)
		return i1 < i2 ? -1 : 1;
	return 0;
}

static int cmp_link_a(const void *x, const void *y)
{
	const struct link_rec *a = x, *b = y;
	int c = cmp_key(a->adev, a->aino, b->adev, b->aino);

	return c ? c : strcmp(a->path, b->path);
}

static int cmp_link_b(const void *x, const void *y)
{
	const struct link_rec *a = x, *b = y;
	int c = cmp_key(a->bdev, a->bino, b->bdev, b->bino);

	return c ? c : strcmp(a->path, b->path);
}

/*
 * Paths that share an inode on one side must share one on the other side:
 * group by A's inode and require one B inode per group, then the reverse.
 */
static void check_links(struct walk *w)
{
	size_t i, first;

	if (w->nlinks == 0)
		return;
	qsort(w->links, w->nlinks, sizeof(*w->links), cmp_link_a);
	for (i = 1, first = 0; i < w->nlinks; i++) {
		const struct link_rec *f = &w->links[first], *l = &w->links[i];

		if (cmp_key(f->adev, f->aino, l->adev, l->aino) != 0) {
			first = i;
			continue;
		}
		if (cmp_key(f->bdev, f->bino, l->bdev, l->bino) != 0) {
			w->ndiff++;
			fputs("treecmp: ", stderr);
			put_escaped(stderr, l->path);
			fputs(": hard link of ", stderr);
			put_escaped(stderr, f->path);
			fputs(" in A, but not in B\n", stderr);
		}
	}
	qsort(w->links, w->nlinks, sizeof(*w->links), cmp_link_b);
	for (i = 1, first = 0; i < w->nlinks; i++) {
		const struct link_rec *f = &w->links[first], *l = &w->links[i];

		if (cmp_key(f->bdev, f->bino, l->bdev, l->bino) != 0) {
			first = i;
			continue;
		}
		if (cmp_key(f->adev, f->aino, l->adev, l->aino) != 0) {
			w->ndiff++;
			fputs("treecmp: ", stderr);
			put_escaped(stderr, l->path);
			fputs(": hard link of ", stderr);
			put_escaped(stderr, f->path);
			fputs(" in B, but not in A\n", stderr);
		}
	}
	for (i = 0; i < w->nlinks; i++)
		free(w->links[i].path);
	free(w->links);
	w->links = NULL;
	w->nlinks = w->links_cap = 0;
}

/* ---- directories ---------------------------------------------------------- */

struct names {
	char **v;
	size_t n, cap;
};

static void names_free(struct names *n)
{
	size_t i;

	for (i = 0; i < n->n; i++)
		free(n->v[i]);
	free(n->v);
}

static int names_read(int dirfd, struct names *ret)
{
	int fd = dup(dirfd);
	struct dirent *de;
	DIR *d;

	memset(ret, 0, sizeof(*ret));
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		int e = errno;

		close(fd);
		return -e;
	}
	rewinddir(d);
	for (;;) {
		size_t len;

		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (ret->n == ret->cap) {
			ret->cap = ret->cap ? 2 * ret->cap : 32;
			ret->v = xrealloc(ret->v, ret->cap * sizeof(char *));
		}
		len = strlen(de->d_name);
		ret->v[ret->n] = xmalloc(len + 1);
		memcpy(ret->v[ret->n], de->d_name, len + 1);
		ret->n++;
	}
	if (errno) {
		int e = errno;

		closedir(d);
		names_free(ret);
		return -e;
	}
	closedir(d);
	if (ret->n > 0)
		qsort(ret->v, ret->n, sizeof(char *), cmp_str);
	return 0;
}

static void compare_node(struct walk *w, const char *path, int adir, const char *aname, int bdir,
			 const char *bname);

/* With --ignore-sockets, a socket on one side only is no difference. */
static bool is_ignored_socket(struct walk *w, int dirfd, const char *name)
{
	struct stat st;

	return w->o.ignore_sockets && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISSOCK(st.st_mode);
}

static void compare_dir(struct walk *w, const char *path, int adir, const char *aname, int bdir,
			const char *bname)
{
	struct names na, nb;
	size_t i = 0, j = 0;
	int afd, bfd, r;

	afd = open_noatime(adir, aname, O_RDONLY | O_DIRECTORY);
	if (afd < 0) {
		fail(w, path, errno, "cannot open directory in A");
		return;
	}
	bfd = open_noatime(bdir, bname, O_RDONLY | O_DIRECTORY);
	if (bfd < 0) {
		fail(w, path, errno, "cannot open directory in B");
		close(afd);
		return;
	}
	r = names_read(afd, &na);
	if (r < 0) {
		fail(w, path, -r, "cannot read directory in A");
		goto out;
	}
	r = names_read(bfd, &nb);
	if (r < 0) {
		fail(w, path, -r, "cannot read directory in B");
		names_free(&na);
		goto out;
	}
	while (i < na.n || j < nb.n) {
		int c = i >= na.n ? 1 : j >= nb.n ? -1 : strcmp(na.v[i], nb.v[j]);
		char *sub;

		if (c < 0) {
			sub = path_join(path, na.v[i]);
			if (!is_ignored_socket(w, afd, na.v[i]))
				diff(w, sub, "only in A");
			i++;
		} else if (c > 0) {
			sub = path_join(path, nb.v[j]);
			if (!is_ignored_socket(w, bfd, nb.v[j]))
				diff(w, sub, "only in B");
			j++;
		} else {
			sub = path_join(path, na.v[i]);
			compare_node(w, sub, afd, na.v[i], bfd, nb.v[j]);
			i++;
			j++;
		}
		free(sub);
	}
	names_free(&na);
	names_free(&nb);
out:
	close(afd);
	close(bfd);
}

static void compare_time(struct walk *w, const char *path, const char *what,
			 const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec || a->tv_nsec != b->tv_nsec)
		diff(w, path, "%s differs: A=%lld.%09ld B=%lld.%09ld", what, (long long)a->tv_sec,
		     a->tv_nsec, (long long)b->tv_sec, b->tv_nsec);
}

static void compare_node(struct walk *w, const char *path, int adir, const char *aname, int bdir,
			 const char *bname)
{
	struct stat sa, sb;

	if (fstatat(adir, aname, &sa, AT_SYMLINK_NOFOLLOW) < 0) {
		fail(w, path, errno, "cannot lstat A");
		return;
	}
	if (fstatat(bdir, bname, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		fail(w, path, errno, "cannot lstat B");
		return;
	}
	if (w->o.ignore_sockets && (S_ISSOCK(sa.st_mode) || S_ISSOCK(sb.st_mode)))
		return;
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
		diff(w, path, "type differs: A %s, B %s", type_name(sa.st_mode),
		     type_name(sb.st_mode));
		return;
	}
	if ((sa.st_mode & 07777) != (sb.st_mode & 07777))
		diff(w, path, "mode differs: A=%04o B=%04o", (unsigned)(sa.st_mode & 07777),
		     (unsigned)(sb.st_mode & 07777));
	if (!w->o.ignore_owner && sa.st_uid != sb.st_uid)
		diff(w, path, "uid differs: A=%lu B=%lu", (unsigned long)sa.st_uid,
		     (unsigned long)sb.st_uid);
	if (!w->o.ignore_owner && sa.st_gid != sb.st_gid)
		diff(w, path, "gid differs: A=%lu B=%lu", (unsigned long)sa.st_gid,
		     (unsigned long)sb.st_gid);
	compare_time(w, path, "mtime", &sa.st_mtim, &sb.st_mtim);
	if (!w->o.ignore_atime)
		compare_time(w, path, "atime", &sa.st_atim, &sb.st_atim);
	if (w->o.check_ctime)
		compare_time(w, path, "ctime", &sa.st_ctim, &sb.st_ctim);

	switch (sa.st_mode & S_IFMT) {
	case S_IFREG:
		compare_file(w, path, adir, aname, &sa, bdir, bname, &sb);
		break;
	case S_IFLNK:
		compare_symlink(w, path, adir, aname, bdir, bname);
		break;
	case S_IFCHR:
	case S_IFBLK:
		if (sa.st_rdev != sb.st_rdev)
			diff(w, path, "device differs: A=%u:%u B=%u:%u", major(sa.st_rdev),
			     minor(sa.st_rdev), major(sb.st_rdev), minor(sb.st_rdev));
		break;
	default:
		break;
	}
	if (!S_ISDIR(sa.st_mode))
		link_record(w, path, &sa, &sb);
	compare_xattrs(w, path, adir, aname, bdir, bname);
	if (S_ISDIR(sa.st_mode))
		compare_dir(w, path, adir, aname, bdir, bname);
}

static void usage(FILE *f)
{
	fputs("usage: treecmp [--ignore-atime] [--ignore-owner] [--ignore-ctime] [--exact-holes]\n"
	      "               [--ignore-sockets] A B\n"
	      "\n"
	      "Compares two trees without following symlinks: type, mode, owner, size,\n"
	      "content, mtime/atime (ns), symlink targets, devices, xattrs and ACLs,\n"
	      "hard links, sparseness and directory entries.\n"
	      "\n"
	      "  --ignore-atime   do not compare access times\n"
	      "  --ignore-owner   do not compare uid and gid\n"
	      "  --ignore-ctime   do not compare change times (the default)\n"
	      "  --check-ctime    compare change times too\n"
	      "  --exact-holes    require identical hole/data maps, not only both sparse\n"
	      "  --ignore-sockets leave out sockets (restorers may skip them)\n"
	      "\n"
	      "Exit status: 0 identical, 1 different, 2 usage or read error.\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"ignore-atime", no_argument, NULL, 'a'},
		{"ignore-owner", no_argument, NULL, 'o'},
		{"ignore-ctime", no_argument, NULL, 'c'},
		{"check-ctime", no_argument, NULL, 'C'},
		{"exact-holes", no_argument, NULL, 'H'},
		{"ignore-sockets", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct walk w;
	struct stat st;
	int c;

	memset(&w, 0, sizeof(w));
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			w.o.ignore_atime = true;
			break;
		case 'o':
			w.o.ignore_owner = true;
			break;
		case 'c':
			w.o.check_ctime = false;
			break;
		case 'C':
			w.o.check_ctime = true;
			break;
		case 'H':
			w.o.exact_holes = true;
			break;
		case 'S':
			w.o.ignore_sockets = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	for (c = optind; c < argc; c++) {
		if (lstat(argv[c], &st) < 0) {
			fprintf(stderr, "treecmp: cannot lstat '%s': %s\n", argv[c],
				strerror(errno));
			return 2;
		}
	}
	w.buf_a = xmalloc(READ_CHUNK);
	w.buf_b = xmalloc(READ_CHUNK);
	compare_node(&w, "", AT_FDCWD, argv[optind], AT_FDCWD, argv[optind + 1]);
	check_links(&w);
	free(w.buf_a);
	free(w.buf_b);
	if (w.nerr)
		fprintf(stderr, "treecmp: %lu error(s), %lu difference(s)\n", w.nerr, w.ndiff);
	else if (w.ndiff)
		fprintf(stderr, "treecmp: %lu difference(s)\n", w.ndiff);
	return w.nerr ? 2 : w.ndiff ? 1 : 0;
}

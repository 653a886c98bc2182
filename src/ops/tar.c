/*
 * keel dump of a directory: a POSIX.1-2001 (pax) tar archive of a
 * subtree, streamed. Each entry is a ustar header, preceded by a pax
 * extended header ('x') when something does not fit ustar: a name over
 * 100 bytes that no '/' splits into prefix and name, a link target over
 * 100 bytes, a size of 8 GiB or more, ids over 2097151, times before 1970,
 * after 2242 or with nanoseconds, user or group names over 31 bytes,
 * extended attributes. GNU tar, bsdtar and Python's tarfile read it.
 */
#include <stdio.h>
#include <sys/sysmacros.h>

#include "keel/fs.h"
#include "keel/query.h"

#define BLOCK 512
#define OUT_BUF ((size_t)1 << 16)
#define BLOB_BUF_MAX ((size_t)64 << 20)
#define PAX_MAX ((size_t)64 << 20)

struct hlink {
	uint64_t dev, inode;
	char *path;
};

struct tarw {
	struct kl_repo *r;
	int fd;
	uint8_t out[OUT_BUF];
	size_t n;
	struct kl_buf pax, blob;
	struct hlink *links;
	size_t links_cap, links_n;
	struct kl_tar_stats *st;
};

static int out_flush(struct tarw *w)
{
	int rc = kl_fs_write_full(w->fd, w->out, w->n);

	w->n = 0;
	return rc;
}

static int out_write(struct tarw *w, const void *p, size_t n)
{
	int rc;

	if (w->n + n > OUT_BUF) {
		rc = out_flush(w);
		if (rc < 0)
			return rc;
		if (n >= OUT_BUF)
			return kl_fs_write_full(w->fd, p, n);
	}
	memcpy(w->out + w->n, p, n);
	w->n += n;
	return 0;
}

static int out_pad(struct tarw *w, uint64_t len)
{
	static const uint8_t zero[BLOCK];
	size_t pad = (size_t)((BLOCK - len % BLOCK) % BLOCK);

	return pad ? out_write(w, zero, pad) : 0;
}

/* ---- pax records ------------------------------------------------------------------ */

/* "LEN key=value\n", LEN counting itself */
static int pax_add(struct kl_buf *b, const char *key, const void *val, size_t vlen)
{
	size_t body = 1 + strlen(key) + 1 + vlen + 1, len = body, digits;
	char num[24];
	int rc;

	for (;;) {
		digits = (size_t)snprintf(num, sizeof(num), "%zu", len);
		if (body + digits == len)
			break;
		len = body + digits;
	}
	rc = kl_buf_add(b, num, digits);
	if (rc >= 0)
		rc = kl_buf_addch(b, ' ');
	if (rc >= 0)
		rc = kl_buf_add(b, key, strlen(key));
	if (rc >= 0)
		rc = kl_buf_addch(b, '=');
	if (rc >= 0)
		rc = kl_buf_add(b, val, vlen);
	if (rc >= 0)
		rc = kl_buf_addch(b, '\n');
	return rc;
}

static int pax_addu(struct kl_buf *b, const char *key, uint64_t v)
{
	char s[24];

	return pax_add(b, key, s, (size_t)snprintf(s, sizeof(s), "%llu", (unsigned long long)v));
}

static int pax_time(struct kl_buf *b, const char *key, int64_t sec, uint32_t nsec)
{
	char s[48];
	int n;

	/* a time before 1970 is "-S.F" with S.F = -(sec + nsec/1e9) */
	if (sec < 0 && nsec) {
		uint64_t whole = (uint64_t)(-(sec + 1));

		n = snprintf(s, sizeof(s), "-%llu.%09u", (unsigned long long)whole,
			     (unsigned)(KL_NSEC_PER_SEC - nsec));
	} else if (nsec) {
		n = snprintf(s, sizeof(s), "%lld.%09u", (long long)sec, nsec);
	} else {
		n = snprintf(s, sizeof(s), "%lld", (long long)sec);
	}
	return pax_add(b, key, s, (size_t)n);
}

/* ---- ustar headers ------------------------------------------------------------------ */

static bool put_octal(uint8_t *field, size_t width, uint64_t v)
{
	char s[24];

	/* width - 1 digits and a NUL */
	if (width - 1 < 22 && v >> (3 * (width - 1)))
		return false;
	snprintf(s, sizeof(s), "%0*llo", (int)(width - 1), (unsigned long long)v);
	memcpy(field, s, width - 1);
	field[width - 1] = 0;
	return true;
}

/* Puts name in the header's name (and prefix); false if it does not fit. */
static bool put_name(uint8_t *h, const char *name, size_t len)
{
	if (len <= 100) {
		memcpy(h, name, len);
		return true;
	}
	for (size_t i = len - 1; i > 0; i--) {
		if (name[i] != '/')
			continue;
		if (i > 155)
			continue;
		if (len - i - 1 > 100 || len - i - 1 == 0)
			return false;
		memcpy(h + 345, name, i);
		memcpy(h, name + i + 1, len - i - 1);
		return true;
	}
	return false;
}

static void checksum(uint8_t *h)
{
	unsigned sum = 0;

	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/* A header block with the common fields; what does not fit goes to w->pax. */
static int fill_header(struct tarw *w, uint8_t *h, const struct kl_node *n, uint64_t size)
{
	int rc = 0;

	memset(h, 0, BLOCK);
	put_octal(h + 100, 8, n->mode & 07777);
	if (!put_octal(h + 108, 8, n->uid))
		rc = pax_addu(&w->pax, "uid", n->uid);
	if (rc >= 0 && !put_octal(h + 116, 8, n->gid))
		rc = pax_addu(&w->pax, "gid", n->gid);
	if (rc >= 0 && !put_octal(h + 124, 12, size)) {
		put_octal(h + 124, 12, 0);
		rc = pax_addu(&w->pax, "size", size);
	}
	if (rc >= 0 && (n->mtime_sec < 0 || n->mtime_nsec ||
			!put_octal(h + 136, 12, (uint64_t)n->mtime_sec))) {
		put_octal(h + 136, 12,
			  n->mtime_sec > 0 ? (uint64_t)n->mtime_sec & 077777777777 : 0);
		rc = pax_time(&w->pax, "mtime", n->mtime_sec, n->mtime_nsec);
	}
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	if (rc >= 0 && n->user) {
		if (strlen(n->user) < 32)
			memcpy(h + 265, n->user, strlen(n->user));
		else
			rc = pax_add(&w->pax, "uname", n->user, strlen(n->user));
	}
	if (rc >= 0 && n->group) {
		if (strlen(n->group) < 32)
			memcpy(h + 297, n->group, strlen(n->group));
		else
			rc = pax_add(&w->pax, "gname", n->group, strlen(n->group));
	}
	for (size_t i = 0; i < n->n_xattrs && rc >= 0; i++) {
		size_t klen = strlen(n->xattrs[i].name) + 14;
		_cleanup_free_ char *key = kl_malloc(klen);

		if (!key)
			return -ENOMEM;
		snprintf(key, klen, "SCHILY.xattr.%s", n->xattrs[i].name);
		rc = pax_add(&w->pax, key, n->xattrs[i].value, n->xattrs[i].value_len);
	}
	return rc;
}

static int write_entry(struct tarw *w, const char *name, const struct kl_node *n, char type,
		       const uint8_t *link, size_t link_len, uint64_t size)
{
	uint8_t h[BLOCK];
	size_t len = strlen(name);
	int rc;

	kl_buf_setlen(&w->pax, 0);
	rc = fill_header(w, h, n, size);
	if (rc >= 0 && !put_name(h, name, len)) {
		memcpy(h, name, 100 < len ? 100 : len);
		rc = pax_add(&w->pax, "path", name, len);
	}
	if (rc >= 0 && link) {
		if (link_len <= 100)
			memcpy(h + 157, link, link_len);
		else
			rc = pax_add(&w->pax, "linkpath", link, link_len);
	}
	h[156] = (uint8_t)type;
	if (rc >= 0 && (type == '3' || type == '4')) {
		put_octal(h + 329, 8, major(n->rdev));
		put_octal(h + 337, 8, minor(n->rdev));
	}
	if (rc < 0)
		return rc;
	checksum(h);
	if (w->pax.len) {
		uint8_t x[BLOCK];
		struct kl_node xn = *n;

		xn.user = xn.group = NULL;
		xn.n_xattrs = 0;
		xn.mtime_nsec = 0;
		memset(x, 0, BLOCK);
		put_octal(x + 100, 8, 0644);
		put_octal(x + 108, 8, 0);
		put_octal(x + 116, 8, 0);
		put_octal(x + 124, 12, w->pax.len);
		put_octal(x + 136, 12,
			  xn.mtime_sec > 0 ? (uint64_t)xn.mtime_sec & 077777777777 : 0);
		memcpy(x, "./PaxHeaders/entry", 18);
		x[156] = 'x';
		memcpy(x + 257, "ustar", 6);
		memcpy(x + 263, "00", 2);
		checksum(x);
		rc = out_write(w, x, BLOCK);
		if (rc >= 0)
			rc = out_write(w, w->pax.data, w->pax.len);
		if (rc >= 0)
			rc = out_pad(w, w->pax.len);
		if (rc < 0)
			return rc;
	}
	w->st->entries++;
	return out_write(w, h, BLOCK);
}

/* ---- the content of files ------------------------------------------------------------ */

static int write_content(struct tarw *w, const char *path, const struct kl_node *n)
{
	static const uint8_t zero[4096];
	uint64_t total = 0;
	int rc;

	for (size_t i = 0; i < n->n_content; i++) {
		rc = kl_repo_read_blob(w->r, &n->content[i], &w->blob);
		if (rc == -KL_ENOTFOUND)
			rc = -KL_ECORRUPT;
		if (rc < 0)
			return kl_repo_fail(w->r, rc, "content of '%s'", path);
		if (w->blob.len > n->size - total)
			break;
		rc = out_write(w, w->blob.data, w->blob.len);
		if (rc < 0)
			return rc;
		total += w->blob.len;
	}
	/* the header promised size bytes: a file cut short by a read error is padded */
	if (total != n->size && !(n->flags & KL_NODE_PARTIAL))
		return kl_repo_fail(w->r, -KL_ECORRUPT,
				    "content of '%s' is not the %llu bytes the snapshot says", path,
				    (unsigned long long)n->size);
	while (total < n->size) {
		size_t k =
			n->size - total < sizeof(zero) ? (size_t)(n->size - total) : sizeof(zero);

		rc = out_write(w, zero, k);
		if (rc < 0)
			return rc;
		total += k;
	}
	w->st->bytes += total;
	return out_pad(w, total);
}

/* ---- hard links ------------------------------------------------------------------------ */

static struct hlink *link_slot(struct tarw *w, uint64_t dev, uint64_t inode)
{
	size_t i = (size_t)((inode * 0x9e3779b97f4a7c15ULL) ^ dev) & (w->links_cap - 1);

	while (w->links[i].path && (w->links[i].dev != dev || w->links[i].inode != inode))
		i = (i + 1) & (w->links_cap - 1);
	return &w->links[i];
}

/* The first name of a file with several links, or NULL (then remembers this one). */
static int link_target(struct tarw *w, const char *name, const struct kl_node *n, const char **ret)
{
	struct hlink *l;

	*ret = NULL;
	if (n->nlink < 2 || !n->inode)
		return 0;
	if ((w->links_n + 1) * 2 > w->links_cap) {
		struct hlink *old = w->links;
		size_t old_cap = w->links_cap;

		w->links_cap = old_cap ? old_cap * 2 : 64;
		w->links = kl_calloc(w->links_cap, sizeof(*w->links));
		if (!w->links) {
			w->links = old;
			w->links_cap = old_cap;
			return -ENOMEM;
		}
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].path)
				*link_slot(w, old[i].dev, old[i].inode) = old[i];
		kl_free(old);
	}
	l = link_slot(w, n->dev, n->inode);
	if (l->path) {
		*ret = l->path;
		return 0;
	}
	l->path = kl_strdup(name);
	if (!l->path)
		return -ENOMEM;
	l->dev = n->dev;
	l->inode = n->inode;
	w->links_n++;
	return 0;
}

/* ---- the walk -------------------------------------------------------------------------- */

static int tar_node(const char *path, const struct kl_node *n, void *ud)
{
	struct tarw *w = ud;
	const char *name = path;
	_cleanup_free_ char *dir = NULL;
	const char *first;
	int rc;

	while (*name == '/')
		name++;
	if (!*name)
		return 0;
	switch (n->type) {
	case KL_NODE_DIR:
		dir = kl_malloc(strlen(name) + 2);
		if (!dir)
			return -ENOMEM;
		snprintf(dir, strlen(name) + 2, "%s/", name);
		return write_entry(w, dir, n, '5', NULL, 0, 0);
	case KL_NODE_FILE:
		rc = link_target(w, name, n, &first);
		if (rc < 0)
			return rc;
		if (first) {
			w->st->hardlinks++;
			return write_entry(w, name, n, '1', (const uint8_t *)first, strlen(first),
					   0);
		}
		rc = write_entry(w, name, n, '0', NULL, 0, n->size);
		return rc < 0 ? rc : write_content(w, path, n);
	case KL_NODE_SYMLINK:
		return write_entry(w, name, n, '2', n->link, n->link_len, 0);
	case KL_NODE_CHR:
		return write_entry(w, name, n, '3', NULL, 0, 0);
	case KL_NODE_BLK:
		return write_entry(w, name, n, '4', NULL, 0, 0);
	case KL_NODE_FIFO:
		return write_entry(w, name, n, '6', NULL, 0, 0);
	default:
		w->st->sockets++;
		return 0;
	}
}

int kl_dump_tar(struct kl_repo *r, const struct kl_id *tree, const char *path, int fd,
		struct kl_tar_stats *ret)
{
	static const uint8_t end[2 * BLOCK];
	struct tarw *w = kl_calloc(1, sizeof(*w));
	struct kl_node top = {0};
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (!w)
		return -ENOMEM;
	w->r = r;
	w->fd = fd;
	w->st = ret;
	w->pax = (struct kl_buf)KL_BUF_INIT(PAX_MAX);
	w->blob = (struct kl_buf)KL_BUF_INIT(BLOB_BUF_MAX);
	rc = kl_tree_lookup(r, tree, path, &top);
	if (rc >= 0 && top.type != KL_NODE_DIR)
		rc = tar_node(path, &top, w);
	else if (rc >= 0) {
		rc = tar_node(path, &top, w);
		if (rc >= 0 && top.has_subtree)
			rc = kl_walk(r, &top.subtree, path, tar_node, w);
	}
	if (rc >= 0)
		rc = out_write(w, end, sizeof(end));
	if (rc >= 0)
		rc = out_flush(w);
	kl_node_release(&top);
	for (size_t i = 0; i < w->links_cap; i++)
		kl_free(w->links[i].path);
	kl_free(w->links);
	kl_buf_release(&w->pax);
	kl_buf_release(&w->blob);
	kl_free(w);
	return rc;
}

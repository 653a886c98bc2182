#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "keel/source.h"

struct id_name {
	uint32_t id;
	bool group;
	char *name; /* NULL: no such user/group */
};

struct kl_idcache {
	struct id_name *v;
	size_t n, cap;
};

int kl_idcache_new(struct kl_idcache **ret)
{
	*ret = kl_calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

void kl_idcache_free(struct kl_idcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		kl_free(c->v[i].name);
	kl_free(c->v);
	kl_free(c);
}

static const char *lookup(struct kl_idcache *c, uint32_t id, bool group)
{
	char buf[4096];
	char *name = NULL;

	/* few distinct owners in practice: a linear scan beats hashing */
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].id == id && c->v[i].group == group)
			return c->v[i].name;
	if (group) {
		struct group gr, *res = NULL;

		if (getgrgid_r(id, &gr, buf, sizeof(buf), &res) == 0 && res)
			name = kl_strdup(res->gr_name);
	} else {
		struct passwd pw, *res = NULL;

		if (getpwuid_r(id, &pw, buf, sizeof(buf), &res) == 0 && res)
			name = kl_strdup(res->pw_name);
	}
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		struct id_name *v = kl_realloc(c->v, ncap * sizeof(*v));

		if (!v) {
			kl_free(name);
			return NULL;
		}
		c->v = v;
		c->cap = ncap;
	}
	c->v[c->n++] = (struct id_name){id, group, name};
	return name;
}

const char *kl_idcache_user(struct kl_idcache *c, uint32_t uid)
{
	return lookup(c, uid, false);
}

const char *kl_idcache_group(struct kl_idcache *c, uint32_t gid)
{
	return lookup(c, gid, true);
}

bool kl_node_fs_keeps_ctime(unsigned long f_type)
{
	/* magic numbers of linux/magic.h, spelled out: the list is short and fixed */
	switch (f_type) {
	case 0xEF53UL:	   /* ext2, ext3, ext4 */
	case 0x58465342UL: /* xfs */
	case 0x9123683EUL: /* btrfs */
	case 0x01021994UL: /* tmpfs */
	case 0xF2F52010UL: /* f2fs */
	case 0x794C7630UL: /* overlayfs: the upper layer's inode once changed */
	case 0x6969UL:	   /* nfs: the server's file system sets it */
		return true;
	default:
		return false;
	}
}

enum kl_node_type kl_node_type_from_mode(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG:
		return KL_NODE_FILE;
	case S_IFDIR:
		return KL_NODE_DIR;
	case S_IFLNK:
		return KL_NODE_SYMLINK;
	case S_IFIFO:
		return KL_NODE_FIFO;
	case S_IFCHR:
		return KL_NODE_CHR;
	case S_IFBLK:
		return KL_NODE_BLK;
	default:
		return KL_NODE_SOCK;
	}
}

bool kl_node_unchanged(const struct kl_node *old, const struct stat *st)
{
	return old->type == KL_NODE_FILE && !(old->flags & (KL_NODE_CHANGED | KL_NODE_PARTIAL)) &&
	       old->size == (uint64_t)st->st_size && old->inode == (uint64_t)st->st_ino &&
	       old->mtime_sec == st->st_mtim.tv_sec &&
	       old->mtime_nsec == (uint32_t)st->st_mtim.tv_nsec &&
	       old->ctime_sec == st->st_ctim.tv_sec &&
	       old->ctime_nsec == (uint32_t)st->st_ctim.tv_nsec;
}

static int read_xattrs(const char *path, struct kl_node *n)
{
	_cleanup_free_ char *names = NULL;
	ssize_t len, vlen;
	size_t cap = 0;

	/* the list can grow between the size probe and the read: retry */
	for (int tries = 0; tries < 5; tries++) {
		len = llistxattr(path, NULL, 0);
		if (len < 0)
			return errno == ENOTSUP || errno == ENOSYS ? 0 : -errno;
		if (len == 0)
			return 0;
		kl_free(names);
		cap = (size_t)len;
		names = kl_malloc(cap);
		if (!names)
			return -ENOMEM;
		len = llistxattr(path, names, cap);
		if (len >= 0)
			break;
		if (errno != ERANGE)
			return -errno;
	}
	if (len < 0)
		return -ERANGE;
	for (char *p = names; p < names + len; p += strlen(p) + 1) {
		struct kl_xattr *x;
		uint8_t *val = NULL;

		vlen = lgetxattr(path, p, NULL, 0);
		if (vlen < 0) {
			if (errno == ENODATA)
				continue; /* removed meanwhile */
			return -errno;
		}
		val = kl_malloc((size_t)vlen + 1);
		if (!val)
			return -ENOMEM;
		vlen = lgetxattr(path, p, val, (size_t)vlen);
		if (vlen < 0) {
			kl_free(val);
			if (errno == ENODATA)
				continue;
			return -errno;
		}
		x = kl_realloc(n->xattrs, (n->n_xattrs + 1) * sizeof(*x));
		if (!x) {
			kl_free(val);
			return -ENOMEM;
		}
		n->xattrs = x;
		x = &n->xattrs[n->n_xattrs];
		x->name = kl_strdup(p);
		if (!x->name) {
			kl_free(val);
			return -ENOMEM;
		}
		x->value = val;
		x->value_len = (size_t)vlen;
		n->n_xattrs++;
	}
	return 0;
}

static bool same_inode_state(const struct kl_node *prev, const struct kl_node *n)
{
	/* a node whose xattrs or target could not be read holds too little to copy */
	return prev && !(prev->flags & KL_NODE_ATTRS_PARTIAL) && prev->type == n->type &&
	       prev->inode == n->inode && prev->ctime_sec == n->ctime_sec &&
	       prev->ctime_nsec == n->ctime_nsec;
}

/* len bytes and a NUL after them, as the readers below leave them */
static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
	uint8_t *q = kl_malloc(len + 1);

	if (!q)
		return NULL;
	if (len)
		memcpy(q, p, len);
	q[len] = 0;
	return q;
}

/* Copies what only a ctime change can change: xattrs and a symlink's target. */
static int copy_inode_state(const struct kl_node *prev, struct kl_node *n)
{
	if (n->type == KL_NODE_SYMLINK) {
		n->link = dup_bytes(prev->link, prev->link_len);
		if (!n->link)
			return -ENOMEM;
		n->link_len = prev->link_len;
	}
	if (!prev->n_xattrs)
		return 0;
	n->xattrs = kl_calloc(prev->n_xattrs, sizeof(*n->xattrs));
	if (!n->xattrs)
		return -ENOMEM;
	for (size_t i = 0; i < prev->n_xattrs; i++) {
		const struct kl_xattr *x = &prev->xattrs[i];
		struct kl_xattr *y = &n->xattrs[i];

		y->name = kl_strdup(x->name);
		y->value = dup_bytes(x->value, x->value_len);
		if (!y->name || !y->value) {
			kl_free(y->name);
			kl_free(y->value);
			return -ENOMEM;
		}
		y->value_len = x->value_len;
		n->n_xattrs++;
	}
	return 0;
}

/* Reads what only a ctime change can change: a symlink's target, xattrs. */
static int read_inode_state(int dirfd, const char *name, const struct stat *st, struct kl_node *n)
{
	char path[64 + 4096];

	if (n->type == KL_NODE_SYMLINK) {
		size_t cap = (size_t)st->st_size + 1;

		if (cap < 64)
			cap = 64;
		for (;;) {
			ssize_t len;

			n->link = kl_malloc(cap);
			if (!n->link)
				return -ENOMEM;
			len = readlinkat(dirfd, name, (char *)n->link, cap);
			if (len < 0)
				return -errno;
			if ((size_t)len < cap) {
				n->link_len = (size_t)len;
				break;
			}
			kl_free(n->link);
			n->link = NULL;
			cap *= 2;
			if (cap > (1u << 20))
				return -ENAMETOOLONG;
		}
	}
	if (n->type == KL_NODE_SOCK)
		return 0;
	/* /proc/self/fd/N/name reaches the entry even when its full path exceeds PATH_MAX */
	if ((size_t)snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	return read_xattrs(path, n);
}

int kl_node_from_stat(int dirfd, const char *name, const struct stat *st, struct kl_idcache *ids,
		      const struct kl_node *prev, struct kl_node *n)
{
	const char *s;
	int r;

	n->type = kl_node_type_from_mode(st->st_mode);
	n->mode = st->st_mode & 07777;
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	if (ids) {
		if ((s = kl_idcache_user(ids, st->st_uid)) && !(n->user = kl_strdup(s)))
			return -ENOMEM;
		if ((s = kl_idcache_group(ids, st->st_gid)) && !(n->group = kl_strdup(s)))
			return -ENOMEM;
	}
	n->size = n->type == KL_NODE_FILE ? (uint64_t)st->st_size : 0;
	n->mtime_sec = st->st_mtim.tv_sec;
	n->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	n->atime_sec = st->st_atim.tv_sec;
	n->atime_nsec = (uint32_t)st->st_atim.tv_nsec;
	n->ctime_sec = st->st_ctim.tv_sec;
	n->ctime_nsec = (uint32_t)st->st_ctim.tv_nsec;
	n->inode = st->st_ino;
	n->dev = st->st_dev;
	n->nlink = st->st_nlink;
	if (n->type == KL_NODE_CHR || n->type == KL_NODE_BLK)
		n->rdev = st->st_rdev;
	if (n->type == KL_NODE_FILE && (uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size)
		n->flags |= KL_NODE_SPARSE;
	if (same_inode_state(prev, n))
		return copy_inode_state(prev, n);
	r = read_inode_state(dirfd, name, st, n);
	/* the node is still saved: the next backup must not take its incomplete state as true */
	if (r < 0 && r != -ENOMEM)
		n->flags |= KL_NODE_ATTRS_PARTIAL;
	return r;
}

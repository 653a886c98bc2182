/*
 * Trees: one directory's entries, sorted by name. Tree blobs are content-
 * addressed, so the encoding must be a pure function of the tree: fields
 * in number order, defaults omitted, nodes sorted by name and xattrs
 * sorted by name.
 *
 * The decoder is the gate restore passes through, so the name rules
 * (non-empty, not "." or "..", no '/' or NUL, strictly increasing) are
 * what keeps a malicious tree from writing outside the target directory
 * or over a file restored a moment earlier. The encoder applies the same
 * rules (one function, node_valid()), so a backup never writes a tree it
 * would later refuse to restore.
 *
 * A directory too big for one blob is a head plus continuation parts. The
 * head carries version 2, which older readers refuse with -KL_EVERSION
 * instead of silently restoring only its first nodes; a tree that fits
 * one blob stays version 1, byte for byte as before.
 */
#include <stdlib.h>

#include "keel/format.h"
#include "format-internal.h"

#define KL_TREE_VERSION_CONTINUED 2 /* of a head; plain trees stay KL_FORMAT_VERSION */

enum {
	F_NAME = 1,
	F_TYPE,
	F_MODE,
	F_UID,
	F_GID,
	F_USER,
	F_GROUP,
	F_SIZE,
	F_MTIME_SEC,
	F_MTIME_NSEC,
	F_ATIME_SEC,
	F_ATIME_NSEC,
	F_CTIME_SEC,
	F_CTIME_NSEC,
	F_INODE,
	F_DEV,
	F_NLINK,
	F_RDEV,
	F_LINK,
	F_CONTENT,
	F_SUBTREE,
	F_XATTRS,
	F_FLAGS,
};
enum { F_TREE_VERSION = 1, F_TREE_NODES = 2, F_TREE_MORE = 3 };
enum { F_XATTR_NAME = 1, F_XATTR_VALUE = 2 };

/* ---- names and nodes --------------------------------------------------- */

int kl_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = KL_MIN(alen, blen);
	int c = n ? memcmp(a, b, n) : 0; /* a name may be NULL when empty */

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static bool name_valid(const uint8_t *s, size_t n)
{
	if (!s || n == 0)
		return false;
	if (s[0] == '.' && (n == 1 || (n == 2 && s[1] == '.')))
		return false;
	return !memchr(s, '/', n) && !memchr(s, 0, n);
}

/*
 * Everything a node must satisfy on both sides of the encoding, except
 * the xattr order, which the encoder establishes and the decoder checks.
 */
static bool node_valid(const struct kl_node *nd)
{
	size_t i;

	if (!name_valid(nd->name, nd->name_len))
		return false;
	if (nd->type < KL_NODE_FILE || nd->type > KL_NODE_SOCK)
		return false;
	if (nd->mode > 07777)
		return false;
	if (nd->mtime_nsec >= KL_NSEC_PER_SEC || nd->atime_nsec >= KL_NSEC_PER_SEC ||
	    nd->ctime_nsec >= KL_NSEC_PER_SEC)
		return false;
	/* payload fields belong to one type each; an empty one is absent */
	if (nd->link_len && (!nd->link || nd->type != KL_NODE_SYMLINK))
		return false;
	if (nd->n_content && (!nd->content || nd->type != KL_NODE_FILE))
		return false;
	if (nd->n_content > SIZE_MAX / KL_ID_LEN)
		return false;
	if (nd->has_subtree != (nd->type == KL_NODE_DIR))
		return false;
	if (nd->n_xattrs > KL_NODE_MAX_XATTRS || (nd->n_xattrs && !nd->xattrs))
		return false;
	for (i = 0; i < nd->n_xattrs; i++) {
		const struct kl_xattr *x = &nd->xattrs[i];

		if (!x->name || !x->name[0])
			return false;
		if (x->value_len > KL_XATTR_VALUE_MAX || (x->value_len && !x->value))
			return false;
	}
	return true;
}

void kl_node_release(struct kl_node *n)
{
	size_t i;

	if (!n)
		return;
	kl_free(n->name);
	kl_free(n->user);
	kl_free(n->group);
	kl_free(n->link);
	kl_free(n->content);
	for (i = 0; i < n->n_xattrs; i++) {
		kl_free(n->xattrs[i].name);
		kl_free(n->xattrs[i].value);
	}
	kl_free(n->xattrs);
	memset(n, 0, sizeof(*n));
}

/* ---- trees ------------------------------------------------------------ */

int kl_tree_add(struct kl_tree *t, struct kl_node *n)
{
	if (kl_array_grow(&t->nodes, &t->cap, t->n, sizeof(*t->nodes), 16) < 0)
		return -ENOMEM;
	t->nodes[t->n++] = *n;
	memset(n, 0, sizeof(*n));
	return 0;
}

void kl_tree_release(struct kl_tree *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++)
		kl_node_release(&t->nodes[i]);
	kl_free(t->nodes);
	kl_free(t->more);
	memset(t, 0, sizeof(*t));
}

static int node_cmp(const void *a, const void *b)
{
	const struct kl_node *x = a, *y = b;

	return kl_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

void kl_tree_sort(struct kl_tree *t)
{
	if (t->n > 1)
		qsort(t->nodes, t->n, sizeof(*t->nodes), node_cmp);
}

const struct kl_node *kl_tree_find(const struct kl_tree *t, const uint8_t *name, size_t len)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kl_node *nd = &t->nodes[mid];
		int c = kl_name_cmp(name, len, nd->name, nd->name_len);

		if (c == 0)
			return nd;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- encoding --------------------------------------------------------- */

static int xattr_ptr_cmp(const void *a, const void *b)
{
	const struct kl_xattr *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int xattr_encode(const struct kl_xattr *x, struct kl_buf *out)
{
	size_t mark;
	int r;

	r = kl_pb_begin(out, F_XATTRS, &mark);
	if (r >= 0)
		r = kl_pb_put_str(out, F_XATTR_NAME, x->name);
	if (r >= 0)
		r = kl_pb_put_bytes_nz(out, F_XATTR_VALUE, x->value, x->value_len);
	if (r >= 0)
		r = kl_pb_end(out, mark);
	return r;
}

/*
 * Writes xattrs sorted by name whatever order the array has (listxattr's
 * order depends on the file system), so equal files give equal trees.
 */
static int xattrs_encode(const struct kl_node *nd, struct kl_buf *out)
{
	_cleanup_free_ const struct kl_xattr **sorted = NULL;
	size_t i;
	int r;

	for (i = 1; i < nd->n_xattrs; i++)
		if (strcmp(nd->xattrs[i - 1].name, nd->xattrs[i].name) >= 0)
			break;
	if (i >= nd->n_xattrs) {
		/* already in order: the common case */
		for (i = 0; i < nd->n_xattrs; i++) {
			r = xattr_encode(&nd->xattrs[i], out);
			if (r < 0)
				return r;
		}
		return 0;
	}
	sorted = kl_malloc(nd->n_xattrs * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (i = 0; i < nd->n_xattrs; i++)
		sorted[i] = &nd->xattrs[i];
	qsort(sorted, nd->n_xattrs, sizeof(*sorted), xattr_ptr_cmp);
	for (i = 1; i < nd->n_xattrs; i++)
		if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
			return -EINVAL;
	for (i = 0; i < nd->n_xattrs; i++) {
		r = xattr_encode(sorted[i], out);
		if (r < 0)
			return r;
	}
	return 0;
}

static int node_encode(const struct kl_node *nd, struct kl_buf *out)
{
	size_t mark;
	int r;

	if (!node_valid(nd))
		return -EINVAL;
	r = kl_pb_begin(out, F_TREE_NODES, &mark);
	if (r < 0)
		return r;
	/*
	 * Each call leaves r < 0 on failure and is skipped after one; the
	 * caller truncates the buffer.
	 */
	r = kl_pb_put_bytes(out, F_NAME, nd->name, nd->name_len);
	if (r >= 0)
		r = kl_pb_put_uint(out, F_TYPE, nd->type);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_MODE, nd->mode);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_UID, nd->uid);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_GID, nd->gid);
	if (r >= 0)
		r = kl_pb_put_str(out, F_USER, nd->user);
	if (r >= 0)
		r = kl_pb_put_str(out, F_GROUP, nd->group);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_SIZE, nd->size);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_MTIME_SEC, nd->mtime_sec);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_MTIME_NSEC, nd->mtime_nsec);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_ATIME_SEC, nd->atime_sec);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_ATIME_NSEC, nd->atime_nsec);
	if (r >= 0)
		r = kl_pb_put_sint_nz(out, F_CTIME_SEC, nd->ctime_sec);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_CTIME_NSEC, nd->ctime_nsec);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_INODE, nd->inode);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_DEV, nd->dev);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_NLINK, nd->nlink);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_RDEV, nd->rdev);
	if (r >= 0)
		r = kl_pb_put_bytes_nz(out, F_LINK, nd->link, nd->link_len);
	if (r >= 0)
		r = kl_pb_put_bytes_nz(out, F_CONTENT, nd->content, nd->n_content * KL_ID_LEN);
	if (r >= 0 && nd->has_subtree)
		r = kl_pb_put_bytes(out, F_SUBTREE, nd->subtree.b, KL_ID_LEN);
	if (r >= 0)
		r = xattrs_encode(nd, out);
	if (r >= 0)
		r = kl_pb_put_uint_nz(out, F_FLAGS, nd->flags);
	if (r >= 0)
		r = kl_pb_end(out, mark);
	return r;
}

int kl_tree_encode_part(const struct kl_tree *t, size_t from, size_t to, const struct kl_id *more,
			size_t n_more, struct kl_buf *out)
{
	size_t start = out->len, i;
	int r;

	if (from > to || to > t->n || (n_more && (from == to || !more)))
		return -EINVAL;
	if (to - from > KL_TREE_MAX_NODES || n_more >= KL_TREE_MAX_PARTS)
		return -E2BIG;
	r = kl_pb_put_uint(out, F_TREE_VERSION,
			   n_more ? KL_TREE_VERSION_CONTINUED : KL_FORMAT_VERSION);
	for (i = from; r >= 0 && i < to; i++) {
		const struct kl_node *a = &t->nodes[i];

		if (i > from && kl_name_cmp(a[-1].name, a[-1].name_len, a->name, a->name_len) >= 0)
			r = -EINVAL;
		else
			r = node_encode(a, out);
	}
	for (i = 0; r >= 0 && i < n_more; i++)
		r = kl_pb_put_bytes(out, F_TREE_MORE, more[i].b, KL_ID_LEN);
	if (r < 0)
		kl_buf_setlen(out, start);
	return r < 0 ? r : 0;
}

int kl_tree_encode(const struct kl_tree *t, struct kl_buf *out)
{
	return kl_tree_encode_part(t, 0, t->n, NULL, 0, out);
}

int kl_tree_plan(const struct kl_tree *t, size_t max_bytes, size_t max_nodes, size_t part_bytes,
		 size_t part_nodes, size_t **ends_ret, size_t *n_ret)
{
	_cleanup_buf_ struct kl_buf one = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	_cleanup_free_ size_t *size = NULL;
	size_t *ends = NULL, n_ends = 0, cap = 0, total = 2, i;
	int r = 0;

	*ends_ret = NULL;
	*n_ret = 0;
	if (t->n > KL_TREE_MAX_TOTAL_NODES)
		return -E2BIG;
	if (!part_nodes || part_nodes > KL_TREE_MAX_NODES)
		return -EINVAL;
	size = kl_malloc((t->n ? t->n : 1) * sizeof(*size));
	if (!size)
		return -ENOMEM;
	/* each node's encoded size, and the order checks of kl_tree_encode() */
	for (i = 0; i < t->n; i++) {
		const struct kl_node *a = &t->nodes[i];

		if (i > 0 && kl_name_cmp(a[-1].name, a[-1].name_len, a->name, a->name_len) >= 0)
			return -EINVAL;
		kl_buf_clear(&one);
		r = node_encode(a, &one);
		if (r < 0)
			return r;
		size[i] = one.len;
		total += one.len;
	}
	if (t->n <= max_nodes && t->n <= KL_TREE_MAX_NODES && total <= max_bytes) {
		ends = kl_malloc(sizeof(*ends));
		if (!ends)
			return -ENOMEM;
		ends[0] = t->n;
		*ends_ret = ends;
		*n_ret = 1;
		return 0;
	}
	for (i = 0; i < t->n;) {
		size_t bytes = size[i], j = i + 1;

		while (j < t->n && j - i < part_nodes && bytes + size[j] <= part_bytes)
			bytes += size[j++];
		if (n_ends == KL_TREE_MAX_PARTS) {
			r = -E2BIG;
			break;
		}
		r = kl_array_grow(&ends, &cap, n_ends, sizeof(*ends), 16);
		if (r < 0)
			break;
		ends[n_ends++] = j;
		i = j;
	}
	if (r < 0) {
		kl_free(ends);
		return r;
	}
	*ends_ret = ends;
	*n_ret = n_ends;
	return 0;
}

int kl_tree_store(const struct kl_tree *t, size_t max_nodes,
		  int (*store)(void *ud, const uint8_t *p, size_t n, struct kl_id *ret), void *ud,
		  struct kl_id *ret)
{
	_cleanup_buf_ struct kl_buf enc = KL_BUF_INIT(KL_BLOB_RAW_MAX);
	_cleanup_free_ size_t *ends = NULL;
	_cleanup_free_ struct kl_id *more = NULL;
	size_t n_parts, i;
	int r;

	r = kl_tree_plan(t, KL_BLOB_RAW_MAX, max_nodes, KL_TREE_PART_BYTES,
			 KL_MIN(max_nodes, KL_TREE_PART_NODES), &ends, &n_parts);
	if (r < 0)
		return r;
	if (n_parts > 1) {
		more = kl_calloc(n_parts - 1, sizeof(*more));
		if (!more)
			return -ENOMEM;
	}
	for (i = 1; i < n_parts; i++) {
		kl_buf_clear(&enc);
		r = kl_tree_encode_part(t, ends[i - 1], ends[i], NULL, 0, &enc);
		if (r >= 0)
			r = store(ud, enc.data, enc.len, &more[i - 1]);
		if (r < 0)
			return r;
	}
	kl_buf_clear(&enc);
	r = kl_tree_encode_part(t, 0, ends[0], more, n_parts - 1, &enc);
	if (r >= 0)
		r = store(ud, enc.data, enc.len, ret);
	return r;
}

/* ---- decoding --------------------------------------------------------- */

/* Appends one xattr to nd; names must arrive strictly increasing. */
static int xattr_decode(const uint8_t *p, size_t n, struct kl_node *nd, size_t *cap)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	struct kl_xattr *x;
	uint64_t seen = 0;
	int r;

	if (nd->n_xattrs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;

		if (nd->n_xattrs >= KL_NODE_MAX_XATTRS)
			return -KL_ECORRUPT;
		ncap = KL_MIN(ncap, KL_NODE_MAX_XATTRS);
		x = kl_realloc(nd->xattrs, ncap * sizeof(*x));
		if (!x)
			return -ENOMEM;
		nd->xattrs = x;
		*cap = ncap;
	}
	/* counted before it is filled, so a failure below still frees it */
	x = &nd->xattrs[nd->n_xattrs++];
	memset(x, 0, sizeof(*x));

	while ((r = kl_pb_next(&rd, &f)) > 0) {
		switch (f.num) {
		case F_XATTR_NAME:
			r = kl_pb_once(&seen, f.num);
			if (r >= 0)
				r = kl_pb_strdup(&f, &x->name);
			break;
		case F_XATTR_VALUE:
			r = kl_pb_once(&seen, f.num);
			if (r >= 0 && f.len > KL_XATTR_VALUE_MAX)
				r = -KL_ECORRUPT;
			if (r >= 0)
				r = kl_pb_get_bytes(&f, &x->value, &x->value_len);
			break;
		default:
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!x->name || !x->name[0])
		return -KL_ECORRUPT;
	if (nd->n_xattrs > 1 && strcmp(x[-1].name, x->name) >= 0)
		return -KL_ECORRUPT;
	return 0;
}

/* Decodes into a zeroed node; on failure the caller releases it. */
static int node_decode(const uint8_t *p, size_t n, struct kl_node *nd)
{
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	uint64_t seen = 0;
	size_t xcap = 0;
	uint32_t u;
	int r;

	while ((r = kl_pb_next(&rd, &f)) > 0) {
		if (f.num <= F_FLAGS && f.num != F_XATTRS) {
			r = kl_pb_once(&seen, f.num);
			if (r < 0)
				return r;
		}
		switch (f.num) {
		case F_NAME:
			r = kl_pb_get_bytes(&f, &nd->name, &nd->name_len);
			break;
		case F_TYPE:
			r = kl_pb_get_u32(&f, &u);
			if (r >= 0 && (u < KL_NODE_FILE || u > KL_NODE_SOCK))
				r = -KL_ECORRUPT;
			if (r >= 0)
				nd->type = (enum kl_node_type)u;
			break;
		case F_MODE:
			r = kl_pb_get_u32(&f, &nd->mode);
			break;
		case F_UID:
			r = kl_pb_get_u32(&f, &nd->uid);
			break;
		case F_GID:
			r = kl_pb_get_u32(&f, &nd->gid);
			break;
		case F_USER:
			r = kl_pb_strdup(&f, &nd->user);
			break;
		case F_GROUP:
			r = kl_pb_strdup(&f, &nd->group);
			break;
		case F_SIZE:
			r = kl_pb_get_u64(&f, &nd->size);
			break;
		case F_MTIME_SEC:
			r = kl_pb_get_s64(&f, &nd->mtime_sec);
			break;
		case F_MTIME_NSEC:
			r = kl_pb_get_u32(&f, &nd->mtime_nsec);
			break;
		case F_ATIME_SEC:
			r = kl_pb_get_s64(&f, &nd->atime_sec);
			break;
		case F_ATIME_NSEC:
			r = kl_pb_get_u32(&f, &nd->atime_nsec);
			break;
		case F_CTIME_SEC:
			r = kl_pb_get_s64(&f, &nd->ctime_sec);
			break;
		case F_CTIME_NSEC:
			r = kl_pb_get_u32(&f, &nd->ctime_nsec);
			break;
		case F_INODE:
			r = kl_pb_get_u64(&f, &nd->inode);
			break;
		case F_DEV:
			r = kl_pb_get_u64(&f, &nd->dev);
			break;
		case F_NLINK:
			r = kl_pb_get_u64(&f, &nd->nlink);
			break;
		case F_RDEV:
			r = kl_pb_get_u64(&f, &nd->rdev);
			break;
		case F_LINK:
			r = kl_pb_get_bytes(&f, &nd->link, &nd->link_len);
			break;
		case F_CONTENT:
			/* all of a file's ids in one allocation */
			if (f.wire != KL_PB_LEN || f.len % KL_ID_LEN) {
				r = -KL_ECORRUPT;
				break;
			}
			if (f.len) {
				nd->content = kl_memdup(f.p, f.len);
				if (!nd->content) {
					r = -ENOMEM;
					break;
				}
				nd->n_content = f.len / KL_ID_LEN;
			}
			break;
		case F_SUBTREE:
			r = kl_pb_get_id(&f, &nd->subtree);
			nd->has_subtree = r >= 0;
			break;
		case F_XATTRS:
			if (f.wire != KL_PB_LEN)
				r = -KL_ECORRUPT;
			else
				r = xattr_decode(f.p, f.len, nd, &xcap);
			break;
		case F_FLAGS:
			r = kl_pb_get_u32(&f, &nd->flags);
			break;
		default:
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!(seen & (1u << F_TYPE)) || !node_valid(nd))
		return -KL_ECORRUPT;
	return 0;
}

int kl_tree_decode(const uint8_t *p, size_t n, struct kl_tree *ret)
{
	struct kl_tree t = {0};
	struct kl_pb_reader rd = {p, n};
	struct kl_pb_field f;
	struct kl_pb_scan s;
	size_t count, n_more;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = kl_pb_scan(p, n, &s);
	if (r < 0)
		return r;
	/* version 1, or 2 for a head; anything newer is -KL_EVERSION */
	r = kl_pb_check_version(&s, s.v1 == KL_FORMAT_VERSION ? KL_FORMAT_VERSION
							      : KL_TREE_VERSION_CONTINUED);
	if (r < 0)
		return r;
	count = s.count[F_TREE_NODES];
	if (count > KL_TREE_MAX_NODES || count > n / KL_PB_MIN_NODE)
		return -KL_ECORRUPT;
	n_more = s.count[F_TREE_MORE];
	/*
	 * A head has at least one node and one part. A version-1 tree with
	 * continuations is refused, not read in part: older readers would
	 * take it for the whole directory.
	 */
	if ((s.v1 == KL_TREE_VERSION_CONTINUED) != (n_more > 0))
		return -KL_ECORRUPT;
	if (n_more && (count == 0 || n_more >= KL_TREE_MAX_PARTS))
		return -KL_ECORRUPT;
	if (count) {
		t.nodes = kl_calloc(count, sizeof(*t.nodes));
		if (!t.nodes)
			return -ENOMEM;
		t.cap = count;
	}
	if (n_more) {
		t.more = kl_calloc(n_more, sizeof(*t.more));
		if (!t.more) {
			kl_free(t.nodes);
			return -ENOMEM;
		}
	}
	while ((r = kl_pb_next(&rd, &f)) > 0) {
		struct kl_node *nd;

		if (f.num == F_TREE_MORE) {
			if (KL_NEVER(t.n_more >= n_more)) {
				r = -KL_ECORRUPT;
				break;
			}
			r = kl_pb_get_id(&f, &t.more[t.n_more++]);
			if (r < 0)
				break;
			continue;
		}
		if (f.num != F_TREE_NODES)
			continue; /* the version was checked by the scan; others are unknown */
		if (f.wire != KL_PB_LEN || KL_NEVER(t.n >= count)) {
			r = -KL_ECORRUPT;
			break;
		}
		nd = &t.nodes[t.n++];
		r = node_decode(f.p, f.len, nd);
		if (r < 0)
			break;
		if (t.n > 1 &&
		    kl_name_cmp(nd[-1].name, nd[-1].name_len, nd->name, nd->name_len) >= 0) {
			r = -KL_ECORRUPT;
			break;
		}
	}
	if (r < 0) {
		kl_tree_release(&t);
		return r;
	}
	*ret = t;
	return 0;
}

int kl_tree_join(struct kl_tree *t, struct kl_tree *part)
{
	const struct kl_node *last, *first;
	size_t need;
	int r = -KL_ECORRUPT;

	if (!t->n || !part->n || part->n_more)
		goto out;
	last = &t->nodes[t->n - 1];
	first = &part->nodes[0];
	if (kl_name_cmp(last->name, last->name_len, first->name, first->name_len) >= 0)
		goto out;
	if (part->n > KL_TREE_MAX_TOTAL_NODES - t->n)
		goto out;
	need = t->n + part->n;
	if (need > t->cap) {
		/* doubling, so that joining many parts stays linear */
		size_t ncap = KL_MAX(need, KL_MIN(t->cap * 2, KL_TREE_MAX_TOTAL_NODES));
		struct kl_node *nodes = kl_realloc(t->nodes, ncap * sizeof(*nodes));

		if (!nodes) {
			r = -ENOMEM;
			goto out;
		}
		t->nodes = nodes;
		t->cap = ncap;
	}
	memcpy(&t->nodes[t->n], part->nodes, part->n * sizeof(*part->nodes));
	t->n = need;
	part->n = 0; /* the nodes are t's now */
	r = 0;
out:
	kl_tree_release(part);
	return r;
}

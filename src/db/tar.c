/*
 * A push parser of tar streams, as PostgreSQL's BASE_BACKUP sends them
 * (ustar headers), with the extensions other writers use for long names
 * (GNU 'L'/'K' members, pax 'x' headers with path, linkpath and size).
 * Bytes arrive from the network in pieces of any size; every field is
 * checked before it is used, and a member's path is cleaned so that no
 * ".." or absolute path ever reaches the tree being built.
 */
#include <string.h>

#include "keel/db.h"

void kl_tar_init(struct kl_tar *t, const struct kl_tar_ops *ops, void *ud)
{
	memset(t, 0, sizeof(*t));
	t->ops = ops;
	t->ud = ud;
	kl_buf_init(&t->ext_buf, KL_TAR_MAX_PAX);
}

void kl_tar_release(struct kl_tar *t)
{
	kl_buf_release(&t->ext_buf);
	kl_free(t->long_name);
	kl_free(t->long_link);
	t->long_name = t->long_link = NULL;
}

/* An octal field (NUL or space terminated, leading spaces) or base-256. */
static int get_num(const uint8_t *f, size_t n, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] & 0x80) {
		/* base-256: positive values only, at most 63 bits */
		if (f[0] != 0x80)
			return -KL_ECORRUPT;
		for (i = 1; i < n; i++) {
			if (v >> 55)
				return -KL_ECORRUPT;
			v = v << 8 | f[i];
		}
		*ret = v;
		return 0;
	}
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return -KL_ECORRUPT;
		v = v << 3 | (uint64_t)(f[i] - '0');
	}
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != 0)
			return -KL_ECORRUPT;
	*ret = v;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool checksum_ok(const uint8_t *h)
{
	uint64_t want, sum = 0;

	if (get_num(h + 148, 8, &want) < 0)
		return false;
	for (size_t i = 0; i < KL_TAR_BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	return sum == want;
}

/* A NUL-terminated copy of a fixed field (which may fill it without NUL). */
static void field_str(const uint8_t *f, size_t n, char *out)
{
	size_t len = strnlen((const char *)f, n);

	memcpy(out, f, len);
	out[len] = 0;
}

/*
 * Cleans path in place: drops leading '/', "." and empty parts and a
 * trailing '/'. Refuses "..", which would climb out of the tree.
 */
static int clean_path(char *path)
{
	char *out = path, *p = path;

	while (*p) {
		char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return -KL_ECORRUPT;
		if (len && !(len == 1 && p[0] == '.')) {
			if (out != path)
				*out++ = '/';
			memmove(out, p, len);
			out += len;
		}
		p += len;
		if (*p)
			p++;
	}
	*out = 0;
	return 0;
}

/* Reads "LEN key=value\n" records of a pax header for path, linkpath and size. */
static int parse_pax(struct kl_tar *t, bool global)
{
	const char *p = (const char *)t->ext_buf.data, *end = p + t->ext_buf.len;

	while (p < end) {
		uint64_t len = 0;
		const char *q = p, *eq, *rec_end;

		while (q < end && *q >= '0' && *q <= '9' && len < KL_TAR_MAX_PAX)
			len = len * 10 + (uint64_t)(*q++ - '0');
		if (q == p || q >= end || *q != ' ' || len > (uint64_t)(end - p) ||
		    len < (uint64_t)(q - p) + 3)
			return -KL_ECORRUPT;
		rec_end = p + len;
		if (rec_end[-1] != '\n')
			return -KL_ECORRUPT;
		q++;
		eq = memchr(q, '=', (size_t)(rec_end - q));
		if (!eq)
			return -KL_ECORRUPT;
		if (!global) {
			size_t klen = (size_t)(eq - q), vlen = (size_t)(rec_end - 1 - (eq + 1));
			char **dst = NULL;

			if (klen == 4 && !memcmp(q, "path", 4))
				dst = &t->long_name;
			else if (klen == 8 && !memcmp(q, "linkpath", 8))
				dst = &t->long_link;
			if (dst) {
				if (vlen >= KL_TAR_MAX_NAME || memchr(eq + 1, 0, vlen))
					return -KL_ECORRUPT;
				kl_free(*dst);
				if (!(*dst = kl_memdup(eq + 1, vlen + 1)))
					return -ENOMEM;
				(*dst)[vlen] = 0;
			} else if (klen == 4 && !memcmp(q, "size", 4)) {
				uint64_t v = 0;

				if (!vlen || vlen > 19)
					return -KL_ECORRUPT;
				for (const char *d = eq + 1; d < rec_end - 1; d++) {
					if (*d < '0' || *d > '9')
						return -KL_ECORRUPT;
					v = v * 10 + (uint64_t)(*d - '0');
				}
				t->pax_size = v;
				t->has_pax_size = true;
			}
		}
		p = rec_end;
	}
	return 0;
}

/* An extension member's data is complete: keep what it said for the next member. */
static int ext_done(struct kl_tar *t)
{
	int ext = t->ext;
	char **dst;

	t->ext = 0;
	if (ext == 'x' || ext == 'g') {
		int r = parse_pax(t, ext == 'g');

		kl_buf_clear(&t->ext_buf);
		return r;
	}
	dst = ext == 'L' ? &t->long_name : &t->long_link;
	kl_free(*dst);
	/* GNU long names carry their NUL; one without is fine too */
	*dst = (char *)kl_buf_detach(&t->ext_buf, NULL);
	kl_buf_init(&t->ext_buf, KL_TAR_MAX_PAX);
	if (!*dst)
		return -ENOMEM;
	if (strlen(*dst) >= KL_TAR_MAX_NAME)
		return -KL_ECORRUPT;
	return 0;
}

static int member_header(struct kl_tar *t, const uint8_t *h, uint64_t size)
{
	char name[256 + 2], link[101], user[33], group[33];
	struct kl_tar_entry e = {0};
	uint64_t mode, uid, gid, mtime;
	char *path = t->long_name;
	int r;

	switch (h[156]) {
	case '0':
	case 0:
	case '7':
		e.type = KL_NODE_FILE;
		break;
	case '5':
		e.type = KL_NODE_DIR;
		break;
	case '2':
		e.type = KL_NODE_SYMLINK;
		break;
	default:
		return -KL_ECORRUPT; /* hard links, devices, FIFOs: not in a data directory */
	}
	if (get_num(h + 100, 8, &mode) < 0 || get_num(h + 108, 8, &uid) < 0 ||
	    get_num(h + 116, 8, &gid) < 0 || get_num(h + 136, 12, &mtime) < 0 || uid > UINT32_MAX ||
	    gid > UINT32_MAX || mtime > INT64_MAX)
		return -KL_ECORRUPT;
	if (e.type != KL_NODE_FILE && size)
		return -KL_ECORRUPT;
	if (!path) {
		size_t o = 0;

		/* ustar: prefix "/" name */
		if (!memcmp(h + 257, "ustar", 5) && h[345]) {
			field_str(h + 345, 155, name);
			o = strlen(name);
			name[o++] = '/';
		}
		field_str(h, 100, name + o);
		path = name;
	}
	r = clean_path(path);
	if (r < 0)
		return r;
	if (!*path && e.type != KL_NODE_DIR)
		return -KL_ECORRUPT; /* only the top directory may have no name ("./") */
	field_str(h + 157, 100, link);
	field_str(h + 265, 32, user);
	field_str(h + 297, 32, group);
	e.path = path;
	e.link = t->long_link ? t->long_link : link;
	if (e.type == KL_NODE_SYMLINK && !*e.link)
		return -KL_ECORRUPT;
	e.mode = (uint32_t)(mode & 07777);
	e.uid = (uint32_t)uid;
	e.gid = (uint32_t)gid;
	e.user = user;
	e.group = group;
	e.mtime = (int64_t)mtime;
	e.size = size;
	if (e.type == KL_NODE_DIR && !*e.path)
		r = 0; /* the top itself ("./"): nothing to add */
	else
		r = t->ops->entry(t->ud, &e);
	if (r >= 0)
		t->in_member = !(e.type == KL_NODE_DIR && !*e.path);
	kl_free(t->long_name);
	kl_free(t->long_link);
	t->long_name = t->long_link = NULL;
	t->has_pax_size = false;
	return r;
}

/* A complete header block. */
static int header(struct kl_tar *t)
{
	const uint8_t *h = t->hdr;
	uint64_t size;
	int type, r;

	if (all_zero(h, KL_TAR_BLOCK)) {
		if (t->long_name || t->long_link || t->has_pax_size)
			return -KL_ECORRUPT; /* an extension header for no member */
		t->ended = true;
		return 0;
	}
	if (!checksum_ok(h) || get_num(h + 124, 12, &size) < 0)
		return -KL_ECORRUPT;
	type = h[156];
	if (type == 'L' || type == 'K' || type == 'x' || type == 'g') {
		if (size > (type == 'L' || type == 'K' ? KL_TAR_MAX_NAME : KL_TAR_MAX_PAX))
			return -KL_ECORRUPT;
		t->ext = type;
		kl_buf_clear(&t->ext_buf);
	} else {
		if (t->has_pax_size)
			size = t->pax_size;
		r = member_header(t, h, size);
		if (r < 0)
			return r;
	}
	t->data_left = size;
	t->pad_left = (KL_TAR_BLOCK - size % KL_TAR_BLOCK) % KL_TAR_BLOCK;
	if (!size)
		goto done;
	return 0;
done:
	if (t->ext)
		return ext_done(t);
	if (t->in_member) {
		t->in_member = false;
		return t->ops->end(t->ud);
	}
	return 0;
}

/* n bytes of the current member's data (or an extension's). */
static int member_data(struct kl_tar *t, const uint8_t *p, size_t n)
{
	int r = 0;

	if (t->ext)
		r = kl_buf_add(&t->ext_buf, p, n) < 0 ? -KL_ECORRUPT : 0;
	else if (t->in_member)
		r = t->ops->data(t->ud, p, n);
	if (r < 0)
		return r;
	t->data_left -= n;
	if (t->data_left)
		return 0;
	if (t->ext)
		return ext_done(t);
	if (t->in_member) {
		t->in_member = false;
		return t->ops->end(t->ud);
	}
	return 0;
}

static int feed(struct kl_tar *t, const uint8_t *p, size_t n)
{
	int r;

	while (n) {
		if (t->ended) {
			/* after the end: only the zeros of the trailer and padding */
			if (!all_zero(p, n))
				return -KL_ECORRUPT;
			return 0;
		}
		if (t->data_left) {
			size_t k = t->data_left < n ? (size_t)t->data_left : n;

			r = member_data(t, p, k);
			if (r < 0)
				return r;
			p += k;
			n -= k;
			continue;
		}
		if (t->pad_left) {
			size_t k = t->pad_left < n ? (size_t)t->pad_left : n;

			t->pad_left -= k;
			p += k;
			n -= k;
			continue;
		}
		{
			size_t k = KL_TAR_BLOCK - t->hdr_fill;

			if (k > n)
				k = n;
			memcpy(t->hdr + t->hdr_fill, p, k);
			t->hdr_fill += k;
			p += k;
			n -= k;
			if (t->hdr_fill < KL_TAR_BLOCK)
				return 0;
			t->hdr_fill = 0;
			r = header(t);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int kl_tar_feed(struct kl_tar *t, const uint8_t *p, size_t n)
{
	if (t->error)
		return t->error;
	int r = feed(t, p, n);

	if (r < 0)
		t->error = r;
	return r;
}

int kl_tar_finish(struct kl_tar *t)
{
	if (t->error)
		return t->error;
	if (t->data_left || t->hdr_fill || t->ext || t->in_member || t->long_name || t->long_link ||
	    t->has_pax_size)
		return t->error = -KL_ECORRUPT;
	return 0;
}

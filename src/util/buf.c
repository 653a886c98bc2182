#include <stdio.h>

#include "keel/util.h"

const char kl_buf_empty_[1];

void kl_buf_init(struct kl_buf *b, size_t max)
{
	b->data = (uint8_t *)kl_buf_empty_;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void kl_buf_release(struct kl_buf *b)
{
	if (b->cap)
		kl_free(b->data);
	kl_buf_init(b, b->max);
}

void kl_buf_clear(struct kl_buf *b)
{
	b->len = 0;
	if (b->cap)
		b->data[0] = 0;
}

int kl_buf_grow(struct kl_buf *b, size_t extra)
{
	size_t need, ncap;
	uint8_t *p;

	if (extra > b->max || b->len > b->max - extra)
		return -E2BIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap < ((size_t)1 << 62) ? ncap * 2 : need;
	p = kl_realloc(b->cap ? b->data : NULL, ncap);
	if (!p)
		return -ENOMEM;
	if (!b->cap)
		p[0] = 0;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int kl_buf_add(struct kl_buf *b, const void *p, size_t n)
{
	int r = kl_buf_grow(b, n);

	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int kl_buf_addstr(struct kl_buf *b, const char *s)
{
	return kl_buf_add(b, s, strlen(s));
}

int kl_buf_addch(struct kl_buf *b, uint8_t c)
{
	return kl_buf_add(b, &c, 1);
}

int kl_buf_addf(struct kl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	r = kl_buf_grow(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int kl_buf_setlen(struct kl_buf *b, size_t len)
{
	if (len > b->len) {
		int r = kl_buf_grow(b, len - b->len);

		if (r < 0)
			return r;
	}
	b->len = len;
	if (b->cap)
		b->data[len] = 0;
	return 0;
}

uint8_t *kl_buf_detach(struct kl_buf *b, size_t *len_ret)
{
	uint8_t *p;

	if (!b->cap && kl_buf_grow(b, 0) < 0)
		return NULL;
	p = b->data;
	if (len_ret)
		*len_ret = b->len;
	kl_buf_init(b, b->max);
	return p;
}

int kl_varint_put(struct kl_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n] = v & 0x7f;
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return kl_buf_add(b, tmp, n);
}

int kl_varint_get(const uint8_t *p, size_t n, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n && i < 10; i++) {
		if (i == 9 && p[i] > 1)
			return -KL_ECORRUPT;
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*ret = v;
			return (int)i + 1;
		}
	}
	return -KL_ECORRUPT;
}

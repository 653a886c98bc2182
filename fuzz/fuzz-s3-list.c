/*
 * Fuzzes kl_s3_list_parse (ListObjectsV2 pages) and kl_s3_error_parse:
 * the bytes an S3 server, or anyone between it and us, sends back.
 * Oracles: what the list reader accepts keeps its documented limits
 * (keys 1..KL_S3_KEY_MAX bytes without NUL, a token without NUL within
 * KL_S3_TOKEN_MAX); written out again as XML with the entities escaped it
 * reads back to the same page; and the error reader always leaves
 * NUL-terminated fields.
 */
#include <stdio.h>
#include <stdlib.h>

#include "keel/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int add_escaped(struct kl_buf *b, const char *s)
{
	int r = 0;

	for (; *s && r >= 0; s++) {
		if (*s == '&')
			r = kl_buf_addstr(b, "&amp;");
		else if (*s == '<')
			r = kl_buf_addstr(b, "&lt;");
		else if (*s == '>')
			r = kl_buf_addstr(b, "&gt;");
		else
			r = kl_buf_addch(b, (uint8_t)*s);
	}
	return r;
}

static int encode(const struct kl_s3_list *l, struct kl_buf *b)
{
	int r = kl_buf_addf(b,
			    "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>%s"
			    "</IsTruncated>",
			    l->truncated ? "true" : "false");

	for (size_t i = 0; i < l->n && r >= 0; i++) {
		r = kl_buf_addstr(b, "<Contents><Key>");
		if (r >= 0)
			r = add_escaped(b, l->objs[i].key);
		if (r >= 0)
			r = kl_buf_addf(b, "</Key><Size>%llu</Size></Contents>",
					(unsigned long long)l->objs[i].size);
	}
	if (r >= 0 && l->next_token) {
		r = kl_buf_addstr(b, "<NextContinuationToken>");
		if (r >= 0)
			r = add_escaped(b, l->next_token);
		if (r >= 0)
			r = kl_buf_addstr(b, "</NextContinuationToken>");
	}
	if (r >= 0)
		r = kl_buf_addstr(b, "</ListBucketResult>");
	return r;
}

static void check_limits(const struct kl_s3_list *l)
{
	if (l->n > KL_S3_PAGE_MAX || l->n > l->cap)
		abort();
	for (size_t i = 0; i < l->n; i++) {
		size_t n = strlen(l->objs[i].key);

		if (n == 0 || n > KL_S3_KEY_MAX)
			abort();
	}
	if (l->next_token && (!*l->next_token || strlen(l->next_token) > KL_S3_TOKEN_MAX))
		abort();
}

static bool same(const struct kl_s3_list *a, const struct kl_s3_list *b)
{
	if (a->n != b->n || a->truncated != b->truncated || !a->next_token != !b->next_token)
		return false;
	if (a->next_token && strcmp(a->next_token, b->next_token))
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->objs[i].key, b->objs[i].key) || a->objs[i].size != b->objs[i].size)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_buf xml = KL_BUF_INIT(KL_BUF_MAX_DEFAULT);
	struct kl_s3_list a, b;
	struct kl_s3_error e;
	int r;

	if (kl_s3_error_parse(data, size, &e) >= 0 &&
	    (memchr(e.code, 0, sizeof(e.code)) == NULL ||
	     memchr(e.message, 0, sizeof(e.message)) == NULL ||
	     memchr(e.region, 0, sizeof(e.region)) == NULL))
		abort();

	r = kl_s3_list_parse(data, size, &a);
	if (r < 0) {
		if (r != -KL_ECORRUPT && r != -ENOMEM)
			abort();
		if (a.objs || a.n || a.next_token)
			abort(); /* released on failure */
		return 0;
	}
	check_limits(&a);
	r = encode(&a, &xml);
	if (r < 0)
		goto out;
	r = kl_s3_list_parse(xml.data, xml.len, &b);
	if (r == -ENOMEM)
		goto out;
	if (r < 0 || !same(&a, &b))
		abort(); /* our own escaping must read back */
	kl_s3_list_release(&b);
out:
	kl_s3_list_release(&a);
	kl_buf_release(&xml);
	return 0;
}

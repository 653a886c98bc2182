/*
 * Listing the S3 backend's objects: ListObjectsV2 pages below a type's
 * prefix, followed by continuation token, each page read whole before the
 * callback runs, with or without each object's last-modified time.
 */
#include <stdio.h>

#include "s3-internal.h"

#define LIST_MAX (16u << 20) /* bytes of one ListObjectsV2 page */

static bool is_object_name(const char *n)
{
	return *n && n[0] != '.' && !strstr(n, ".tmp.") && !strchr(n, '/');
}

static int list_page(struct s3 *s, const char *prefix, const char *token, struct kl_s3_list *page)
{
	_cleanup_buf_ struct kl_buf query = KL_BUF_INIT(16384);
	_cleanup_buf_ struct kl_buf body = KL_BUF_INIT(LIST_MAX);
	struct s3_req q = {0};
	int r = 0;

	/* parameters in canonical (sorted) order */
	if (token) {
		r = kl_buf_addstr(&query, "continuation-token=");
		if (r >= 0)
			r = kl_s3_uri_encode(&query, token, strlen(token), false);
		if (r >= 0)
			r = kl_buf_addch(&query, '&');
	}
	if (r >= 0)
		r = kl_buf_addf(&query, "list-type=2&max-keys=%u&prefix=", s->max_keys);
	if (r >= 0)
		r = kl_s3_uri_encode(&query, prefix, strlen(prefix), false);
	if (r < 0)
		return r;
	q.method = "GET";
	q.query = (const char *)query.data;
	q.out = &body;
	r = kl_s3_request_(s, &q);
	if (r >= 0 && q.status != 200)
		r = kl_s3_http_error_(s, &q, prefix);
	kl_s3_req_release_(&q);
	if (r < 0)
		return r == -E2BIG ? -KL_EREMOTE : r;
	r = kl_s3_list_parse(body.data, body.len, page);
	if (r == -KL_ECORRUPT) {
		return kl_backend_fail(
			&s->b, -KL_EREMOTE,
			"listing '%s': the server's answer is not a valid ListObjectsV2 page",
			prefix);
	}
	return r;
}

/* one of the two callbacks: the vtable's, or one with the mtime */
struct list_cb {
	kl_list_cb plain;
	kl_list_mtime_cb with_mtime;
	void *ud;
};

static int call_list_cb(const struct list_cb *c, const char *name, uint64_t size, int64_t mtime)
{
	return c->plain ? c->plain(name, size, c->ud) : c->with_mtime(name, size, mtime, c->ud);
}

static int list_objects(struct kl_backend *b, enum kl_obj_type t, const struct list_cb *cbs)
{
	struct s3 *s = (struct s3 *)b;
	_cleanup_free_ char *token = NULL;
	char prefix[KL_S3_KEY_MAX + 1];
	size_t pl;
	int r;

	if (t == KL_OBJ_CONFIG) {
		uint64_t size;

		r = kl_s3_stat_(b, t, NULL, &size);
		if (r == -ENOENT)
			return 0;
		return r < 0 ? r : call_list_cb(cbs, "config", size, 0);
	}
	if ((unsigned)t >= KL_OBJ_TYPES)
		return -EINVAL;
	pl = (size_t)snprintf(prefix, sizeof(prefix), "%s%s%s/", s->loc.prefix,
			      *s->loc.prefix ? "/" : "", kl_obj_type_name(t));
	if (pl >= sizeof(prefix))
		return -EINVAL;
	for (;;) {
		struct kl_s3_list page;

		r = list_page(s, prefix, token, &page);
		if (r < 0)
			return r;
		for (size_t i = 0; i < page.n && r >= 0; i++) {
			const char *k = page.objs[i].key, *name;

			if (strncmp(k, prefix, pl))
				continue; /* not ours: the server ignored the prefix */
			name = k + pl;
			if (t == KL_OBJ_DATA) {
				/* data/<xx>/<name>, xx the name's first two characters */
				if (strlen(name) < 5 || name[2] != '/' ||
				    strncmp(name, name + 3, 2))
					continue;
				name += 3;
			}
			if (!is_object_name(name))
				continue;
			r = call_list_cb(cbs, name, page.objs[i].size, page.objs[i].mtime_ns);
		}
		if (r >= 0 && page.truncated) {
			/* a page without a way on, or the same way again, would never end */
			if (!page.next_token || (token && !strcmp(token, page.next_token))) {
				r = kl_backend_fail(&s->b, -KL_EREMOTE,
						    "listing '%s': the server says there is more "
						    "but gives no new continuation token",
						    prefix);
			} else {
				kl_free(token);
				token = KL_TAKE_PTR(page.next_token);
			}
		}
		bool more = r >= 0 && page.truncated;

		kl_s3_list_release(&page);
		if (!more)
			return r < 0 ? r : 0;
	}
}

int kl_s3_list_(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud)
{
	return list_objects(b, t, &(struct list_cb){.plain = cb, .ud = ud});
}

/* Reached through kl_backend_list_mtime(), on the S3 backend itself, not the cache. */
int kl_s3_list_mtime_(struct kl_backend *b, enum kl_obj_type t, kl_list_mtime_cb cb, void *userdata)
{
	return list_objects(b, t, &(struct list_cb){.with_mtime = cb, .ud = userdata});
}

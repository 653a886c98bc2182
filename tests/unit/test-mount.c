/*
 * src/mount without FUSE: the object cache (hits, eviction by cost and
 * count, entries in use kept, failed loads not kept) and restic's layout
 * made from a view (names, suffixes, latest, hosts and tags).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "mount/mount-internal.h"

struct loader {
	unsigned loads;
	int fail_with; /* < 0: the next load fails */
};

static int load(void *ud, const struct kl_id *id, void **value, size_t *cost)
{
	struct loader *l = ud;
	int *v;

	l->loads++;
	if (l->fail_with < 0) {
		int rc = l->fail_with;

		l->fail_with = 0;
		return rc;
	}
	v = kl_malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	*v = id->b[0];
	*value = v;
	*cost = 10;
	return 0;
}

static void drop(void *value)
{
	kl_free(value);
}

static struct kl_id id_of(uint8_t n)
{
	struct kl_id id = {{0}};

	id.b[0] = n;
	id.b[31] = 0xa5;
	return id;
}

static void cache_hits_evicts_and_keeps_what_is_used(void **state)
{
	struct loader l = {0};
	struct kl_mcache c;
	struct kl_mcache_ent *e, *held;
	struct kl_id id;

	(void)state;
	kl_mcache_init(&c, 30, 100, load, drop, &l); /* three entries of cost 10 */
	id = id_of(1);
	assert_int_equal(kl_mcache_get(&c, &id, &held), 0);
	assert_int_equal(*(int *)held->value, 1);
	/* 1 stays in use while 2..5 come and go */
	for (uint8_t i = 2; i <= 5; i++) {
		id = id_of(i);
		assert_int_equal(kl_mcache_get(&c, &id, &e), 0);
		assert_int_equal(*(int *)e->value, i);
		kl_mcache_put(&c, e);
	}
	assert_int_equal(l.loads, 5);
	assert_true(c.cost <= 30);
	id = id_of(1);
	assert_int_equal(kl_mcache_get(&c, &id, &e), 0); /* a hit: never evicted while held */
	assert_ptr_equal(e, held);
	kl_mcache_put(&c, e);
	id = id_of(5);
	assert_int_equal(kl_mcache_get(&c, &id, &e), 0); /* the newest is still there */
	kl_mcache_put(&c, e);
	assert_int_equal(l.loads, 5);
	id = id_of(2);
	assert_int_equal(kl_mcache_get(&c, &id, &e), 0); /* the oldest unused one was evicted */
	kl_mcache_put(&c, e);
	assert_int_equal(l.loads, 6);
	kl_mcache_put(&c, held);
	kl_mcache_release(&c);
}

static void cache_does_not_keep_failures(void **state)
{
	struct loader l = {.fail_with = -EIO};
	struct kl_mcache c;
	struct kl_mcache_ent *e;
	struct kl_id id = id_of(7);

	(void)state;
	kl_mcache_init(&c, 1000, 2, load, drop, &l);
	assert_int_equal(kl_mcache_get(&c, &id, &e), -EIO);
	assert_null(e);
	assert_int_equal(c.n, 0);
	assert_int_equal(kl_mcache_get(&c, &id, &e), 0); /* tried again, not the old error */
	assert_int_equal(l.loads, 2);
	kl_mcache_put(&c, e);
	/* the count cap: at most two */
	for (uint8_t i = 10; i < 20; i++) {
		id = id_of(i);
		assert_int_equal(kl_mcache_get(&c, &id, &e), 0);
		kl_mcache_put(&c, e);
	}
	assert_true(c.n <= 2);
	kl_mcache_release(&c);
}

/* A view of four snapshots, built by hand as kl_mview_build would. */
static struct kl_mview *test_view(void)
{
	static const struct {
		int64_t sec;
		const char *host, *tag;
	} snaps[] = {
		{1700000000, "alpha", "daily"},
		{1700000000, "beta", NULL},
		{1700000100, "alpha", "weekly"},
		{1700000200, "beta", "daily"},
	};
	struct kl_mview *v = kl_calloc(1, sizeof(*v));
	char *hosts[] = {(char *)"alpha", (char *)"beta"},
	     *tags[] = {(char *)"daily", (char *)"weekly"};

	assert_non_null(v);
	v->refs = 1;
	v->n = KL_ARRAY_SIZE(snaps);
	v->v = kl_calloc(v->n, sizeof(*v->v));
	assert_non_null(v->v);
	for (size_t i = 0; i < v->n; i++) {
		struct kl_msnap *s = &v->v[i];
		char t[40];

		s->id = id_of((uint8_t)(0x10 + i));
		s->s.time_ns = snaps[i].sec * KL_NSEC_PER_SEC;
		s->s.host = kl_strdup(snaps[i].host);
		if (snaps[i].tag) {
			s->s.tags = kl_calloc(1, sizeof(char *));
			s->s.tags[0] = kl_strdup(snaps[i].tag);
			s->s.n_tags = 1;
		}
		kl_time_format_utc(s->s.time_ns, t);
		snprintf(s->name, sizeof(s->name), i == 1 ? "%s-1" : "%s", t);
		kl_hex_encode(s->id.b, 4, s->short_id);
	}
	v->hosts = kl_calloc(2, sizeof(char *));
	v->tags = kl_calloc(2, sizeof(char *));
	for (size_t i = 0; i < 2; i++) {
		v->hosts[i] = kl_strdup(hosts[i]);
		v->tags[i] = kl_strdup(tags[i]);
	}
	v->n_hosts = v->n_tags = 2;
	return v;
}

struct listing {
	char buf[512];
};

static int collect(void *ud, const char *name)
{
	struct listing *l = ud;
	size_t n = strlen(l->buf);

	snprintf(l->buf + n, sizeof(l->buf) - n, "%s ", name);
	return 0;
}

static const char *list(const struct kl_mview *v, const char *path, struct listing *l)
{
	struct kl_mpath p;

	l->buf[0] = 0;
	assert_int_equal(kl_mview_resolve(v, path, &p), 0);
	assert_int_equal(p.kind, KL_MPATH_DIR);
	assert_int_equal(kl_mview_list(v, &p, collect, l), 0);
	return l->buf;
}

static void layout_of_a_view(void **state)
{
	struct kl_mview *v = test_view();
	struct listing l;
	struct kl_mpath p;

	(void)state;
	assert_string_equal(list(v, "/", &l), "snapshots ids hosts tags ");
	assert_string_equal(list(v, "/snapshots", &l),
			    "2023-11-14T22:13:20Z 2023-11-14T22:13:20Z-1 2023-11-14T22:15:00Z "
			    "2023-11-14T22:16:40Z latest ");
	assert_string_equal(list(v, "/hosts/", &l), "alpha beta ");
	assert_string_equal(list(v, "/hosts/alpha", &l),
			    "2023-11-14T22:13:20Z 2023-11-14T22:15:00Z latest ");
	assert_string_equal(list(v, "/tags/daily", &l),
			    "2023-11-14T22:13:20Z 2023-11-14T22:16:40Z latest ");
	assert_string_equal(list(v, "/ids", &l), "10000000 11000000 12000000 13000000 ");

	assert_int_equal(kl_mview_resolve(v, "/hosts/beta/latest", &p), 0);
	assert_int_equal(p.kind, KL_MPATH_LINK);
	assert_string_equal(p.link, "2023-11-14T22:16:40Z");
	assert_int_equal(kl_mview_resolve(v, "/tags/weekly/latest", &p), 0);
	assert_string_equal(p.link, "2023-11-14T22:15:00Z");

	assert_int_equal(kl_mview_resolve(v, "/snapshots/2023-11-14T22:13:20Z-1/a/b", &p), 0);
	assert_int_equal(p.kind, KL_MPATH_SNAP);
	assert_ptr_equal(p.snap, &v->v[1]);
	assert_string_equal(p.rest, "/a/b");
	assert_int_equal(kl_mview_resolve(v, "/ids/12000000", &p), 0);
	assert_ptr_equal(p.snap, &v->v[2]);
	assert_string_equal(p.rest, "");

	/* names the layout does not have */
	assert_int_equal(kl_mview_resolve(v, "/nothing", &p), -ENOENT);
	assert_int_equal(kl_mview_resolve(v, "/hosts/gamma", &p), -ENOENT);
	assert_int_equal(kl_mview_resolve(v, "/hosts/beta/2023-11-14T22:15:00Z", &p), -ENOENT);
	assert_int_equal(kl_mview_resolve(v, "/ids/1200000", &p), -ENOENT);
	assert_int_equal(kl_mview_resolve(v, "/snapshots/latest/x", &p), -ENOTDIR);
	kl_mview_unref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cache_hits_evicts_and_keeps_what_is_used),
		cmocka_unit_test(cache_does_not_keep_failures),
		cmocka_unit_test(layout_of_a_view),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

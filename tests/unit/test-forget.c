/*
 * Retention policies (docs/FORGET.md): every rule alone and combined,
 * against histories whose expected outcome was worked out by hand and is
 * written next to each snapshot; calendar edges (leap days, year ends,
 * ISO week 53) and the DST changes of Europe/Berlin and America/New_York;
 * --keep-tag, grouping, ties; and the parsers behind the options.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "keel/forget.h"
#include "keel/repo.h"
#include "repo/repo-internal.h" /* swaps r->be for a failing wrapper */
#include "ops/forget-internal.h"
#include "fixture.h"

#define NS 1000000000LL

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/* One snapshot of a synthetic history and the reasons it must be kept for. */
struct row {
	const char *time;   /* kl_time_parse syntax, local time unless an offset is given */
	const char *expect; /* reason names in enum order, comma-separated; "" = removed */
	const char *host;   /* NULL: "h" */
	const char *paths;  /* space-separated; NULL: "/data" */
	const char *tags;   /* comma-separated; NULL: none */
};

static char **split(const char *s, const char *sep, size_t *n)
{
	char **v = NULL, *dup = strdup(s), *save = NULL;

	*n = 0;
	for (char *t = strtok_r(dup, sep, &save); t; t = strtok_r(NULL, sep, &save)) {
		v = realloc(v, (*n + 1) * sizeof(*v));
		v[(*n)++] = strdup(t);
	}
	free(dup);
	return v;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void reasons_str(unsigned r, char *out, size_t n)
{
	out[0] = 0;
	for (unsigned i = 0; i < KL_KEEP_REASONS; i++) {
		if (!(r & 1u << i))
			continue;
		if (out[0])
			strncat(out, ",", n - strlen(out) - 1);
		strncat(out, kl_keep_reason_name(1u << i), n - strlen(out) - 1);
	}
}

/*
 * Runs the policy over rows and checks every row's reasons. Item i gets
 * the id 00..0(i+1), so among equal times the later row counts as newer.
 * Fills plan when given (the caller releases it).
 */
static void check_rows(const struct row *rows, size_t n, const struct kl_forget_policy *p,
		       unsigned group_by, struct kl_forget_plan *plan_ret)
{
	struct kl_forget_item *items = calloc(n, sizeof(*items));
	struct kl_forget_plan plan;
	int failures = 0;

	for (size_t i = 0; i < n; i++) {
		struct kl_forget_item *it = &items[i];
		size_t np, nt = 0;

		if (kl_time_parse(rows[i].time, &it->time_ns) < 0)
			fail_msg("row %zu: bad time '%s'", i, rows[i].time);
		it->id.b[KL_ID_LEN - 2] = (uint8_t)((i + 1) >> 8);
		it->id.b[KL_ID_LEN - 1] = (uint8_t)(i + 1);
		it->host = rows[i].host ? rows[i].host : "h";
		it->paths = split(rows[i].paths ? rows[i].paths : "/data", " ", &np);
		it->n_paths = np;
		if (rows[i].tags)
			it->tags = split(rows[i].tags, ",", &nt);
		it->n_tags = nt;
	}
	assert_int_equal(kl_forget_plan(items, n, p, group_by, &plan), 0);
	assert_int_equal(plan.n, n);
	for (size_t i = 0; i < n; i++) {
		char got[256];

		reasons_str(plan.reasons[i], got, sizeof(got));
		if (strcmp(got, rows[i].expect)) {
			print_error("row %zu (%s): expected \"%s\", got \"%s\"\n", i, rows[i].time,
				    rows[i].expect, got);
			failures++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		free_strv((char **)items[i].paths, items[i].n_paths);
		free_strv((char **)items[i].tags, items[i].n_tags);
	}
	free(items);
	if (plan_ret)
		*plan_ret = plan;
	else
		kl_forget_plan_release(&plan);
	assert_int_equal(failures, 0);
}

#define CHECK(rows, policy, group_by) check_rows(rows, KL_ARRAY_SIZE(rows), policy, group_by, NULL)
#define BY_HOST_PATHS (KL_GROUP_HOST | KL_GROUP_PATHS)

/* ---- single rules, UTC ------------------------------------------------------ */

static void keep_last(void **state)
{
	static const struct row rows[] = {
		{"2024-01-03 10:00:00", "last"}, {"2024-01-05 10:00:00", "last"},
		{"2024-01-04 10:00:00", "last"}, {"2024-01-02 10:00:00", ""},
		{"2024-01-01 10:00:00", ""},
	};
	static const struct row all[] = {
		{"2024-01-02 10:00:00", "last"},
		{"2024-01-01 10:00:00", "last"},
	};
	struct kl_forget_policy p = {.last = 3};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
	p.last = 10; /* more than there are */
	CHECK(all, &p, BY_HOST_PATHS);
	p.last = KL_KEEP_UNLIMITED;
	CHECK(all, &p, BY_HOST_PATHS);
}

static void keep_hourly(void **state)
{
	static const struct row rows[] = {
		{"2024-01-01 12:59:59", "hourly"},
		{"2024-01-01 12:00:00", ""},
		{"2024-01-01 11:30:00", "hourly"},
		/* no snapshot at 10: an empty hour is not a bucket */
		{"2024-01-01 09:00:00", "hourly"},
		{"2024-01-01 08:10:00", ""},
		{"2023-12-31 23:59:59", ""},
	};
	struct kl_forget_policy p = {.buckets[KL_BUCKET_HOUR] = 3};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
}

static void keep_daily_skips_empty_days(void **state)
{
	static const struct row rows[] = {
		{"2024-03-09 08:00:00", "daily"}, {"2024-03-09 07:00:00", ""},
		{"2024-03-05 23:59:59", "daily"}, {"2024-03-05 00:00:00", ""},
		{"2024-03-02 12:00:00", "daily"}, {"2024-03-01 12:00:00", ""},
		{"2024-02-29 12:00:00", ""},
	};
	struct kl_forget_policy p = {.buckets[KL_BUCKET_DAY] = 3};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
}

static void keep_daily_leap_years(void **state)
{
	static const struct row rows[] = {
		{"2024-03-01 00:00:00", "daily"}, {"2024-02-29 23:59:59", "daily"},
		{"2024-02-29 00:00:00", ""},	  {"2024-02-28 23:59:59", "daily"},
		{"2023-03-01 00:00:00", "daily"}, {"2023-02-28 23:59:59", "daily"},
		{"2023-02-28 00:00:00", ""},	  {"2020-02-29 12:00:00", ""},
	};
	struct kl_forget_policy p = {.buckets[KL_BUCKET_DAY] = 5};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
}

static void keep_weekly_iso_week_53(void **state)
{
	static const struct row rows[] = {
		{"2021-01-04 00:00:00", "weekly"}, /* Monday, 2021-W01 */
		{"2021-01-03 23:59:59", "weekly"}, /* Sunday, 2020-W53 */
		{"2020-12-28 00:00:00", ""},	   /* Monday, 2020-W53 */
		{"2020-12-27 23:59:59", "weekly"}, /* 2020-W52 */
		{"2020-12-21 00:00:00", ""},	   /* 2020-W52 */
		{"2020-12-20 12:00:00", "weekly"}, /* 2020-W51 */
		{"2020-12-14 12:00:00", ""},	   /* 2020-W51 */
		{"2020-12-13 12:00:00", ""},	   /* 2020-W50: a fifth week */
	};
	struct kl_forget_policy p = {.buckets[KL_BUCKET_WEEK] = 4};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
}

static void keep_weekly_across_year_ends(void **state)
{
	static const struct row rows[] = {
		{"2025-01-05 18:00:00", "weekly"}, /* 2025-W01 */
		{"2024-12-30 09:00:00", ""},	   /* 2025-W01 though still 2024 */
		{"2024-12-29 09:00:00", "weekly"}, /* 2024-W52 */
		{"2022-01-02 10:00:00", "weekly"}, /* 2021-W52 though already 2022 */
		{"2022-01-01 10:00:00", ""},	   {"2021-12-27 10:00:00", ""},
		{"2021-12-26 10:00:00", "weekly"}, /* 2021-W51 */
	};
	struct kl_forget_policy p = {.buckets[KL_BUCKET_WEEK] = 10};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
}

static void keep_monthly(void **state)
{
	static const struct row rows[] = {
		{"2024-03-31 23:59:59", "monthly"},
		{"2024-03-01 00:00:00", ""},
		{"2024-02-29 12:00:00", "monthly"},
		{"2024-02-01 00:00:00", ""},
		/* January 2024 is empty */
		{"2023-12-31 23:59:59", "monthly"},
		{"2023-12-01 00:00:00", ""},
		{"2023-11-30 23:59:59", "monthly"},
		{"2023-10-15 00:00:00", ""},
	};
	struct kl_forget_policy p = {.buckets[KL_BUCKET_MONTH] = 4};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
}

static void keep_yearly(void **state)
{
	static const struct row rows[] = {
		{"2025-01-01 00:00:00", "yearly"},
		{"2024-12-31 23:59:59", "yearly"},
		{"2024-01-01 00:00:00", ""},
		/* 2022 and 2023 are empty */
		{"2021-06-01 00:00:00", "yearly"},
		{"2020-02-29 00:00:00", ""},
	};
	struct kl_forget_policy p = {.buckets[KL_BUCKET_YEAR] = 3};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
}

static void keep_within_counts_from_newest_snapshot(void **state)
{
	/* all in the past: the newest snapshot, not the clock, is the reference */
	static const struct row month[] = {
		{"2024-03-15 12:00:00", "within"},
		{"2024-02-15 12:00:01", "within"},
		{"2024-02-15 12:00:00", ""}, /* exactly a month older: not newer than it */
		{"2024-01-01 00:00:00", ""},
	};
	/* 2023-02-29 does not exist and runs on to 1 March */
	static const struct row leap[] = {
		{"2024-02-29 10:00:00", "within"},
		{"2023-03-01 10:00:01", "within"},
		{"2023-03-01 10:00:00", ""},
		{"2023-02-28 23:00:00", ""},
	};
	/* 31 March minus a month: "31 February" is 2 March */
	static const struct row month_end[] = {
		{"2024-03-31 12:00:00", "within"},
		{"2024-03-02 12:00:01", "within"},
		{"2024-03-02 12:00:00", ""},
		{"2024-02-29 12:00:00", ""},
	};
	static const struct row mixed[] = {
		{"2024-05-10 10:00:00", "within"},
		{"2023-03-07 06:00:01", "within"},
		{"2023-03-07 06:00:00", ""},
	};
	struct kl_forget_policy p = {.within = {.months = 1}};

	set_tz("UTC");
	CHECK(month, &p, BY_HOST_PATHS);
	CHECK(month_end, &p, BY_HOST_PATHS);
	p.within = (struct kl_duration){.years = 1};
	CHECK(leap, &p, BY_HOST_PATHS);
	p.within = (struct kl_duration){1, 2, 3, 4};
	CHECK(mixed, &p, BY_HOST_PATHS);
}

static void keep_within_buckets(void **state)
{
	static const struct row daily[] = {
		{"2024-01-10 12:00:00", "within-daily"},
		{"2024-01-10 08:00:00", ""},
		{"2024-01-09 08:00:00", "within-daily"},
		{"2024-01-07 12:00:01", "within-daily"},
		{"2024-01-07 10:00:00", ""}, /* older than 3 days before the newest */
		{"2024-01-01 00:00:00", ""},
	};
	static const struct row two[] = {
		{"2024-01-10 12:00:00", "within-hourly,within-monthly"},
		{"2024-01-10 11:45:00", "within-hourly"},
		{"2024-01-10 11:10:00", ""},
		{"2024-01-10 10:00:00", ""}, /* not newer than 12:00 - 2h */
		{"2023-12-05 00:00:00", "within-monthly"},
		{"2023-12-01 00:00:00", ""},
		{"2023-02-01 00:00:00", "within-monthly"},
		{"2023-01-10 12:00:00", ""},
	};
	static const struct row weekly_yearly[] = {
		{"2024-01-10 12:00:00", "within-weekly,within-yearly"}, /* 2024-W02 */
		{"2024-01-08 00:00:00", ""},
		{"2024-01-07 23:00:00", "within-weekly"},		/* 2024-W01 */
		{"2023-12-31 23:00:00", "within-weekly,within-yearly"}, /* 2023-W52, 2023 */
		{"2023-12-24 23:00:00", ""}, /* older than 2 weeks (14 days) */
		{"2022-01-11 00:00:00", "within-yearly"},
		{"2021-01-10 12:00:00", ""}, /* not newer than 3 years before */
	};
	struct kl_forget_policy p = {.within_bucket[KL_BUCKET_DAY] = {.days = 3}};

	set_tz("UTC");
	CHECK(daily, &p, BY_HOST_PATHS);
	memset(&p, 0, sizeof(p));
	p.within_bucket[KL_BUCKET_HOUR].hours = 2;
	p.within_bucket[KL_BUCKET_MONTH].years = 1;
	CHECK(two, &p, BY_HOST_PATHS);
	memset(&p, 0, sizeof(p));
	p.within_bucket[KL_BUCKET_WEEK].days = 14;
	p.within_bucket[KL_BUCKET_YEAR].years = 3;
	CHECK(weekly_yearly, &p, BY_HOST_PATHS);
}

/* ---- combinations, ties, tags, grouping ---------------------------------------- */

static void rules_combine(void **state)
{
	static const struct row rows[] = {
		{"2024-03-20 18:00:00", "last,daily,weekly,monthly,yearly"}, /* Wed, W12 */
		{"2024-03-20 09:00:00", "last"},
		{"2024-03-19 09:00:00", "daily"},
		{"2024-03-15 09:00:00", "daily,weekly"}, /* W11 */
		{"2024-03-11 09:00:00", ""},		 /* W11, days used up */
		{"2024-02-10 09:00:00", "monthly"},
		{"2024-01-05 09:00:00", ""}, /* months used up, 2024 kept already */
		{"2023-12-31 09:00:00", ""}, /* one year only */
	};
	struct kl_forget_policy p = {.last = 2,
				     .buckets = {[KL_BUCKET_DAY] = 3,
						 [KL_BUCKET_WEEK] = 2,
						 [KL_BUCKET_MONTH] = 2,
						 [KL_BUCKET_YEAR] = 1}};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
}

static void ties_go_to_the_larger_id(void **state)
{
	static const struct row rows[] = {
		{"2024-01-01 12:00:00", ""},
		{"2024-01-01 12:00:00", "last,daily"}, /* same time, larger id: "newer" */
		{"2023-12-31 12:00:00", ""},
	};
	struct kl_forget_policy p = {.last = 1, .buckets[KL_BUCKET_DAY] = 1};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
}

static void keep_tag(void **state)
{
	static char keep[] = "keep", ab[] = "a,b";
	static char *tags[] = {keep, ab};
	static const struct row rows[] = {
		{"2024-01-05 00:00:00", "last"},
		{"2024-01-04 00:00:00", "tag", .tags = "keep"},
		{"2024-01-03 00:00:00", "", .tags = "a"},
		{"2024-01-02 00:00:00", "tag", .tags = "b,a"},
		{"2024-01-01 00:00:00", "tag", .tags = "x,a,keep,b"},
		{"2023-12-01 00:00:00", "", .tags = "keeps,other"},
	};
	/* a group where no snapshot has the tag loses all of them, as in restic */
	static const struct row only_tag[] = {
		{"2024-01-05 00:00:00", "", .host = "a"},
		{"2024-01-04 00:00:00", "", .host = "a"},
		{"2024-01-03 00:00:00", "tag", .host = "b", .tags = "keep"},
		{"2024-01-02 00:00:00", "", .host = "b"},
	};
	struct kl_forget_policy p = {.last = 1, .keep_tags = tags, .n_keep_tags = 2};

	set_tz("UTC");
	CHECK(rows, &p, BY_HOST_PATHS);
	p.last = 0;
	p.n_keep_tags = 1;
	CHECK(only_tag, &p, BY_HOST_PATHS);
}

static void grouping(void **state)
{
	static const struct row by_host_paths[] = {
		{"2024-01-03 00:00:00", "last", .host = "a", .paths = "/x"},
		{"2024-01-02 00:00:00", "", .host = "a", .paths = "/x"},
		{"2024-01-01 00:00:00", "last", .host = "b", .paths = "/x"},
		{"2024-01-04 00:00:00", "", .host = "a", .paths = "/y /x"},
		/* the same paths in another order: the same group */
		{"2024-01-05 00:00:00", "last", .host = "a", .paths = "/x /y"},
	};
	static const struct row none[] = {
		{"2024-01-03 00:00:00", "", .host = "a", .paths = "/x"},
		{"2024-01-01 00:00:00", "", .host = "b", .paths = "/x"},
		{"2024-01-05 00:00:00", "last", .host = "a", .paths = "/x /y", .tags = "t"},
	};
	static const struct row by_host[] = {
		{"2024-01-03 00:00:00", "", .host = "a", .paths = "/x"},
		{"2024-01-01 00:00:00", "last", .host = "b", .paths = "/x"},
		{"2024-01-05 00:00:00", "last", .host = "a", .paths = "/x /y"},
	};
	static const struct row by_tags[] = {
		{"2024-01-03 00:00:00", "last", .host = "a", .tags = "t,u"},
		{"2024-01-02 00:00:00", "", .host = "b", .tags = "u,t"},
		{"2024-01-01 00:00:00", "last", .host = "b"},
		{"2023-01-01 00:00:00", "", .host = "c"},
		{"2024-01-04 00:00:00", "last", .host = "b", .tags = "t"},
	};
	struct kl_forget_policy p = {.last = 1};
	struct kl_forget_plan plan;

	set_tz("UTC");
	check_rows(by_host_paths, KL_ARRAY_SIZE(by_host_paths), &p, BY_HOST_PATHS, &plan);
	/* groups sorted by key: (a, /x), (a, /x /y), (b, /x); items newest first */
	assert_int_equal(plan.n_groups, 3);
	assert_int_equal(plan.groups[0].n, 2);
	assert_int_equal(plan.groups[0].items[0], 0);
	assert_int_equal(plan.groups[0].items[1], 1);
	assert_int_equal(plan.groups[0].n_keep, 1);
	assert_int_equal(plan.groups[1].n, 2);
	assert_int_equal(plan.groups[1].items[0], 4);
	assert_int_equal(plan.groups[1].items[1], 3);
	assert_int_equal(plan.groups[2].n, 1);
	assert_int_equal(plan.groups[2].items[0], 2);
	kl_forget_plan_release(&plan);

	check_rows(none, KL_ARRAY_SIZE(none), &p, 0, &plan);
	assert_int_equal(plan.n_groups, 1);
	assert_int_equal(plan.groups[0].n, 3);
	kl_forget_plan_release(&plan);

	CHECK(by_host, &p, KL_GROUP_HOST);
	CHECK(by_tags, &p, KL_GROUP_TAGS);
}

static void empty_policy_and_empty_input(void **state)
{
	struct kl_forget_policy p = {0};
	struct kl_forget_plan plan;
	struct kl_forget_item it = {.time_ns = 1, .host = "h"};

	/* an empty policy would remove everything: the engine refuses it */
	assert_true(kl_forget_policy_is_empty(&p));
	assert_int_equal(kl_forget_plan(&it, 1, &p, BY_HOST_PATHS, &plan), -KL_EUSAGE);
	kl_forget_plan_release(&plan);
	p.within_bucket[KL_BUCKET_YEAR].hours = 1;
	assert_false(kl_forget_policy_is_empty(&p));
	assert_int_equal(kl_forget_plan(NULL, 0, &p, BY_HOST_PATHS, &plan), 0);
	assert_int_equal(plan.n_groups, 0);
	kl_forget_plan_release(&plan);
}

/* Each allocation the engine makes fails in turn: -ENOMEM, nothing leaked (ASan checks). */
static void allocation_failures(void **state)
{
	char *paths[] = {(char *)"/b", (char *)"/a"}, *tags[] = {(char *)"t"};
	struct kl_forget_item v[3] = {
		{.time_ns = 3 * NS, .host = "h", .paths = paths, .n_paths = 2},
		{.time_ns = 2 * NS,
		 .host = "h",
		 .paths = paths,
		 .n_paths = 1,
		 .tags = tags,
		 .n_tags = 1},
		{.time_ns = 1 * NS, .host = "g"},
	};
	struct kl_forget_policy p = {.last = 1};
	struct kl_forget_plan plan;
	int rc = -ENOMEM;

	for (long nth = 1; rc == -ENOMEM; nth++) {
		assert_true(nth < 100);
		kl_alloc_fail_after(nth);
		rc = kl_forget_plan(v, 3, &p, BY_HOST_PATHS, &plan);
		kl_alloc_fail_after(0);
		if (rc == -ENOMEM) {
			assert_null(plan.reasons);
			assert_int_equal(plan.n_groups, 0);
		}
	}
	assert_int_equal(rc, 0);
	assert_int_equal(plan.n_groups, 3);
	kl_forget_plan_release(&plan);
}

/* ---- time zones ---------------------------------------------------------------------- */

static void berlin_dst_days_and_hours(void **state)
{
	static const struct row days[] = {
		{"2024-10-27T23:00:00Z", "daily"}, /* 28 Oct 00:00 CET */
		{"2024-10-27T22:59:59Z", "daily"}, /* 27 Oct 23:59:59 CET: a 25-hour day */
		{"2024-10-27T01:30:00Z", ""},	   /* 02:30 CET */
		{"2024-10-27T00:30:00Z", ""},	   /* 02:30 CEST */
		{"2024-10-26T22:00:00Z", ""},	   /* 27 Oct 00:00 CEST */
		{"2024-10-26T21:59:59Z", "daily"}, /* 26 Oct 23:59:59 CEST */
		{"2024-03-31T22:00:00Z", "daily"}, /* 1 Apr 00:00 CEST */
		{"2024-03-31T21:59:59Z", "daily"}, /* 31 Mar 23:59:59 CEST: a 23-hour day */
		{"2024-03-31T01:00:00Z", ""},	   /* 03:00 CEST */
		{"2024-03-31T00:59:59Z", ""},	   /* 01:59:59 CET */
		{"2024-03-30T23:00:00Z", ""},	   /* 31 Mar 00:00 CET */
		{"2024-03-30T22:59:59Z", "daily"}, /* 30 Mar 23:59:59 CET */
	};
	/* wall-clock hours: the repeated 02:00-03:00 is one bucket */
	static const struct row fall_hours[] = {
		{"2024-10-27T02:00:00Z", "hourly"}, /* 03:00 CET */
		{"2024-10-27T01:59:59Z", "hourly"}, /* 02:59:59 CET */
		{"2024-10-27T01:00:00Z", ""},	    /* 02:00 CET */
		{"2024-10-27T00:59:59Z", ""},	    /* 02:59:59 CEST */
		{"2024-10-27T00:00:00Z", ""},	    /* 02:00 CEST */
		{"2024-10-26T23:59:59Z", "hourly"}, /* 01:59:59 CEST */
	};
	static const struct row spring_hours[] = {
		{"2024-03-31T01:00:00Z", "hourly"}, /* 03:00 CEST */
		{"2024-03-31T00:59:59Z", "hourly"}, /* 01:59:59 CET, the hour before */
		{"2024-03-31T00:00:00Z", ""},
	};
	struct kl_forget_policy p = {.buckets[KL_BUCKET_DAY] = 10};

	set_tz("Europe/Berlin");
	CHECK(days, &p, BY_HOST_PATHS);
	memset(&p, 0, sizeof(p));
	p.buckets[KL_BUCKET_HOUR] = 10;
	CHECK(fall_hours, &p, BY_HOST_PATHS);
	CHECK(spring_hours, &p, BY_HOST_PATHS);
}

static void berlin_weeks_years_within(void **state)
{
	static const struct row weeks[] = {
		{"2024-03-31T22:00:00Z", "weekly"}, /* Mon 1 Apr 00:00 CEST, W14 */
		{"2024-03-31T21:59:59Z", "weekly"}, /* Sun 23:59:59 CEST, W13 */
		{"2024-03-25T00:00:00Z", ""},	    /* Mon 01:00 CET, W13 */
		{"2024-03-24T23:00:00Z", ""},	    /* Mon 25 Mar 00:00 CET, W13 */
		{"2024-03-24T22:59:59Z", "weekly"}, /* Sun 23:59:59 CET, W12 */
	};
	static const struct row years[] = {
		{"2024-12-31T23:00:00Z", "monthly,yearly"}, /* 2025-01-01 00:00 CET */
		{"2024-12-31T22:59:59Z", "monthly,yearly"},
		{"2024-01-01T00:00:00Z", "monthly"}, /* 01:00 CET */
		{"2023-12-31T23:00:00Z", ""},	     /* 2024-01-01 00:00 CET */
		{"2023-12-31T22:59:59Z", "monthly,yearly"},
	};
	/* a day back from 12:00 CEST on the 23-hour day is 12:00 CET: 23 real hours */
	static const struct row within_day[] = {
		{"2024-03-31 12:00:00", "within"},
		{"2024-03-30T11:00:01Z", "within"},
		{"2024-03-30T11:00:00Z", ""},
	};
	static const struct row within_24h[] = {
		{"2024-03-31 12:00:00", "within"},
		{"2024-03-30T10:00:01Z", "within"},
		{"2024-03-30T10:00:00Z", ""},
	};
	struct kl_forget_policy p = {.buckets[KL_BUCKET_WEEK] = 5};

	set_tz("Europe/Berlin");
	CHECK(weeks, &p, BY_HOST_PATHS);
	memset(&p, 0, sizeof(p));
	p.buckets[KL_BUCKET_YEAR] = 5;
	p.buckets[KL_BUCKET_MONTH] = 4;
	CHECK(years, &p, BY_HOST_PATHS);
	memset(&p, 0, sizeof(p));
	p.within.days = 1;
	CHECK(within_day, &p, BY_HOST_PATHS);
	p.within = (struct kl_duration){.hours = 24};
	CHECK(within_24h, &p, BY_HOST_PATHS);
}

static void new_york_dst_days(void **state)
{
	static const struct row days[] = {
		{"2024-11-04T05:00:00Z", "daily"}, /* 4 Nov 00:00 EST */
		{"2024-11-04T04:59:59Z", "daily"}, /* 3 Nov 23:59:59 EST: a 25-hour day */
		{"2024-11-03T06:30:00Z", ""},	   /* 01:30 EST */
		{"2024-11-03T05:30:00Z", ""},	   /* 01:30 EDT */
		{"2024-11-03T04:00:00Z", ""},	   /* 3 Nov 00:00 EDT */
		{"2024-11-03T03:59:59Z", "daily"}, /* 2 Nov 23:59:59 EDT */
		{"2024-03-11T04:00:00Z", "daily"}, /* 11 Mar 00:00 EDT */
		{"2024-03-11T03:59:59Z", "daily"}, /* 10 Mar 23:59:59 EDT: a 23-hour day */
		{"2024-03-10T05:00:00Z", ""},	   /* 10 Mar 00:00 EST */
		{"2024-03-10T04:59:59Z", "daily"}, /* 9 Mar 23:59:59 EST */
	};
	static const struct row weeks[] = {
		{"2024-11-04T05:00:00Z", "weekly"}, /* Mon 00:00 EST, W45 */
		{"2024-11-04T04:59:59Z", "weekly"}, /* Sun 23:59:59 EST, W44 */
		{"2024-10-28T04:00:00Z", ""},	    /* Mon 28 Oct 00:00 EDT, W44 */
		{"2024-10-28T03:59:59Z", "weekly"}, /* Sun 27 Oct, W43 */
	};
	struct kl_forget_policy p = {.buckets[KL_BUCKET_DAY] = 10};

	set_tz("America/New_York");
	CHECK(days, &p, BY_HOST_PATHS);
	memset(&p, 0, sizeof(p));
	p.buckets[KL_BUCKET_WEEK] = 10;
	CHECK(weeks, &p, BY_HOST_PATHS);
}

/*
 * The bucket keys against the C library's own calendar (strftime's ISO
 * %G/%V and local fields) every 97 minutes over 16 years in three zones:
 * every week 53, leap day and DST change in between is crossed.
 */
static void bucket_keys_match_strftime(void **state)
{
	static const char *const zones[] = {"UTC", "Europe/Berlin", "America/New_York"};

	for (size_t z = 0; z < KL_ARRAY_SIZE(zones); z++) {
		set_tz(zones[z]);
		for (int64_t t = 1417392000; t < 1924992000; t += 97 * 60) {
			time_t tt = (time_t)t;
			struct tm tm;
			char buf[32];
			int64_t keys[KL_BUCKETS];

			assert_non_null(localtime_r(&tt, &tm));
			kl_forget_bucket_keys(t, keys);
			strftime(buf, sizeof(buf), "%G%V", &tm);
			assert_int_equal(keys[KL_BUCKET_WEEK], strtoll(buf, NULL, 10));
			strftime(buf, sizeof(buf), "%Y%m%d%H", &tm);
			assert_int_equal(keys[KL_BUCKET_HOUR], strtoll(buf, NULL, 10));
			assert_int_equal(keys[KL_BUCKET_DAY], keys[KL_BUCKET_HOUR] / 100);
			assert_int_equal(keys[KL_BUCKET_MONTH], keys[KL_BUCKET_HOUR] / 10000);
			assert_int_equal(keys[KL_BUCKET_YEAR], keys[KL_BUCKET_HOUR] / 1000000);
		}
	}
}

/* ---- parsers and time arithmetic ---------------------------------------------- */

static void time_parse(void **state)
{
	static const char *const bad[] = {
		"",
		"x",
		"2024-01-01",
		"2024-02-30 00:00:00",
		"2023-02-29 00:00:00",
		"2024-13-01 00:00:00",
		"2024-00-10 00:00:00",
		"2024-01-01 24:00:00",
		"2024-01-01 00:60:00",
		"2024-01-01 00:00:60",
		"2024-01-01 00:00:00 ",
		"2024-01-01 00:00:00+1:00",
		"2024-01-01 00:00:00+01",
		"2024-01-01T00:00:00.Z",
		"2024-01-01T00:00:00.1234567890Z",
		"2024-1-01 00:00:00",
		"2024/01/01 00:00:00",
		"9999-01-01T00:00:00Z", /* past what int64 nanoseconds hold */
	};
	int64_t ns;

	set_tz("UTC");
	assert_int_equal(kl_time_parse("2024-02-29T12:34:56+05:30", &ns), 0);
	assert_int_equal(ns, 1709190296 * NS);
	assert_int_equal(kl_time_parse("1969-12-31T23:59:59Z", &ns), 0);
	assert_int_equal(ns, -1 * NS);
	assert_int_equal(kl_time_parse("2000-01-01 00:00:00", &ns), 0);
	assert_int_equal(ns, 946684800 * NS);
	assert_int_equal(kl_time_parse("2000-01-01t00:00:00.5z", &ns), 0);
	assert_int_equal(ns, 946684800 * NS + 500000000);
	assert_int_equal(kl_time_parse("2000-01-01T01:00:00.000000001+01:00", &ns), 0);
	assert_int_equal(ns, 946684800 * NS + 1);
	for (size_t i = 0; i < KL_ARRAY_SIZE(bad); i++)
		if (kl_time_parse(bad[i], &ns) != -KL_EUSAGE)
			fail_msg("'%s' was accepted", bad[i]);

	set_tz("Europe/Berlin");
	assert_int_equal(kl_time_parse("2024-07-01 12:00:00", &ns), 0);
	assert_int_equal(ns, 1719828000 * NS);
	/* twice (02:30 CEST, then CET): the earlier */
	assert_int_equal(kl_time_parse("2024-10-27 02:30:00", &ns), 0);
	assert_int_equal(ns, 1729989000 * NS);
	/* never: clocks jumped from 02:00 to 03:00 */
	assert_int_equal(kl_time_parse("2024-03-31 02:30:00", &ns), -KL_EUSAGE);
	assert_int_equal(kl_time_parse("2024-03-31T02:30:00+01:00", &ns), 0);
	assert_int_equal(ns, 1711848600 * NS);

	set_tz("America/New_York");
	assert_int_equal(kl_time_parse("2024-11-03 01:30:00", &ns), 0);
	assert_int_equal(ns, 1730611800 * NS);
}

static void time_minus(void **state)
{
	int64_t t;

	set_tz("UTC");
	assert_int_equal(kl_time_parse("2024-02-29T10:00:00Z", &t), 0);
	assert_int_equal(kl_time_minus(t / NS, &(struct kl_duration){.years = 1}),
			 1677664800); /* 2023-03-01T10:00:00Z */
	assert_int_equal(kl_time_minus(t / NS, &(struct kl_duration){.years = 4}),
			 1582970400); /* 2020-02-29T10:00:00Z */
	assert_int_equal(kl_time_minus(t / NS, &(struct kl_duration){.months = 14}),
			 1672308000); /* 2022-12-29T10:00:00Z */
	assert_int_equal(kl_time_minus(t / NS, &(struct kl_duration){0}), t / NS);
	assert_int_equal(kl_time_minus(t / NS, &(struct kl_duration){.hours = 10, .days = 59}),
			 1704067200); /* 2024-01-01T00:00:00Z */

	set_tz("Europe/Berlin");
	/* 1 April 02:30 CEST minus a day is 31 March 02:30, which does not exist */
	assert_int_equal(kl_time_parse("2024-04-01 02:30:00", &t), 0);
	assert_int_equal(kl_time_minus(t / NS, &(struct kl_duration){.days = 1}),
			 1711848600); /* 01:30Z = 03:30 CEST */
	/* a day back into the doubled hour: the earlier 02:30 (CEST) */
	assert_int_equal(kl_time_parse("2024-10-28 02:30:00", &t), 0);
	assert_int_equal(kl_time_minus(t / NS, &(struct kl_duration){.days = 1}), 1729989000);
}

static void duration_parse(void **state)
{
	static const char *const bad[] = {"",	 "d",	 "1",	"1w",	     "1d1d",
					  "-1d", "1.5d", "1d ", "10000000d", "1y2"};
	struct kl_duration d;

	assert_int_equal(kl_duration_parse("1y2m3d4h", &d), 0);
	assert_int_equal(d.years, 1);
	assert_int_equal(d.months, 2);
	assert_int_equal(d.days, 3);
	assert_int_equal(d.hours, 4);
	assert_int_equal(kl_duration_parse("36h7d", &d), 0);
	assert_int_equal(d.years, 0);
	assert_int_equal(d.days, 7);
	assert_int_equal(d.hours, 36);
	assert_int_equal(kl_duration_parse("0d", &d), 0);
	assert_true(kl_duration_is_zero(&d));
	for (size_t i = 0; i < KL_ARRAY_SIZE(bad); i++)
		if (kl_duration_parse(bad[i], &d) != -KL_EUSAGE)
			fail_msg("'%s' was accepted", bad[i]);
}

static void group_by_parse(void **state)
{
	static const char *const bad[] = {"hosts", "host,", ",host", "host,,paths", "Host", "x"};
	unsigned g;

	assert_int_equal(kl_group_by_parse("host,paths", &g), 0);
	assert_int_equal(g, KL_GROUP_HOST | KL_GROUP_PATHS);
	assert_int_equal(kl_group_by_parse("", &g), 0);
	assert_int_equal(g, 0);
	assert_int_equal(kl_group_by_parse("tags", &g), 0);
	assert_int_equal(g, KL_GROUP_TAGS);
	assert_int_equal(kl_group_by_parse("paths,tags,host", &g), 0);
	assert_int_equal(g, KL_GROUP_HOST | KL_GROUP_PATHS | KL_GROUP_TAGS);
	for (size_t i = 0; i < KL_ARRAY_SIZE(bad); i++)
		if (kl_group_by_parse(bad[i], &g) != -KL_EUSAGE)
			fail_msg("'%s' was accepted", bad[i]);
}

static void reason_names(void **state)
{
	assert_string_equal(kl_keep_reason_name(KL_KEEP_LAST), "last");
	assert_string_equal(kl_keep_reason_name(KL_KEEP_WEEKLY), "weekly");
	assert_string_equal(kl_keep_reason_name(KL_KEEP_WITHIN_WEEKLY), "within-weekly");
	assert_string_equal(kl_keep_reason_name(KL_KEEP_TAG), "tag");
	assert_null(kl_keep_reason_name(0));
	assert_null(kl_keep_reason_name(KL_KEEP_LAST | KL_KEEP_TAG));
	assert_null(kl_keep_reason_name(1u << KL_KEEP_REASONS));
}

/* ---- removing snapshots, with S3 Object Lock refusing some ---------------- */

/*
 * The repository's real local backend, except that deleting one chosen
 * snapshot fails with refuse_rc: what S3 answers for an object under
 * retention (-KL_EOBJLOCKED), or an I/O error.
 */
struct refusing {
	struct kl_backend b;
	struct kl_backend *inner;
	char refuse[2 * KL_ID_LEN + 1];
	int refuse_rc;
	unsigned dels;
};

static int rf_list(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud)
{
	struct refusing *x = (struct refusing *)b;

	return x->inner->ops->list(x->inner, t, cb, ud);
}

static int rf_get(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t off,
		  uint64_t len, struct kl_buf *out)
{
	struct refusing *x = (struct refusing *)b;

	return x->inner->ops->get(x->inner, t, name, off, len, out);
}

static int rf_put(struct kl_backend *b, enum kl_obj_type t, const char *name, const void *data,
		  size_t len)
{
	struct refusing *x = (struct refusing *)b;

	return x->inner->ops->put(x->inner, t, name, data, len);
}

static int rf_del(struct kl_backend *b, enum kl_obj_type t, const char *name)
{
	struct refusing *x = (struct refusing *)b;

	x->dels++;
	if (t == KL_OBJ_SNAPSHOT && !strcmp(name, x->refuse))
		return x->refuse_rc;
	return x->inner->ops->del(x->inner, t, name);
}

static int rf_stat(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t *size)
{
	struct refusing *x = (struct refusing *)b;

	return x->inner->ops->stat(x->inner, t, name, size);
}

static int rf_create(struct kl_backend *b)
{
	return -EEXIST;
}

static void rf_free(struct kl_backend *b)
{
	struct refusing *x = (struct refusing *)b;

	kl_backend_free(x->inner);
}

static const struct kl_backend_ops refusing_ops = {
	.scheme = "refusing",
	.list = rf_list,
	.get = rf_get,
	.put = rf_put,
	.del = rf_del,
	.stat = rf_stat,
	.create = rf_create,
	.free = rf_free,
};

/* A repository with n snapshots, its backend wrapped by x. */
static struct kl_repo *repo_with_snapshots(char top[static 64], struct refusing *x,
					   struct kl_id *ids, size_t n)
{
	struct kl_repo *r = NULL;
	char dir[96];

	assert_int_equal(kl_crypto_init(), 0);
	assert_int_equal(fixture_tmpdir("forget", top, 64), 0);
	snprintf(dir, sizeof(dir), "%s/repo", top);
	assert_int_equal(fixture_repo_create(dir, NULL, NULL, &r), 0);
	for (size_t i = 0; i < n; i++) {
		struct kl_snapshot s = {.kind = KL_SNAP_FILES};

		s.time_ns = (int64_t)(i + 1) * NS;
		s.time_end_ns = s.time_ns + 1;
		kl_random(s.tree.b, KL_ID_LEN);
		assert_int_equal(kl_repo_save_snapshot(r, &s, &ids[i]), 0);
	}
	x->b.ops = &refusing_ops;
	x->b.location = r->be->location;
	x->inner = r->be;
	r->be = &x->b;
	return r;
}

static size_t snapshot_count(struct kl_repo *r)
{
	struct kl_snapshot_list l = {0};
	size_t n;

	assert_int_equal(kl_repo_list_snapshots(r, &l), 0);
	n = l.n;
	kl_snapshot_list_release(&l);
	return n;
}

/*
 * A snapshot under retention is kept and named, the others still go, and
 * the call says -KL_EOBJLOCKED (exit 16) without leaving an error message
 * behind; any other failure stops at once.
 */
static void forget_keeps_retained_snapshots(void **state)
{
	struct refusing x = {.refuse_rc = -KL_EOBJLOCKED};
	struct kl_forget_result res;
	struct kl_id ids[3];
	char top[64];
	struct kl_repo *r = repo_with_snapshots(top, &x, ids, 3);

	kl_id_hex(&ids[1], x.refuse);
	assert_int_equal(kl_snapshots_forget(r, ids, 3, &res), -KL_EOBJLOCKED);
	assert_int_equal(res.removed, 2);
	assert_int_equal(res.n_retained, 1);
	assert_memory_equal(res.retained[0].b, ids[1].b, KL_ID_LEN);
	assert_int_equal(r->err.code, 0);
	assert_int_equal(snapshot_count(r), 1);
	kl_forget_result_release(&res);

	/* nothing to do, and nothing kept: 0 */
	assert_int_equal(kl_snapshots_forget(r, ids, 0, &res), 0);
	assert_int_equal(res.removed + res.n_retained, 0);
	kl_forget_result_release(&res);

	/* an I/O error stops the run: what follows is not tried */
	x.refuse_rc = -EIO;
	x.dels = 0;
	assert_int_equal(kl_snapshots_forget(r, &ids[1], 1, &res), -EIO);
	assert_int_equal(res.removed, 0);
	assert_int_equal(res.n_retained, 0);
	assert_int_equal(r->err.code, -EIO);
	kl_forget_result_release(&res);
	/* ... and one already gone is not found */
	assert_int_equal(kl_snapshots_forget(r, ids, 2, &res), -KL_ENOTFOUND);
	assert_int_equal(res.removed, 0);
	assert_int_equal(x.dels, 2);
	kl_forget_result_release(&res);

	kl_repo_free(r);
	fixture_rm_rf(top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keep_last),
		cmocka_unit_test(keep_hourly),
		cmocka_unit_test(keep_daily_skips_empty_days),
		cmocka_unit_test(keep_daily_leap_years),
		cmocka_unit_test(keep_weekly_iso_week_53),
		cmocka_unit_test(keep_weekly_across_year_ends),
		cmocka_unit_test(keep_monthly),
		cmocka_unit_test(keep_yearly),
		cmocka_unit_test(keep_within_counts_from_newest_snapshot),
		cmocka_unit_test(keep_within_buckets),
		cmocka_unit_test(rules_combine),
		cmocka_unit_test(ties_go_to_the_larger_id),
		cmocka_unit_test(keep_tag),
		cmocka_unit_test(grouping),
		cmocka_unit_test(empty_policy_and_empty_input),
		cmocka_unit_test(allocation_failures),
		cmocka_unit_test(berlin_dst_days_and_hours),
		cmocka_unit_test(berlin_weeks_years_within),
		cmocka_unit_test(new_york_dst_days),
		cmocka_unit_test(bucket_keys_match_strftime),
		cmocka_unit_test(time_parse),
		cmocka_unit_test(time_minus),
		cmocka_unit_test(duration_parse),
		cmocka_unit_test(group_by_parse),
		cmocka_unit_test(reason_names),
		cmocka_unit_test(forget_keeps_retained_snapshots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Calendar arithmetic for retention policies and `backup --time`: local
 * calendar buckets, durations, and parsing of time stamps.
 *
 * Only localtime_r is trusted with the time zone; turning a local wall
 * time back into an instant is done here (resolve_local) rather than by
 * mktime, whose choice in the hour that occurs twice or not at all is
 * unspecified: keel's choice is documented in docs/FORGET.md.
 */
#include <limits.h>
#include <time.h>

#include "forget-internal.h"

int64_t kl_forget_floor_sec(int64_t ns)
{
	return ns / KL_NSEC_PER_SEC - (ns % KL_NSEC_PER_SEC < 0);
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date, in a year that
 * starts in March so that the leap day is the year's last day. Days past
 * the month's end run on into the next month (31 April is 1 May, 29
 * February of a common year is 1 March), which is the normalisation the
 * duration arithmetic wants.
 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

static bool local_tm(int64_t t, struct tm *tm)
{
	time_t tt = (time_t)t;

	return localtime_r(&tt, tm) != NULL;
}

static long local_offset(int64_t t)
{
	struct tm tm;

	return local_tm(t, &tm) ? tm.tm_gmtoff : 0;
}

/*
 * The instant whose local wall time is wall (seconds since the epoch as
 * if the wall clock were UTC). Offsets are taken a day before and after,
 * which spans any one transition. Twice-occurring times give the earlier
 * instant; a time in a gap gives the instant the pre-transition offset
 * names (02:30 in a gap from 02:00 to 03:00 becomes 03:30) and returns 1.
 */
static int resolve_local(int64_t wall, int64_t *ret)
{
	long oa = local_offset(wall - 86400), ob = local_offset(wall + 86400);
	int64_t ta = wall - oa, tb = wall - ob;
	bool va = local_offset(ta) == oa, vb = local_offset(tb) == ob;

	if (va && vb)
		*ret = KL_MIN(ta, tb);
	else if (va)
		*ret = ta;
	else if (vb)
		*ret = tb;
	else
		*ret = ta;
	return va || vb ? 0 : 1;
}

void kl_forget_bucket_keys(int64_t t, int64_t keys[KL_BUCKETS])
{
	struct tm tm;
	int64_t y, m, d, wy, yday, thursday;
	int wday, week;

	if (!local_tm(t, &tm)) {
		/* far outside what time_t holds: every such time shares a bucket */
		for (int i = 0; i < KL_BUCKETS; i++)
			keys[i] = t < 0 ? INT64_MIN : INT64_MAX;
		return;
	}
	y = (int64_t)tm.tm_year + 1900;
	m = tm.tm_mon + 1;
	d = tm.tm_mday;
	/* ISO 8601 week: Monday first; the week belongs to the year of its Thursday */
	wday = (tm.tm_wday + 6) % 7;
	yday = tm.tm_yday;
	thursday = yday - wday + 3;
	wy = y;
	if (thursday < 0) {
		wy = y - 1;
		thursday += is_leap(wy) ? 366 : 365;
	} else if (thursday >= (is_leap(y) ? 366 : 365)) {
		thursday -= is_leap(y) ? 366 : 365;
		wy = y + 1;
	}
	week = (int)(thursday / 7) + 1;

	keys[KL_BUCKET_YEAR] = y;
	keys[KL_BUCKET_MONTH] = y * 100 + m;
	keys[KL_BUCKET_WEEK] = wy * 100 + week;
	keys[KL_BUCKET_DAY] = (y * 100 + m) * 100 + d;
	keys[KL_BUCKET_HOUR] = keys[KL_BUCKET_DAY] * 100 + tm.tm_hour;
}

int64_t kl_time_minus(int64_t t, const struct kl_duration *dur)
{
	struct tm tm;
	int64_t months, y, days, wall, res;
	int m;

	if (kl_duration_is_zero(dur))
		return t;
	if (!local_tm(t, &tm))
		return t - (int64_t)dur->hours * 3600 - (int64_t)dur->days * 86400;
	if (dur->years || dur->months || dur->days) {
		months = ((int64_t)tm.tm_year + 1900 - dur->years) * 12 + tm.tm_mon - dur->months;
		y = months >= 0 ? months / 12 : -((-months + 11) / 12);
		m = (int)(months - y * 12) + 1;
		days = days_from_civil(y, m, tm.tm_mday) - dur->days;
		wall = days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
		resolve_local(wall, &res);
	} else {
		res = t;
	}
	return res - (int64_t)dur->hours * 3600;
}

int kl_duration_parse(const char *s, struct kl_duration *ret)
{
	struct kl_duration d = {0};
	unsigned seen = 0;
	const char *p = s;

	if (!s || !*s)
		return -KL_EUSAGE;
	while (*p) {
		long v = 0;
		int *field;
		unsigned bit;
		const char *start = p;

		while (*p >= '0' && *p <= '9') {
			v = v * 10 + (*p - '0');
			if (v > 1000000)
				return -KL_EUSAGE;
			p++;
		}
		if (p == start)
			return -KL_EUSAGE;
		switch (*p) {
		case 'y':
			field = &d.years, bit = 1;
			break;
		case 'm':
			field = &d.months, bit = 2;
			break;
		case 'd':
			field = &d.days, bit = 4;
			break;
		case 'h':
			field = &d.hours, bit = 8;
			break;
		default:
			return -KL_EUSAGE;
		}
		if (seen & bit)
			return -KL_EUSAGE;
		seen |= bit;
		*field = (int)v;
		p++;
	}
	*ret = d;
	return 0;
}

/* Exactly n digits; returns the value or -1. */
static int digits(const char **p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	return v;
}

int kl_time_parse(const char *s, int64_t *ret_ns)
{
	const char *p = s;
	int y, mo, d, h, mi, sec, oh, om;
	int64_t frac = 0, wall, t;
	bool has_offset = false;
	long off = 0;

	if (!s)
		return -KL_EUSAGE;
	if ((y = digits(&p, 4)) < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 0 || *p++ != '-' ||
	    (d = digits(&p, 2)) < 0)
		return -KL_EUSAGE;
	if (*p != ' ' && *p != 'T' && *p != 't')
		return -KL_EUSAGE;
	p++;
	if ((h = digits(&p, 2)) < 0 || *p++ != ':' || (mi = digits(&p, 2)) < 0 || *p++ != ':' ||
	    (sec = digits(&p, 2)) < 0)
		return -KL_EUSAGE;
	if (*p == '.') {
		int n = 0;

		p++;
		while (*p >= '0' && *p <= '9') {
			if (++n > 9)
				return -KL_EUSAGE;
			frac = frac * 10 + (*p++ - '0');
		}
		if (!n)
			return -KL_EUSAGE;
		for (; n < 9; n++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		has_offset = true;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;

		if ((oh = digits(&p, 2)) < 0 || *p++ != ':' || (om = digits(&p, 2)) < 0 ||
		    oh > 23 || om > 59)
			return -KL_EUSAGE;
		has_offset = true;
		off = sign * (oh * 3600L + om * 60L);
	}
	if (*p)
		return -KL_EUSAGE;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
		return -KL_EUSAGE;
	wall = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	if (has_offset)
		t = wall - off;
	else if (resolve_local(wall, &t))
		return -KL_EUSAGE; /* skipped by a clock change: ask for an offset */
	if (t > INT64_MAX / KL_NSEC_PER_SEC - 1 || t < INT64_MIN / KL_NSEC_PER_SEC + 1)
		return -KL_EUSAGE;
	*ret_ns = t * KL_NSEC_PER_SEC + frac;
	return 0;
}

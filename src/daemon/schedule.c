/*
 * Schedules: "every N", the calendar shorthands and cron lines, and the
 * next time one fires. Calendars are wall-clock times in the local time
 * zone; include/keel/daemon.h says how the hours that summer time skips
 * or repeats are treated.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keel/daemon.h"

int kl_daemon_parse_duration(const char *s, int64_t *ret)
{
	int64_t total = 0;

	if (!*s)
		return -KL_EUSAGE;
	while (*s) {
		int64_t n = 0, unit;
		const char *start = s;

		while (*s >= '0' && *s <= '9') {
			n = n * 10 + (*s++ - '0');
			if (n > 100000000)
				return -KL_EUSAGE;
		}
		if (s == start)
			return -KL_EUSAGE;
		switch (*s++) {
		case 's':
			unit = 1;
			break;
		case 'm':
			unit = 60;
			break;
		case 'h':
			unit = 3600;
			break;
		case 'd':
			unit = KL_SEC_PER_DAY;
			break;
		case 'w':
			unit = 7 * KL_SEC_PER_DAY;
			break;
		default:
			return -KL_EUSAGE;
		}
		total += n * unit;
		if (total > (int64_t)3660 * KL_SEC_PER_DAY)
			return -KL_EUSAGE; /* ten years */
	}
	if (total <= 0)
		return -KL_EUSAGE;
	*ret = total;
	return 0;
}

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
static const char *const day_full[7] = {"sunday",   "monday", "tuesday", "wednesday",
					"thursday", "friday", "saturday"};

/* A number lo..hi at *p, advancing it. */
static int number(const char **p, unsigned lo, unsigned hi, unsigned *ret)
{
	unsigned n = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return -KL_EUSAGE;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (unsigned)(*s++ - '0');
		if (n > 1000)
			return -KL_EUSAGE;
	}
	if (n < lo || n > hi)
		return -KL_EUSAGE;
	*p = s;
	*ret = n;
	return 0;
}

/* One cron field ("*", "1-5", "*\/15", "1,3,5-7/2") into bits lo..hi. */
static int cron_field(const char *s, unsigned lo, unsigned hi, uint64_t *ret)
{
	uint64_t bits = 0;

	for (;;) {
		unsigned a = lo, b = hi, step = 1;

		if (*s == '*') {
			s++;
		} else {
			if (number(&s, lo, hi, &a) < 0)
				return -KL_EUSAGE;
			b = a;
			if (*s == '-') {
				s++;
				if (number(&s, a, hi, &b) < 0)
					return -KL_EUSAGE;
			}
		}
		if (*s == '/') {
			s++;
			if (number(&s, 1, hi - lo + 1, &step) < 0)
				return -KL_EUSAGE;
		}
		for (unsigned i = a; i <= b; i += step)
			bits |= UINT64_C(1) << i;
		if (*s == '\0')
			break;
		if (*s++ != ',')
			return -KL_EUSAGE;
	}
	*ret = bits;
	return 0;
}

static int parse_cron(char *const f[5], struct kl_schedule *s)
{
	uint64_t b[5];
	static const unsigned lim[5][2] = {{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}};

	for (int i = 0; i < 5; i++)
		if (cron_field(f[i], lim[i][0], lim[i][1], &b[i]) < 0)
			return -KL_EUSAGE;
	s->minute = b[0];
	s->hour = (uint32_t)b[1];
	s->dom = (uint32_t)b[2];
	s->month = (uint16_t)b[3];
	s->dow = (uint8_t)((b[4] | (b[4] >> 7)) & 0x7f); /* 7 is Sunday too */
	s->dom_star = f[2][0] == '*';
	s->dow_star = f[4][0] == '*';
	return 0;
}

/* "HH:MM" */
static int clock_time(const char *s, struct kl_schedule *ret)
{
	unsigned h, m;

	if (number(&s, 0, 23, &h) < 0 || *s++ != ':' || strlen(s) != 2 || number(&s, 0, 59, &m) < 0)
		return -KL_EUSAGE;
	ret->hour = UINT32_C(1) << h;
	ret->minute = UINT64_C(1) << m;
	return 0;
}

int kl_schedule_parse(const char *text, struct kl_schedule *ret)
{
	struct kl_schedule s = {
		.minute = (UINT64_C(1) << 60) - 1,
		.hour = (UINT32_C(1) << 24) - 1,
		.dom = UINT32_MAX & ~UINT32_C(1),
		.month = 0x1ffe,
		.dow = 0x7f,
		.dom_star = true,
		.dow_star = true,
	};
	_cleanup_free_ char *copy = kl_strdup(text);
	char *f[6], *save = NULL;
	size_t n = 0;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == 6)
			return -KL_EUSAGE;
		f[n++] = t;
	}
	if (n == 2 && !strcmp(f[0], "every")) {
		if (kl_daemon_parse_duration(f[1], &s.every) < 0)
			return -KL_EUSAGE;
	} else if (n == 1 && !strcmp(f[0], "hourly")) {
		s.minute = 1;
	} else if (n == 2 && !strcmp(f[0], "daily")) {
		if (clock_time(f[1], &s) < 0)
			return -KL_EUSAGE;
	} else if (n == 3 && !strcmp(f[0], "weekly")) {
		int d;

		for (d = 0; d < 7; d++)
			if (!strcasecmp(f[1], day_names[d]) || !strcasecmp(f[1], day_full[d]))
				break;
		if (d == 7 || clock_time(f[2], &s) < 0)
			return -KL_EUSAGE;
		s.dow = (uint8_t)(1u << d);
		s.dow_star = false;
	} else if (n == 5) {
		if (parse_cron(f, &s) < 0)
			return -KL_EUSAGE;
	} else {
		return -KL_EUSAGE;
	}
	*ret = s;
	return 0;
}

static bool day_matches(const struct kl_schedule *s, const struct tm *tm)
{
	bool dom = s->dom & (UINT32_C(1) << tm->tm_mday);
	bool dow = s->dow & (1u << tm->tm_wday);

	if (!(s->month & (1u << (tm->tm_mon + 1))))
		return false;
	if (!s->dom_star && !s->dow_star)
		return dom || dow; /* cron's rule: either restricted field */
	return dom && dow;
}

/*
 * The first moment the wall-clock time day/h/m occurs, or, when it does
 * not exist (skipped by summer time), the moment it would be in the time
 * before the change (02:30 becomes 03:30).
 */
static time_t wall_time(const struct tm *day, int h, int m)
{
	time_t best = (time_t)-1;

	for (int dst = 0; dst <= 1; dst++) {
		struct tm tm = *day, back;
		time_t t;

		tm.tm_hour = h;
		tm.tm_min = m;
		tm.tm_sec = 0;
		tm.tm_isdst = dst;
		t = mktime(&tm);
		if (t == (time_t)-1 || !localtime_r(&t, &back))
			continue;
		if (back.tm_mday == day->tm_mday && back.tm_hour == h && back.tm_min == m &&
		    (best == (time_t)-1 || t < best))
			best = t;
	}
	if (best == (time_t)-1) {
		struct tm tm = *day;

		tm.tm_hour = h;
		tm.tm_min = m;
		tm.tm_sec = 0;
		tm.tm_isdst = 0;
		best = mktime(&tm);
	}
	return best;
}

int64_t kl_schedule_next(const struct kl_schedule *s, int64_t after)
{
	time_t a = (time_t)after;
	struct tm start;

	if (s->every)
		return after + s->every;
	if (!localtime_r(&a, &start))
		return -1;
	/* 28 years: the longest a day-of-month and weekday pair can take to recur */
	for (int k = 0; k < 366 * 29; k++) {
		struct tm day = {0};
		time_t noon;
		int floor_min = 0;

		day.tm_year = start.tm_year;
		day.tm_mon = start.tm_mon;
		day.tm_mday = start.tm_mday + k;
		day.tm_hour = 12;
		day.tm_isdst = -1;
		noon = mktime(&day);
		if (noon == (time_t)-1)
			return -1;
		if (!day_matches(s, &day))
			continue;
		/* today: nothing earlier than three hours before `after` on the clock can be later
		 */
		if (k == 0)
			floor_min = start.tm_hour * 60 + start.tm_min - 180;
		for (int h = 0; h < 24; h++) {
			if (!(s->hour & (UINT32_C(1) << h)))
				continue;
			for (int m = 0; m < 60; m++) {
				time_t t;

				if (!(s->minute & (UINT64_C(1) << m)) || h * 60 + m < floor_min)
					continue;
				t = wall_time(&day, h, m);
				if (t != (time_t)-1 && (int64_t)t > after)
					return (int64_t)t;
			}
		}
	}
	return -1;
}

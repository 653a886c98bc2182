#include <stdio.h>
#include <time.h>

#include "keel/util.h"

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * KL_NSEC_PER_SEC + ts.tv_nsec;
}

int64_t kl_time_now_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

int64_t kl_time_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static void format(int64_t sec, char out[40], bool utc)
{
	time_t t = (time_t)sec;
	struct tm tm;

	if (!(utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm))) {
		snprintf(out, 40, "@%lld", (long long)t);
		return;
	}
	strftime(out, 40, utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm);
}

int64_t kl_time_floor_sec(int64_t ns)
{
	/* division rounds toward zero: a time before 1970 belongs to the second below */
	return ns / KL_NSEC_PER_SEC - (ns % KL_NSEC_PER_SEC < 0);
}

void kl_time_format_utc(int64_t ns, char out[40])
{
	format(kl_time_floor_sec(ns), out, true);
}

void kl_time_format_local(int64_t ns, char out[40])
{
	format(kl_time_floor_sec(ns), out, false);
}

void kl_time_format_local_sec(int64_t sec, char out[40])
{
	format(sec, out, false);
}

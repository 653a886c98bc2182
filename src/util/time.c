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

static void format(int64_t ns, char out[40], bool utc)
{
	time_t t = (time_t)(ns / KL_NSEC_PER_SEC);
	struct tm tm;

	if (ns < 0 && ns % KL_NSEC_PER_SEC)
		t--;
	if (!(utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm))) {
		snprintf(out, 40, "@%lld", (long long)t);
		return;
	}
	strftime(out, 40, utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm);
}

void kl_time_format_utc(int64_t ns, char out[40])
{
	format(ns, out, true);
}

void kl_time_format_local(int64_t ns, char out[40])
{
	format(ns, out, false);
}

/*
 * A restore drill's record as a snapshot's tags (keel/daemon.h): written
 * by the drill, read by `keel status` on any machine that opens the
 * repository. The tags come from the repository, so the parser trusts
 * nothing: every value is checked, each tag may occur once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/daemon.h"

static const char *value(const char *tag, const char *key)
{
	size_t n = strlen(key);

	return !strncmp(tag, key, n) && tag[n] == '=' ? tag + n + 1 : NULL;
}

static bool is_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

static bool is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Seconds: digits with at most one '.', at most a year */
static int parse_seconds(const char *s, double *ret)
{
	size_t n = strlen(s), dots = 0;
	char *end;

	if (n == 0 || n > 20 || s[0] == '.')
		return -KL_ECORRUPT;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.')
			dots++;
		else if (s[i] < '0' || s[i] > '9')
			return -KL_ECORRUPT;
	}
	if (dots > 1)
		return -KL_ECORRUPT;
	*ret = strtod(s, &end);
	if (*end || *ret > 366.0 * 86400)
		return -KL_ECORRUPT;
	return 0;
}

int kl_daemon_drill_record_parse(char *const *tags, size_t n, struct kl_daemon_drill_record *ret)
{
	enum { JOB = 1, OF = 2, RESULT = 4, SECONDS = 8, SAMPLE = 16, BYTES = 32, ALL = 63 };
	unsigned seen = 0, bit;
	bool marked = false;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < n; i++)
		marked |= !strcmp(tags[i], KL_DRILL_TAG);
	if (!marked)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *t = tags[i], *v;
		uint64_t u;

		if ((v = value(t, "drill-job"))) {
			bit = JOB;
			if (!is_name(v))
				return -KL_ECORRUPT;
			snprintf(ret->job, sizeof(ret->job), "%s", v);
		} else if ((v = value(t, "drill-of"))) {
			bit = OF;
			if (!is_hex64(v))
				return -KL_ECORRUPT;
			memcpy(ret->snapshot, v, 65);
		} else if ((v = value(t, "drill-result"))) {
			bit = RESULT;
			if (strcmp(v, "ok") && strcmp(v, "failed"))
				return -KL_ECORRUPT;
			ret->ok = !strcmp(v, "ok");
		} else if ((v = value(t, "drill-seconds"))) {
			bit = SECONDS;
			if (parse_seconds(v, &ret->seconds) < 0)
				return -KL_ECORRUPT;
		} else if ((v = value(t, "drill-sample"))) {
			bit = SAMPLE;
			if (kl_parse_uint(v, 1, 100, &u) < 0)
				return -KL_ECORRUPT;
			ret->sample = (unsigned)u;
		} else if ((v = value(t, "drill-bytes"))) {
			bit = BYTES;
			if (kl_parse_uint(v, 0, UINT64_MAX, &u) < 0)
				return -KL_ECORRUPT;
			ret->bytes = u;
		} else {
			continue; /* keel-drill itself, or a tag someone added */
		}
		if (seen & bit)
			return -KL_ECORRUPT;
		seen |= bit;
	}
	return seen == ALL ? 1 : -KL_ECORRUPT;
}

int kl_daemon_drill_record_tags(const struct kl_daemon_drill_record *r, struct kl_buf *out)
{
	return kl_buf_addf(out,
			   KL_DRILL_TAG
			   ",drill-job=%s,drill-of=%s,drill-result=%s,drill-seconds=%.3f,"
			   "drill-sample=%u,drill-bytes=%llu",
			   r->job, r->snapshot, r->ok ? "ok" : "failed", r->seconds, r->sample,
			   (unsigned long long)r->bytes);
}

/*
 * keel db list's binary log lines of a MariaDB database (what is stored,
 * gaps, the restorable stretches) and keel db binlog-get (docs/DATABASES.md,
 * "MariaDB's binary log").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"
#include "cmd-db-binlog.h"
#include "keel/db.h"

static void when(int64_t ns, char *buf, size_t size)
{
	time_t t = (time_t)(ns / KL_NSEC_PER_SEC);
	struct tm tm;

	strftime(buf, size, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
}

/* The newest record (by position): where the stored binary log ends. */
static const struct kl_snapshot *newest(const struct kl_db_info *d)
{
	return d->n_logs ? &d->logs[d->n_logs - 1].s : NULL;
}

static void position(const struct kl_snapshot *w, char *buf, size_t size)
{
	uint32_t off = (uint32_t)w->db.stop_lsn;

	if (off)
		snprintf(buf, size, "%s:%" PRIu32, w->db.log_file ? w->db.log_file : "?", off);
	else
		snprintf(buf, size, "%s (complete)", w->db.log_file ? w->db.log_file : "?");
}

static size_t gaps_of(const struct kl_db_info *d)
{
	size_t n = 0;

	return kl_db_gaps(d, NULL, &n) < 0 ? 0 : n;
}

void kl_cli_db_binlog_json(const struct kl_db_info *d)
{
	const struct kl_snapshot *w = newest(d);
	struct kl_db_span *v = NULL;
	char pos[KL_BINLOG_NAME_MAX + 32];
	size_t n = 0;

	if (kl_db_maria_spans(d, &v, &n) < 0)
		n = 0;
	printf(",\"log_gaps\":%zu", gaps_of(d));
	if (w) {
		position(w, pos, sizeof(pos));
		printf(",\"log_position\":");
		kl_json_cstr(stdout, pos);
		printf(",\"log_time\":");
		kl_json_time(stdout, w->time_end_ns);
	}
	printf(",\"restorable\":[");
	for (size_t i = 0; i < n; i++) {
		printf("%s{\"from\":", i ? "," : "");
		kl_json_time(stdout, v[i].from_ns);
		printf(",\"to\":");
		kl_json_time(stdout, v[i].to_ns);
		printf("}");
	}
	printf("]");
	if (n) {
		printf(",\"newest_restorable\":");
		kl_json_time(stdout, v[n - 1].to_ns);
	}
	kl_free(v);
}

void kl_cli_db_binlog_text(const struct kl_db_info *d)
{
	const struct kl_snapshot *w = newest(d);
	struct kl_db_span *v = NULL;
	char a[64], b[64], pos[KL_BINLOG_NAME_MAX + 32];
	size_t n = 0, gaps = gaps_of(d);

	if (kl_db_maria_spans(d, &v, &n) < 0)
		n = 0;
	if (w) {
		int64_t age = (kl_time_now_ns() - w->time_end_ns) / KL_NSEC_PER_SEC;

		position(w, pos, sizeof(pos));
		printf("  binary log: up to %s (stored %llds ago)\n", pos,
		       (long long)(age > 0 ? age : 0));
	}
	if (gaps)
		printf("  binary log has %zu gap%s: see 'keel db check %s'\n", gaps,
		       gaps == 1 ? "" : "s", d->name);
	for (size_t i = 0; i < n; i++) {
		when(v[i].from_ns, a, sizeof(a));
		when(v[i].to_ns, b, sizeof(b));
		printf("  restorable: %s .. %s\n", a, b);
	}
	kl_free(v);
}

int kl_cli_db_binlog_get(struct kl_cli *cli, const char *name, const char *dir, const char *from,
			 const char *position_arg)
{
	char file[KL_BINLOG_NAME_MAX + 1];
	const char *colon = position_arg ? strrchr(position_arg, ':') : NULL;
	uint64_t pos = 0;
	size_t n = 0;
	int rc;

	if (position_arg) {
		if (!colon || (size_t)(colon - position_arg) >= sizeof(file) ||
		    kl_parse_uint(colon + 1, 4, UINT32_MAX, &pos) < 0)
			return kl_cli_usage_error(cli, "invalid --position '%s' (FILE:POS)",
						  position_arg);
		memcpy(file, position_arg, (size_t)(colon - position_arg));
		file[colon - position_arg] = 0;
	}
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	rc = kl_db_binlog_get(cli->repo, name, from, position_arg ? file : NULL, pos, dir, &n);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "binlog-get of '%s' failed", name);
		return rc;
	}
	if (cli->json)
		printf("{\"message_type\":\"summary\",\"files\":%zu}\n", n);
	else if (!cli->quiet)
		printf("%zu binary log file%s written to %s\n", n, n == 1 ? "" : "s", dir);
	return 0;
}

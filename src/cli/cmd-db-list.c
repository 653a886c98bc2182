/*
 * keel db list and keel db check: what the repository holds of each
 * database (docs/DATABASES.md); SQLite's and MariaDB's own lines come from
 * cmd-db-sqlite.c, cmd-db-maria.c and cmd-db-binlog.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "keel/backend.h"
#include "cmd-db-list.h"
#include "cmd-db-maria.h"
#include "cmd-db-sqlite.h"
#include "keel/db.h"

void kl_cli_db_print_lsn(const char *key, uint64_t lsn, bool json)
{
	char buf[32];

	kl_db_lsn_format(lsn, buf, sizeof(buf));
	if (json)
		printf(",\"%s\":\"%s\"", key, buf);
	else
		printf(" %s %s", key, buf);
}

/* MariaDB's positions in db check --json: the server's FILE:OFFSET and GTID, not LSNs. */
static void check_maria_json(const struct kl_db_check_result *res)
{
	printf(",\"engine\":\"mariadb\",\"log_from\":");
	kl_json_cstr(stdout, res->log_from);
	printf(",\"log_to\":");
	kl_json_cstr(stdout, res->log_to);
	printf(",\"base_position\":");
	kl_json_cstr(stdout, res->base_position);
	printf(",\"base_gtid\":");
	kl_json_cstr(stdout, res->base_gtid);
}

int kl_cli_db_check(struct kl_cli *cli, const char *name, bool all)
{
	struct kl_db_check_opts o = {.name = name, .all = all};
	struct kl_db_check_result res;
	struct kl_cli_report rep;
	char hex[2 * KL_ID_LEN + 1], *base = NULL, state[4096], bytes[32];
	int rc;

	/* the name becomes a file name in the cache */
	if (!kl_db_name_valid(name) || name[0] == '.')
		return kl_cli_usage_error(cli, "invalid database name '%s'", name);
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	kl_id_hex(&kl_repo_config(cli->repo)->repo_id, hex);
	if (kl_backend_cache_base(&base) >= 0 && base &&
	    snprintf(state, sizeof(state), "%s/db-check/%s/%s", base, hex, name) <
		    (int)sizeof(state))
		o.state_path = state;
	kl_free(base);
	if (!o.state_path)
		kl_cli_warn(cli,
			    "no cache directory: every snapshot is read, and nothing remembered");
	kl_cli_report_init(&rep, cli, &o.report);
	o.report.progress = NULL;
	rc = kl_db_check(cli->repo, &o, &res);
	kl_cli_report_done(&rep);
	if (rc < 0 && rc != -KL_ECORRUPT && rc != -KL_EDBGAP) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "check of database '%s' failed", name);
		return rc;
	}
	kl_print_bytes(bytes, sizeof(bytes), res.bytes_read);
	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"snapshots\":%zu,\"verified\":%zu,"
		       "\"bytes_read\":%llu,\"gaps\":%zu,\"damaged\":%zu",
		       res.snapshots, res.verified, (unsigned long long)res.bytes_read, res.gaps,
		       res.damaged);
		if (*res.log_from)
			check_maria_json(&res);
		printf("}\n");
	} else if (!cli->quiet) {
		printf("database %s: %zu snapshots, %zu read now (%s), %zu gap%s, %zu damaged\n",
		       name, res.snapshots, res.verified, bytes, res.gaps, res.gaps == 1 ? "" : "s",
		       res.damaged);
		if (*res.log_from)
			printf("binary log checked from %s to %s; oldest base backup at %s%s%s\n",
			       res.log_from, res.log_to,
			       *res.base_position ? res.base_position : "(none)",
			       *res.base_gtid ? ", GTID " : "", res.base_gtid);
	}
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "check of database '%s' found problems", name);
	}
	return rc;
}

/* How many holes d's log has (keel db check names them). */
static size_t gaps_of(const struct kl_db_info *d)
{
	size_t n = 0;

	return kl_db_gaps(d, NULL, &n) < 0 ? 0 : n;
}

static void list_json(const struct kl_db_list *l)
{
	printf("[");
	for (size_t i = 0; i < l->n; i++) {
		const struct kl_db_info *d = &l->v[i];

		printf("%s", i ? "," : "");
		if (d->engine == KL_DB_SQLITE) {
			kl_cli_db_sqlite_json(d);
			continue;
		}
		if (d->engine == KL_DB_MARIADB) {
			kl_cli_db_maria_json(d);
			continue;
		}
		printf("{\"name\":");
		kl_json_cstr(stdout, d->name);
		printf(",\"engine\":\"postgresql\",\"system_id\":");
		kl_json_cstr(stdout, d->system_id);
		printf(",\"base_backups\":[");
		for (size_t k = 0; k < d->n_bases; k++) {
			const struct kl_snapshot *s = &d->bases[k].s;

			printf("%s{\"id\":", k ? "," : "");
			kl_json_id(stdout, &d->bases[k].id);
			printf(",\"time\":");
			kl_json_time(stdout, s->time_ns);
			printf(",\"time_end\":");
			kl_json_time(stdout, s->time_end_ns);
			printf(",\"timeline\":%" PRIu32, s->db.timeline);
			kl_cli_db_print_lsn("start_lsn", s->db.start_lsn, true);
			kl_cli_db_print_lsn("stop_lsn", s->db.stop_lsn, true);
			printf(",\"bytes_total\":%llu,\"data_added\":%llu}",
			       (unsigned long long)s->stats.bytes_total,
			       (unsigned long long)s->stats.bytes_added);
		}
		printf("],\"dumps\":[");
		for (size_t k = 0; k < d->n_dumps; k++) {
			printf("%s{\"id\":", k ? "," : "");
			kl_json_id(stdout, &d->dumps[k].id);
			printf(",\"time\":");
			kl_json_time(stdout, d->dumps[k].s.time_ns);
			printf(",\"bytes_total\":%llu}",
			       (unsigned long long)d->dumps[k].s.stats.bytes_total);
		}
		printf("],\"wal_records\":%zu,\"wal_gaps\":%zu", d->n_logs, gaps_of(d));
		if (d->n_logs) {
			const struct kl_snapshot *w = &d->logs[d->n_logs - 1].s;

			kl_cli_db_print_lsn("wal_stop_lsn", w->db.stop_lsn, true);
			printf(",\"wal_timeline\":%" PRIu32 ",\"wal_time\":", w->db.timeline);
			kl_json_time(stdout, w->time_end_ns);
		}
		printf("}");
	}
	printf("]\n");
}

static void list_text(const struct kl_db_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct kl_db_info *d = &l->v[i];

		if (d->engine == KL_DB_SQLITE) {
			kl_cli_db_sqlite_text(d);
			continue;
		}
		if (d->engine == KL_DB_MARIADB) {
			kl_cli_db_maria_text(d);
			continue;
		}
		printf("%s (postgresql, system %s): %zu base backup%s", d->name,
		       d->system_id ? d->system_id : "?", d->n_bases, d->n_bases == 1 ? "" : "s");
		if (d->n_dumps)
			printf(", %zu dump%s", d->n_dumps, d->n_dumps == 1 ? "" : "s");
		printf("\n");
		for (size_t k = 0; k < d->n_bases; k++) {
			const struct kl_snapshot *s = &d->bases[k].s;
			char hex[2 * KL_ID_LEN + 1], when[64], size[32];
			time_t t = (time_t)(s->time_ns / KL_NSEC_PER_SEC);
			struct tm tm;

			kl_id_hex(&d->bases[k].id, hex);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
			kl_print_bytes(size, sizeof(size), s->stats.bytes_total);
			printf("  %.8s  %s  timeline %" PRIu32, hex, when, s->db.timeline);
			kl_cli_db_print_lsn("start", s->db.start_lsn, false);
			kl_cli_db_print_lsn("stop", s->db.stop_lsn, false);
			printf("  %s\n", size);
		}
		for (size_t k = 0; k < d->n_dumps; k++) {
			const struct kl_snapshot *s = &d->dumps[k].s;
			char hex[2 * KL_ID_LEN + 1], when[64], size[32];
			time_t t = (time_t)(s->time_ns / KL_NSEC_PER_SEC);
			struct tm tm;

			kl_id_hex(&d->dumps[k].id, hex);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
			kl_print_bytes(size, sizeof(size), s->stats.bytes_total);
			printf("  %.8s  %s  dump  %s\n", hex, when, size);
		}
		if (d->n_logs) {
			const struct kl_snapshot *w = &d->logs[d->n_logs - 1].s;
			int64_t age = (kl_time_now_ns() - w->time_end_ns) / KL_NSEC_PER_SEC;

			char lsn[32];

			kl_db_lsn_format(w->db.stop_lsn, lsn, sizeof(lsn));
			printf("  WAL: %zu record%s, up to %s (stored %llds ago)\n", d->n_logs,
			       d->n_logs == 1 ? "" : "s", lsn, (long long)(age > 0 ? age : 0));
			if (gaps_of(d))
				printf("  WAL has %zu gap%s: see 'keel db check %s'\n", gaps_of(d),
				       gaps_of(d) == 1 ? "" : "s", d->name);
		}
	}
}

int kl_cli_db_list(struct kl_cli *cli)
{
	struct kl_db_list l;
	int rc = kl_cli_open(cli);

	if (rc < 0)
		return rc;
	rc = kl_db_list(cli->repo, &l);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot list the databases");
		return rc;
	}
	if (cli->json)
		list_json(&l);
	else
		list_text(&l);
	if (l.n_damaged)
		kl_cli_warn(cli, "%zu snapshot%s could not be read and may be databases'",
			    l.n_damaged, l.n_damaged == 1 ? "" : "s");
	kl_db_list_release(&l);
	return 0;
}

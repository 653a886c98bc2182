/* keel db list: the lines of a SQLite database (docs/DATABASES.md, "SQLite"). */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "cmd-db-sqlite.h"
#include "keel/db.h"

static void when(int64_t ns, char *buf, size_t size)
{
	time_t t = (time_t)(ns / KL_NSEC_PER_SEC);
	struct tm tm;

	strftime(buf, size, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
}

static void json_spans(const struct kl_db_span *v, size_t n, bool gaps)
{
	bool first = true;

	for (size_t i = gaps ? 1 : 0; i < n; i++) {
		printf("%s{\"from\":", first ? "" : ",");
		kl_json_time(stdout, gaps ? v[i - 1].to_ns : v[i].from_ns);
		printf(",\"to\":");
		kl_json_time(stdout, gaps ? v[i].from_ns : v[i].to_ns);
		printf("}");
		first = false;
	}
}

int kl_cli_db_sqlite_json(const struct kl_db_info *d)
{
	struct kl_db_span *v;
	size_t n;
	int rc = kl_db_sqlite_spans(d, &v, &n);

	if (rc < 0)
		return rc;
	printf("{\"name\":");
	kl_json_cstr(stdout, d->name);
	printf(",\"engine\":\"sqlite\",\"source\":");
	kl_json_cstr(stdout, d->system_id);
	printf(",\"base_backups\":[");
	for (size_t k = 0; k < d->n_bases; k++) {
		const struct kl_snapshot *s = &d->bases[k].s;

		printf("%s{\"id\":", k ? "," : "");
		kl_json_id(stdout, &d->bases[k].id);
		printf(",\"time\":");
		kl_json_time(stdout, s->time_ns);
		printf(",\"generation\":%" PRIu32 ",\"frame\":%" PRIu32
		       ",\"bytes_total\":%llu,\"data_added\":%llu}",
		       (uint32_t)(s->db.stop_lsn >> 32), (uint32_t)s->db.stop_lsn,
		       (unsigned long long)s->stats.bytes_total,
		       (unsigned long long)s->stats.bytes_added);
	}
	printf("],\"log_records\":%zu,\"restorable\":[", d->n_logs);
	json_spans(v, n, false);
	printf("],\"gaps\":[");
	json_spans(v, n, true);
	printf("]");
	if (n) {
		printf(",\"newest_restorable\":");
		kl_json_time(stdout, v[n - 1].to_ns);
	}
	printf("}");
	kl_free(v);
	return 0;
}

int kl_cli_db_sqlite_text(const struct kl_db_info *d)
{
	struct kl_db_span *v;
	char a[64], b[64];
	size_t n;
	int rc = kl_db_sqlite_spans(d, &v, &n);

	if (rc < 0)
		return rc;
	printf("%s (sqlite, %s): %zu base cop%s, %zu log record%s\n", d->name,
	       d->system_id ? d->system_id : "?", d->n_bases, d->n_bases == 1 ? "y" : "ies",
	       d->n_logs, d->n_logs == 1 ? "" : "s");
	for (size_t k = 0; k < d->n_bases; k++) {
		const struct kl_snapshot *s = &d->bases[k].s;
		char hex[2 * KL_ID_LEN + 1], size[32];

		kl_id_hex(&d->bases[k].id, hex);
		when(s->time_ns, a, sizeof(a));
		kl_print_bytes(size, sizeof(size), s->stats.bytes_total);
		printf("  %.8s  %s  generation %" PRIu32 " frame %" PRIu32 "  %s\n", hex, a,
		       (uint32_t)(s->db.stop_lsn >> 32), (uint32_t)s->db.stop_lsn, size);
	}
	for (size_t i = 0; i < n; i++) {
		if (i) {
			when(v[i - 1].to_ns, a, sizeof(a));
			when(v[i].from_ns, b, sizeof(b));
			printf("  gap:        %s .. %s\n", a, b);
		}
		when(v[i].from_ns, a, sizeof(a));
		when(v[i].to_ns, b, sizeof(b));
		printf("  restorable: %s .. %s\n", a, b);
	}
	if (n) {
		int64_t age = (kl_time_now_ns() - v[n - 1].to_ns) / KL_NSEC_PER_SEC;

		when(v[n - 1].to_ns, a, sizeof(a));
		printf("  newest restorable moment: %s (%llds ago)\n", a,
		       (long long)(age > 0 ? age : 0));
	}
	kl_free(v);
	return 0;
}

void kl_cli_db_sqlite_backup_text(const struct kl_db_backup_result *res)
{
	char hex[2 * KL_ID_LEN + 1], total[32], added[32];

	kl_id_hex(&res->id, hex);
	kl_print_bytes(total, sizeof(total), res->stats.bytes_total);
	kl_print_bytes(added, sizeof(added), res->stats.bytes_added);
	printf("database %s (sqlite): base copy %.8s saved at generation %" PRIu32 " frame %" PRIu32
	       "\n%s, %s new\n",
	       res->name, hex, (uint32_t)(res->stop_lsn >> 32), (uint32_t)res->stop_lsn, total,
	       added);
}

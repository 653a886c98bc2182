/* keel db's output for MariaDB servers (docs/DATABASES.md, "MariaDB"). */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "cmd-db-binlog.h"
#include "cmd-db-maria.h"

void kl_cli_db_maria_backup_out(struct kl_cli *cli, const struct kl_db_backup_result *res)
{
	char hex[2 * KL_ID_LEN + 1], total[32], added[32];

	kl_id_hex(&res->id, hex);
	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"snapshot_id\":\"%s\",\"name\":", hex);
		kl_json_cstr(stdout, res->name);
		printf(",\"engine\":\"mariadb\",\"server_id\":");
		kl_json_cstr(stdout, res->system_id);
		printf(",\"binlog_file\":");
		kl_json_cstr(stdout, res->binlog_file);
		printf(",\"binlog_pos\":%" PRIu32 ",\"gtid\":", (uint32_t)res->stop_lsn);
		kl_json_cstr(stdout, res->gtid);
		printf(",\"files\":%llu,\"bytes_total\":%llu,\"data_added\":%llu,"
		       "\"data_stored\":%llu}\n",
		       (unsigned long long)res->stats.files_new,
		       (unsigned long long)res->stats.bytes_total,
		       (unsigned long long)res->stats.bytes_added,
		       (unsigned long long)res->stats.bytes_stored);
		return;
	}
	if (cli->quiet)
		return;
	kl_print_bytes(total, sizeof(total), res->stats.bytes_total);
	kl_print_bytes(added, sizeof(added), res->stats.bytes_added);
	printf("database %s (mariadb, server id %s): backup %.8s saved at binlog %s:%" PRIu32
	       "%s%s\n%llu files, %s, %s new\n",
	       res->name, res->system_id, hex, res->binlog_file, (uint32_t)res->stop_lsn,
	       *res->gtid ? ", GTID " : "", res->gtid, (unsigned long long)res->stats.files_new,
	       total, added);
}

static void when(int64_t ns, char *buf, size_t size)
{
	time_t t = (time_t)(ns / KL_NSEC_PER_SEC);
	struct tm tm;

	strftime(buf, size, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
}

void kl_cli_db_maria_json(const struct kl_db_info *d)
{
	printf("{\"name\":");
	kl_json_cstr(stdout, d->name);
	printf(",\"engine\":\"mariadb\",\"server_id\":");
	kl_json_cstr(stdout, d->system_id ? d->system_id : "");
	printf(",\"base_backups\":[");
	for (size_t k = 0; k < d->n_bases; k++) {
		const struct kl_snapshot *s = &d->bases[k].s;

		printf("%s{\"id\":", k ? "," : "");
		kl_json_id(stdout, &d->bases[k].id);
		printf(",\"time\":");
		kl_json_time(stdout, s->time_ns);
		printf(",\"time_end\":");
		kl_json_time(stdout, s->time_end_ns);
		printf(",\"binlog_file\":");
		kl_json_cstr(stdout, s->db.binlog_file ? s->db.binlog_file : "");
		printf(",\"binlog_pos\":%" PRIu64 ",\"gtid\":", s->db.binlog_pos);
		kl_json_cstr(stdout, s->db.gtid ? s->db.gtid : "");
		printf(",\"server_name\":");
		kl_json_cstr(stdout, s->db.server_name ? s->db.server_name : "");
		printf(",\"server_version\":");
		kl_json_cstr(stdout, s->db.server_version ? s->db.server_version : "");
		/* the zone --time is read in (Database fields 30, 31; "": not recorded) */
		printf(",\"time_zone\":");
		kl_json_cstr(stdout, s->db.time_zone ? s->db.time_zone : "");
		if (s->db.has_utc_offset)
			printf(",\"utc_offset\":%" PRId32, s->db.utc_offset);
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
	/* where the log ends and when: kl_cli_db_binlog_json's log_position, log_time */
	printf("],\"binlog_records\":%zu", d->n_logs);
	kl_cli_db_binlog_json(d);
	printf("}");
}

void kl_cli_db_maria_text(const struct kl_db_info *d)
{
	char a[64], size[32], hex[2 * KL_ID_LEN + 1];

	printf("%s (mariadb, server id %s): %zu base backup%s", d->name,
	       d->system_id ? d->system_id : "?", d->n_bases, d->n_bases == 1 ? "" : "s");
	if (d->n_dumps)
		printf(", %zu dump%s", d->n_dumps, d->n_dumps == 1 ? "" : "s");
	printf("\n");
	for (size_t k = 0; k < d->n_bases; k++) {
		const struct kl_snapshot *s = &d->bases[k].s;

		kl_id_hex(&d->bases[k].id, hex);
		when(s->time_ns, a, sizeof(a));
		kl_print_bytes(size, sizeof(size), s->stats.bytes_total);
		printf("  %.8s  %s  binlog %s:%" PRIu64 "%s%s  %s\n", hex, a,
		       s->db.binlog_file ? s->db.binlog_file : "?", s->db.binlog_pos,
		       s->db.gtid ? "  GTID " : "", s->db.gtid ? s->db.gtid : "", size);
	}
	for (size_t k = 0; k < d->n_dumps; k++) {
		const struct kl_snapshot *s = &d->dumps[k].s;

		kl_id_hex(&d->dumps[k].id, hex);
		when(s->time_ns, a, sizeof(a));
		kl_print_bytes(size, sizeof(size), s->stats.bytes_total);
		printf("  %.8s  %s  dump  %s\n", hex, a, size);
	}
	kl_cli_db_binlog_text(d);
}

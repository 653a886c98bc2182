/* keel db: databases in the repository (docs/DATABASES.md). */
#include <inttypes.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "cmd-db-binlog.h"
#include "cmd-db-list.h"
#include "cmd-db-maria.h"
#include "cmd-db-sqlite.h"
#include "keel/db.h"

static const char usage[] =
	"usage: keel db backup CONNINFO [--name NAME] [--host HOST] [--threads N]\n"
	"                      [--slot SLOT] [--create-slot]\n"
	"       keel db stream CONNINFO [--name NAME] [--slot SLOT] [--synchronous]\n"
	"       keel db restore NAME --target DIR (--latest | --time T | --lsn L)\n"
	"       keel db list [--json]\n"
	"       keel db dump CONNINFO [--name NAME] [--host HOST]\n"
	"       keel db check NAME [--all]\n"
	"       keel db wal-push PATH --name NAME\n"
	"       keel db wal-get FILE DEST --name NAME\n"
	"       keel db backup|stream sqlite:///PATH [--name NAME]\n"
	"       keel db restore NAME --target FILE (--latest | --time T)\n"
	"       keel db backup|dump mariadb://USER@HOST[:PORT]/?socket=PATH [--name N]\n"
	"       keel db restore NAME --target DIR (--latest | --time T |\n"
	"                      --position FILE:POS) [--time-zone TZ] [--base ID]\n"
	"                      [--binlog-dir DIR]\n"
	"       keel db restore NAME --dump --target FILE [--base ID]\n"
	"       keel db stream mariadb://USER@HOST[:PORT]/?socket=PATH [--name NAME]\n"
	"       keel db binlog-get NAME DIR [--start FILE] [--position FILE:POS]\n"
	"\n"
	"PostgreSQL clusters (PostgreSQL 15 or newer), SQLite databases and\n"
	"MariaDB/MySQL servers in the repository.\n"
	"\n"
	"backup   take a base backup through the replication protocol and store\n"
	"         the cluster's files as a snapshot (kind database), deduplicated\n"
	"         against everything stored before. CONNINFO is a libpq connection\n"
	"         string (key=value or postgresql:// URI); keel adds\n"
	"         replication=true. Passwords come from PGPASSWORD, PGPASSFILE or\n"
	"         ~/.pgpass, never from the command line. The user needs the\n"
	"         REPLICATION attribute and a 'replication' line in pg_hba.conf.\n"
	"         It warns when no slot (keel_NAME, or --slot) keeps the WAL\n"
	"         from the backup on: --create-slot creates it first, so a\n"
	"         stream started later resumes with no gap.\n"
	"stream   store WAL as it arrives (a physical replication client with\n"
	"         its own slot, keel_NAME unless --slot), durable in the\n"
	"         repository and confirmed to the server within a second; until\n"
	"         SIGTERM or SIGINT, which store what arrived and exit 0. It\n"
	"         follows timeline switches (a promoted standby) and reconnects\n"
	"         when the server restarts.\n"
	"restore  write the newest base backup of NAME before the target into\n"
	"         DIR (new or empty) as a data directory that starts with pg_ctl,\n"
	"         with the WAL the stream stored after it in pg_wal; for --time\n"
	"         and --lsn also recovery.signal and the recovery target, so\n"
	"         PostgreSQL stops there and promotes. A target the repository\n"
	"         does not cover is refused with the range it does (exit 14).\n"
	"dump     a logical dump: pg_dumpall --globals-only and pg_dump -Fc of\n"
	"         every database, one snapshot (tag db-dump): globals.sql and\n"
	"         databases/DB.dump, for pg_restore of single tables.\n"
	"list     the databases, each with its base backups and dumps; for\n"
	"         SQLite also the restorable stretches, the gaps between them and\n"
	"         the newest restorable moment.\n"
	"check    the log's continuity per timeline from the oldest base backup\n"
	"         (exit 24 on a gap), and the data of each snapshot of NAME that\n"
	"         no earlier check verified (--all: every one; exit 13 if\n"
	"         damaged). What was verified is remembered in keel's cache\n"
	"         directory (db-check/REPOID/NAME). SQLite: the chain of log\n"
	"         records from each base copy, and each record's frames along\n"
	"         the WAL's checksum chain.\n"
	"wal-push for archive_command ('keel db wal-push %p --name NAME'): store\n"
	"         the WAL segment or history file PATH, once (.backup and\n"
	"         .partial files are accepted and not stored).\n"
	"wal-get  for restore_command ('keel db wal-get %f %p --name NAME'):\n"
	"         write the stored WAL file FILE to DEST; exit 14 if none.\n"
	"\n"
	"SQLite (sqlite:///PATH, an absolute path): backup copies the database\n"
	"as one read transaction sees it while applications keep writing; stream\n"
	"follows its write-ahead log (the database must be in WAL mode: PRAGMA\n"
	"journal_mode=WAL) and stores each second's commits, holds a read\n"
	"transaction so the WAL is not reset before keel has stored it, and\n"
	"checkpoints itself every 1,000 frames; after a reset keel did not see\n"
	"(a checkpoint while it was not running) it takes a new base copy. The\n"
	"records a stream writes of one WAL generation are folded into one.\n"
	"restore writes FILE (which must not exist) as the database was at T\n"
	"and keeps it only if PRAGMA integrity_check passes. The default NAME\n"
	"is the file's name.\n"
	"\n"
	"MariaDB (mariadb:// or mysql://; keel runs on the server's host): backup\n"
	"runs mariabackup --backup --stream=xbstream and stores its files,\n"
	"deduplicated, with the consistent binlog position (the server needs\n"
	"log_bin); dump stores mariadb-dump --single-transaction --all-databases\n"
	"--routines --events --triggers. restore writes the base backup into DIR\n"
	"and runs mariabackup --prepare; for --time ('YYYY-MM-DD HH:MM:SS' in the\n"
	"server's time zone, which the base backup records, or --time-zone's; or\n"
	"with an offset, '+02:00' or 'Z', a moment in any zone) or --position it\n"
	"replays the binary logs (--binlog-dir: binlog files of a directory)\n"
	"through a temporary mariadbd on a private socket, so that plain mariadbd\n"
	"--datadir=DIR starts it. No password in the URI: KEEL_MARIADB_PASSWORD_FILE\n"
	"names a file holding it, or ?defaults-file= an option file, or ~/.my.cnf.\n"
	"The default NAME is mariadb-HOSTNAME.\n"
	"\n"
	"MariaDB's binary log (mariadb://, the server started with --log-bin):\n"
	"stream is a replica (COM_BINLOG_DUMP) that stores the binary log files\n"
	"byte for byte within a second of each event, from where the repository's\n"
	"log ends (else from the newest base backup's file, --start's, or the\n"
	"server's oldest); it follows rotations and reconnects when the server\n"
	"restarts. With --json it prints a line as each record is durable:\n"
	"{\"message_type\":\"stored\",\"position\":\"FILE:OFFSET\",\"time\":T}, the\n"
	"log stored up to there. binlog-get writes the stored files into DIR, as\n"
	"the server has them, for a replay (restore --binlog-dir DIR, or\n"
	"mariadb-binlog).\n"
	"\n"
	"Options:\n"
	"      --name NAME     the database's name in the repository (default\n"
	"                      pg-SYSTEMID; 1 to 64 of A-Z a-z 0-9 . _ -)\n"
	"      --host HOST     host name stored in the snapshot\n"
	"      --slot SLOT     stream: the replication slot (created if missing);\n"
	"                      backup: the slot that keeps its WAL\n"
	"      --create-slot   backup: create the slot first (if missing)\n"
	"      --synchronous   stream: store and confirm WAL as soon as it arrives,\n"
	"                      so synchronous_standby_names = 'keel' (the\n"
	"                      application_name, unless CONNINFO sets one) makes\n"
	"                      commits wait until keel stored them (RPO 0)\n"
	"  -t, --target DIR    restore: the new data directory (SQLite: the new file)\n"
	"      --latest        restore: the newest moment stored\n"
	"      --time T        restore: as it was at T, 'YYYY-MM-DD HH:MM:SS[.f]+00'\n"
	"                      (PostgreSQL's recovery_target_time, with an offset)\n"
	"      --time-zone TZ  restore (MariaDB): --time is in TZ, an IANA name\n"
	"                      (Europe/Berlin), UTC or an offset (+02:00), not in\n"
	"                      the server's zone\n"
	"      --lsn L         restore: up to WAL position L (X/Y)\n"
	"      --position F:P  restore, binlog-get (MariaDB): up to binlog file F,\n"
	"                      offset P\n"
	"      --base ID       restore (MariaDB): this base backup (or dump)\n"
	"      --binlog-dir D  restore (MariaDB): replay the binlog files in D\n"
	"      --dump          restore (MariaDB): the newest dump into the file FILE\n"
	"      --start FILE[:POS]  stream (MariaDB): the binary log file a first\n"
	"                      stream begins with (stored whole, from its start)\n"
	"      --threads N     worker threads (default: one per core)\n"
	"\n"
	"      --all           check: read everything, not only what is new\n"
	"\n"
	"Exit status 22: cannot connect to the server (or it does not allow\n"
	"replication; SQLite: the file cannot be opened, is not a database, or\n"
	"for stream is not in WAL mode); 23: the server refused or broke off the\n"
	"backup (SQLite: it refused an operation, or a restored file failed\n"
	"integrity_check and was removed; MariaDB: log_bin is off, or mariabackup\n"
	"failed). 14: no base backup before the target, or the target is not\n"
	"covered (the message gives what is).\n";

enum {
	OPT_NAME = 1,
	OPT_HOST,
	OPT_LATEST,
	OPT_THREADS,
	OPT_SLOT,
	OPT_TIME,
	OPT_LSN,
	OPT_ALL,
	OPT_SYNC,
	OPT_CREATE_SLOT,
	OPT_START,
	OPT_BASE,
	OPT_BINLOG_DIR,
	OPT_POSITION,
	OPT_DUMP,
	OPT_TIME_ZONE,
};

struct db_args {
	const char *name, *host, *target, *slot, *time, *start, *position, *base, *binlog_dir;
	const char *time_zone;
	bool latest, has_lsn, all, sync, create_slot, dump;
	uint64_t lsn;
	unsigned threads;
};

static int db_backup(struct kl_cli *cli, const char *conninfo, const struct db_args *a)
{
	struct kl_db_backup_opts o = {0};
	struct kl_db_backup_result res;
	struct kl_cli_report rep;
	char hex[2 * KL_ID_LEN + 1], total[32], added[32];
	int rc;

	o.conninfo = conninfo;
	o.name = a->name;
	o.host = a->host;
	o.slot = a->slot;
	o.create_slot = a->create_slot;
	o.threads = a->threads;
	if ((a->slot || a->create_slot) && kl_db_sqlite_uri(conninfo))
		return kl_cli_usage_error(cli, "--slot and --create-slot are PostgreSQL's");
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	kl_cli_report_init(&rep, cli, &o.report);
	rc = kl_db_sqlite_uri(conninfo)	 ? kl_db_sqlite_backup(cli->repo, &o, &res)
	     : kl_db_maria_uri(conninfo) ? kl_db_maria_backup(cli->repo, &o, &res)
					 : kl_db_backup(cli->repo, &o, &res);
	kl_cli_report_done(&rep);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "base backup failed, no snapshot was saved");
		return rc;
	}
	kl_id_hex(&res.id, hex);
	if (kl_db_maria_uri(conninfo)) {
		kl_cli_db_maria_backup_out(cli, &res);
		return 0;
	}
	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"snapshot_id\":\"%s\",\"name\":", hex);
		kl_json_cstr(stdout, res.name);
		printf(",\"system_id\":\"%s\",\"timeline\":%" PRIu32, res.system_id, res.timeline);
		kl_cli_db_print_lsn("start_lsn", res.start_lsn, true);
		kl_cli_db_print_lsn("stop_lsn", res.stop_lsn, true);
		printf(",\"slot_created\":%s,\"slot_reserved\":%s",
		       res.slot_created ? "true" : "false", res.slot_reserved ? "true" : "false");
		printf(",\"bytes_total\":%llu,\"data_added\":%llu,\"data_stored\":%llu}\n",
		       (unsigned long long)res.stats.bytes_total,
		       (unsigned long long)res.stats.bytes_added,
		       (unsigned long long)res.stats.bytes_stored);
		return 0;
	}
	if (cli->quiet)
		return 0;
	if (kl_db_sqlite_uri(conninfo)) {
		kl_cli_db_sqlite_backup_text(&res);
		return 0;
	}
	kl_print_bytes(total, sizeof(total), res.stats.bytes_total);
	kl_print_bytes(added, sizeof(added), res.stats.bytes_added);
	printf("database %s (system %s): base backup %.8s saved, timeline %" PRIu32 ",", res.name,
	       res.system_id, hex, res.timeline);
	kl_cli_db_print_lsn("start", res.start_lsn, false);
	kl_cli_db_print_lsn("stop", res.stop_lsn, false);
	printf("\n%llu files, %s, %s new\n", (unsigned long long)res.stats.files_new, total, added);
	return 0;
}

static int db_dump(struct kl_cli *cli, const char *conninfo, const struct db_args *a)
{
	struct kl_db_dump_opts o = {.conninfo = conninfo, .name = a->name, .host = a->host};
	struct kl_db_dump_result res;
	char hex[2 * KL_ID_LEN + 1], total[32];
	int rc = kl_cli_open(cli);

	if (rc < 0)
		return rc;
	o.threads = a->threads;
	rc = kl_db_maria_uri(conninfo) ? kl_db_maria_dump(cli->repo, &o, &res)
				       : kl_db_dump(cli->repo, &o, &res);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "dump failed, no snapshot was saved");
		return rc;
	}
	kl_id_hex(&res.id, hex);
	kl_print_bytes(total, sizeof(total), res.stats.bytes_total);
	if (cli->json)
		printf("{\"message_type\":\"summary\",\"snapshot_id\":\"%s\",\"databases\":%llu,"
		       "\"bytes_total\":%llu}\n",
		       hex, (unsigned long long)res.databases,
		       (unsigned long long)res.stats.bytes_total);
	else if (!cli->quiet && kl_db_maria_uri(conninfo))
		printf("database %s (mariadb): dump %.8s saved, %s\n", res.name, hex, total);
	else if (!cli->quiet)
		printf("database %s: dump %.8s saved, %llu databases and globals, %s\n", res.name,
		       hex, (unsigned long long)res.databases, total);
	return 0;
}

/*
 * --json, MariaDB: a line for each record as soon as it is durable, so a
 * monitor (or bench/maria.sh) can tell when a commit is safe; flushed, as
 * stdout is a pipe or a file then.
 */
static void stream_stored(void *ud, const char *position)
{
	(void)ud;
	printf("{\"message_type\":\"stored\",\"position\":");
	kl_json_cstr(stdout, position);
	printf(",\"time\":");
	kl_json_time(stdout, kl_time_now_ns());
	printf("}\n");
	fflush(stdout);
}

static int db_stream(struct kl_cli *cli, const char *conninfo, const struct db_args *a)
{
	struct kl_db_stream_opts o = {0};
	struct kl_db_stream_result res = {0};
	struct kl_cli_report rep;
	char lsn[32];
	int rc;

	o.conninfo = conninfo;
	o.name = a->name;
	o.slot = a->slot;
	o.synchronous = a->sync;
	o.host = a->host;
	o.threads = a->threads;
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	/*
	 * SIGTERM and SIGINT make this descriptor readable: the stream stores
	 * what arrived and stops (a second signal ends keel at once).
	 */
	o.stop_fd = kl_cli_signals_notify(cli);
	kl_cli_report_init(&rep, cli, &o.report);
	o.report.progress = NULL;
	o.start = a->start;
	if (cli->json)
		o.stored = stream_stored;
	if (a->start && !kl_db_maria_uri(conninfo))
		return kl_cli_usage_error(cli, "--start is for MariaDB streams");
	rc = kl_db_sqlite_uri(conninfo)	 ? kl_db_sqlite_stream(cli->repo, &o, &res)
	     : kl_db_maria_uri(conninfo) ? kl_db_maria_stream(cli->repo, &o, &res)
					 : kl_db_stream(cli->repo, &o, &res);
	kl_cli_report_done(&rep);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "%s stream stopped",
			     kl_db_maria_uri(conninfo) ? "binary log" : "WAL");
		return rc;
	}
	kl_db_lsn_format(res.stop_lsn, lsn, sizeof(lsn));
	if (res.position[0] && cli->json) {
		printf("{\"message_type\":\"summary\",\"stop_position\":");
		kl_json_cstr(stdout, res.position);
		printf(",\"stop_lsn\":\"%s\",\"records\":%llu,\"folded\":%llu}\n", lsn,
		       (unsigned long long)res.records, (unsigned long long)res.folded);
	} else if (res.position[0] && !cli->quiet) {
		printf("stream stopped: binary log up to %s stored (%llu records)\n", res.position,
		       (unsigned long long)res.records);
	} else if (cli->json)
		printf("{\"message_type\":\"summary\",\"stop_lsn\":\"%s\",\"records\":%llu,"
		       "\"folded\":%llu}\n",
		       lsn, (unsigned long long)res.records, (unsigned long long)res.folded);
	else if (!cli->quiet)
		printf("stream stopped: WAL up to %s stored (%llu records)\n", lsn,
		       (unsigned long long)res.records);
	return 0;
}

static int db_restore(struct kl_cli *cli, const char *name, const struct db_args *a)
{
	struct kl_db_restore_opts o = {0};
	struct kl_cli_report rep;
	struct kl_id base;
	char hex[2 * KL_ID_LEN + 1];
	int rc;

	if (!a->target || !*a->target)
		return kl_cli_usage_error(cli, "--target is required");
	if (!a->dump && a->latest + !!a->time + a->has_lsn != 1)
		return kl_cli_usage_error(
			cli, "say which moment: one of --latest, --time, --lsn (--position)");
	o.name = name;
	o.target = a->target;
	o.latest = a->latest;
	o.time = a->time;
	o.time_zone = a->time_zone;
	if (a->time_zone && !a->time)
		return kl_cli_usage_error(cli, "--time-zone goes with --time");
	o.has_lsn = a->has_lsn;
	o.lsn = a->lsn;
	o.base = a->base;
	o.binlog_dir = a->binlog_dir;
	o.dump = a->dump;
	o.threads = a->threads;
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	kl_cli_report_init(&rep, cli, &o.report);
	rc = kl_db_maria_named(cli->repo, name);
	if (rc > 0)
		rc = kl_db_maria_restore(cli->repo, &o, &base);
	else if (rc >= 0 && a->time_zone)
		rc = kl_cli_usage_error(cli, "--time-zone is for MariaDB; PostgreSQL's and "
					     "SQLite's --time carries its offset");
	else if (rc >= 0 && (rc = kl_db_sqlite_named(cli->repo, name)) >= 0)
		rc = rc ? kl_db_sqlite_restore(cli->repo, &o, &base)
			: kl_db_restore(cli->repo, &o, &base);
	kl_cli_report_done(&rep);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "restore of database '%s' failed", name);
		return rc;
	}
	kl_id_hex(&base, hex);
	if (cli->json)
		printf("{\"message_type\":\"summary\",\"base_backup\":\"%s\",\"target\":", hex);
	if (cli->json) {
		kl_json_cstr(stdout, a->target);
		printf("}\n");
	} else if (!cli->quiet) {
		printf("restored %s %.8s of %s into %s\n", a->dump ? "dump" : "base backup", hex,
		       name, a->target);
	}
	return 0;
}

/* wal-push PATH, or wal-get FILE DEST (dest non-NULL) */
static int db_wal(struct kl_cli *cli, const char *path, const char *dest, const struct db_args *a)
{
	struct kl_db_wal_opts o = {.name = a->name, .host = a->host, .threads = a->threads};
	struct kl_db_wal_result res;
	char lsn[32];
	int rc;

	if (!a->name)
		return kl_cli_usage_error(cli, "--name is required");
	rc = kl_cli_open(cli);
	if (rc < 0)
		return rc;
	rc = dest ? kl_db_wal_get(cli->repo, &o, path, dest, &res)
		  : kl_db_wal_push(cli->repo, &o, path, &res);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "%s of '%s' failed", dest ? "wal-get" : "wal-push", path);
		return rc;
	}
	kl_db_lsn_format(res.stop_lsn, lsn, sizeof(lsn));
	if (cli->json)
		printf("{\"message_type\":\"summary\",\"timeline\":%" PRIu32
		       ",\"stop_lsn\":\"%s\",\"skipped\":%s,\"already\":%s}\n",
		       res.timeline, lsn, res.skipped ? "true" : "false",
		       res.already ? "true" : "false");
	return 0;
}

static int parse_args(struct kl_cli *cli, int argc, char **argv, struct db_args *a)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"name", required_argument, NULL, OPT_NAME},
		{"host", required_argument, NULL, OPT_HOST},
		{"target", required_argument, NULL, 't'},
		{"latest", no_argument, NULL, OPT_LATEST},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"slot", required_argument, NULL, OPT_SLOT},
		{"time", required_argument, NULL, OPT_TIME},
		{"lsn", required_argument, NULL, OPT_LSN},
		{"all", no_argument, NULL, OPT_ALL},
		{"synchronous", no_argument, NULL, OPT_SYNC},
		{"create-slot", no_argument, NULL, OPT_CREATE_SLOT},
		{"start", required_argument, NULL, OPT_START},
		{"base", required_argument, NULL, OPT_BASE},
		{"binlog-dir", required_argument, NULL, OPT_BINLOG_DIR},
		{"position", required_argument, NULL, OPT_POSITION},
		{"dump", no_argument, NULL, OPT_DUMP},
		{"time-zone", required_argument, NULL, OPT_TIME_ZONE},
		{NULL, 0, NULL, 0},
	};
	uint64_t threads;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT "t:", opts, NULL)) != -1) {
		switch (c) {
		case OPT_NAME:
			a->name = optarg;
			break;
		case OPT_HOST:
			a->host = optarg;
			break;
		case 't':
			a->target = optarg;
			break;
		case OPT_LATEST:
			a->latest = true;
			break;
		case OPT_ALL:
			a->all = true;
			break;
		case OPT_SYNC:
			a->sync = true;
			break;
		case OPT_SLOT:
			a->slot = optarg;
			break;
		case OPT_CREATE_SLOT:
			a->create_slot = true;
			break;
		case OPT_START:
			a->start = optarg;
			break;
		case OPT_TIME:
			a->time = optarg;
			break;
		case OPT_TIME_ZONE:
			a->time_zone = optarg;
			break;
		case OPT_LSN:
			if (kl_db_lsn_parse(optarg, &a->lsn) < 0)
				return kl_cli_usage_error(cli, "invalid --lsn '%s' (X/Y)", optarg);
			a->has_lsn = true;
			break;
		case OPT_DUMP:
			a->dump = true;
			break;
		case OPT_BASE:
			a->base = optarg;
			break;
		case OPT_BINLOG_DIR:
			a->binlog_dir = optarg;
			break;
		case OPT_POSITION:
			a->position = optarg; /* binlog-get takes it as it is */
			if (kl_db_maria_position_parse(optarg, &a->lsn) < 0)
				return kl_cli_usage_error(cli, "invalid --position '%s' (FILE:POS)",
							  optarg);
			a->has_lsn = true;
			break;
		case OPT_THREADS:
			if (kl_parse_uint(optarg, 1, 64, &threads) < 0)
				return kl_cli_usage_error(cli, "invalid --threads '%s'", optarg);
			a->threads = (unsigned)threads;
			break;
		default:
			rc = kl_cli_default_opt(cli, c, usage, argv);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int cmd_db(int argc, char **argv, struct kl_cli *cli)
{
	struct db_args a = {0};
	const char *verb;
	int rc = parse_args(cli, argc, argv, &a);

	if (rc)
		return rc;
	if (optind >= argc)
		return kl_cli_usage_error(
			cli,
			"expected backup, stream, restore, list, dump, check, wal-push or wal-get");
	verb = argv[optind];
	if (!strcmp(verb, "list")) {
		if (argc - optind != 1)
			return kl_cli_usage_error(cli, "unexpected argument '%s'",
						  argv[optind + 1]);
		cli->cmd_flags = KL_CMD_REPO | KL_CMD_KEY;
		return kl_cli_db_list(cli);
	}
	if (!strcmp(verb, "wal-push") || !strcmp(verb, "wal-get")) {
		int want = verb[4] == 'p' ? 2 : 3;

		if (argc - optind != want)
			return kl_cli_usage_error(cli, "'db %s' takes %s", verb,
						  want == 2 ? "PATH" : "FILE DEST");
		cli->cmd_flags = KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_INDEX |
				 (want == 3 ? KL_CMD_READONLY : 0);
		return db_wal(cli, argv[optind + 1], want == 3 ? argv[optind + 2] : NULL, &a);
	}
	if (!strcmp(verb, "binlog-get")) {
		if (argc - optind != 3)
			return kl_cli_usage_error(cli, "'db binlog-get' takes NAME DIR");
		cli->cmd_flags =
			KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_READONLY | KL_CMD_INDEX;
		return kl_cli_db_binlog_get(cli, argv[optind + 1], argv[optind + 2], a.start,
					    a.position);
	}
	if (!strcmp(verb, "check")) {
		if (argc - optind != 2)
			return kl_cli_usage_error(cli, "'db check' takes one argument (NAME)");
		cli->cmd_flags =
			KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_READONLY | KL_CMD_INDEX;
		return kl_cli_db_check(cli, argv[optind + 1], a.all);
	}
	if (strcmp(verb, "backup") && strcmp(verb, "restore") && strcmp(verb, "stream") &&
	    strcmp(verb, "dump"))
		return kl_cli_usage_error(cli, "unknown db command '%s'", verb);
	if (argc - optind != 2)
		return kl_cli_usage_error(cli, "'db %s' takes one argument (%s)", verb,
					  strcmp(verb, "restore") ? "CONNINFO" : "NAME");
	if (!strcmp(verb, "stream")) {
		cli->cmd_flags = KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_INDEX;
		return db_stream(cli, argv[optind + 1], &a);
	}
	if (!strcmp(verb, "backup") || !strcmp(verb, "dump")) {
		cli->cmd_flags = KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_INDEX;
		return verb[0] == 'b' ? db_backup(cli, argv[optind + 1], &a)
				      : db_dump(cli, argv[optind + 1], &a);
	}
	cli->cmd_flags = KL_CMD_REPO | KL_CMD_KEY | KL_CMD_LOCK | KL_CMD_READONLY | KL_CMD_INDEX;
	return db_restore(cli, argv[optind + 1], &a);
}

/*
 * The job daemon's pure parts: schedules and their next time (in UTC and
 * across both summer-time changes of a European zone), durations, and the
 * configuration file with its errors (file, line, key).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel/daemon.h"

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/* Unix seconds of a UTC date and time */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {
		.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};

	return (int64_t)timegm(&tm);
}

static int64_t next(const char *sched, int64_t after)
{
	struct kl_schedule s;

	assert_int_equal(kl_schedule_parse(sched, &s), 0);
	return kl_schedule_next(&s, after);
}

static void bad_schedules(void **state)
{
	static const char *const bad[] = {
		"",
		"every",
		"every 0s",
		"every 5",
		"every 5x",
		"every -5s",
		"hourly 3",
		"daily",
		"daily 24:00",
		"daily 2:3",
		"daily 02:60",
		"weekly xyz 03:00",
		"weekly sun",
		"* * * *",
		"* * * * * *",
		"60 * * * *",
		"* 24 * * *",
		"* * 0 * *",
		"* * * 13 *",
		"* * * * 8",
		"*/0 * * * *",
		"5-1 * * * *",
		"1,,2 * * * *",
		"a * * * *",
		"monthly",
	};
	struct kl_schedule s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kl_schedule_parse(bad[i], &s) != -KL_EUSAGE)
			fail_msg("'%s' was accepted", bad[i]);
}

static void durations(void **state)
{
	int64_t d;

	assert_int_equal(kl_daemon_parse_duration("30s", &d), 0);
	assert_int_equal(d, 30);
	assert_int_equal(kl_daemon_parse_duration("15m", &d), 0);
	assert_int_equal(d, 900);
	assert_int_equal(kl_daemon_parse_duration("2h", &d), 0);
	assert_int_equal(d, 7200);
	assert_int_equal(kl_daemon_parse_duration("1h30m", &d), 0);
	assert_int_equal(d, 5400);
	assert_int_equal(kl_daemon_parse_duration("7d", &d), 0);
	assert_int_equal(d, 7 * 86400);
	assert_int_equal(kl_daemon_parse_duration("", &d), -KL_EUSAGE);
	assert_int_equal(kl_daemon_parse_duration("0s", &d), -KL_EUSAGE);
	assert_int_equal(kl_daemon_parse_duration("h", &d), -KL_EUSAGE);
	assert_int_equal(kl_daemon_parse_duration("2", &d), -KL_EUSAGE);
	assert_int_equal(kl_daemon_parse_duration("99999999999d", &d), -KL_EUSAGE);
}

static void every_is_relative(void **state)
{
	assert_int_equal(next("every 30s", 1000), 1030);
	assert_int_equal(next("every 15m", 1000), 1900);
	assert_int_equal(next("every 2h", 1000), 1000 + 7200);
	assert_int_equal(next("every 1s", 1000), 1001);
}

static void calendar_in_utc(void **state)
{
	set_tz("UTC0");
	/* strictly after: a time on the schedule gives the next one */
	assert_int_equal(next("hourly", utc(2026, 12, 6, 10, 15)), utc(2026, 12, 6, 11, 0));
	assert_int_equal(next("hourly", utc(2026, 12, 6, 11, 0)), utc(2026, 12, 6, 12, 0));
	assert_int_equal(next("hourly", utc(2026, 12, 31, 23, 30)), utc(2027, 1, 1, 0, 0));
	assert_int_equal(next("daily 02:30", utc(2026, 12, 6, 2, 29)), utc(2026, 12, 6, 2, 30));
	assert_int_equal(next("daily 02:30", utc(2026, 12, 6, 2, 30)), utc(2026, 12, 7, 2, 30));
	/* 2026-12-09 is a Wednesday */
	assert_int_equal(next("weekly sun 03:00", utc(2026, 12, 9, 12, 0)),
			 utc(2026, 12, 13, 3, 0));
	assert_int_equal(next("weekly Sunday 03:00", utc(2026, 12, 13, 3, 0)),
			 utc(2026, 12, 20, 3, 0));
	assert_int_equal(next("weekly wed 00:00", utc(2026, 12, 8, 23, 59)),
			 utc(2026, 12, 9, 0, 0));
	/* cron: every quarter hour of office hours, Monday to Friday; Friday 17:50 */
	assert_int_equal(next("*/15 9-17 * * 1-5", utc(2026, 12, 11, 17, 50)),
			 utc(2026, 12, 14, 9, 0));
	assert_int_equal(next("*/15 9-17 * * 1-5", utc(2026, 12, 14, 9, 0)),
			 utc(2026, 12, 14, 9, 15));
	assert_int_equal(next("* * * * *", utc(2026, 12, 6, 10, 15)), utc(2026, 12, 6, 10, 16));
	assert_int_equal(next("0,30 * * * *", utc(2026, 12, 6, 10, 15)), utc(2026, 12, 6, 10, 30));
	/* day 7 is Sunday too */
	assert_int_equal(next("0 3 * * 7", utc(2026, 12, 9, 12, 0)), utc(2026, 12, 13, 3, 0));
	/* both day fields restricted: either matches (cron's rule); Sunday 13th */
	assert_int_equal(next("0 0 13 * 5", utc(2026, 12, 6, 0, 0)), utc(2026, 12, 11, 0, 0));
	assert_int_equal(next("0 0 13 * 5", utc(2026, 12, 11, 0, 0)), utc(2026, 12, 13, 0, 0));
	/* 29 February: the next leap year; 30 February: never */
	assert_int_equal(next("0 0 29 2 *", utc(2025, 3, 1, 0, 0)), utc(2028, 2, 29, 0, 0));
	assert_int_equal(next("0 0 30 2 *", utc(2025, 3, 1, 0, 0)), -1);
	assert_int_equal(next("30 1 1 1 *", utc(2026, 12, 6, 0, 0)), utc(2027, 1, 1, 1, 30));
}

/*
 * Central European time: summer time starts 2026-03-29 at 02:00 CET
 * (clocks jump to 03:00 CEST, 01:00 UTC) and ends 2026-10-25 at 03:00
 * CEST (clocks go back to 02:00 CET, 01:00 UTC).
 */
static void calendar_across_summer_time(void **state)
{
	set_tz("CET-1CEST,M3.5.0,M10.5.0/3");
	/* a day of 23 hours: daily 12:00 is 23 hours after the one before */
	assert_int_equal(next("daily 12:00", utc(2026, 3, 28, 11, 0)), utc(2026, 3, 29, 10, 0));
	/* 02:30 does not exist on 29 March: it runs at 03:30 CEST, once */
	assert_int_equal(next("daily 02:30", utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 1, 30));
	assert_int_equal(next("daily 02:30", utc(2026, 3, 29, 1, 30)), utc(2026, 3, 30, 0, 30));
	/* hourly: 01:00 CET, then 03:00 CEST (02:00 does not exist: 03:00, once) */
	assert_int_equal(next("hourly", utc(2026, 3, 29, 0, 0)), utc(2026, 3, 29, 1, 0));
	assert_int_equal(next("hourly", utc(2026, 3, 29, 1, 0)), utc(2026, 3, 29, 2, 0));
	/* 02:30 occurs twice on 25 October: it runs at the first (CEST), once */
	assert_int_equal(next("daily 02:30", utc(2026, 10, 24, 12, 0)), utc(2026, 10, 25, 0, 30));
	assert_int_equal(next("daily 02:30", utc(2026, 10, 25, 0, 30)), utc(2026, 10, 26, 1, 30));
	/* the repeated hour is not run twice: 02:00 CEST, then 03:00 CET */
	assert_int_equal(next("hourly", utc(2026, 10, 24, 23, 30)), utc(2026, 10, 25, 0, 0));
	assert_int_equal(next("hourly", utc(2026, 10, 25, 0, 0)), utc(2026, 10, 25, 2, 0));
	/* a day of 25 hours */
	assert_int_equal(next("daily 12:00", utc(2026, 10, 24, 10, 0)), utc(2026, 10, 25, 11, 0));
	/* "every" counts real seconds whatever the clock does */
	assert_int_equal(next("every 1h", utc(2026, 10, 25, 0, 0)), utc(2026, 10, 25, 1, 0));
	set_tz("UTC0");
}

static const char example[] = "# the issue's example\n"
			      "[repository \"main\"]\n"
			      "location = /srv/keel/main\n"
			      "password-file = /etc/keel/main.pass\n"
			      "[job \"files\"]\n"
			      "repository = main\n"
			      "paths = /etc /home /srv\n"
			      "exclude = *.tmp\n"
			      "exclude = /home/*/.cache\n"
			      "schedule = hourly            # also: every 30s\n"
			      "keep-daily = 7\n"
			      "keep-weekly = 5\n"
			      "rpo-target = 2h\n"
			      "before = /usr/local/sbin/quiesce-app\n"
			      "after = /usr/local/sbin/resume-app\n"
			      "[drill \"files\"]\n"
			      "schedule = daily 04:00\n"
			      "rto-target = 30m\n"
			      "[notify]\n"
			      "webhook = https://hooks.example.com/keel   # POST, JSON body\n"
			      "mail = admin@example.com\n"
			      "[http]\n"
			      "listen = 127.0.0.1:9911\n";

static void conf_example(void **state)
{
	struct kl_daemon_conf c;
	struct kl_err err = {0};
	const struct kl_daemon_job *j;

	assert_int_equal(kl_daemon_conf_parse(example, strlen(example), "k.conf", &c, &err), 0);
	assert_int_equal(c.n_repos, 1);
	assert_string_equal(c.repos[0].location, "/srv/keel/main");
	assert_string_equal(c.repos[0].password_file, "/etc/keel/main.pass");
	assert_int_equal(c.n_jobs, 1);
	j = &c.jobs[0];
	assert_string_equal(j->name, "files");
	assert_int_equal(j->line, 5);
	assert_string_equal(j->repository, "main");
	assert_int_equal(j->n_paths, 3);
	assert_string_equal(j->paths[0], "/etc");
	assert_string_equal(j->paths[2], "/srv");
	assert_int_equal(j->n_excludes, 2);
	assert_string_equal(j->excludes[1], "/home/*/.cache");
	assert_string_equal(j->schedule_text, "hourly");
	assert_int_equal(j->keep[KL_KEEP_DAILY], 7);
	assert_int_equal(j->keep[KL_KEEP_WEEKLY], 5);
	assert_int_equal(j->keep[KL_KEEP_LAST], 0);
	assert_int_equal(j->rpo_target, 7200);
	assert_string_equal(j->before, "/usr/local/sbin/quiesce-app");
	assert_string_equal(j->after, "/usr/local/sbin/resume-app");
	assert_int_equal(c.n_drills, 1);
	assert_int_equal(c.drills[0].rto_target, 1800);
	assert_string_equal(c.webhook, "https://hooks.example.com/keel");
	assert_string_equal(c.mail, "admin@example.com");
	assert_string_equal(c.http_listen, "127.0.0.1:9911");
	kl_daemon_conf_release(&c);
}

/* text's error message, exactly */
static void conf_error(const char *text, const char *msg)
{
	struct kl_daemon_conf c;
	struct kl_err err = {0};

	assert_int_equal(kl_daemon_conf_parse(text, strlen(text), "k.conf", &c, &err), -KL_EUSAGE);
	assert_string_equal(err.msg, msg);
	kl_daemon_conf_release(&c);
}

#define REPO "[repository \"r\"]\nlocation = /r\npassword-file = /p\n"

/* jitter: a stable offset below the jitter, a calendar shifted by it, a period kept */
static void jitter_offsets(void **state)
{
	char name_a[] = "files", name_b[] = "db", host[] = "h1";
	struct kl_daemon_job a = {.name = name_a, .host = host, .jitter = 600};
	struct kl_daemon_job b = {.name = name_b, .host = host, .jitter = 600};
	int64_t off, t = utc(2026, 12, 6, 10, 15);

	(void)state;
	set_tz("UTC0");
	assert_int_equal(kl_schedule_parse("hourly", &a.schedule), 0);
	off = kl_daemon_job_offset(&a);
	assert_true(off >= 0 && off < 600);
	assert_int_equal(kl_daemon_job_offset(&a), off);
	assert_int_not_equal(kl_daemon_job_offset(&b), off); /* FNV-1a of "h1/db" differs */
	/* never ran: the next slot plus the offset; after a run, the slot after its own */
	assert_int_equal(kl_daemon_job_next(&a, 0, t), utc(2026, 12, 6, 11, 0) + off);
	assert_int_equal(kl_daemon_job_next(&a, utc(2026, 12, 6, 11, 0) + off, t),
			 utc(2026, 12, 6, 12, 0) + off);
	/* a run missed while the host was down: due in the past, so at once */
	assert_true(kl_daemon_job_next(&a, utc(2026, 12, 1, 3, 0) + off, t) < t);
	/* "every": the first run shifted, later ones keep the period */
	assert_int_equal(kl_schedule_parse("every 15m", &a.schedule), 0);
	assert_int_equal(kl_daemon_job_next(&a, 0, t), t + off);
	assert_int_equal(kl_daemon_job_next(&a, t + off, t), t + off + 900);
	/* no jitter: the plain schedule */
	a.jitter = 0;
	assert_int_equal(kl_daemon_job_offset(&a), 0);
	assert_int_equal(kl_daemon_job_next(&a, 0, t), t);
}

static void conf_errors(void **state)
{
	conf_error(REPO "[job \"j\"]\nrepository = r\npaths = /x\nschedule = hourlyy\n",
		   "k.conf: line 7: schedule: 'hourlyy' is not a schedule (every 15m, hourly, "
		   "daily 02:30, weekly sun 03:00, or a cron line)");
	conf_error(REPO "[job \"j\"]\ncolour = blue\n",
		   "k.conf: line 5: colour: unknown setting in this section");
	conf_error(REPO "[job \"j\"]\nrepository = r\npaths = relative\n",
		   "k.conf: line 6: paths: 'relative' is not an absolute path");
	conf_error(REPO "[job \"j\"]\nkeep-daily = 0\n",
		   "k.conf: line 5: keep-daily: '0' is not a number from 1 to 1000000");
	conf_error(REPO "[job \"j\"]\nrpo-target = soon\n",
		   "k.conf: line 5: rpo-target: 'soon' is not a duration (30s, 15m, 2h, 7d)");
	conf_error(REPO "[job \"j\"]\nrepository = r\nrepository = r\n",
		   "k.conf: line 6: repository: set twice in one section");
	conf_error(REPO "[job \"j\"]\nschedule =\n", "k.conf: line 5: schedule: has no value");
	conf_error(REPO "[job \"j\"]\npaths = /x\nschedule = hourly\n",
		   "k.conf: line 4: [job \"j\"]: repository is missing");
	conf_error(REPO "[job \"j\"]\nrepository = q\npaths = /x\nschedule = hourly\n",
		   "k.conf: line 4: [job \"j\"]: repository: no [repository \"q\"]");
	conf_error(REPO "[job \"j\"]\nrepository = r\nschedule = hourly\n",
		   "k.conf: line 4: [job \"j\"]: paths is missing");
	conf_error("[repository \"r\"]\nlocation = /r\n",
		   "k.conf: line 1: [repository \"r\"]: password-file is missing");
	conf_error("[jobs \"j\"]\n", "k.conf: line 1: [jobs]: unknown section (keel knows "
				     "repository, job, drill, notify, http)");
	conf_error("[job]\n", "k.conf: line 1: [job]: needs a name of letters, digits, '.', '-' "
			      "and '_' ([job \"NAME\"])");
	conf_error("[job \"../x\"]\n", "k.conf: line 1: [job]: needs a name of letters, digits, "
				       "'.', '-' and '_' ([job \"NAME\"])");
	conf_error(REPO "[repository \"r\"]\n",
		   "k.conf: line 4: [repository \"r\"]: defined already on line 1");
	conf_error("[notify \"x\"]\n", "k.conf: line 1: [notify]: takes no name");
	conf_error("location = /r\n", "k.conf: line 1: a setting before the first section");
	conf_error("[http]\nlisten\n", "k.conf: line 2: expected 'name = value'");
	conf_error("[http\n", "k.conf: line 1: a section header ends with ']'");
	conf_error("[http]\nlisten = a\001b\n", "k.conf: line 2: a control character");
	conf_error(REPO "[drill \"nojob\"]\n",
		   "k.conf: line 4: [drill \"nojob\"]: no [job \"nojob\"]");
#define JOB "[job \"j\"]\nrepository = r\npaths = /x\nschedule = hourly\n"
	conf_error(REPO JOB "[drill \"j\"]\nrto-target = 1h\n",
		   "k.conf: line 8: [drill \"j\"]: schedule is missing");
	conf_error(REPO JOB "[drill \"j\"]\ndrill-sample = 0%\n",
		   "k.conf: line 9: drill-sample: '0%' is not a share from 1% to 100%");
	conf_error(REPO JOB "[drill \"j\"]\ndrill-sample = 101\n",
		   "k.conf: line 9: drill-sample: '101' is not a share from 1% to 100%");
	conf_error(REPO JOB "[drill \"j\"]\nscratch = tmp\n",
		   "k.conf: line 9: scratch: 'tmp' is not an absolute path");
	conf_error(REPO JOB "jitter = lots\n",
		   "k.conf: line 8: jitter: 'lots' is not a duration (30s, 15m, 2h, 7d)");
	/* a secret pasted as a key is not echoed */
	conf_error("[http]\nAKIA/SECRET+KEY = 1\n", "k.conf: line 2: unknown setting");
}

/* kinds: each one's keys, and the one path its snapshots record */
static void conf_kinds(void **state)
{
	static const char text[] = REPO
		"[job \"dump\"]\nrepository = r\nkind = command\ncommand = pg_dumpall -c\n"
		"stdin-filename = all.sql\nschedule = daily 02:00\n"
		"[job \"disk\"]\nrepository = r\nkind = image\nsource = /dev/vg0/root\n"
		"schedule = weekly sun 03:00\n"
		"[job \"shop\"]\nrepository = r\nkind = db\nconninfo = host=/run/pg user=keel\n"
		"name = shop\nstream = yes\npgpass-file = /etc/keel/pgpass\nschedule = daily "
		"01:00\n"
		"[job \"off\"]\nrepository = r\nkind = mirror\ndestination = s3:copy/keel\n"
		"schedule = hourly\n";
	struct kl_daemon_conf c;
	struct kl_err err = {0};

	(void)state;
	assert_int_equal(kl_daemon_conf_parse(text, strlen(text), "k.conf", &c, &err), 0);
	assert_int_equal(c.n_jobs, 4);
	assert_int_equal(c.jobs[0].kind, KL_JOB_COMMAND);
	assert_string_equal(c.jobs[0].command, "pg_dumpall -c");
	assert_int_equal(c.jobs[0].n_paths, 1);
	assert_string_equal(c.jobs[0].paths[0], "/all.sql");
	assert_int_equal(c.jobs[1].kind, KL_JOB_IMAGE);
	assert_string_equal(c.jobs[1].paths[0], "/dev/vg0/root");
	assert_int_equal(c.jobs[2].kind, KL_JOB_DB);
	assert_true(c.jobs[2].stream);
	assert_string_equal(c.jobs[2].db_name, "shop");
	assert_string_equal(c.jobs[2].pgpass_file, "/etc/keel/pgpass");
	assert_string_equal(c.jobs[2].paths[0], "db:shop");
	assert_int_equal(c.jobs[3].kind, KL_JOB_MIRROR);
	assert_string_equal(c.jobs[3].destination, "s3:copy/keel");
	assert_int_equal(c.jobs[3].n_paths, 0);
	assert_string_equal(kl_daemon_job_kind_name(KL_JOB_MIRROR), "mirror");
	kl_daemon_conf_release(&c);

#define KJOB "[job \"j\"]\nrepository = r\nschedule = hourly\n"
	conf_error(REPO KJOB "kind = tape\n", "k.conf: line 7: kind: 'tape' is not a kind of job "
					      "(files, command, image, db, mirror)");
	conf_error(REPO KJOB "kind = db\nkind = db\n",
		   "k.conf: line 8: kind: set twice in one section");
	conf_error(REPO KJOB "kind = command\n",
		   "k.conf: line 4: [job \"j\"]: command is missing (kind = command)");
	conf_error(REPO KJOB "kind = db\nconninfo = host=x\n",
		   "k.conf: line 4: [job \"j\"]: name is missing (kind = db)");
	conf_error(
		REPO KJOB "source = /dev/sda\npaths = /x\n",
		"k.conf: line 7: source: not a setting of a job of kind files ([job \"j\"] on line "
		"4)");
	conf_error(REPO KJOB "kind = mirror\ndestination = /c\nkeep-last = 3\n",
		   "k.conf: line 9: keep-*: not a setting of a job of kind mirror ([job \"j\"] on "
		   "line "
		   "4)");
	conf_error(REPO KJOB "kind = image\nsource = /i\nhost = h\n",
		   "k.conf: line 9: host: not a setting of a job of kind image ([job \"j\"] on "
		   "line 4)");
	conf_error(REPO KJOB "kind = db\nname = s\nconninfo = host=x PASSWORD=y\n",
		   "k.conf: line 9: conninfo: holds a password: keel db reads it from pgpass-file "
		   "(PGPASSFILE), never from its arguments");
	conf_error(REPO KJOB "kind = db\nname = s\nconninfo = postgres://u:p@h/d\n",
		   "k.conf: line 9: conninfo: holds a password: keel db reads it from pgpass-file "
		   "(PGPASSFILE), never from its arguments");
	conf_error(REPO KJOB "kind = db\nstream = maybe\n",
		   "k.conf: line 8: stream: 'maybe' is neither yes nor no");
	conf_error(REPO KJOB "kind = command\ncommand = x\nstdin-filename = a/b\n",
		   "k.conf: line 9: stdin-filename: 'a/b' is not a file name");
	/* a MariaDB job's drill is accepted: only its sample is refused */
	conf_error(REPO KJOB "kind = db\nname = m\nconninfo = mariadb://root@localhost/\n[drill "
			     "\"j\"]\nschedule = hourly\ndrill-sample = 10%\n",
		   "k.conf: line 10: [drill \"j\"]: drill-sample: a drill of a job of kind db "
		   "restores it whole");
	conf_error(REPO KJOB "kind = image\nsource = /x.img\n[drill \"j\"]\nschedule = "
			     "hourly\ndrill-sample = 10%\n",
		   "k.conf: line 9: [drill \"j\"]: drill-sample: a drill of a job of kind image "
		   "restores it whole");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_schedules),
		cmocka_unit_test(durations),
		cmocka_unit_test(every_is_relative),
		cmocka_unit_test(calendar_in_utc),
		cmocka_unit_test(calendar_across_summer_time),
		cmocka_unit_test(conf_example),
		cmocka_unit_test(conf_errors),
		cmocka_unit_test(jitter_offsets),
		cmocka_unit_test(conf_kinds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

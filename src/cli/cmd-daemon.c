#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "keel/daemon.h"

static const char usage[] =
	"usage: keel daemon [--config FILE] [--state-dir DIR] [--check-config]\n"
	"       keel daemon [--config FILE] [--state-dir DIR] --run JOB|--drill JOB\n"
	"\n"
	"Run the jobs of a configuration file on their schedules: back up their\n"
	"paths, then forget snapshots by their keep rules. A job's kind says what\n"
	"it protects: files (paths), command (its output, as backup\n"
	"--stdin-from-command), image (keel image backup of a source), db (keel\n"
	"db backup; with stream = yes a keel db stream child runs all the time,\n"
	"restarted when it exits, stopped with SIGTERM with the daemon) or mirror\n"
	"(keel mirror of the repository to a destination, without the password).\n"
	"Each run's result is recorded in the state directory, where 'keel\n"
	"status' reads it. Restore drills ([drill]) restore a job's newest\n"
	"snapshot with --verify into a scratch directory, time it (the RTO) and\n"
	"record it in the repository. With [http], serves a status page (/),\n"
	"/api/status and /metrics; with [notify], sends an alert (webhook, mail)\n"
	"when a job turns to a problem and when it recovers. SIGHUP reloads the\n"
	"configuration; SIGTERM stops once the runs under way have finished. See\n"
	"docs/DAEMON.md.\n"
	"\n"
	"Options:\n"
	"      --config FILE      the configuration (default /etc/keel/keel.conf)\n"
	"      --state-dir DIR    where runs are recorded (default /var/lib/keel)\n"
	"      --check-config     validate the configuration and exit: 0 when it\n"
	"                         is valid, 2 when not\n"
	"      --run JOB          run JOB once now, record it, and exit: 0 when it\n"
	"                         succeeded, 1 when not (keel-job@.timer uses it)\n"
	"      --drill JOB        run JOB's restore drill once now, the same way\n";

enum { OPT_CONFIG = 1, OPT_STATE_DIR, OPT_CHECK, OPT_RUN, OPT_DRILL };

/* --run JOB, --drill JOB: one run in this process, as the daemon's child would */
static int run_once(struct kl_cli *cli, struct kl_daemon_opts *o, const char *job, bool drill)
{
	struct kl_daemon_conf conf = {0};
	struct kl_daemon_run res = {0};
	const struct kl_daemon_drill *dr = NULL;
	int rc;

	rc = kl_daemon_conf_load(o->config_path, &conf, &cli->err);
	if (rc < 0) {
		fprintf(stderr, "keel: daemon: %s\n",
			cli->err.msg[0] ? cli->err.msg : kl_strerror(rc));
		kl_err_clear(&cli->err);
		goto out;
	}
	for (size_t i = 0; drill && i < conf.n_drills; i++)
		if (!strcmp(conf.drills[i].job, job))
			dr = &conf.drills[i];
	if (drill ? !dr : !kl_daemon_conf_job(&conf, job)) {
		rc = kl_cli_usage_error(cli, "%s: no [%s \"%s\"]", o->config_path,
					drill ? "drill" : "job", job);
		goto out;
	}
	if (mkdir(o->state_dir, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		kl_cli_error(cli, rc, "cannot create the state directory '%s'", o->state_dir);
		goto out;
	}
	rc = drill ? kl_daemon_drill_job(o, &conf, dr, &res)
		   : kl_daemon_run_job(o, &conf, kl_daemon_conf_job(&conf, job), &res);
	if (rc < 0) {
		kl_cli_error(cli, rc, "%s '%s': cannot record the run", drill ? "drill" : "job",
			     job);
	} else if (rc == 1) {
		printf("drill '%s': the job has no snapshot to drill yet\n", job);
		rc = 0;
	} else if (res.success) {
		printf("%s '%s': snapshot %.8s %s in %.1f s\n", drill ? "drill" : "job", job,
		       res.snapshot, drill ? "restored and verified" : "saved",
		       drill ? res.rto : res.duration);
	} else {
		fprintf(stderr, "keel: daemon: %s '%s' failed: %s\n", drill ? "drill" : "job", job,
			res.error);
		rc = -KL_ECMD;
	}
out:
	kl_daemon_conf_release(&conf);
	return rc;
}

int cmd_daemon(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"config", required_argument, NULL, OPT_CONFIG},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"check-config", no_argument, NULL, OPT_CHECK},
		{"run", required_argument, NULL, OPT_RUN},
		{"drill", required_argument, NULL, OPT_DRILL},
		{NULL, 0, NULL, 0},
	};
	struct kl_daemon_opts o = {.config_path = KL_DAEMON_CONF_DEFAULT,
				   .state_dir = KL_DAEMON_STATE_DEFAULT};
	struct kl_daemon_conf conf = {0};
	char exe[PATH_MAX];
	bool check = false, drill = false;
	const char *once = NULL;
	ssize_t n;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		if (c == OPT_CONFIG) {
			o.config_path = optarg;
		} else if (c == OPT_STATE_DIR) {
			o.state_dir = optarg;
		} else if (c == OPT_CHECK) {
			check = true;
		} else if (c == OPT_RUN || c == OPT_DRILL) {
			if (once)
				return kl_cli_usage_error(cli,
							  "--run and --drill: one of them, once");
			once = optarg;
			drill = c == OPT_DRILL;
		} else {
			rc = kl_cli_default_opt(cli, c, usage, argv);
			if (rc)
				return rc;
		}
	}
	if (optind < argc)
		return kl_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (check) {
		rc = kl_daemon_conf_load(o.config_path, &conf, &cli->err);
		if (rc >= 0 && !cli->quiet)
			printf("%s: valid: %zu repositories, %zu jobs, %zu drills\n", o.config_path,
			       conf.n_repos, conf.n_jobs, conf.n_drills);
		kl_daemon_conf_release(&conf);
		if (rc < 0) {
			fprintf(stderr, "keel: daemon: %s\n",
				cli->err.msg[0] ? cli->err.msg : kl_strerror(rc));
			kl_err_clear(&cli->err);
		}
		return rc;
	}
	/* each run executes this very binary */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		rc = n < 0 ? -errno : -ENOENT;
		kl_cli_error(cli, rc, "cannot find the keel binary (/proc/self/exe)");
		return rc;
	}
	exe[n] = 0;
	o.keel_exe = exe;
	if (once)
		return run_once(cli, &o, once, drill);
	/* SIGTERM and SIGINT reach the loop through the CLI's signal thread */
	o.stop_fd = kl_cli_signals_notify(cli);
	fflush(stdout);
	rc = kl_daemon_run(&o, &cli->err);
	if (rc < 0) {
		fprintf(stderr, "keel: daemon: %s\n",
			cli->err.msg[0] ? cli->err.msg : kl_strerror(rc));
		kl_err_clear(&cli->err);
	}
	return rc;
}

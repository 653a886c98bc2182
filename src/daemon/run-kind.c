/*
 * What a job runs, by its kind (docs/DAEMON.md, "Job kinds"): the
 * argument vector of the keel command that makes one restore point of
 * it, and the environment that command needs. Secrets are never in the
 * vector: the repository's password is read from its file by the child,
 * a database's from the PGPASSFILE it names.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void kl_daemon_argv_verb(struct kl_daemon_argv *a, const struct kl_daemon_opts *o,
			 const struct kl_daemon_repo *rp, const char *cmd, const char *verb,
			 bool password)
{
	kl_daemon_argv_add(a, o->keel_exe);
	kl_daemon_argv_add(a, cmd);
	if (verb)
		kl_daemon_argv_add(a, verb);
	kl_daemon_argv_add(a, "--no-progress");
	if (password) {
		kl_daemon_argv_add(a, "-r");
		kl_daemon_argv_add(a, rp->location);
		kl_daemon_argv_add(a, "--password-file");
		kl_daemon_argv_add(a, rp->password_file);
	}
}

/* Not MariaDB's or SQLite's URI: a libpq connection string, which has slots. */
static bool pg_conninfo(const char *c)
{
	return strncmp(c, "mariadb://", 10) && strncmp(c, "mysql://", 8) &&
	       strncmp(c, "sqlite://", 9);
}

void kl_daemon_job_argv(struct kl_daemon_argv *a, const struct kl_daemon_opts *o,
			const struct kl_daemon_repo *rp, const struct kl_daemon_job *j,
			const char *host)
{
	switch (j->kind) {
	case KL_JOB_FILES:
	case KL_JOB_COMMAND:
		kl_daemon_argv_repo(a, o, rp, "backup", host);
		kl_daemon_argv_add(a, "--json");
		for (size_t i = 0; i < j->n_excludes && i < 1024; i++) {
			kl_daemon_argv_add(a, "-e");
			kl_daemon_argv_add(a, j->excludes[i]);
		}
		if (j->kind == KL_JOB_COMMAND) {
			if (j->stdin_filename) {
				kl_daemon_argv_add(a, "--stdin-filename");
				kl_daemon_argv_add(a, j->stdin_filename);
			}
			kl_daemon_argv_add(a, "--stdin-from-command");
			kl_daemon_argv_add(a, "--");
			kl_daemon_argv_add(a, "/bin/sh");
			kl_daemon_argv_add(a, "-c");
			kl_daemon_argv_add(a, j->command);
			break;
		}
		kl_daemon_argv_add(a, "--");
		for (size_t i = 0; i < j->n_paths && i < 1024; i++)
			kl_daemon_argv_add(a, j->paths[i]);
		break;
	case KL_JOB_IMAGE:
		/* an image's snapshot carries this host's name: keel image has no --host */
		kl_daemon_argv_verb(a, o, rp, "image", "backup", true);
		kl_daemon_argv_add(a, "--json");
		kl_daemon_argv_add(a, "--");
		kl_daemon_argv_add(a, j->source);
		break;
	case KL_JOB_DB:
		kl_daemon_argv_verb(a, o, rp, "db", "backup", true);
		kl_daemon_argv_add(a, "--json");
		kl_daemon_argv_add(a, "--host");
		kl_daemon_argv_add(a, host);
		kl_daemon_argv_add(a, "--name");
		kl_daemon_argv_add(a, j->db_name);
		/*
		 * The stream starts beside the first base backup: made by the
		 * backup before BASE_BACKUP, its slot keeps the WAL from the
		 * backup's start, where otherwise the stream may make it only
		 * after that start and refuse (exit 23) until restarted
		 */
		if (j->stream && pg_conninfo(j->conninfo))
			kl_daemon_argv_add(a, "--create-slot");
		kl_daemon_argv_add(a, "--");
		kl_daemon_argv_add(a, j->conninfo);
		break;
	case KL_JOB_MIRROR:
	case KL_JOB_KIND_N:
		/* keyless: only the encrypted objects move (docs/MIRROR.md) */
		kl_daemon_argv_verb(a, o, rp, "mirror", NULL, false);
		kl_daemon_argv_add(a, "--json");
		kl_daemon_argv_add(a, "--");
		kl_daemon_argv_add(a, rp->location);
		kl_daemon_argv_add(a, j->destination);
		break;
	}
}

void kl_daemon_stream_argv(struct kl_daemon_argv *a, const struct kl_daemon_opts *o,
			   const struct kl_daemon_repo *rp, const struct kl_daemon_job *j,
			   const char *host)
{
	kl_daemon_argv_verb(a, o, rp, "db", "stream", true);
	kl_daemon_argv_add(a, "--host");
	kl_daemon_argv_add(a, host);
	kl_daemon_argv_add(a, "--name");
	kl_daemon_argv_add(a, j->db_name);
	kl_daemon_argv_add(a, "--");
	kl_daemon_argv_add(a, j->conninfo);
}

int kl_daemon_job_env(const struct kl_daemon_job *j)
{
	if (j->kind == KL_JOB_DB && j->pgpass_file && setenv("PGPASSFILE", j->pgpass_file, 1) < 0)
		return -errno;
	return 0;
}

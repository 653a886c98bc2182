/*
 * Time zones of MariaDB restores (docs/DATABASES.md, "Time zones"): the
 * zone a base backup records for its server, `--time-zone`, and `--time T`
 * read in that zone, so that keel's choice of base backup and binlog files
 * and mariadb-binlog's --stop-datetime name the same moment whatever TZ
 * keel itself runs in.
 */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keel/fs.h"
#include "maria-internal.h"

#define ZONEINFO "/usr/share/zoneinfo"
#define KL_MARIA_TIME_MAX INT64_C(7258118399) /* 2199-12-31 23:59:59 UTC: ns fit in 64 bits */

/* "+HH:MM", "+HHMM", "+HH" (or '-'): seconds east of UTC; -KL_EUSAGE otherwise. */
static int parse_offset(const char *s, int32_t *ret)
{
	int h, m = 0, sign = *s == '-' ? -1 : 1;

	if ((*s != '+' && *s != '-') || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]))
		return -KL_EUSAGE;
	h = (s[1] - '0') * 10 + (s[2] - '0');
	s += 3;
	if (*s == ':')
		s++;
	if (*s) {
		if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2])
			return -KL_EUSAGE;
		m = (s[0] - '0') * 10 + (s[1] - '0');
	}
	if (h > 15 || m > 59)
		return -KL_EUSAGE;
	*ret = sign * (h * 3600 + m * 60);
	return 0;
}

/* Whether name is a zone file of the system's time zone database (not a path out of it). */
static bool zone_file(const char *name)
{
	char path[sizeof(ZONEINFO) + KL_MARIA_TZ_MAX + 2], magic[4];
	const char *dir = getenv("TZDIR");
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (!*name || *name == '/' || strlen(name) > KL_MARIA_TZ_MAX || strstr(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_+-.", *p))
			return false;
	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : ZONEINFO, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	/* glibc reads an unknown name as UTC without a word: only a real zone file counts */
	return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, magic, 4) == 4 &&
	       !memcmp(magic, "TZif", 4);
}

int kl_maria_tz_parse(const char *s, struct kl_maria_tz *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (*s == ':') /* as in TZ=:Europe/Berlin; first, so that ":UTC" is UTC as "UTC" is */
		s++;
	if (!strcmp(s, "UTC") || !strcmp(s, "Z") || !strcmp(s, "GMT") || !strcmp(s, "Etc/UTC"))
		return 0;
	if (*s == '+' || *s == '-')
		return parse_offset(s, &ret->offset);
	if (!zone_file(s))
		return -KL_EUSAGE;
	snprintf(ret->name, sizeof(ret->name), "%s", s);
	return 0;
}

void kl_maria_tz_format(const struct kl_maria_tz *z, char *buf, size_t size)
{
	int32_t a = z->offset < 0 ? -z->offset : z->offset;

	if (*z->name)
		snprintf(buf, size, "%s", z->name);
	else if (!z->offset)
		snprintf(buf, size, "UTC");
	else
		snprintf(buf, size, "%c%02d:%02d", z->offset < 0 ? '-' : '+', (int)(a / 3600),
			 (int)(a / 60 % 60));
}

void kl_maria_tz_env(const struct kl_maria_tz *z, char *buf, size_t size)
{
	int32_t a = z->offset < 0 ? -z->offset : z->offset;

	if (*z->name)
		snprintf(buf, size, "%s", z->name);
	else if (!z->offset)
		snprintf(buf, size, "UTC0");
	else /* POSIX counts west of Greenwich as positive: <+0200>-02:00 is UTC+2 */
		snprintf(buf, size, "<%c%02d%02d>%c%02d:%02d", z->offset < 0 ? '-' : '+',
			 (int)(a / 3600), (int)(a / 60 % 60), z->offset < 0 ? '+' : '-',
			 (int)(a / 3600), (int)(a / 60 % 60));
}

/*
 * In zone z: with tm, the moment tm names (local time there; tm_isdst
 * left to the zone's rules) into *ret; without, the offset from UTC at
 * moment t. A named zone is computed in a child process with TZ set, so
 * keel's own environment and time zone state stay as they are.
 */
static int in_zone(const struct kl_maria_tz *z, const struct tm *tm, int64_t t, int64_t *ret)
{
	_cleanup_free_ char **envp = NULL;
	int64_t v[2] = {0, 0};
	int pfd[2], st;
	char env[KL_MARIA_TZ_MAX + 32 + 3], *set[] = {env, NULL};
	ssize_t n;
	pid_t pid;

	if (z->local) {
		struct tm x = tm ? *tm : (struct tm){0};
		time_t u = (time_t)t;

		x.tm_isdst = -1;
		if (tm)
			*ret = (int64_t)mktime(&x);
		else
			*ret = localtime_r(&u, &x) ? x.tm_gmtoff : 0;
		return 0;
	}
	if (!*z->name) {
		struct tm x = tm ? *tm : (struct tm){0};

		*ret = tm ? (int64_t)timegm(&x) - z->offset : z->offset;
		return 0;
	}
	memcpy(env, "TZ=", 3);
	kl_maria_tz_env(z, env + 3, sizeof(env) - 3);
	/*
	 * The child's environment is made here: setenv() after fork() in a
	 * threaded keel may deadlock on the environment lock (kl_env_with);
	 * the child only points environ at it.
	 */
	if (kl_env_with(environ, set, &envp) < 0)
		return -ENOMEM;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		struct tm x = tm ? *tm : (struct tm){0};
		time_t u = (time_t)t;

		close(pfd[0]);
		environ = envp;
		tzset();
		if (tm) {
			x.tm_isdst = -1;
			v[0] = (int64_t)mktime(&x);
			v[1] = v[0] != -1;
		} else if (localtime_r(&u, &x)) {
			v[0] = x.tm_gmtoff;
			v[1] = 1;
		}
		_exit(write(pfd[1], v, sizeof(v)) == sizeof(v) ? 0 : 1);
	}
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		return -errno;
	}
	while ((n = read(pfd[0], v, sizeof(v))) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof(v) || !v[1])
		return -KL_EUSAGE;
	*ret = v[0];
	return 0;
}

int kl_maria_tz_offset(const struct kl_maria_tz *z, int64_t t, int32_t *ret)
{
	int64_t off;
	int rc = in_zone(z, NULL, t, &off);

	if (rc >= 0)
		*ret = (int32_t)off;
	return rc;
}

int kl_maria_parse_time(const char *s, const struct kl_maria_tz *z, int64_t *ret)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%d", &tm);
	struct kl_maria_tz abs = {0};
	int64_t t;
	int rc;

	if (!end || (*end != ' ' && *end != 'T'))
		return -KL_EUSAGE;
	end = strptime(end + 1, "%H:%M:%S", &tm);
	if (!end)
		return -KL_EUSAGE;
	if (*end == ' ')
		end++;
	/* an explicit offset or Z: a moment, whatever the zone */
	if (*end == 'Z' && !end[1])
		z = &abs;
	else if (*end && parse_offset(end, &abs.offset) == 0)
		z = &abs;
	else if (*end)
		return -KL_EUSAGE;
	rc = in_zone(z, &tm, 0, &t);
	if (rc < 0)
		return rc;
	/* 1970 to 2199: a binlog holds no earlier event, and ns must not overflow */
	if (t < 0 || t > KL_MARIA_TIME_MAX)
		return -KL_EUSAGE;
	*ret = t * KL_NSEC_PER_SEC;
	return 0;
}

/* The TZ of process pid's environment ("" if it has none or it cannot be read). */
static void process_tz(pid_t pid, char *buf, size_t size)
{
	char path[64], env[1 << 16];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	*buf = 0;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (n = read(fd, env, sizeof(env) - 1)) <= 0)
		return;
	env[n] = 0;
	for (char *p = env; p < env + n; p += strlen(p) + 1)
		if (!strncmp(p, "TZ=", 3))
			snprintf(buf, size, "%s", p + 3);
}

/* The server's own TZ (from its pid file and /proc), else this host's zone: candidates. */
static void system_zone(struct kl_repo *r, MYSQL *m, char *buf, size_t size)
{
	char pidfile[4096], line[32], link[4096];
	ssize_t n;
	FILE *f;

	*buf = 0;
	if (kl_maria_value(r, m, "SELECT @@pid_file", pidfile, sizeof(pidfile)) >= 0 && *pidfile &&
	    (f = fopen(pidfile, "re"))) {
		if (fgets(line, sizeof(line), f) && strtol(line, NULL, 10) > 0)
			process_tz((pid_t)strtol(line, NULL, 10), buf, size);
		fclose(f);
	}
	if (*buf)
		return;
	/* no TZ of its own: the host's /etc/localtime, a link into the zone database */
	n = readlink("/etc/localtime", link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = 0;
		if (strstr(link, "zoneinfo/"))
			snprintf(buf, size, "%s", strstr(link, "zoneinfo/") + 9);
	}
}

int kl_maria_server_tz(struct kl_repo *r, MYSQL *m, struct kl_maria_server *sv)
{
	char gz[KL_MARIA_TZ_MAX + 1], off[32], cand[KL_MARIA_TZ_MAX + 1];
	struct kl_maria_tz z;
	int32_t at;
	int rc;

	/* NOW() is in the session's zone, which starts as the global one */
	rc = kl_maria_value(r, m, "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW())", off,
			    sizeof(off));
	if (rc >= 0)
		rc = kl_maria_value(r, m, "SELECT @@global.time_zone", gz, sizeof(gz));
	if (rc < 0)
		return rc;
	sv->utc_offset = (int32_t)strtol(off, NULL, 10);
	sv->has_utc_offset = *off != 0;
	*sv->time_zone = 0;
	if (strcmp(gz, "SYSTEM"))
		snprintf(cand, sizeof(cand), "%s", gz);
	else
		system_zone(r, m, cand, sizeof(cand));
	/*
	 * Recorded only when it gives the offset the server has now: a zone keel
	 * guessed wrong would move every --time; without one the offset serves.
	 */
	if (*cand && kl_maria_tz_parse(cand, &z) == 0 &&
	    kl_maria_tz_offset(&z, kl_time_now_ns() / KL_NSEC_PER_SEC, &at) == 0 &&
	    (!sv->has_utc_offset || at == sv->utc_offset))
		kl_maria_tz_format(&z, sv->time_zone, sizeof(sv->time_zone));
	return 0;
}

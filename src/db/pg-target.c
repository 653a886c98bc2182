/*
 * Point-in-time restore (docs/DATABASES.md, "Restore"): which base
 * backup serves a target, whether the repository covers it, and the
 * recovery settings that make PostgreSQL stop there and promote.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keel/fs.h"
#include "pg-internal.h"

static int digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -KL_EUSAGE;
		v = v * 10 + (**p - '0');
	}
	*ret = v;
	return 0;
}

int kl_pgr_parse_time(const char *s, int64_t *ret)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 1;
	int64_t frac = 0, scale = KL_NSEC_PER_SEC;
	const char *p = s;
	struct tm tm = {0};

	if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
	    digits(&p, 2, &d) < 0 || (*p != ' ' && *p != 'T') || !*p++ || digits(&p, 2, &h) < 0 ||
	    *p++ != ':' || digits(&p, 2, &mi) < 0 || *p++ != ':' || digits(&p, 2, &sec) < 0)
		return -KL_EUSAGE;
	if (*p == '.') {
		p++;
		for (int i = 0; *p >= '0' && *p <= '9'; i++, p++) {
			if (i >= 9)
				return -KL_EUSAGE;
			scale /= 10;
			frac += (*p - '0') * scale;
		}
	}
	if (*p == 'Z' && !p[1]) {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, 2, &oh) < 0)
			return -KL_EUSAGE;
		if (*p == ':')
			p++;
		if (*p && digits(&p, 2, &om) < 0)
			return -KL_EUSAGE;
	} else {
		return -KL_EUSAGE; /* the server's time zone is not ours to guess */
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
	    oh > 15 || om > 59)
		return -KL_EUSAGE;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	{
		int64_t secs = (int64_t)timegm(&tm) - sign * (oh * 3600 + om * 60);

		/* beyond what nanoseconds hold (2262): later than anything stored */
		if (secs > INT64_MAX / KL_NSEC_PER_SEC - 1)
			secs = INT64_MAX / KL_NSEC_PER_SEC - 1;
		if (secs < 0)
			return -KL_EUSAGE;
		*ret = secs * KL_NSEC_PER_SEC + frac;
	}
	return 0;
}

/* The newest base backup before the target; refuses a target the repository does not cover. */
int kl_pgr_choose(struct kl_repo *r, const struct kl_db_restore_opts *o, struct kl_id *id_ret,
		  struct kl_id *tree_ret, uint64_t *start_ret)
{
	const struct kl_snapshot_ref *base = NULL;
	const struct kl_db_info *d;
	struct kl_db_list l;
	uint64_t end_lsn;
	int64_t end_ns, t = 0;
	char a[32], b[32];
	int rc;

	if (o->time && kl_pgr_parse_time(o->time, &t) < 0)
		return kl_repo_fail(r, -KL_EUSAGE,
				    "invalid --time '%s' (YYYY-MM-DD HH:MM:SS[.ffffff] with an "
				    "offset: +00, +01:00, Z)",
				    o->time);
	rc = kl_db_list(r, &l);
	if (rc < 0)
		return rc;
	d = kl_db_find(&l, o->name);
	for (size_t i = d ? d->n_bases : 0; i-- > 0;) {
		const struct kl_snapshot *s = &d->bases[i].s;

		if ((o->has_lsn && s->db.stop_lsn > o->lsn) || (o->time && s->time_end_ns > t))
			continue;
		base = &d->bases[i];
		break;
	}
	if (!d || !d->n_bases) {
		rc = kl_repo_fail(r, -KL_ENOTFOUND, "no base backup of database '%s'", o->name);
		goto out;
	}
	if (!base) {
		kl_db_lsn_format(d->bases[0].s.db.stop_lsn, a, sizeof(a));
		rc = kl_repo_fail(r, -KL_ENOTFOUND,
				  "the target is before the oldest base backup of '%s' (consistent "
				  "at %s)",
				  o->name, a);
		goto out;
	}
	/* what the repository covers from that base backup on */
	end_lsn = base->s.db.stop_lsn;
	end_ns = base->s.time_end_ns;
	for (size_t i = 0; i < d->n_logs; i++) {
		const struct kl_snapshot *s = &d->logs[i].s;

		if (s->db.stop_lsn > end_lsn && s->db.start_lsn <= end_lsn) {
			end_lsn = s->db.stop_lsn;
			end_ns = s->time_end_ns;
		}
	}
	kl_db_lsn_format(base->s.db.stop_lsn, a, sizeof(a));
	kl_db_lsn_format(end_lsn, b, sizeof(b));
	if ((o->has_lsn && o->lsn > end_lsn) || (o->time && t > end_ns)) {
		rc = kl_repo_fail(r, -KL_ENOTFOUND,
				  "the target is not covered: the repository holds '%s' from %s to "
				  "%s (stored %lld s ago)",
				  o->name, a, b,
				  (long long)((kl_time_now_ns() - end_ns) / KL_NSEC_PER_SEC));
		goto out;
	}
	*id_ret = base->id;
	*tree_ret = base->s.tree;
	*start_ret = base->s.db.start_lsn;
out:
	kl_db_list_release(&l);
	return rc;
}

/* Appends text to DIR/name (created 0600 and owned as DIR if missing). */
static int append(const char *target, const char *name, const char *text)
{
	char path[4096];
	struct stat st;
	int fd, rc = 0;

	if (snprintf(path, sizeof(path), "%s/%s", target, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = kl_fs_write_full(fd, text, strlen(text));
	if (rc >= 0 && stat(target, &st) == 0 && geteuid() == 0 &&
	    fchown(fd, st.st_uid, st.st_gid) < 0)
		rc = -errno;
	if (rc >= 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int kl_pgr_recovery(struct kl_repo *r, const struct kl_db_restore_opts *o, const char *target,
		    bool timelines)
{
	char conf[512], lsn[32], goal[128] = "";
	int rc;

	if (!o->time && !o->has_lsn && !timelines)
		return 0;
	if (o->time && strchr(o->time, '\''))
		return kl_repo_fail(r, -KL_EUSAGE, "invalid --time '%s'", o->time);
	kl_db_lsn_format(o->lsn, lsn, sizeof(lsn));
	if (o->time || o->has_lsn)
		snprintf(goal, sizeof(goal), "%s = '%s'\nrecovery_target_action = 'promote'\n",
			 o->time ? "recovery_target_time" : "recovery_target_lsn",
			 o->time ? o->time : lsn);
	snprintf(conf, sizeof(conf),
		 "\n# written by keel db restore\n"
		 "%s"
		 "recovery_target_timeline = 'latest'\n"
		 "restore_command = 'false'\n",
		 goal);
	rc = append(target, "postgresql.auto.conf", conf);
	if (rc >= 0)
		rc = append(target, "recovery.signal", "");
	return rc < 0 ? kl_repo_fail(r, rc, "cannot write the recovery settings in '%s'", target)
		      : 0;
}

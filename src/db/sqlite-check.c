/*
 * keel db check of a SQLite database (docs/DATABASES.md, "Check"): the
 * log records must form an unbroken chain from a base copy, as a restore
 * walks it (sqlite-restore.c), and each record's frames must continue the
 * WAL's checksum chain from where the snapshot before it stopped.
 *
 * Continuity needs only the snapshots' Database messages: from each base
 * copy's position, the record that goes on (same generation around the
 * position with the same salts, or the next generation starting at it,
 * its salt-1 and checkpoint sequence one more: what a reset of the WAL
 * does), until none does. Each chain covers its base copy's position to
 * its end; what lies between chains, or records no chain reaches, is a
 * gap. A new generation may start only at the end of the one before or
 * with a base copy: anything else is a break, reported as a gap.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sqlite-internal.h"

/* Whether record x may follow the chain's state st (the snapshot that stopped at pos). */
static bool follows(const struct kl_snapshot_db *st, uint64_t pos, const struct kl_snapshot_db *x)
{
	bool same = KL_SQ_GEN(x->start_lsn) == KL_SQ_GEN(x->stop_lsn);

	if (x->stop_lsn <= pos || (same ? x->start_lsn > pos : x->start_lsn != pos))
		return false;
	if (same && KL_SQ_GEN(pos) != KL_SQ_GEN(x->stop_lsn))
		return false;
	/* a stream found the file was the database at pos and the WAL gone (sqlite-resume.c) */
	if (!same && !KL_SQ_FRAME(x->stop_lsn) && !x->wal_salt1 && !x->wal_salt2)
		return true;
	/* a base copy taken before the WAL had a header: the first generation is any */
	if (!st->wal_salt1 && !st->wal_salt2 && !KL_SQ_FRAME(pos))
		return true;
	if (same)
		return x->wal_salt1 == st->wal_salt1 && x->wal_salt2 == st->wal_salt2;
	return x->wal_salt1 == st->wal_salt1 + 1 && x->wal_ckpt_seq == st->wal_ckpt_seq + 1;
}

/* The chain from base: its end, and reached[] marks the records it uses. */
static const struct kl_snapshot_db *walk(const struct kl_db_info *d,
					 const struct kl_snapshot_db *base, bool *reached)
{
	const struct kl_snapshot_db *st = base;

	for (;;) {
		const struct kl_snapshot_db *best = NULL;
		size_t k = 0;

		for (size_t i = 0; i < d->n_logs; i++) {
			const struct kl_snapshot_db *x = &d->logs[i].s.db;

			if (follows(st, st->stop_lsn, x) &&
			    (!best || x->stop_lsn > best->stop_lsn)) {
				best = x;
				k = i;
			}
		}
		if (!best)
			return st;
		reached[k] = true;
		st = best;
	}
}

struct span {
	uint64_t from, to;
	bool stray; /* a record no chain reaches */
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->from < y->from ? -1 : x->from > y->from;
}

static void report_gap(const struct kl_report *rep, size_t *gaps, uint64_t from, uint64_t to)
{
	char msg[160];

	snprintf(msg, sizeof(msg),
		 "gap from generation %" PRIu32 " frame %" PRIu32 " to generation %" PRIu32
		 " frame %" PRIu32,
		 KL_SQ_GEN(from), KL_SQ_FRAME(from), KL_SQ_GEN(to), KL_SQ_FRAME(to));
	(*gaps)++;
	if (rep && rep->warn)
		rep->warn(rep->ud, NULL, 0, msg);
}

int kl_db_sqlite_gaps(const struct kl_db_info *d, const struct kl_report *rep, size_t *ret)
{
	struct span *v = kl_malloc((d->n_bases + d->n_logs + 1) * sizeof(*v));
	bool *reached = kl_calloc(d->n_logs + 1, sizeof(bool));
	uint64_t begin, pos;
	bool in_stray = false;
	size_t n = 0;

	if (!v || !reached) {
		kl_free(v);
		kl_free(reached);
		return -ENOMEM;
	}
	for (size_t i = 0; i < d->n_bases; i++)
		v[n++] = (struct span){d->bases[i].s.db.stop_lsn,
				       walk(d, &d->bases[i].s.db, reached)->stop_lsn, false};
	/* records no chain reaches: restores cannot use them, so they begin a hole's far side */
	for (size_t i = 0; i < d->n_logs; i++)
		if (!reached[i])
			v[n++] = (struct span){d->logs[i].s.db.start_lsn, d->logs[i].s.db.stop_lsn,
					       true};
	kl_free(reached);
	if (n)
		qsort(v, n, sizeof(*v), cmp_span);
	/* from the oldest base copy on (older records are retention's to drop) */
	begin = d->n_bases ? d->bases[0].s.db.stop_lsn : (n ? v[0].from : 0);
	pos = begin;
	for (size_t i = 0; i < n; i++) {
		if (v[i].to <= pos)
			continue;
		/*
		 * A hole before it; or a record that reaches past the chain but
		 * does not continue it (other salts, a generation that is not the
		 * next): what it holds cannot be restored either.
		 */
		if (v[i].from > pos || (v[i].stray && !in_stray))
			report_gap(rep, ret, pos, v[i].from > pos ? v[i].from : v[i].to);
		in_stray = v[i].stray; /* the strays that go on from it are the same break */
		pos = v[i].to;
	}
	kl_free(v);
	return 0;
}

/* The snapshot of d that stopped at pos in its generation (the chain's state there), or NULL. */
static const struct kl_snapshot_db *state_at(const struct kl_db_info *d, uint64_t pos)
{
	for (size_t i = 0; i < d->n_bases + d->n_logs; i++) {
		const struct kl_snapshot_db *x =
			i < d->n_bases ? &d->bases[i].s.db : &d->logs[i - d->n_bases].s.db;

		if (x->stop_lsn == pos && (x->wal_salt1 || x->wal_salt2))
			return x;
	}
	return NULL;
}

/*
 * Runs the record's frames (fd, from its start) along the checksum chain
 * from h and s; 0 when each one is valid, the last is a commit, and the
 * chain ends at the record's checksum.
 */
static int run_frames(int fd, const struct kl_snapshot_db *x, const struct kl_sqlite_wal_hdr *h,
		      uint32_t s[2], uint32_t frames)
{
	size_t fsz = KL_SQLITE_FRAME_HDR + h->page_size;
	uint8_t *f = kl_malloc(fsz);
	struct kl_sqlite_frame fr = {0};
	int rc = 0;

	if (!f)
		return -ENOMEM;
	for (uint32_t i = 0; rc >= 0 && i < frames; i++)
		if (read(fd, f, fsz) != (ssize_t)fsz || !kl_sqlite_frame_check(h, f, s, &fr))
			rc = -KL_ECORRUPT;
	if (rc >= 0 && (read(fd, f, 1) != 0 || (frames && !fr.db_pages) ||
			((uint64_t)s[0] << 32 | s[1]) != x->wal_checksum))
		rc = -KL_ECORRUPT;
	kl_free(f);
	return rc;
}

int kl_db_sqlite_check_frames(struct kl_repo *r, const struct kl_db_info *d,
			      const struct kl_snapshot_ref *rec)
{
	const struct kl_snapshot_db *x = &rec->s.db, *st = NULL;
	bool same = KL_SQ_GEN(x->start_lsn) == KL_SQ_GEN(x->stop_lsn);
	uint32_t first = same ? KL_SQ_FRAME(x->start_lsn) + 1 : 1, last = KL_SQ_FRAME(x->stop_lsn);
	const char *tmp = getenv("TMPDIR");
	struct kl_sqlite_wal_hdr h = {0};
	uint8_t hdr[KL_SQLITE_WAL_HDR];
	struct kl_node n = {0};
	uint32_t s[2];
	int fd, rc = 0;

	if (x->page_size < 512 || x->page_size > 65536 || (x->page_size & (x->page_size - 1)) ||
	    first > last + 1)
		return -KL_ECORRUPT;
	if (same && KL_SQ_FRAME(x->start_lsn) && !(st = state_at(d, x->start_lsn)))
		return 0; /* it begins inside another record: where its chain starts is unknown */
	fd = open(tmp && *tmp ? tmp : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return kl_repo_fail(r, -errno, "cannot create a temporary file");
	rc = kl_tree_lookup(r, &rec->s.tree, "/wal/frames", &n);
	if (rc >= 0 && n.type != KL_NODE_FILE)
		rc = -KL_ECORRUPT;
	if (rc >= 0)
		rc = kl_dump_node(r, &n, fd);
	kl_node_release(&n);
	h.page_size = x->page_size;
	h.salt1 = x->wal_salt1;
	h.salt2 = x->wal_salt2;
	h.ckpt_seq = x->wal_ckpt_seq;
	/* the byte order of the checksums is the WAL's: the one the first frame agrees with */
	for (int be = 0; rc >= 0 && be < 2; be++) {
		h.big_endian = be;
		kl_sqlite_wal_hdr_encode(&h, hdr);
		s[0] = st ? (uint32_t)(st->wal_checksum >> 32) : h.s0;
		s[1] = st ? (uint32_t)st->wal_checksum : h.s1;
		if (lseek(fd, 0, SEEK_SET) < 0)
			rc = -errno;
		else if (run_frames(fd, x, &h, s, last + 1 - first) >= 0)
			break;
		else if (be == 1)
			rc = -KL_ECORRUPT;
	}
	close(fd);
	return rc;
}

/* Shared by src/ops/mirror*.c only (docs/MIRROR.md). */
#ifndef KEEL_MIRROR_INTERNAL_H
#define KEEL_MIRROR_INTERNAL_H

#include <pthread.h>

#include "keel/mirror.h"

#define KL_MIRROR_NAME_LEN (2 * KL_ID_LEN)

/* One object of a listing. */
struct kl_mobj {
	char name[KL_MIRROR_NAME_LEN + 1];
	uint64_t size;
};

/* A listing of one object type, sorted by name after kl_mlist_load(). */
struct kl_mlist {
	struct kl_mobj *v;
	size_t n, cap;
};
void kl_mlist_release(struct kl_mlist *l);
/* Lists type t of r into l (replacing what it held), keeps names of objects only, sorts. */
int kl_mlist_load(struct kl_repo *r, enum kl_obj_type t, struct kl_mlist *l);
const struct kl_mobj *kl_mlist_find(const struct kl_mlist *l, const char *name);
/* Every name of a is in b. */
bool kl_mlist_subset(const struct kl_mlist *a, const struct kl_mlist *b);

/*
 * DEST's state: the newest MirrorState of mirror/ (all zero when there is
 * none), and the names of every state object read, which the next write
 * replaces.
 */
struct kl_mstate {
	struct kl_mirror_state s;
	struct kl_mlist names;
};
void kl_mstate_release(struct kl_mstate *m);
/* A damaged or unreadable state object is skipped (warned about through rep). */
int kl_mstate_load(struct kl_repo *dst, const struct kl_report *rep, struct kl_mstate *ret);
/* Writes m->s as a new state object, then deletes the ones read. */
int kl_mstate_save(struct kl_repo *dst, struct kl_mstate *m);
/* The entry of m for an object, or NULL. */
const struct kl_mirror_missing *kl_mstate_find(const struct kl_mstate *m, enum kl_obj_type t,
					       const char *name);

/* A token bucket shared by the connections: bytes per second written. */
struct kl_mrate {
	pthread_mutex_t lock;
	uint64_t rate; /* 0: no limit */
	double tokens;
	int64_t last_ns;
};

enum kl_mjob_kind {
	KL_MJOB_COPY,	 /* DEST lacks it */
	KL_MJOB_REPLACE, /* DEST's copy has the wrong size: damaged */
	KL_MJOB_VERIFY,	 /* DEST has it; --verify reads it back */
};

struct kl_mjob {
	enum kl_mjob_kind kind;
	const struct kl_mobj *obj; /* in the source listing */
};

/* One run's shared state, guarded by lock where the workers touch it. */
struct kl_mrun {
	struct kl_repo *src, *dst;
	const struct kl_mirror_opts *o;
	struct kl_mirror_stats *st;
	struct kl_mrate rate;
	pthread_mutex_t lock;
	int error;	/* the first storage error: the workers stop */
	bool unstable;	/* a pack or index file vanished while copied */
	bool src_error; /* an object of SOURCE failed its hash */
	int64_t last_progress_ns;
};

/* Runs jobs of type t on o->connections threads. Returns 0 or run->error. */
int kl_mirror_run_jobs(struct kl_mrun *run, enum kl_obj_type t, const struct kl_mjob *jobs,
		       size_t n);

/* Reads an object whole and checks that its SHA-256 is its name: 1 if so, 0 if not. */
int kl_mirror_read_checked(struct kl_repo *r, enum kl_obj_type t, const char *name,
			   struct kl_buf *out);

#endif

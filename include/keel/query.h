/*
 * Questions asked of a repository without restoring it: which snapshots
 * hold a file (find), what the repository costs (stats), and the
 * operations that go with them: changing a snapshot's tags (tag) and
 * streaming a subtree as a tar archive (dump of a directory).
 */
#ifndef KEEL_QUERY_H
#define KEEL_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/ops.h"

/* ---- find (find.c) -------------------------------------------------------- */

struct kl_find_opts {
	/*
	 * Shell patterns (fnmatch): one without '/' is matched against the
	 * base name of each entry; one with '/' against its whole path, '*'
	 * also matching '/', and one not starting with '/' may match any
	 * tail of the path that starts a component (docs/NAME.pdf).
	 */
	char **patterns;
	size_t n_patterns;
	bool ignore_case;
	/* entries modified before oldest or after newest (seconds) are left out */
	bool has_oldest, has_newest;
	int64_t oldest_sec, newest_sec;
};

struct kl_finder;
/* The finder keeps what each tree held, so trees shared by snapshots are read once. */
int kl_finder_new(struct kl_repo *r, const struct kl_find_opts *o, struct kl_finder **ret);
void kl_finder_free(struct kl_finder *f);
static inline void kl_finder_freep(struct kl_finder **f)
{
	kl_finder_free(*f);
}
/*
 * Calls cb with each matching entry below tree, in path order (the node
 * has no content list: find reads no file data). Returns the number of
 * matches, or a negative code (a negative return of cb stops the walk).
 */
int kl_finder_run(struct kl_finder *f, const struct kl_id *tree, kl_walk_cb cb, void *ud);
/* How many trees the finder read so far (each distinct tree once). */
uint64_t kl_finder_trees_read(const struct kl_finder *f);

#endif

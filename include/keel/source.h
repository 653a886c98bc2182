/* Reading the metadata of source files into tree nodes. */
#ifndef KEEL_SOURCE_H
#define KEEL_SOURCE_H

#include <sys/stat.h>

#include "keel/format.h"

/* uid/gid -> name cache; one per backup, not thread-safe. */
struct kl_idcache;
int kl_idcache_new(struct kl_idcache **ret);
void kl_idcache_free(struct kl_idcache *c);
/* Borrowed names, valid until the cache is freed; NULL when unknown. */
const char *kl_idcache_user(struct kl_idcache *c, uint32_t uid);
const char *kl_idcache_group(struct kl_idcache *c, uint32_t gid);

/*
 * Fills n (name excluded) from st and, for everything but sockets, the
 * extended attributes (which include POSIX ACLs) and a symlink's target.
 * dirfd/name locate the entry without following a final symlink; paths
 * longer than PATH_MAX work. Returns 0 or -errno (xattr read errors other
 * than "not supported" are reported, the node still usable).
 *
 * prev, when not NULL, is what an earlier backup recorded for this entry.
 * Changing an xattr, an ACL or a symlink's target changes the inode's
 * ctime, so if prev has the same type, inode and ctime they are copied
 * from prev instead of read (listing xattrs was a third of an unchanged
 * backup's time). The caller passes only a prev recorded after its ctime
 * had surely passed, so that a change in the same clock tick cannot hide.
 */
int kl_node_from_stat(int dirfd, const char *name, const struct stat *st, struct kl_idcache *ids,
		      const struct kl_node *prev, struct kl_node *n);

/*
 * Whether a file system of this statfs f_type keeps the ctime the way
 * kl_node_from_stat's prev relies on: every xattr or ACL change sets it to
 * the time of the change. Local Linux file systems and NFS (the server's)
 * do; FUSE and SMB report what a daemon or server says, which may not.
 */
bool kl_node_fs_keeps_ctime(unsigned long f_type);
enum kl_node_type kl_node_type_from_mode(mode_t m);
/* Whether a regular file with this stat needs reading again (vs a parent node). */
bool kl_node_unchanged(const struct kl_node *old, const struct stat *st);

#endif

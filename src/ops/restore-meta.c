/* Restore's metadata: owner, xattrs, mode and times, in that order (see restore.c). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

#include "restore-internal.h"

/* Something restored but not as recorded: counted, and warned (once only with *noted). */
void kl_rs_omitted(struct rctx *c, const char *path, uint64_t *count, bool *noted, const char *what)
{
	bool say;

	pthread_mutex_lock(&c->lock);
	(*count)++;
	say = !noted || !*noted;
	if (noted)
		*noted = true;
	if (say)
		kl_rs_warn_locked(c, path, 0, what);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Applies owner, xattrs, mode and times, through fd when the node has one
 * open (files, directories), else by name in dirfd (symlinks, FIFOs,
 * devices), never following a symlink.
 */
void kl_rs_apply_meta(struct rctx *c, const char *path, int fd, int dirfd, const char *name,
		      const struct kl_node *nd)
{
	struct timespec ts[2] = {
		{.tv_sec = (time_t)nd->atime_sec, .tv_nsec = nd->atime_nsec},
		{.tv_sec = (time_t)nd->mtime_sec, .tv_nsec = nd->mtime_nsec},
	};
	char proc[64 + NAME_MAX];
	mode_t mode = nd->mode;
	int rc;

	if (c->owner_omitted && (nd->uid != c->euid || nd->gid != c->egid))
		kl_rs_omitted(c, path, &c->st.owners_omitted, &c->noted_owner,
			      "owner not restored: not running as root, files are owned by the "
			      "restoring user (--no-owner says that is meant)");
	if (!c->do_owner && nd->type != KL_NODE_DIR && (mode & (S_ISUID | S_ISGID))) {
		/* a file ours, not its owner's: no setuid program of someone else's running as us
		 */
		if (nd->uid != c->euid)
			mode &= ~(mode_t)S_ISUID;
		if (nd->gid != c->egid)
			mode &= ~(mode_t)S_ISGID;
		if (mode != nd->mode)
			kl_rs_omitted(c, path, &c->st.setid_cleared, NULL,
				      "setuid/setgid bit not restored: the file is not owned by "
				      "its recorded owner");
	}
	if (c->do_owner) {
		rc = fd >= 0 ? fchown(fd, nd->uid, nd->gid)
			     : fchownat(dirfd, name, nd->uid, nd->gid, AT_SYMLINK_NOFOLLOW);
		if (rc < 0)
			kl_rs_fail(c, path, -errno, "cannot restore owner");
	}
	if (fd < 0 && nd->n_xattrs)
		/* no lsetxattrat(): name the node through the directory's descriptor */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd, name);
	for (size_t i = 0; i < nd->n_xattrs; i++) {
		const struct kl_xattr *x = &nd->xattrs[i];

		rc = fd >= 0 ? fsetxattr(fd, x->name, x->value, x->value_len, 0)
			     : lsetxattr(proc, x->name, x->value, x->value_len, 0);
		if (rc >= 0)
			continue;
		rc = -errno;
		if (rc == -EOPNOTSUPP) {
			bool first;

			pthread_mutex_lock(&c->lock);
			first = !c->noted_xattr_unsupported;
			c->noted_xattr_unsupported = true;
			pthread_mutex_unlock(&c->lock);
			pthread_mutex_lock(&c->lock);
			c->st.xattrs_omitted++;
			pthread_mutex_unlock(&c->lock);
			if (first)
				kl_rs_note(c, path, rc,
					   "the target does not support some extended "
					   "attributes (or ACLs); they are not restored");
			continue;
		}
		if (rc == -EPERM && strncmp(x->name, "user.", 5))
			kl_rs_omitted(c, path, &c->st.xattrs_omitted, NULL,
				      "extended attribute not restored (needs privilege)");
		else
			kl_rs_fail(c, path, rc, "cannot restore an extended attribute");
	}
	if (nd->type != KL_NODE_SYMLINK) {
		if (fd >= 0) {
			rc = fchmod(fd, mode);
		} else {
			rc = fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW);
			/* glibc emulates the flag through /proc; without it, the node is ours
			 * anyway */
			if (rc < 0 && (errno == EOPNOTSUPP || errno == ENOSYS))
				rc = fchmodat(dirfd, name, mode, 0);
		}
		if (rc < 0)
			kl_rs_fail(c, path, -errno, "cannot restore permissions");
	}
	rc = fd >= 0 ? futimens(fd, ts) : utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
	if (rc < 0)
		kl_rs_fail(c, path, -errno, "cannot restore timestamps");
}

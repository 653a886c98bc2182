/*
 * Consistency of an image backup (docs/IMAGES.md, "Consistency"): a file
 * system frozen with FIFREEZE while its device is read, or an LVM logical
 * volume read through a temporary snapshot that lvcreate makes (with the
 * file system frozen only while it is made) and lvremove removes.
 */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "image-internal.h"

int kl_image_freeze(const char *mountpoint)
{
	int fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, FIFREEZE, 0) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

int kl_image_thaw(int fd)
{
	int rc = ioctl(fd, FITHAW, 0) < 0 ? -errno : 0;

	close(fd);
	return rc;
}

int kl_image_fs_on(const char *mountpoint, const char *dev)
{
	struct stat m, d;

	if (stat(mountpoint, &m) < 0 || stat(dev, &d) < 0)
		return -errno;
	return S_ISBLK(d.st_mode) && d.st_rdev == m.st_dev;
}

/*
 * Runs an lvm command, its stdout into out (NUL-terminated, cut at
 * outlen); 0 when it exited 0. lvm warns of every descriptor it inherits
 * (the terminal's, a parent shell's): not keel's business.
 */
static int run(const char *const argv[], char *out, size_t outlen)
{
	const char *v[16] = {"env", "LVM_SUPPRESS_FD_WARNINGS=1"};
	size_t n = 2;
	pid_t pid;
	int fd, st, rc = 0;
	size_t got = 0;
	char sink[256];

	for (size_t i = 0; argv[i] && n < sizeof(v) / sizeof(v[0]) - 1; i++)
		v[n++] = argv[i];
	fd = kl_spawn_reader((char *const *)v, &pid);
	if (fd < 0)
		return fd;
	if (outlen)
		rc = kl_fs_read_full(fd, out, outlen - 1, &got);
	if (outlen)
		out[got] = 0;
	while (rc >= 0 && read(fd, sink, sizeof(sink)) > 0)
		; /* the rest, so the command never blocks on a full pipe */
	close(fd);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (rc < 0)
		return rc;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -KL_EREMOTE;
}

static int lvm_fail(struct kl_err *err, int rc, const char *what, const char *dev)
{
	snprintf(err->msg, sizeof(err->msg), "%s '%s' failed (see lvm's message above)", what, dev);
	return rc;
}

int kl_image_lvm_snapshot(const char *source, size_t n, struct kl_image_lvm *ret,
			  struct kl_err *err)
{
	char out[1024], vg[128], lv[128], pool[128] = "", origin[260];
	const char *lvs[] = {"lvs", "--noheadings", "-o", "vg_name,lv_name,pool_lv", source, NULL};
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = run(lvs, out, sizeof(out));
	if (rc < 0 || sscanf(out, " %127s %127s %127s", vg, lv, pool) < 2) {
		snprintf(err->msg, sizeof(err->msg),
			 "'%s' is not an LVM logical volume (lvs does not know it)", source);
		return rc == -ENOENT ? rc : -KL_EUSAGE;
	}
	snprintf(origin, sizeof(origin), "%s/%s", vg, lv);
	snprintf(ret->origin, sizeof(ret->origin), "%s", origin);
	snprintf(ret->snap, sizeof(ret->snap), "%s/keel-snap-%ld-%zu", vg, (long)getpid(), n);
	snprintf(ret->dev, sizeof(ret->dev), "/dev/%s", ret->snap);
	{
		/* a thin volume's snapshot takes no size and is made inactive unless -K */
		const char *thick[] = {
			"lvcreate", "-q", "-s", "-l", "20%ORIGIN", "-n", ret->snap + strlen(vg) + 1,
			origin,	    NULL};
		const char *thin[] = {"lvcreate", "-q", "-s",
				      "-K",	  "-n", ret->snap + strlen(vg) + 1,
				      origin,	  NULL};

		rc = run(*pool ? thin : thick, NULL, 0);
	}
	if (rc < 0)
		return lvm_fail(err, rc, "lvcreate -s of", origin);
	ret->created = true;
	return 0;
}

int kl_image_lvm_remove(struct kl_image_lvm *l, struct kl_err *err)
{
	const char *argv[] = {"lvremove", "-q", "-f", l->snap, NULL};
	int rc;

	if (!l->created)
		return 0;
	rc = run(argv, NULL, 0);
	if (rc < 0)
		return lvm_fail(err, rc, "lvremove of the snapshot", l->snap);
	l->created = false;
	return 0;
}

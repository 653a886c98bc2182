/* keel image: disk and VM images (docs/IMAGES.md). */
#include <fcntl.h>
#include <sys/stat.h>

#include "cli.h"
#include "keel/image.h"

static const char usage[] = "usage: keel image backup [OPTIONS] SOURCE...\n"
			    "       keel image restore [OPTIONS] SNAPSHOT[:IMAGE] TARGET\n"
			    "       keel image serve [OPTIONS] SNAPSHOT[:IMAGE] --socket PATH\n"
			    "\n"
			    "Back up raw disk images, block devices, qcow2 files and NBD exports,\n"
			    "restore them, and serve them over NBD straight from the repository.\n"
			    "See 'keel image backup --help', 'keel image restore --help' and\n"
			    "'keel image serve --help'.\n";

static const char usage_backup[] =
	"usage: keel image backup [OPTIONS] SOURCE...\n"
	"\n"
	"Back up each SOURCE as one image of one snapshot, in fixed-size chunks\n"
	"aligned to the device. SOURCE is a raw image file, a block device, a\n"
	"qcow2 file (read through qemu-nbd) or an NBD export (nbd://HOST:PORT,\n"
	"nbd+unix:///?socket=PATH). Unallocated ranges are skipped unread; they\n"
	"and all-zero chunks are stored as holes. Every allocated byte is read\n"
	"and hashed, unless --dirty-bitmap says what changed; only chunks the\n"
	"repository does not hold yet are stored.\n"
	"\n"
	"Options:\n"
	"      --name NAME         the image's name (one SOURCE; default: basename,\n"
	"                          'disk' for an NBD URI)\n"
	"      --chunk-size N      chunk size, a power of two from 64K to 16M\n"
	"                          (default: the last image backup's of the same\n"
	"                          sources on this host, else 4M)\n"
	"      --from-overlay      each SOURCE is an overlay file of 'keel image\n"
	"                          serve --overlay': back up the image it makes\n"
	"                          of its snapshot's image (serve stopped)\n"
	"      --dirty-bitmap NAME read only the chunks that QEMU's dirty bitmap\n"
	"                          NAME marks (qcow2 or NBD SOURCE); the others\n"
	"                          are the last image backup's, if that was of\n"
	"                          the same disk (else all are read, with a note)\n"
	"      --freeze MOUNTPOINT freeze the file system mounted there (FIFREEZE)\n"
	"                          while the sources are read; with --lvm-snapshot\n"
	"                          only while the snapshots are made\n"
	"      --lvm-snapshot      each SOURCE is an LVM logical volume: read a\n"
	"                          temporary snapshot of it (lvcreate -s), removed\n"
	"                          afterwards\n"
	"      --tag TAG           add a tag to the snapshot (repeatable)\n"
	"      --threads N         hashing and compressing threads (default: cores)\n";

static const char usage_restore[] =
	"usage: keel image restore [OPTIONS] SNAPSHOT[:IMAGE] TARGET\n"
	"\n"
	"Restore an image of a snapshot ('latest': the newest image snapshot) to\n"
	"TARGET, a file (created if missing) or a block device. IMAGE may be\n"
	"left out when the snapshot holds one image. When TARGET holds data,\n"
	"each chunk of it is read and hashed and only the chunks that differ are\n"
	"written (a delta restore). Holes stay holes in files.\n"
	"\n"
	"Options:\n"
	"      --verify      read TARGET back and compare every chunk\n"
	"      --host HOST   with 'latest': newest snapshot of this host\n"
	"      --tag TAG     with 'latest': newest snapshot with this tag\n"
	"      --path PATH   with 'latest': newest snapshot of this source path\n";

enum {
	OPT_NAME = 1,
	OPT_CHUNK_SIZE,
	OPT_TAG,
	OPT_THREADS,
	OPT_VERIFY,
	OPT_DIRTY_BITMAP,
	OPT_FROM_OVERLAY,
	OPT_FREEZE,
	OPT_LVM_SNAPSHOT
};

static void print_backup(struct kl_cli *cli, const struct kl_image_backup_result *r,
			 char *const *src, int64_t ns)
{
	char hex[2 * KL_ID_LEN + 1], read[32], added[32], stored[32], total[32];

	kl_id_hex(&r->id, hex);
	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"snapshot_id\":\"%s\",\"images\":%llu,"
		       "\"chunk_size\":%u,\"bytes_total\":%llu,\"bytes_read\":%llu,"
		       "\"chunks\":%llu,\"chunks_hole\":%llu,\"chunks_zero\":%llu,"
		       "\"chunks_new\":%llu,\"bytes_new\":%llu,\"bytes_stored\":%llu,"
		       "\"chunks_clean\":%llu,\"method\":\"%s\",\"duration_ns\":%lld",
		       hex, (unsigned long long)r->images, r->chunk_size,
		       (unsigned long long)r->bytes_total, (unsigned long long)r->bytes_read,
		       (unsigned long long)r->chunks, (unsigned long long)r->chunks_hole,
		       (unsigned long long)r->chunks_zero, (unsigned long long)r->chunks_new,
		       (unsigned long long)r->bytes_new, (unsigned long long)r->bytes_stored,
		       (unsigned long long)r->chunks_clean, r->method, (long long)ns);
		if (r->has_parent) {
			printf(",\"parent\":");
			kl_json_id(stdout, &r->parent);
		}
		if (r->note[0]) {
			printf(",\"note\":");
			kl_json_str(stdout, r->note, strlen(r->note));
		}
		printf(",\"ident\":[");
		for (size_t i = 0; i < r->n_ident; i++) {
			printf("%s", i ? "," : "");
			kl_json_str(stdout, r->ident[i], strlen(r->ident[i]));
		}
		printf("]}\n");
		return;
	}
	if (cli->quiet)
		return;
	if (r->note[0])
		fprintf(stderr, "keel: image backup: note: %s\n", r->note);
	kl_print_bytes(total, sizeof(total), r->bytes_total);
	kl_print_bytes(read, sizeof(read), r->bytes_read);
	kl_print_bytes(added, sizeof(added), r->bytes_new);
	kl_print_bytes(stored, sizeof(stored), r->bytes_stored);
	printf("Images: %llu, %s in %llu chunks of %u bytes\n", (unsigned long long)r->images,
	       total, (unsigned long long)r->chunks, r->chunk_size);
	for (size_t i = 0; i < r->n_ident; i++)
		printf("  %s: %s\n", src[i], *r->ident[i] ? r->ident[i] : "not recognised");
	printf("Read: %s (%llu holes skipped unread, %llu zero chunks)\n", read,
	       (unsigned long long)r->chunks_hole, (unsigned long long)r->chunks_zero);
	if (r->chunks_clean)
		printf("Clean in the dirty bitmap: %llu chunks, not read\n",
		       (unsigned long long)r->chunks_clean);
	printf("New: %llu chunks, %s (%s stored)\n", (unsigned long long)r->chunks_new, added,
	       stored);
	printf("snapshot %.8s saved in %.2f s\n", hex, (double)ns / 1e9);
}

struct consist {
	const char *freeze; /* --freeze MOUNTPOINT */
	bool lvm;	    /* --lvm-snapshot */
	int frozen_fd;
	struct kl_image_lvm *lvs;
	char **from;
	char text[1024];
	bool reported; /* an error was reported here: not again */
};

/* A local repository on the file system to freeze would hang keel itself. */
static int check_freeze(struct kl_cli *cli, struct consist *c)
{
	struct stat a, b;
	int rc = 0;

	if (stat(c->freeze, &a) < 0) {
		/* a mount point that is not there is a mistake on the command line */
		rc = errno == ENOENT || errno == ENOTDIR ? -KL_EUSAGE : -errno;
		kl_cli_error(cli, rc, "cannot freeze '%s'", c->freeze);
	} else if (cli->repo_location && !strstr(cli->repo_location, "://") &&
		   stat(cli->repo_location, &b) == 0 && a.st_dev == b.st_dev) {
		rc = -KL_EUSAGE;
		kl_cli_error(cli, rc,
			     "cannot freeze '%s': the repository is on it (keel would wait "
			     "for itself)",
			     c->freeze);
	}
	c->reported = rc < 0;
	return rc;
}

static int do_freeze(struct kl_cli *cli, struct consist *c)
{
	c->frozen_fd = kl_image_freeze(c->freeze);
	if (c->frozen_fd < 0) {
		kl_cli_error(cli, c->frozen_fd, "cannot freeze '%s'", c->freeze);
		c->reported = true;
		return c->frozen_fd;
	}
	kl_cli_signals_frozen(cli, c->frozen_fd);
	return 0;
}

static int do_thaw(struct kl_cli *cli, struct consist *c)
{
	int rc;

	if (c->frozen_fd < 0)
		return 0;
	kl_cli_signals_frozen(cli, -1);
	rc = kl_image_thaw(c->frozen_fd);
	c->frozen_fd = -1;
	if (rc < 0) {
		kl_cli_error(cli, rc, "cannot thaw '%s'", c->freeze);
		c->reported = true;
	}
	return rc;
}

/* --lvm-snapshot: one snapshot per source, read instead of it; their names into c->text. */
static int make_snapshots(struct kl_cli *cli, struct consist *c, struct kl_image_backup_opts *o)
{
	struct kl_err err = {0};
	size_t k = strlen(c->text);
	int rc = 0;

	c->lvs = kl_calloc(o->n_sources, sizeof(*c->lvs));
	c->from = kl_calloc(o->n_sources, sizeof(char *));
	if (!c->lvs || !c->from)
		return -ENOMEM;
	for (size_t i = 0; rc >= 0 && i < o->n_sources; i++) {
		rc = kl_image_lvm_snapshot(o->sources[i], i, &c->lvs[i], &err);
		if (rc < 0) {
			kl_cli_error(cli, rc, "%s", err.msg);
			c->reported = true;
			return rc;
		}
		c->from[i] = c->lvs[i].dev;
		k += (size_t)snprintf(c->text + k, sizeof(c->text) - k, "%s%s", k ? " " : "",
				      c->lvs[i].origin);
		if (k >= sizeof(c->text))
			k = sizeof(c->text) - 1;
	}
	o->read_from = c->from;
	return rc;
}

static int remove_snapshots(struct kl_cli *cli, struct consist *c, size_t n)
{
	struct kl_err err = {0};
	int rc = 0, r;

	for (size_t i = 0; c->lvs && i < n; i++)
		if ((r = kl_image_lvm_remove(&c->lvs[i], &err)) < 0) {
			kl_cli_error(cli, r, "%s", err.msg);
			c->reported = true;
			rc = rc < 0 ? rc : r;
		}
	kl_free(c->lvs);
	kl_free(c->from);
	return rc;
}

/*
 * Whether --freeze's file system is on one of the logical volumes: then
 * device-mapper freezes it while it suspends that volume to make its
 * snapshot, and an explicit freeze would make the suspend fail (EBUSY,
 * kernels before 6.8: t8027 found it). A source that cannot be looked at
 * is make_snapshots' to report.
 */
static bool frozen_by_dm(const struct consist *c, const struct kl_image_backup_opts *o)
{
	for (size_t i = 0; i < o->n_sources; i++)
		if (kl_image_fs_on(c->freeze, o->sources[i]) > 0)
			return true;
	return false;
}

/*
 * The backup with --freeze and --lvm-snapshot around it: whatever fails,
 * the file system is thawed and the snapshots are removed. c->reported:
 * the error was reported here.
 */
static int consistent_backup(struct kl_cli *cli, struct consist *c, struct kl_image_backup_opts *o,
			     struct kl_image_backup_result *res)
{
	int rc = 0, r;

	c->frozen_fd = -1;
	if (c->freeze && (rc = check_freeze(cli, c)) < 0)
		return rc;
	if (c->lvm)
		snprintf(c->text, sizeof(c->text), "lvm-snapshot");
	if (c->freeze && !(c->lvm && frozen_by_dm(c, o)))
		rc = do_freeze(cli, c);
	if (rc >= 0 && c->lvm) {
		rc = make_snapshots(cli, c, o);
		/* the snapshots hold the frozen state: writers may go on */
		r = do_thaw(cli, c);
		rc = rc < 0 ? rc : r;
	}
	if (c->freeze) {
		size_t k = strlen(c->text);

		snprintf(c->text + k, sizeof(c->text) - k, "%sfreeze %s", k ? ", " : "", c->freeze);
	}
	o->consistency = c->text[0] ? c->text : NULL;
	if (rc >= 0) {
		rc = kl_image_backup(cli->repo, o, res);
		if (rc < 0) {
			/* reported now: the clean-up's errors come after it */
			kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
			kl_cli_error(cli, rc, "image backup failed, no snapshot was saved");
			c->reported = true;
		}
	}
	r = do_thaw(cli, c);
	rc = rc < 0 ? rc : r;
	if (c->lvm && (r = remove_snapshots(cli, c, o->n_sources)) < 0)
		rc = rc < 0 ? rc : r;
	return rc;
}

static int image_backup(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		{"name", required_argument, NULL, OPT_NAME},
		{"chunk-size", required_argument, NULL, OPT_CHUNK_SIZE},
		{"tag", required_argument, NULL, OPT_TAG},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"dirty-bitmap", required_argument, NULL, OPT_DIRTY_BITMAP},
		{"from-overlay", no_argument, NULL, OPT_FROM_OVERLAY},
		{"freeze", required_argument, NULL, OPT_FREEZE},
		{"lvm-snapshot", no_argument, NULL, OPT_LVM_SNAPSHOT},
		{NULL, 0, NULL, 0},
	};
	struct kl_image_backup_opts o = {0};
	struct kl_image_backup_result res = {0};
	struct consist c_opts = {0};
	uint64_t v;
	int64_t start;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		switch (c) {
		case OPT_NAME:
			o.name = optarg;
			break;
		case OPT_CHUNK_SIZE:
			if (kl_parse_size(optarg, &v) < 0 || v < KL_IMAGE_CHUNK_MIN ||
			    v > KL_IMAGE_CHUNK_MAX || (v & (v - 1)))
				rc = kl_cli_usage_error(cli,
							"invalid --chunk-size '%s': a power of two "
							"from 64K to 16M",
							optarg);
			else
				o.chunk_size = (uint32_t)v;
			break;
		case OPT_TAG:
			rc = kl_strv_push(&o.tags, &o.n_tags, optarg);
			break;
		case OPT_DIRTY_BITMAP:
			o.dirty_bitmap = optarg;
			break;
		case OPT_FROM_OVERLAY:
			o.from_overlay = true;
			break;
		case OPT_FREEZE:
			c_opts.freeze = optarg;
			break;
		case OPT_LVM_SNAPSHOT:
			c_opts.lvm = true;
			break;
		case OPT_THREADS:
			if (kl_parse_uint(optarg, 1, 64, &v) < 0)
				rc = kl_cli_usage_error(cli, "invalid --threads '%s'", optarg);
			else
				o.threads = (unsigned)v;
			break;
		default:
			rc = kl_cli_default_opt(cli, c, usage_backup, argv);
		}
		if (rc)
			goto out;
	}
	if (optind >= argc) {
		rc = kl_cli_usage_error(cli, "no image to back up");
		goto out;
	}
	o.sources = argv + optind;
	o.n_sources = (size_t)(argc - optind);
	cli->cmd_flags |= KL_CMD_LOCK | KL_CMD_INDEX;
	rc = kl_cli_open(cli);
	if (rc < 0)
		goto out;
	start = kl_time_mono_ns();
	rc = consistent_backup(cli, &c_opts, &o, &res);
	if (rc >= 0) {
		print_backup(cli, &res, o.sources, kl_time_mono_ns() - start);
	} else if (!c_opts.reported) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "image backup failed, no snapshot was saved");
	}
	kl_image_backup_result_release(&res);
out:
	kl_strv_free(o.tags, o.n_tags);
	return rc;
}

static void print_restore(struct kl_cli *cli, const struct kl_node *n,
			  const struct kl_image_restore_result *r, int64_t ns)
{
	char written[32];

	if (cli->json) {
		printf("{\"message_type\":\"summary\",\"image\":");
		kl_json_str(stdout, n->name, n->name_len);
		printf(",\"size\":%llu,\"chunks\":%llu,\"delta\":%s,\"chunks_written\":%llu,"
		       "\"chunks_same\":%llu,\"holes_punched\":%llu,\"bytes_written\":%llu,"
		       "\"chunks_verified\":%llu,\"duration_ns\":%lld}\n",
		       (unsigned long long)r->size, (unsigned long long)r->chunks,
		       r->delta ? "true" : "false", (unsigned long long)r->chunks_written,
		       (unsigned long long)r->chunks_same, (unsigned long long)r->holes_punched,
		       (unsigned long long)r->bytes_written, (unsigned long long)r->chunks_verified,
		       (long long)ns);
		return;
	}
	if (cli->quiet)
		return;
	kl_print_bytes(written, sizeof(written), r->bytes_written);
	printf("restored '%.*s' (%llu chunks%s): %llu written (%s), %llu already right, "
	       "%llu holes punched\n",
	       (int)n->name_len, (const char *)n->name, (unsigned long long)r->chunks,
	       r->delta ? ", delta" : "", (unsigned long long)r->chunks_written, written,
	       (unsigned long long)r->chunks_same, (unsigned long long)r->holes_punched);
	if (r->chunks_verified)
		printf("verified %llu chunks\n", (unsigned long long)r->chunks_verified);
	printf("in %.2f s\n", (double)ns / 1e9);
}

/* The image node of the snapshot: the one named, or its only one. */
static int pick_image(struct kl_cli *cli, const struct kl_tree *t, const char *name,
		      const struct kl_node **ret)
{
	if (*name == '/')
		name++;
	if (*name) {
		*ret = kl_tree_find(t, (const uint8_t *)name, strlen(name));
		if (!*ret) {
			kl_cli_error(cli, -KL_ENOTFOUND, "no image '%s' in the snapshot", name);
			return -KL_ENOTFOUND;
		}
	} else if (t->n == 1) {
		*ret = &t->nodes[0];
	} else {
		return kl_cli_usage_error(cli,
					  "the snapshot holds %zu images: name one "
					  "(SNAPSHOT:IMAGE)",
					  t->n);
	}
	if ((*ret)->type != KL_NODE_FILE)
		return kl_cli_usage_error(cli, "'%s' is not an image", name);
	return 0;
}

static int image_restore(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {
		KL_GLOBAL_OPTS,
		KL_SNAP_FILTER_OPTS,
		{"verify", no_argument, NULL, OPT_VERIFY},
		{NULL, 0, NULL, 0},
	};
	struct kl_snap_filter f = {.kind = KL_SNAP_DISK};
	struct kl_snapshot_ref snap = {0};
	struct kl_tree tree = {0};
	struct kl_image_restore_result res;
	const struct kl_node *n = NULL;
	const char *name = NULL;
	_cleanup_close_ int fd = -1;
	bool verify = false;
	int64_t start;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		if (c == OPT_VERIFY) {
			verify = true;
			continue;
		}
		rc = kl_cli_snap_filter_opt(&f, c, optarg);
		if (rc > 0)
			continue;
		if (rc == 0)
			rc = kl_cli_default_opt(cli, c, usage_restore, argv);
		if (rc)
			goto out;
	}
	if (argc - optind != 2) {
		rc = kl_cli_usage_error(cli, "expected SNAPSHOT[:IMAGE] and TARGET");
		goto out;
	}
	cli->cmd_flags |= KL_CMD_LOCK | KL_CMD_READONLY | KL_CMD_INDEX;
	rc = kl_cli_open(cli);
	if (rc >= 0)
		rc = kl_cli_find_snapshot(cli, argv[optind], &f, &snap, &name);
	if (rc < 0)
		goto out;
	if (snap.s.kind != KL_SNAP_DISK) {
		rc = kl_cli_usage_error(cli, "snapshot '%s' is not an image snapshot",
					argv[optind]);
		goto out;
	}
	rc = kl_repo_read_tree(cli->repo, &snap.s.tree, &tree);
	if (rc < 0) {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot read the snapshot's images");
		goto out;
	}
	rc = pick_image(cli, &tree, name, &n);
	if (rc < 0)
		goto out;
	fd = open(argv[optind + 1], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		kl_cli_error(cli, rc, "cannot open '%s'", argv[optind + 1]);
		goto out;
	}
	start = kl_time_mono_ns();
	rc = kl_image_restore(cli->repo, n, fd, verify, &res);
	if (rc >= 0) {
		print_restore(cli, n, &res, kl_time_mono_ns() - start);
	} else {
		kl_repo_take_err(cli->repo, &cli->err, &cli->detail);
		kl_cli_error(cli, rc, "cannot restore to '%s'", argv[optind + 1]);
	}
out:
	kl_tree_release(&tree);
	kl_snapshot_release(&snap.s);
	kl_snap_filter_release(&f);
	return rc;
}

int cmd_image(int argc, char **argv, struct kl_cli *cli)
{
	if (argc >= 2 && !strcmp(argv[1], "backup"))
		return image_backup(argc - 1, argv + 1, cli);
	if (argc >= 2 && !strcmp(argv[1], "restore"))
		return image_restore(argc - 1, argv + 1, cli);
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return cmd_image_serve(argc - 1, argv + 1, cli);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return kl_cli_default_opt(cli, 'h', usage, argv); /* printed, or to keel generate */
	if (argc < 2)
		return kl_cli_usage_error(cli, "expected backup, restore or serve");
	return kl_cli_usage_error(cli, "unknown image command '%s'", argv[1]);
}

/*
 * Backup: the main thread walks the sources depth-first, reads changed
 * files and cuts them into chunks; the pipeline's workers hash, compress,
 * seal and pack the chunks. A directory's tree blob is written once every
 * file and subdirectory below it is done, so only the directories along
 * the walk and those with files in flight are held in memory.
 *
 * Order of durability: packs (workers), then tree packs, then the index
 * file naming them all, then the snapshot. A crash before the snapshot
 * leaves unreferenced but valid packs, which the next backup adopts.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "keel/fs.h"
#include "keel/ops.h"
#include "keel/source.h"
#include "pipeline.h"

#define CACHEDIR_SIG "Signature: 8a477f597d28d172789f06886806bc55"

struct dir_job {
	struct dir_job *prev, *next; /* all live directories, to free them after a failure */
	struct dir_job *parent;
	size_t parent_slot;
	struct kl_tree tree;
	long pending; /* children in flight + 1 while the walk is inside */
	char *path;
};

struct source_node {
	char *name;
	char *path; /* full path of this component */
	bool is_source;
	struct source_node **kids;
	size_t n_kids;
};

struct backup {
	struct kl_repo *r;
	const struct kl_backup_opts *o;
	struct kl_pipeline pl;
	bool pl_started;
	struct kl_packer *trees;
	struct kl_idcache *ids;
	struct kl_snapshot_stats st;
	struct kl_id root;
	bool root_done;
	uint8_t *rbuf;
	size_t rbuf_cap;
	bool no_noatime;
	dev_t root_dev;
	int error; /* fatal error: stop and save nothing */
	struct dir_job *live;
	int64_t next_progress_ns;
	struct kl_progress prog;
	/* totals for the progress line's ETA, counted by a scanner thread */
	pthread_t scanner;
	bool scanning;
	atomic_bool scan_stop;
	atomic_ullong scan_files, scan_bytes;
	char **scan_paths;
	size_t n_scan_paths;
};

static void warn(struct backup *b, const char *path, int err, const char *what)
{
	b->st.errors++;
	b->prog.errors++;
	if (b->o->report.warn)
		b->o->report.warn(b->o->report.ud, path, err, what);
}

static void progress(struct backup *b, const char *current, bool force)
{
	int64_t now;

	if (!b->o->report.progress)
		return;
	now = kl_time_mono_ns();
	if (!force && now < b->next_progress_ns)
		return;
	b->next_progress_ns = now + 100000000;
	b->prog.current = current;
	b->prog.files_total = atomic_load(&b->scan_files);
	b->prog.bytes_total = atomic_load(&b->scan_bytes);
	b->o->report.progress(b->o->report.ud, &b->prog);
}

static char *join_path(const char *dir, const char *name)
{
	size_t a = strlen(dir), n = strlen(name);
	char *p = kl_malloc(a + n + 2);

	if (!p)
		return NULL;
	memcpy(p, dir, a);
	if (!a || dir[a - 1] != '/')
		p[a++] = '/';
	memcpy(p + a, name, n + 1);
	return p;
}

static struct dir_job *dir_new(struct backup *b, struct dir_job *parent, size_t slot,
			       const char *path)
{
	struct dir_job *d = kl_calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->path = kl_strdup(path);
	if (!d->path) {
		kl_free(d);
		return NULL;
	}
	d->parent = parent;
	d->parent_slot = slot;
	d->pending = 1;
	if (parent)
		parent->pending++;
	d->next = b->live;
	if (b->live)
		b->live->prev = d;
	b->live = d;
	return d;
}

static void dir_free(struct backup *b, struct dir_job *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else
		b->live = d->next;
	if (d->next)
		d->next->prev = d->prev;
	kl_tree_release(&d->tree);
	kl_free(d->path);
	kl_free(d);
}

static int finalize_dir(struct backup *b, struct dir_job *d);

static int child_done(struct backup *b, struct dir_job *d)
{
	if (--d->pending == 0)
		return finalize_dir(b, d);
	return 0;
}

static int finalize_dir(struct backup *b, struct dir_job *d)
{
	_cleanup_buf_ struct kl_buf enc = KL_BUF_INIT((size_t)64 << 20);
	struct dir_job *parent = d->parent;
	size_t d_slot = d->parent_slot;
	struct kl_id id = { { 0 } };
	size_t kept = 0;
	int rc;

	/* drop the nodes of files that turned out unreadable (type 0) */
	for (size_t i = 0; i < d->tree.n; i++) {
		if (d->tree.nodes[i].type)
			d->tree.nodes[kept++] = d->tree.nodes[i];
		else
			kl_node_release(&d->tree.nodes[i]);
	}
	d->tree.n = kept;
	rc = kl_tree_encode(&d->tree, &enc);
	if (rc >= 0 && !(b->o->flags & KL_BACKUP_DRY_RUN))
		rc = kl_packer_store(b->trees, KL_BLOB_TREE, enc.data, enc.len, &id);
	else if (rc >= 0)
		kl_tree_blob_id(b->r->keys, enc.data, enc.len, &id);
	if (rc < 0) {
		kl_fail(&b->r->err, rc, "cannot store directory '%s'", d->path);
		b->error = rc;
	}
	dir_free(b, d);
	if (rc < 0)
		return rc;
	if (parent) {
		struct kl_node *n = &parent->tree.nodes[d_slot];

		n->subtree = id;
		n->has_subtree = true;
		return child_done(b, parent);
	}
	b->root = id;
	b->root_done = true;
	return 0;
}

/* Moves finished files' chunk ids into their nodes. */
static int collect(struct backup *b, bool wait)
{
	struct kl_file_job *f = kl_pipeline_take_done(&b->pl, wait);
	int rc = 0;

	while (f) {
		struct kl_file_job *next = f->next_done;
		struct dir_job *d = f->owner;
		struct kl_node *n = &d->tree.nodes[f->slot];

		n->content = kl_calloc(f->n_chunks ? f->n_chunks : 1, sizeof(struct kl_id));
		if (!n->content) {
			b->error = -ENOMEM;
		} else {
			n->n_content = f->n_chunks;
			for (size_t i = 0; i < f->n_chunks; i++) {
				n->content[i] = f->chunks[i]->id;
				if (f->chunks[i]->is_new) {
					b->st.blobs_new++;
					b->st.bytes_added += f->chunks[i]->len;
				}
			}
		}
		b->prog.files_done++;
		kl_file_job_free(f);
		if (rc >= 0)
			rc = child_done(b, d);
		f = next;
	}
	return rc;
}

static int open_file(struct backup *b, int dfd, const char *name)
{
	int fd = -1;

	if (!b->no_noatime) {
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME | O_NONBLOCK);
		if (fd < 0 && errno == EPERM)
			b->no_noatime = true;
	}
	if (fd < 0 && b->no_noatime)
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/*
 * Reads fd to the end, submitting chunks for f. Returns bytes read or a
 * negative error; on a read error after some data, the chunks so far stay
 * submitted and *read_err is set.
 */
static int read_chunks(struct backup *b, int fd, struct kl_file_job *f, uint64_t *total,
		       int *read_err)
{
	const struct kl_cdc *cdc = &b->r->cdc;
	size_t len = 0, off;
	bool eof = false;
	int rc;

	*total = 0;
	*read_err = 0;
	for (;;) {
		while (!eof && len < b->rbuf_cap) {
			ssize_t n = read(fd, b->rbuf + len, b->rbuf_cap - len);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				*read_err = -errno;
				eof = true;
				break;
			}
			if (n == 0)
				eof = true;
			len += (size_t)n;
			*total += (uint64_t)n;
		}
		off = 0;
		while (len - off >= cdc->max || (eof && off < len)) {
			size_t cut = kl_cdc_next(cdc, b->rbuf + off, len - off);
			uint8_t *chunk = kl_memdup(b->rbuf + off, cut);

			if (!chunk)
				return -ENOMEM;
			rc = kl_pipeline_submit(&b->pl, f, chunk, cut);
			if (rc < 0)
				return rc;
			off += cut;
			b->prog.bytes_done += cut;
			progress(b, NULL, false);
		}
		if (eof)
			return 0;
		memmove(b->rbuf, b->rbuf + off, len - off);
		len -= off;
	}
}

static int backup_file(struct backup *b, struct dir_job *d, size_t slot, int dfd,
		       const char *name, const char *path)
{
	struct kl_node *n = &d->tree.nodes[slot];
	struct kl_file_job *f;
	_cleanup_close_ int fd = -1;
	struct stat before, after;
	uint64_t total;
	int rc, read_err;

	fd = open_file(b, dfd, name);
	if (fd < 0) {
		warn(b, path, fd, "cannot open");
		return fd;
	}
	if (fstat(fd, &before) < 0 || !S_ISREG(before.st_mode)) {
		warn(b, path, -EINVAL, "replaced while being backed up");
		return -EINVAL;
	}
	/* the O_NONBLOCK was only for opening (a FIFO swapped in must not hang us) */
	fcntl(fd, F_SETFL, 0);
	f = kl_calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	atomic_init(&f->pending, 1);
	f->owner = d;
	f->slot = slot;
	d->pending++;
	rc = read_chunks(b, fd, f, &total, &read_err);
	kl_pipeline_file_sealed(&b->pl, f);
	if (rc < 0) {
		b->error = rc;
		return rc;
	}
	b->st.bytes_read += total;
	n->size = total;
	if (read_err) {
		n->flags |= KL_NODE_PARTIAL;
		warn(b, path, read_err, "read error; file saved up to the error");
	} else if (fstat(fd, &after) == 0 &&
		   (after.st_size != before.st_size ||
		    after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
		    after.st_mtim.tv_nsec != before.st_mtim.tv_nsec ||
		    after.st_ctim.tv_sec != before.st_ctim.tv_sec ||
		    after.st_ctim.tv_nsec != before.st_ctim.tv_nsec ||
		    total != (uint64_t)before.st_size)) {
		n->flags |= KL_NODE_CHANGED;
		warn(b, path, 0, "file changed while it was read");
	}
	/* the node keeps the metadata seen before reading, when it matched the content */
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;

	return kl_name_cmp((const uint8_t *)x, strlen(x), (const uint8_t *)y, strlen(y));
}

static bool is_cachedir_tag(int dfd)
{
	char buf[sizeof(CACHEDIR_SIG) - 1];
	_cleanup_close_ int fd = openat(dfd, "CACHEDIR.TAG", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	size_t got;

	if (fd < 0)
		return false;
	if (kl_fs_read_full(fd, buf, sizeof(buf), &got) < 0 || got != sizeof(buf))
		return false;
	return !memcmp(buf, CACHEDIR_SIG, sizeof(buf));
}

static int process_dir(struct backup *b, struct dir_job *d, int dfd, const struct kl_tree *old);

/*
 * An unchanged file reuses its parent's chunk ids only if they are all
 * still stored: after a pack was lost, reading the file again heals the
 * repository instead of carrying the damage into every new snapshot.
 */
static bool all_stored(struct backup *b, const struct kl_node *oldn)
{
	for (size_t i = 0; i < oldn->n_content; i++)
		if (kl_repo_lookup(b->r, &oldn->content[i], NULL) != 1)
			return false;
	return true;
}

/* Handles a node already added to d: reads a file, descends into a directory. */
static int handle_node(struct backup *b, struct dir_job *d, size_t slot, int dfd,
		       const struct kl_node *oldn, const char *path, const struct stat *st)
{
	struct kl_node *n = &d->tree.nodes[slot];
	/* add_entry allocates names with a NUL after them: no copy on the stack, deep trees recurse */
	const char *name = (const char *)n->name;
	int rc = 0;
	if (n->type == KL_NODE_FILE) {
		b->st.bytes_total += n->size;
		if (oldn && !(b->o->flags & KL_BACKUP_FORCE) && kl_node_unchanged(oldn, st) &&
		    all_stored(b, oldn)) {
			if (oldn->n_content) {
				n->content = kl_memdup(oldn->content, oldn->n_content * sizeof(struct kl_id));
				if (!n->content)
					return -ENOMEM;
			}
			n->n_content = oldn->n_content;
			b->st.files_unmodified++;
			b->prog.files_done++;
			b->prog.bytes_done += n->size;
			progress(b, path, false);
			return 0;
		}
		if (oldn && oldn->type == KL_NODE_FILE)
			b->st.files_changed++;
		else
			b->st.files_new++;
		rc = backup_file(b, d, slot, dfd, name, path);
		progress(b, path, false);
		if (rc < 0 && !b->error) {
			/* unreadable: leave it out rather than restore an empty file */
			n->type = 0;
			return 0;
		}
		return rc;
	}
	if (n->type == KL_NODE_DIR) {
		struct kl_tree oldt = { 0 };
		struct dir_job *c;
		_cleanup_close_ int cfd = -1;

		b->st.dirs++;
		c = dir_new(b, d, slot, path);
		if (!c)
			return -ENOMEM;
		if ((b->o->flags & KL_BACKUP_ONE_FS) && st->st_dev != b->root_dev)
			return child_done(b, c); /* a mount point: keep it, empty */
		cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0) {
			warn(b, path, -errno, "cannot open directory");
			return child_done(b, c);
		}
		if (oldn && oldn->type == KL_NODE_DIR && oldn->has_subtree &&
		    !(b->o->flags & KL_BACKUP_FORCE)) {
			rc = kl_repo_read_tree(b->r, &oldn->subtree, &oldt);
			if (rc < 0) {
				/* a damaged parent only costs speed: read everything again */
				memset(&oldt, 0, sizeof(oldt));
				rc = 0;
			}
		}
		rc = process_dir(b, c, cfd, oldt.n ? &oldt : NULL);
		kl_tree_release(&oldt);
		return rc;
	}
	return 0;
}

/*
 * must_exist: a path the user named (or a directory above one), whose
 * absence is an error; an entry that vanished after it was listed is not.
 */
static int add_entry(struct backup *b, struct dir_job *d, int dfd, const char *name,
		     const char *path, struct stat *st, bool must_exist, bool *added)
{
	struct kl_node n = { 0 };
	int rc;

	*added = false;
	if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT && !must_exist)
			return 0; /* vanished since it was listed: nothing to save */
		warn(b, path, -errno, errno == ENOENT ? "does not exist" : "cannot stat");
		return 0;
	}
	if (S_ISREG(st->st_mode) && b->o->exclude_larger_than &&
	    (uint64_t)st->st_size > b->o->exclude_larger_than)
		return 0;
	n.name_len = strlen(name);
	n.name = kl_memdup(name, n.name_len + 1);
	if (!n.name)
		return -ENOMEM;
	rc = kl_node_from_stat(dfd, name, st, b->ids, &n);
	if (rc == -ENOMEM) {
		kl_node_release(&n);
		return rc;
	}
	if (rc < 0)
		warn(b, path, rc, "cannot read attributes");
	rc = kl_tree_add(&d->tree, &n);
	if (rc < 0) {
		kl_node_release(&n);
		return rc;
	}
	*added = true;
	return 0;
}

static int process_dir(struct backup *b, struct dir_job *d, int dfd, const struct kl_tree *old)
{
	_cleanup_close_ int dupfd = dup(dfd);
	char **names = NULL;
	size_t n_names = 0, cap = 0;
	struct stat *sts = NULL;
	DIR *dir;
	struct dirent *de;
	bool caches = false;
	int rc = 0;

	if (dupfd < 0)
		return -errno;
	dir = fdopendir(dupfd);
	if (!dir)
		return -errno;
	dupfd = -1;
	while ((errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n_names == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			char **v = kl_realloc(names, ncap * sizeof(*v));

			if (!v) {
				rc = -ENOMEM;
				break;
			}
			names = v;
			cap = ncap;
		}
		names[n_names] = kl_strdup(de->d_name);
		if (!names[n_names]) {
			rc = -ENOMEM;
			break;
		}
		n_names++;
	}
	if (!de && errno && rc >= 0)
		warn(b, d->path, -errno, "cannot list directory completely");
	closedir(dir);
	if (rc >= 0 && n_names)
		qsort(names, n_names, sizeof(*names), cmp_names);
	if (rc >= 0 && (b->o->flags & KL_BACKUP_EXCLUDE_CACHES) && is_cachedir_tag(dfd))
		caches = true;
	sts = kl_calloc(n_names ? n_names : 1, sizeof(*sts));
	if (!sts)
		rc = -ENOMEM;
	/* first all metadata, so the tree's node array is final before files go in flight */
	size_t *slot_of = kl_calloc(n_names ? n_names : 1, sizeof(size_t));
	if (!slot_of)
		rc = -ENOMEM;
	for (size_t i = 0; rc >= 0 && i < n_names; i++) {
		_cleanup_free_ char *path = join_path(d->path, names[i]);
		bool added;

		slot_of[i] = SIZE_MAX;
		if (!path) {
			rc = -ENOMEM;
			break;
		}
		if (caches && strcmp(names[i], "CACHEDIR.TAG"))
			continue;
		if (b->o->excludes.n && kl_patterns_match(&b->o->excludes, path))
			continue;
		rc = add_entry(b, d, dfd, names[i], path, &sts[i], false, &added);
		if (added)
			slot_of[i] = d->tree.n - 1;
	}
	for (size_t i = 0; rc >= 0 && !b->error && i < n_names; i++) {
		const struct kl_node *oldn = NULL;
		size_t slot = slot_of[i];
		_cleanup_free_ char *path = NULL;

		if (slot == SIZE_MAX)
			continue;
		path = join_path(d->path, names[i]);
		if (!path) {
			rc = -ENOMEM;
			break;
		}
		if (old)
			oldn = kl_tree_find(old, (const uint8_t *)names[i], strlen(names[i]));
		rc = handle_node(b, d, slot, dfd, oldn, path, &sts[i]);
		if (rc >= 0)
			rc = collect(b, false);
	}
	for (size_t i = 0; i < n_names; i++)
		kl_free(names[i]);
	kl_free(names);
	kl_free(sts);
	kl_free(slot_of);
	if (rc < 0)
		return rc;
	return child_done(b, d);
}

/* ---- sources: the tree of path components above the given paths ---- */

static void source_free(struct source_node *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_kids; i++)
		source_free(s->kids[i]);
	kl_free(s->kids);
	kl_free(s->name);
	kl_free(s->path);
	kl_free(s);
}

/* Makes path absolute and lexically clean: no ".", "..", "//" or trailing "/". */
static char *clean_path(const char *in)
{
	_cleanup_free_ char *abs = NULL;
	char cwd[4096];
	char *out;
	size_t o = 0;

	if (in[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)))
			return NULL;
		abs = join_path(cwd, in);
		if (!abs)
			return NULL;
		in = abs;
	}
	out = kl_malloc(strlen(in) + 2);
	if (!out)
		return NULL;
	for (const char *p = in; *p;) {
		const char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);

		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* skip */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p = *e ? e + 1 : e;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = 0;
	return out;
}

static int source_add(struct source_node *root, const char *path)
{
	struct source_node *cur = root;
	const char *p = path + 1;

	if (!*p) {
		root->is_source = true;
		return 0;
	}
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);
		struct source_node *kid = NULL;

		if (cur->is_source)
			return 0; /* already covered by a source above */
		for (size_t i = 0; i < cur->n_kids; i++)
			if (strlen(cur->kids[i]->name) == len && !memcmp(cur->kids[i]->name, p, len))
				kid = cur->kids[i];
		if (!kid) {
			struct source_node **v = kl_realloc(cur->kids, (cur->n_kids + 1) * sizeof(*v));

			if (!v)
				return -ENOMEM;
			cur->kids = v;
			kid = kl_calloc(1, sizeof(*kid));
			if (!kid)
				return -ENOMEM;
			cur->kids[cur->n_kids++] = kid;
			kid->name = kl_strndup(p, len);
			kid->path = kl_strndup(path, (size_t)(e - path));
			if (!kid->name || !kid->path)
				return -ENOMEM;
		}
		cur = kid;
		p = *e ? e + 1 : e;
	}
	cur->is_source = true;
	/* a source covers everything below it */
	for (size_t i = 0; i < cur->n_kids; i++)
		source_free(cur->kids[i]);
	cur->n_kids = 0;
	return 0;
}

static int cmp_source(const void *a, const void *b)
{
	const struct source_node *x = *(struct source_node *const *)a;
	const struct source_node *y = *(struct source_node *const *)b;

	return kl_name_cmp((const uint8_t *)x->name, strlen(x->name), (const uint8_t *)y->name,
			   strlen(y->name));
}

static char *parent_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash == path ? kl_strdup("/") : kl_strndup(path, (size_t)(slash - path));
}

/*
 * A directory above the sources: only its kids on the way to a source are
 * saved, with the real directory's metadata.
 */
static int process_virtual(struct backup *b, struct dir_job *d, struct source_node *v,
			   const struct kl_tree *old)
{
	struct stat *sts;
	size_t *slots;
	int rc = 0;

	if (v->n_kids)
		qsort(v->kids, v->n_kids, sizeof(*v->kids), cmp_source);
	sts = kl_calloc(v->n_kids ? v->n_kids : 1, sizeof(*sts));
	slots = kl_calloc(v->n_kids ? v->n_kids : 1, sizeof(*slots));
	if (!sts || !slots) {
		kl_free(sts);
		kl_free(slots);
		return -ENOMEM;
	}
	for (size_t i = 0; rc >= 0 && i < v->n_kids; i++) {
		struct source_node *k = v->kids[i];
		_cleanup_free_ char *dir = parent_of(k->path);
		_cleanup_close_ int dfd = -1;
		bool added = false;

		slots[i] = SIZE_MAX;
		if (!dir) {
			rc = -ENOMEM;
			break;
		}
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0) {
			warn(b, k->path, -errno, "cannot open");
			continue;
		}
		rc = add_entry(b, d, dfd, k->name, k->path, &sts[i], true, &added);
		if (added)
			slots[i] = d->tree.n - 1;
		if (added && !k->is_source && !S_ISDIR(sts[i].st_mode)) {
			warn(b, k->path, -ENOTDIR, "is not a directory");
			d->tree.nodes[slots[i]].type = 0;
			slots[i] = SIZE_MAX;
		}
	}
	for (size_t i = 0; rc >= 0 && !b->error && i < v->n_kids; i++) {
		struct source_node *k = v->kids[i];
		const struct kl_node *oldn = NULL;
		_cleanup_free_ char *dir = NULL;
		_cleanup_close_ int dfd = -1;

		if (slots[i] == SIZE_MAX)
			continue;
		if (old)
			oldn = kl_tree_find(old, (const uint8_t *)k->name, strlen(k->name));
		if (k->is_source) {
			dir = parent_of(k->path);
			if (!dir) {
				rc = -ENOMEM;
				break;
			}
			dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd < 0) {
				warn(b, k->path, -errno, "cannot open");
				continue;
			}
			if (S_ISDIR(sts[i].st_mode))
				b->root_dev = sts[i].st_dev;
			rc = handle_node(b, d, slots[i], dfd, oldn, k->path, &sts[i]);
		} else {
			struct kl_tree oldt = { 0 };
			struct dir_job *c = dir_new(b, d, slots[i], k->path);

			if (!c) {
				rc = -ENOMEM;
				break;
			}
			if (oldn && oldn->has_subtree && kl_repo_read_tree(b->r, &oldn->subtree, &oldt) < 0)
				memset(&oldt, 0, sizeof(oldt));
			rc = process_virtual(b, c, k, oldt.n ? &oldt : NULL);
			kl_tree_release(&oldt);
		}
		if (rc >= 0)
			rc = collect(b, false);
	}
	kl_free(sts);
	kl_free(slots);
	if (rc < 0)
		return rc;
	return child_done(b, d);
}

/* ---- the scanner: only counts, so that progress can show an ETA ---- */

static void scan_dir(struct backup *b, int dfd, const char *path, dev_t dev, int depth)
{
	DIR *d;
	struct dirent *de;

	if (depth > 256 || !(d = fdopendir(dfd))) {
		close(dfd);
		return;
	}
	while (!atomic_load(&b->scan_stop) && (de = readdir(d))) {
		struct stat st;
		char *sub;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		sub = join_path(path, de->d_name);
		if (!sub)
			break;
		if (b->o->excludes.n && kl_patterns_match(&b->o->excludes, sub)) {
			kl_free(sub);
			continue;
		}
		if (S_ISREG(st.st_mode) &&
		    !(b->o->exclude_larger_than && (uint64_t)st.st_size > b->o->exclude_larger_than)) {
			atomic_fetch_add(&b->scan_files, 1);
			atomic_fetch_add(&b->scan_bytes, (uint64_t)st.st_size);
		} else if (S_ISDIR(st.st_mode) &&
			   !((b->o->flags & KL_BACKUP_ONE_FS) && st.st_dev != dev)) {
			int fd = openat(dirfd(d), de->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (fd >= 0)
				scan_dir(b, fd, sub, dev, depth + 1);
		}
		kl_free(sub);
	}
	closedir(d);
}

static void *scanner(void *arg)
{
	struct backup *b = arg;

	for (size_t i = 0; i < b->n_scan_paths && !atomic_load(&b->scan_stop); i++) {
		struct stat st;
		int fd;

		if (lstat(b->scan_paths[i], &st) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			atomic_fetch_add(&b->scan_files, 1);
			atomic_fetch_add(&b->scan_bytes, (uint64_t)st.st_size);
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		fd = open(b->scan_paths[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			scan_dir(b, fd, b->scan_paths[i], st.st_dev, 0);
	}
	return NULL;
}

/* ---- streams: stdin or a command's standard output ---- */

static int spawn(char **argv, pid_t *pid_ret)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	*pid_ret = pid;
	return pfd[0];
}

static int backup_stream(struct backup *b, struct dir_job *root)
{
	const struct kl_backup_opts *o = b->o;
	const char *name = o->stdin_filename ? o->stdin_filename : "stdin";
	struct kl_node n = { 0 };
	struct kl_file_job *f;
	uint64_t total;
	pid_t pid = -1;
	int fd, rc, read_err;

	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return kl_fail(&b->r->err, -KL_EUSAGE, "invalid --stdin-filename '%s'", name);
	if (o->command) {
		fd = spawn(o->command, &pid);
		if (fd < 0)
			return kl_fail(&b->r->err, fd, "cannot run '%s'", o->command[0]);
	} else {
		fd = o->stdin_fd;
	}
	n.name_len = strlen(name);
	n.name = kl_memdup(name, n.name_len);
	n.type = KL_NODE_FILE;
	n.mode = 0644;
	n.uid = (uint32_t)geteuid();
	n.gid = (uint32_t)getegid();
	n.mtime_sec = n.atime_sec = n.ctime_sec = kl_time_now_ns() / 1000000000;
	rc = n.name ? kl_tree_add(&root->tree, &n) : -ENOMEM;
	f = rc >= 0 ? kl_calloc(1, sizeof(*f)) : NULL;
	if (!f) {
		kl_node_release(&n);
		if (pid > 0) {
			close(fd);
			kill(pid, SIGTERM);
			waitpid(pid, NULL, 0);
		}
		return -ENOMEM;
	}
	atomic_init(&f->pending, 1);
	f->owner = root;
	f->slot = 0;
	root->pending++;
	rc = read_chunks(b, fd, f, &total, &read_err);
	kl_pipeline_file_sealed(&b->pl, f);
	root->tree.nodes[0].size = total;
	b->st.bytes_read = b->st.bytes_total = total;
	b->st.files_new = 1;
	if (pid > 0) {
		int status;

		close(fd);
		if (rc < 0)
			kill(pid, SIGTERM);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (rc >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			if (WIFEXITED(status))
				rc = kl_fail(&b->r->err, -KL_ECMD, "command '%s' exited with status %d",
					     o->command[0], WEXITSTATUS(status));
			else
				rc = kl_fail(&b->r->err, -KL_ECMD, "command '%s' was killed by signal %d",
					     o->command[0], WTERMSIG(status));
		}
	}
	if (rc >= 0 && read_err)
		rc = kl_fail(&b->r->err, read_err, "cannot read the input stream");
	if (rc < 0)
		b->error = rc;
	return rc < 0 ? rc : child_done(b, root);
}

/* ---- the whole backup ---- */

void kl_backup_opts_init(struct kl_backup_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->stdin_fd = -1;
}

static bool same_paths(const struct kl_snapshot *s, char **paths, size_t n)
{
	if (s->n_paths != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s->paths[i], paths[i]))
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int find_parent(struct backup *b, char **paths, size_t n, const char *host,
		       struct kl_snapshot_ref *ret)
{
	struct kl_snapshot_list l;
	int rc, found = 0;

	if (b->o->parent)
		return kl_snapshot_find(b->r, b->o->parent, NULL, ret) < 0 ? -KL_ENOTFOUND : 1;
	rc = kl_repo_list_snapshots(b->r, &l);
	if (rc < 0)
		return rc;
	for (size_t i = l.n; i-- > 0;) {
		struct kl_snapshot *s = &l.v[i].s;

		if (s->kind == KL_SNAP_FILES && s->host && !strcmp(s->host, host) &&
		    same_paths(s, paths, n)) {
			*ret = l.v[i];
			memset(&l.v[i].s, 0, sizeof(l.v[i].s));
			found = 1;
			break;
		}
	}
	kl_snapshot_list_release(&l);
	return found;
}

int kl_backup(struct kl_repo *r, const struct kl_backup_opts *o, struct kl_backup_result *ret)
{
	struct backup b = { .r = r, .o = o };
	struct source_node *src = NULL;
	struct kl_snapshot snap = { 0 };
	struct kl_snapshot_ref parent = { 0 };
	struct kl_tree parent_tree = { 0 };
	struct dir_job *root = NULL;
	struct kl_write_stats ws = { 0 };
	char hostbuf[256], userbuf[256];
	char **paths = NULL;
	size_t n_paths = 0;
	bool stream = o->stdin_fd >= 0 || o->command;
	int rc = 0, has_parent = 0;

	memset(ret, 0, sizeof(*ret));
	if (!stream && !o->n_paths)
		return kl_fail(&r->err, -KL_EUSAGE, "nothing to back up");
	snap.kind = stream ? KL_SNAP_STREAM : KL_SNAP_FILES;
	snap.time_ns = kl_time_now_ns();
	if (o->host && *o->host) {
		snprintf(hostbuf, sizeof(hostbuf), "%s", o->host);
	} else if (gethostname(hostbuf, sizeof(hostbuf)) < 0) {
		snprintf(hostbuf, sizeof(hostbuf), "localhost");
	}
	hostbuf[sizeof(hostbuf) - 1] = 0;
	{
		struct passwd pw, *res = NULL;
		char buf[4096];

		if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
			snprintf(userbuf, sizeof(userbuf), "%s", res->pw_name);
		else
			snprintf(userbuf, sizeof(userbuf), "%u", (unsigned)geteuid());
	}

	/* normalized, sorted, de-duplicated source paths */
	if (stream) {
		const char *name = o->stdin_filename ? o->stdin_filename : "stdin";

		paths = kl_calloc(1, sizeof(*paths));
		if (!paths || !(paths[0] = join_path("/", name)))
			rc = -ENOMEM;
		n_paths = 1;
	} else {
		paths = kl_calloc(o->n_paths, sizeof(*paths));
		if (!paths)
			rc = -ENOMEM;
		for (size_t i = 0; rc >= 0 && i < o->n_paths; i++) {
			char *p = clean_path(o->paths[i]);

			if (!p) {
				rc = -ENOMEM;
				break;
			}
			paths[n_paths++] = p;
		}
		if (rc >= 0) {
			qsort(paths, n_paths, sizeof(*paths), cmp_str);
			size_t k = 0;
			for (size_t i = 0; i < n_paths; i++) {
				if (k && !strcmp(paths[k - 1], paths[i]))
					kl_free(paths[i]);
				else
					paths[k++] = paths[i];
			}
			n_paths = k;
		}
	}
	if (rc >= 0)
		rc = kl_idcache_new(&b.ids);
	if (rc >= 0 && !(o->flags & KL_BACKUP_DRY_RUN)) {
		/* reuse what a killed backup left behind (before the parent's trees are read) */
		int adopted = kl_repo_adopt_orphans(r);

		if (adopted < 0)
			rc = adopted;
	}
	if (rc >= 0 && !stream && !(o->flags & KL_BACKUP_FORCE)) {
		has_parent = find_parent(&b, paths, n_paths, hostbuf, &parent);
		if (has_parent < 0) {
			rc = kl_fail(&r->err, has_parent, "parent snapshot '%s' not found",
				     o->parent ? o->parent : "?");
		} else if (has_parent) {
			if (kl_repo_read_tree(r, &parent.s.tree, &parent_tree) < 0) {
				memset(&parent_tree, 0, sizeof(parent_tree));
			}
		}
	}
	b.rbuf_cap = (size_t)r->cfg.cdc_max * 4;
	if (rc >= 0 && !(b.rbuf = kl_malloc(b.rbuf_cap)))
		rc = -ENOMEM;
	if (rc >= 0)
		rc = kl_packer_new(r, &b.trees);
	if (rc >= 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		rc = kl_pipeline_start(&b.pl, r,
				       o->threads ? o->threads : (unsigned)(ncpu > 0 ? ncpu : 1),
				       o->flags & KL_BACKUP_DRY_RUN);
		b.pl_started = true; /* finish cleans up after a partial start too */
	}
	if (rc >= 0 && !(root = dir_new(&b, NULL, 0, "/")))
		rc = -ENOMEM;
	if (rc >= 0 && !stream && o->report.progress) {
		b.scan_paths = paths;
		b.n_scan_paths = n_paths;
		b.scanning = pthread_create(&b.scanner, NULL, scanner, &b) == 0;
	}
	if (rc >= 0 && stream) {
		rc = backup_stream(&b, root);
	} else if (rc >= 0) {
		src = kl_calloc(1, sizeof(*src));
		if (!src || !(src->name = kl_strdup("")) || !(src->path = kl_strdup("/")))
			rc = -ENOMEM;
		for (size_t i = 0; rc >= 0 && i < n_paths; i++)
			rc = source_add(src, paths[i]);
		if (rc >= 0 && src->is_source) {
			_cleanup_close_ int rfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			struct stat st;

			if (rfd < 0 || fstat(rfd, &st) < 0) {
				rc = -errno;
			} else {
				b.root_dev = st.st_dev;
				rc = process_dir(&b, root, rfd, parent_tree.n ? &parent_tree : NULL);
			}
		} else if (rc >= 0) {
			rc = process_virtual(&b, root, src, parent_tree.n ? &parent_tree : NULL);
		}
	}
	while (rc >= 0 && !b.error && !b.root_done) {
		rc = collect(&b, true);
		if (rc >= 0 && !b.root_done && kl_pipeline_idle(&b.pl) && !b.error) {
			rc = -EIO; /* cannot happen: something lost track of a file */
			break;
		}
	}
	if (b.scanning) {
		atomic_store(&b.scan_stop, true);
		pthread_join(b.scanner, NULL);
	}
	if (b.pl_started) {
		int prc = kl_pipeline_finish(&b.pl, &ws);

		if (rc >= 0 && b.error)
			rc = b.error;
		if (rc >= 0)
			rc = prc;
		/* files the workers finished after an error still hold chunk lists */
		struct kl_file_job *f = b.pl.done;
		while (f) {
			struct kl_file_job *next = f->next_done;

			kl_file_job_free(f);
			f = next;
		}
	}
	if (rc >= 0 && b.error)
		rc = b.error;
	if (rc >= 0 && b.trees) {
		struct kl_write_stats ts;

		rc = kl_packer_flush(b.trees);
		kl_packer_stats(b.trees, &ts);
		ws.blobs += ts.blobs;
		ws.bytes_stored += ts.bytes_stored;
	}
	if (rc >= 0 && !(o->flags & KL_BACKUP_DRY_RUN))
		rc = kl_repo_flush_index(r);
	if (rc >= 0 && !stream && b.st.errors && !b.st.files_new && !b.st.files_changed &&
	    !b.st.files_unmodified && !b.st.dirs)
		rc = kl_fail(&r->err, -ENOENT, "none of the given paths could be read");
	if (rc >= 0) {
		progress(&b, NULL, true);
		b.st.bytes_stored = ws.bytes_stored;
		snap.time_end_ns = kl_time_now_ns();
		snap.host = hostbuf;
		snap.user = userbuf;
		snap.uid = (uint32_t)geteuid();
		snap.gid = (uint32_t)getegid();
		snap.paths = paths;
		snap.n_paths = n_paths;
		snap.tags = o->tags;
		snap.n_tags = o->n_tags;
		snap.excludes = o->excludes.v;
		snap.n_excludes = o->excludes.n;
		snap.tree = b.root;
		if (has_parent > 0) {
			snap.parent = parent.id;
			snap.has_parent = true;
		}
		snap.program_version = (char *)"keel " KEEL_VERSION;
		snap.partial = b.st.errors > 0;
		snap.stats = b.st;
		if (!(o->flags & KL_BACKUP_DRY_RUN))
			rc = kl_repo_save_snapshot(r, &snap, &ret->id);
		ret->stats = b.st;
		ret->partial = snap.partial;
		ret->has_parent = snap.has_parent;
		ret->parent = snap.parent;
		if (rc >= 0 && snap.partial)
			rc = -KL_EPARTIAL;
	}
	while (b.live)
		dir_free(&b, b.live); /* what a failure left in flight */
	kl_packer_free(b.trees);
	kl_free(b.rbuf);
	kl_idcache_free(b.ids);
	source_free(src);
	kl_snapshot_release(&parent.s);
	kl_tree_release(&parent_tree);
	for (size_t i = 0; i < n_paths; i++)
		kl_free(paths[i]);
	kl_free(paths);
	return rc;
}

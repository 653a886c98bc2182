/*
 * The paths a user gives: made absolute and clean, and the directories
 * above them saved with their real metadata but only the way down.
 */
#include <fcntl.h>
#include <stdlib.h>

#include "backup-internal.h"
#include "keel/fs.h"

void kl_bk_source_free(struct source_node *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_kids; i++)
		kl_bk_source_free(s->kids[i]);
	kl_free(s->kids);
	kl_free(s->name);
	kl_free(s);
}

/* Makes path absolute and lexically clean: no ".", "..", "//" or trailing "/". */
char *kl_bk_clean_path(const char *in)
{
	_cleanup_free_ char *abs = NULL;
	char *out;
	size_t o = 0;

	if (in[0] != '/') {
		/* glibc sizes the buffer: a working directory deeper than PATH_MAX works */
		_cleanup_free_ char *cwd = getcwd(NULL, 0);

		if (!cwd)
			return NULL;
		abs = kl_bk_join_path(cwd, in);
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

int kl_bk_source_add(struct source_node *root, const char *path)
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
			if (strlen(cur->kids[i]->name) == len &&
			    !memcmp(cur->kids[i]->name, p, len))
				kid = cur->kids[i];
		if (!kid) {
			struct source_node **v =
				kl_realloc(cur->kids, (cur->n_kids + 1) * sizeof(*v));

			if (!v)
				return -ENOMEM;
			cur->kids = v;
			kid = kl_calloc(1, sizeof(*kid));
			if (!kid)
				return -ENOMEM;
			cur->kids[cur->n_kids++] = kid;
			kid->name = kl_strndup(p, len);
			if (!kid->name)
				return -ENOMEM;
			kid->path = path;
			kid->path_len = (size_t)(e - path);
		}
		cur = kid;
		p = *e ? e + 1 : e;
	}
	cur->is_source = true;
	/* a source covers everything below it */
	for (size_t i = 0; i < cur->n_kids; i++)
		kl_bk_source_free(cur->kids[i]);
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

/* k's full path, and in *dir_ret the directory it is in */
static char *path_of(const struct source_node *k, char **dir_ret)
{
	char *path = kl_strndup(k->path, k->path_len);
	const char *slash;

	*dir_ret = NULL;
	if (!path)
		return NULL;
	slash = strrchr(path, '/'); /* a kid's path is absolute */
	*dir_ret = slash == path ? kl_strdup("/") : kl_strndup(path, (size_t)(slash - path));
	if (!*dir_ret) {
		kl_free(path);
		return NULL;
	}
	return path;
}

/*
 * A directory above the sources: only its kids on the way to a source are
 * saved, with the real directory's metadata.
 */
int kl_bk_process_virtual(struct backup *b, struct dir_job *d, struct source_node *v,
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
		_cleanup_free_ char *dir = NULL;
		_cleanup_free_ char *path = path_of(k, &dir);
		_cleanup_close_ int dfd = -1;
		bool added = false;

		slots[i] = SIZE_MAX;
		if (!path) {
			rc = -ENOMEM;
			break;
		}
		dfd = kl_fs_open_dir(dir);
		if (dfd < 0) {
			kl_bk_warn(b, path, dfd, "cannot open");
			continue;
		}
		rc = kl_bk_add_entry(
			b, d, dfd, k->name, path,
			old ? kl_tree_find(old, (const uint8_t *)k->name, strlen(k->name)) : NULL,
			&sts[i], true, &added);
		if (added)
			slots[i] = d->tree.n - 1;
		if (added && !k->is_source && !S_ISDIR(sts[i].st_mode)) {
			kl_bk_warn(b, path, -ENOTDIR, "is not a directory");
			d->tree.nodes[slots[i]].type = 0;
			slots[i] = SIZE_MAX;
		}
	}
	for (size_t i = 0; rc >= 0 && !b->error && i < v->n_kids; i++) {
		struct source_node *k = v->kids[i];
		const struct kl_node *oldn = NULL;
		_cleanup_free_ char *dir = NULL;
		_cleanup_free_ char *path = NULL;
		_cleanup_close_ int dfd = -1;

		if (slots[i] == SIZE_MAX)
			continue;
		if (old)
			oldn = kl_tree_find(old, (const uint8_t *)k->name, strlen(k->name));
		if (k->is_source) {
			path = path_of(k, &dir);
			if (!path) {
				rc = -ENOMEM;
				break;
			}
			dfd = kl_fs_open_dir(dir);
			if (dfd < 0) {
				/* left out as in the first pass: a directory node without its tree
				 * cannot be stored */
				kl_bk_warn(b, path, dfd, "cannot open");
				d->tree.nodes[slots[i]].type = 0;
				continue;
			}
			if (S_ISDIR(sts[i].st_mode))
				b->root_dev = sts[i].st_dev;
			rc = kl_bk_handle_node(b, d, slots[i], dfd, oldn, path, &sts[i]);
		} else {
			/* no path held here: the recursion goes as deep as the source */
			struct kl_tree oldt = {0};
			struct dir_job *c = kl_bk_dir_new(b, d, slots[i]);

			if (!c) {
				rc = -ENOMEM;
				break;
			}
			if (oldn && oldn->has_subtree &&
			    kl_repo_read_tree(b->r, &oldn->subtree, &oldt) < 0)
				memset(&oldt, 0, sizeof(oldt));
			rc = kl_bk_process_virtual(b, c, k, oldt.n ? &oldt : NULL);
			kl_tree_release(&oldt);
		}
		if (rc >= 0)
			rc = kl_bk_collect(b, false);
	}
	kl_free(sts);
	kl_free(slots);
	if (rc < 0)
		return rc;
	return kl_bk_child_done(b, d);
}

/* ---- the kl_bk_scanner: only counts, so that kl_bk_progress can show an ETA ---- */

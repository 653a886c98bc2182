/*
 * check's problems: recording each once, attributing it to the snapshots
 * and paths it affects, and saying why an object did not load; and the
 * progress line.
 */
#include "check-internal.h"

/*
 * The storage did not answer (exit 20, 21 or a storage service's failure):
 * no proof of damage. Anything else is: what keel wrote reads back
 * different, or is gone.
 */
static bool read_error(int err)
{
	switch (-err) {
	case EIO:
	case EACCES:
	case EPERM:
	case EROFS:
	case EMFILE:
	case ENFILE:
	case ENOSPC:
	case EDQUOT:
	case ETIMEDOUT:
	case ECONNRESET:
	case EAGAIN:
	case KL_EREMOTE:
		return true;
	default:
		return false;
	}
}

/*
 * Records a problem; returns its number (1-based), or 0 when out of
 * memory, which sets c->fatal. While the workers run, callers hold c->lock.
 */
uint32_t kl_ck_problem_add(struct check *c, enum problem_cat cat, int err, bool note,
			   const char *obj, const char *fmt, ...)
{
	struct problem *p;
	char why[512];
	va_list ap;

	if (c->n_problems == c->cap_problems) {
		size_t nc = c->cap_problems ? c->cap_problems * 2 : 32;
		struct problem *nv = kl_realloc(c->problems, nc * sizeof(*nv));

		if (!nv)
			goto oom;
		c->problems = nv;
		c->cap_problems = nc;
	}
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	p = &c->problems[c->n_problems];
	memset(p, 0, sizeof(*p));
	p->why = kl_strdup(why);
	if (!p->why)
		goto oom;
	p->cat = cat;
	snprintf(p->obj, sizeof(p->obj), "%s", obj);
	p->err = note ? 0 : err;
	p->note = note;
	p->io = !note && read_error(err);
	kl_buf_init(&p->refs, (size_t)64 << 10);
	if (!note)
		c->res->errors++;
	return (uint32_t)++c->n_problems;
oom:
	if (!c->fatal)
		c->fatal = -ENOMEM;
	return 0;
}

void kl_ck_pack_obj(const struct check *c, uint32_t idx, char out[static 80])
{
	char hex[2 * KL_ID_LEN + 1];

	kl_id_hex(&c->packs.v[idx].id, hex);
	snprintf(out, 80, "pack %s", hex);
}

void kl_ck_blob_obj(const uint8_t *id, char out[static 80])
{
	char hex[2 * KL_ID_LEN + 1];

	kl_hex_encode(id, KL_ID_LEN, hex);
	snprintf(out, 80, "blob %s", hex);
}

/* Appends a path, escaping bytes that could disturb a terminal or a log. */
static int add_escaped(struct kl_buf *b, const uint8_t *p, size_t n)
{
	int rc = 0;

	if (!n)
		return kl_buf_addch(b, '/');
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
			rc = kl_buf_addf(b, "\\x%02x", p[i]);
		else
			rc = kl_buf_addch(b, p[i]);
	}
	return rc;
}

/* Problem pr affects snapshot si at the current path (c->path). */
int kl_ck_attribute(struct check *c, uint32_t pr, size_t si)
{
	struct problem *p = kl_ck_problem_get(c, pr);
	int rc;

	if (!p)
		return 0;
	if (!p->fallback && !p->io)
		c->snaps[si].damaged = true;
	p->attrib = true;
	p->n_refs++;
	if (p->n_shown >= MAX_REFS)
		return 0;
	rc = kl_buf_addf(&p->refs, "%ssnapshot %.8s ", p->n_shown ? ", " : "", c->snaps[si].name);
	if (rc >= 0)
		rc = add_escaped(&p->refs, c->path.data, c->path.len);
	p->n_shown++;
	return rc == -ENOMEM ? rc : 0; /* -E2BIG: the list is long enough */
}

/* Marks the copy of e in pack idx bad with problem pr, if readers use that copy. */
void kl_ck_mark_entry(struct check *c, uint32_t idx, const struct kl_blob_entry *e, uint32_t pr)
{
	struct blob *b = kl_ck_blob_find(&c->blobs, e->id.b);

	if (!b || !(b->flags & B_LOCATED) || b->pack != idx || b->offset != e->offset)
		return;
	if (!(b->flags & B_BAD)) {
		b->flags |= B_BAD;
		b->problem = pr;
	}
}

/* c->lock held while the workers run. */
void kl_ck_progress(struct check *c, const char *current, bool force)
{
	int64_t now;

	if (!c->o->report.progress)
		return;
	now = kl_time_mono_ns();
	if (!force && now - c->last_progress < PROGRESS_NS)
		return;
	c->last_progress = now;
	c->prog.errors = c->res->errors;
	c->prog.current = current;
	c->o->report.progress(c->o->report.ud, &c->prog);
	c->prog.current = NULL;
}

/* Why a whole-file object (index file, snapshot) did not load. */
const char *kl_ck_object_reason(struct check *c, enum kl_obj_type t, enum kl_obj_kind kind,
				const char *name, int rc)
{
	_cleanup_buf_ struct kl_buf raw = KL_BUF_INIT(OBJECT_MAX);
	_cleanup_buf_ struct kl_buf pt = KL_BUF_INIT(OBJECT_MAX);
	struct kl_id want, got;

	if (rc == -KL_ENOTFOUND)
		return "removed while check ran";
	if (rc != -KL_ECORRUPT)
		return kl_strerror(rc);
	if (kl_id_parse(name, &want) < 0)
		return "its name is not an id";
	if (kl_repo_get_raw(c->r, t, name, 0, 0, &raw) < 0)
		return "cannot be read again";
	kl_sha256(raw.data, raw.len, &got);
	if (!kl_id_eq(&want, &got))
		return "content does not match its name";
	rc = kl_open(&kl_repo_keys(c->r)->enc, kind, NULL, 0, raw.data, raw.len, &pt);
	if (rc == -ENOMEM)
		return kl_strerror(rc);
	if (rc < 0)
		return "authentication failed";
	return "content does not decode";
}

/* Why kl_repo_open_blob() refused a sealed blob. */
const char *kl_ck_blob_reason(struct check *c, const struct kl_blob_entry *e, const uint8_t *sealed)
{
	_cleanup_buf_ struct kl_buf pt = KL_BUF_INIT(TREE_MAX);
	enum kl_obj_kind kind = e->type == KL_BLOB_TREE ? KL_KIND_TREE_BLOB : KL_KIND_DATA_BLOB;
	int rc;

	rc = kl_open(&kl_repo_keys(c->r)->enc, kind, e->id.b, KL_ID_LEN, sealed, e->length, &pt);
	if (rc == -ENOMEM)
		return kl_strerror(rc);
	if (rc < 0)
		return "authentication failed";
	/* authentic bytes that do not give the id: a bug or a leaked key, never bit rot */
	return "authentic, but does not decompress to its id";
}

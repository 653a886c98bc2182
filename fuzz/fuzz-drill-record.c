/*
 * Fuzzes kl_daemon_drill_record_parse, a restore drill's record as a
 * snapshot's tags (keel/daemon.h), which keel status reads from any
 * repository. The input is the tags, one a line. Oracles: the result is
 * 1, 0 or -KL_ECORRUPT; 0 exactly when no tag is "keel-drill"; a record
 * has a safe job name, a 64-digit hex id and a sample of 1..100; and
 * writing it as tags and reading them back gives what writing those again
 * gives (the tags are canonical after one round).
 */
#include <stdlib.h>
#include <string.h>

#include "keel/daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TAGS_MAX 64

/* Splits s (modified) at c into at most max pieces. */
static size_t split(char *s, char c, char **v, size_t max)
{
	size_t n = 0;

	while (n < max) {
		char *e = strchr(s, c);

		v[n++] = s;
		if (!e)
			break;
		*e = 0;
		s = e + 1;
	}
	return n;
}

/* Writes rec as tags into out and reads them back into back (which must succeed). */
static int write_read(const struct kl_daemon_drill_record *rec, struct kl_buf *out,
		      struct kl_daemon_drill_record *back)
{
	char *v[TAGS_MAX], *copy;
	size_t n;
	int r;

	r = kl_daemon_drill_record_tags(rec, out);
	if (r < 0)
		return r;
	copy = kl_strdup((const char *)out->data);
	if (!copy)
		return -ENOMEM;
	n = split(copy, ',', v, TAGS_MAX);
	if (kl_daemon_drill_record_parse(v, n, back) != 1)
		abort();
	kl_free(copy);
	if (strcmp(back->job, rec->job) || strcmp(back->snapshot, rec->snapshot) ||
	    back->ok != rec->ok || back->sample != rec->sample || back->bytes != rec->bytes)
		abort();
	return 0;
}

static void round_trip(const struct kl_daemon_drill_record *rec)
{
	struct kl_buf t1 = KL_BUF_INIT(1u << 12), t2 = KL_BUF_INIT(1u << 12),
		      t3 = KL_BUF_INIT(1u << 12);
	struct kl_daemon_drill_record a, b, c;

	/* the first write rounds the seconds to milliseconds; from then on it is canonical */
	if (write_read(rec, &t1, &a) < 0 || write_read(&a, &t2, &b) < 0 ||
	    write_read(&b, &t3, &c) < 0)
		goto out;
	if (t2.len != t3.len || memcmp(t2.data, t3.data, t2.len))
		abort();
out:
	kl_buf_release(&t1);
	kl_buf_release(&t2);
	kl_buf_release(&t3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_daemon_drill_record rec;
	char *text, *v[TAGS_MAX];
	bool marked = false;
	size_t n;
	int r;

	if (size > 1u << 14)
		return 0;
	text = kl_malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	n = split(text, '\n', v, TAGS_MAX);
	for (size_t i = 0; i < n; i++)
		marked |= !strcmp(v[i], KL_DRILL_TAG);
	r = kl_daemon_drill_record_parse(v, n, &rec);
	if (r != 1 && r != 0 && r != -KL_ECORRUPT)
		abort();
	if ((r == 0) != !marked)
		abort();
	if (r == 1) {
		if (!rec.job[0] || strlen(rec.snapshot) != 64 || rec.sample < 1 ||
		    rec.sample > 100 || rec.seconds < 0)
			abort();
		round_trip(&rec);
	}
	kl_free(text);
	return 0;
}

/*
 * The lexical layer of keel's INI-like configuration files: lines of
 * "[section]" or "[section "NAME"]" headers and "key = value" settings,
 * '#' and ';' comment lines. What the sections and keys mean is the
 * caller's: the S3 settings (src/backend/s3-conf.c) and the daemon's jobs
 * (src/daemon/conf.c) give it their own meaning. Pure string handling.
 */
#ifndef KEEL_INI_H
#define KEEL_INI_H

#include <stdbool.h>
#include <stddef.h>

#include "keel/util.h"

/* One header or setting; every pointer borrows from the text parsed. */
struct kl_ini_item {
	unsigned line;	     /* from 1 */
	const char *section; /* the current header's word ("job"); NULL before the first */
	size_t section_len;
	/*
	 * its quoted NAME, without the outer quotes and not checked further
	 * (the caller says what a name may hold); NULL when none
	 */
	const char *name;
	size_t name_len;
	const char *key; /* NULL: this item is the header itself */
	size_t key_len;
	const char *value; /* trimmed; may be empty */
	size_t value_len;
};

enum kl_ini_flags {
	/* " # ..." after a value is a comment (values cannot hold " #") */
	KL_INI_INLINE_COMMENTS = 1 << 0,
};

/*
 * Calls fn for every header and setting of text[0..n), in order. Malformed
 * lines (control characters, a header without ']' or with an unquoted
 * name, a line that is not "key = value", a setting before
 * the first header) fail with -KL_EUSAGE and "line N: ..." in err; so may
 * fn (its own negative return stops the parse and is returned). Values are
 * never quoted in messages: they may be secrets.
 */
int kl_ini_parse(const char *text, size_t n, unsigned flags,
		 int (*fn)(const struct kl_ini_item *it, void *userdata), void *userdata,
		 struct kl_err *err);

#endif

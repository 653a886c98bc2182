/*
 * Include/exclude patterns: restic's semantics (floating and anchored
 * patterns, '**', a matched directory covering its children), glob
 * details within one component, normalisation, pattern files, and the
 * may_match_below pruning test restore relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "keel/ops.h"

/* Does the single pattern pat match path? */
static bool m(const char *pat, const char *path)
{
	struct kl_patterns p = {0};
	bool hit;

	assert_int_equal(kl_patterns_add(&p, pat), 0);
	hit = kl_patterns_match(&p, path);
	kl_patterns_release(&p);
	return hit;
}

static bool below(const char *pat, const char *dir)
{
	struct kl_patterns p = {0};
	bool hit;

	assert_int_equal(kl_patterns_add(&p, pat), 0);
	hit = kl_patterns_may_match_below(&p, dir);
	kl_patterns_release(&p);
	return hit;
}

/* The same, ignoring case (--iexclude). */
static bool mi(const char *pat, const char *path)
{
	struct kl_patterns p = {.fold = true};
	bool hit;

	assert_int_equal(kl_patterns_add(&p, pat), 0);
	hit = kl_patterns_match(&p, path);
	kl_patterns_release(&p);
	return hit;
}

static void case_folding(void **state)
{
	(void)state;
	assert_true(mi("*.JPG", "/photos/a.jpg"));
	assert_true(mi("*.jpg", "/photos/A.JPG"));
	assert_false(m("*.jpg", "/photos/A.JPG"));
	assert_true(mi("/Home/**/Cache", "/home/alice/.x/cache/f"));
	assert_true(mi("[a-c]x", "/Bx"));
	assert_true(mi("[A-C]x", "/bX"));
	assert_false(mi("[a-c]x", "/Dx"));
	assert_true(mi("\\Q", "/q"));
	/* Latin-1, Greek and Cyrillic letters fold; others are compared as they are */
	assert_true(mi("\xc3\x84rger*", "/\xc3\xa4rger.txt"));	   /* Ä ä */
	assert_true(mi("\xce\xa3", "/\xcf\x83"));		   /* Σ σ */
	assert_true(mi("\xd0\x96*", "/\xd0\xb6\xd1\x83\xd0\xba")); /* Ж ж */
	assert_true(mi("\xd0\x81", "/\xd1\x91"));		   /* Ё ё */
	assert_false(mi("\xc3\x97", "/\xc3\xb7"));		   /* × is no letter of ÷ */
	assert_true(mi("?bc", "/\303\204BC"));			   /* a whole character for '?' */
}

static void basename_matches_anywhere(void **state)
{
	assert_true(m("*.txt", "/a.txt"));
	assert_true(m("*.txt", "/home/u/docs/a.txt"));
	assert_false(m("*.txt", "/home/u/docs/a.txtx"));
	assert_false(m("*.txt", "/home/u/docs/txt"));
	assert_true(m("docs", "/home/u/docs"));
	assert_false(m("docs", "/home/u/mydocs"));
	assert_false(m("doc", "/home/u/docs"));
}

static void directory_match_covers_children(void **state)
{
	assert_true(m("docs", "/home/u/docs/a.txt"));
	assert_true(m("docs", "/home/u/docs/deep/er/b"));
	assert_true(m("/home/u", "/home/u/x/y"));
	assert_true(m("/home/u", "/home/u"));
	assert_false(m("/home/u", "/home/user"));
	assert_false(m("/home/u", "/home"));
	/* a file pattern matching a directory name covers what is below too (restic) */
	assert_true(m("*.d", "/etc/conf.d/x"));
}

static void anchored_patterns(void **state)
{
	assert_true(m("/a.txt", "/a.txt"));
	assert_false(m("/a.txt", "/b/a.txt"));
	assert_true(m("/home/*/docs", "/home/u/docs/a"));
	assert_false(m("/home/*/docs", "/home/u/v/docs"));
	assert_false(m("/a/*/d", "/a/b/c/d"));
	/* "/" alone is the root: everything */
	assert_true(m("/", "/anything/at/all"));
}

static void floating_patterns_with_slashes(void **state)
{
	assert_true(m("b/c", "/a/b/c"));
	assert_true(m("b/c", "/a/b/c/d"));
	assert_true(m("b/c", "/b/c"));
	assert_false(m("b/c", "/a/b/x/c"));
	assert_false(m("b/c", "/a/bb/c"));
	assert_true(m("u/*/a.txt", "/home/u/docs/a.txt"));
}

static void globstar(void **state)
{
	assert_true(m("/home/**/a.txt", "/home/a.txt"));
	assert_true(m("/home/**/a.txt", "/home/u/a.txt"));
	assert_true(m("/home/**/a.txt", "/home/u/v/w/a.txt"));
	assert_false(m("/home/**/a.txt", "/other/a.txt"));
	assert_false(m("/home/**/a.txt", "/home/u/b.txt"));
	assert_true(m("**/x", "/x"));
	assert_true(m("**/x", "/a/b/x"));
	assert_true(m("/a/**", "/a/b/c"));
	assert_true(m("/a/**", "/a"));
	assert_false(m("/a/**", "/b"));
	assert_true(m("/**", "/anything"));
	assert_true(m("/a/**/b/**/c", "/a/x/b/y/z/c"));
	assert_false(m("/a/**/b/**/c", "/a/x/y/z/c"));
	/* "**" inside a component is two plain stars */
	assert_true(m("/a/x**y", "/a/xzzy"));
	assert_false(m("/a/x**y", "/a/x/y"));
}

static void component_globs(void **state)
{
	assert_true(m("/?.txt", "/a.txt"));
	assert_false(m("/?.txt", "/ab.txt"));
	/* '?' is one character, not one byte (restic works on runes) */
	assert_true(m("/?.txt", "/\xc3\xa9.txt"));
	assert_true(m("/[a-c]x", "/bx"));
	assert_false(m("/[a-c]x", "/dx"));
	assert_true(m("/[!a]x", "/bx"));
	assert_false(m("/[!a]x", "/ax"));
	assert_true(m("/[^a]x", "/bx"));
	assert_true(m("/[]]x", "/]x"));
	assert_true(m("/[a-]x", "/-x"));
	assert_true(m("/[\xc3\xa0-\xc3\xbf]", "/\xc3\xa9"));
	assert_true(m("/\\*", "/*"));
	assert_false(m("/\\*", "/a"));
	assert_true(m("/a\\?", "/a?"));
	assert_false(m("/a\\?", "/ab"));
	/* '*' matches dot files (Go's filepath.Match has no FNM_PERIOD) */
	assert_true(m("*", "/.hidden"));
	assert_true(m("/*.c", "/.c"));
	assert_true(m("/a*b*c", "/aXXbYYbZZc"));
	assert_false(m("/a*b*c", "/aXXbYYbZZ"));
	assert_false(m("/*", "/")); /* the root has no component for "*" */
	/* names are bytes: invalid UTF-8 still matches '*' and itself */
	assert_true(m("/*\xff", "/x\xff"));
	assert_true(m("/\xfe\xff", "/\xfe\xff"));
}

static void normalisation(void **state)
{
	struct kl_patterns p = {0};

	assert_int_equal(kl_patterns_add(&p, "a//b/"), 0);
	assert_int_equal(kl_patterns_add(&p, "./c/./d"), 0);
	assert_int_equal(kl_patterns_add(&p, "//e"), 0);
	assert_int_equal(kl_patterns_add(&p, "/**/**/f/**"), 0);
	assert_int_equal(kl_patterns_add(&p, "**/**"), 0);
	assert_string_equal(p.v[0], "a/b");
	assert_string_equal(p.v[1], "c/d");
	assert_string_equal(p.v[2], "/e");
	assert_string_equal(p.v[3], "/**/f/**");
	assert_string_equal(p.v[4], "**");
	assert_true(kl_patterns_match(&p, "/x/a/b"));
	assert_true(kl_patterns_match(&p, "//x//c/d/"));
	assert_true(kl_patterns_match(&p, "/e/f"));
	kl_patterns_release(&p);
	assert_int_equal(kl_patterns_add(&p, "//e"), 0);
	assert_false(kl_patterns_match(&p, "/x/e"));
	kl_patterns_release(&p);
	assert_int_equal(p.n, 0);
	assert_null(p.v);
}

static void bad_patterns_are_refused(void **state)
{
	struct kl_patterns p = {0};

	assert_int_equal(kl_patterns_add(&p, ""), -KL_EUSAGE);
	assert_int_equal(kl_patterns_add(&p, "."), -KL_EUSAGE);
	assert_int_equal(kl_patterns_add(&p, "[abc"), -KL_EUSAGE);
	assert_int_equal(kl_patterns_add(&p, "/x/[!"), -KL_EUSAGE);
	assert_int_equal(kl_patterns_add(&p, "abc\\"), -KL_EUSAGE);
	assert_int_equal(p.n, 0);
	kl_patterns_release(&p);
}

static void several_patterns(void **state)
{
	struct kl_patterns p = {0};

	assert_false(kl_patterns_match(&p, "/a"));
	assert_false(kl_patterns_may_match_below(&p, "/"));
	assert_int_equal(kl_patterns_add(&p, "*.o"), 0);
	assert_int_equal(kl_patterns_add(&p, "/tmp"), 0);
	assert_true(kl_patterns_match(&p, "/src/x.o"));
	assert_true(kl_patterns_match(&p, "/tmp/y"));
	assert_false(kl_patterns_match(&p, "/src/x.c"));
	kl_patterns_release(&p);
}

static void may_match_below(void **state)
{
	const char *pat = "/home/u/docs/*.txt";

	assert_true(below(pat, "/"));
	assert_true(below(pat, ""));
	assert_true(below(pat, "/home"));
	assert_true(below(pat, "/home/u"));
	assert_true(below(pat, "/home/u/docs"));
	assert_false(below(pat, "/var"));
	assert_false(below(pat, "/home/x"));
	assert_false(below(pat, "/home/u/docs2"));
	/* the directory itself matches: everything below is covered */
	assert_true(below(pat, "/home/u/docs/a.txt"));
	assert_true(below("/a", "/a/b/c"));
	/* globs and '**' on the way */
	assert_true(below("/home/*/docs", "/home/z"));
	assert_false(below("/home/*/docs", "/etc/z"));
	assert_true(below("/a/**/z", "/a/b/c"));
	assert_false(below("/a/**/z", "/b"));
	assert_true(below("/**/z", "/anything"));
	/* a floating pattern may match a name at any depth */
	assert_true(below("*.txt", "/var/lib"));
	assert_true(below("b/c", "/x"));
}

static void pattern_file(void **state)
{
	char name[] = "/tmp/keel-test-pattern.XXXXXX";
	const char text[] = "# a comment\n"
			    "\n"
			    "*.o   \n"
			    "/tmp\r\n"
			    "   \n"
			    "#/not-a-pattern\n"
			    "/home/**/cache\t\n"
			    "last-line-without-newline";
	struct kl_patterns p = {0};
	int fd = mkstemp(name);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	assert_int_equal(kl_patterns_add_file(&p, name), 0);
	unlink(name);
	assert_int_equal(p.n, 4);
	assert_string_equal(p.v[0], "*.o");
	assert_string_equal(p.v[1], "/tmp");
	assert_string_equal(p.v[2], "/home/**/cache");
	assert_string_equal(p.v[3], "last-line-without-newline");
	assert_true(kl_patterns_match(&p, "/home/u/.cache/x/cache/y"));
	assert_false(kl_patterns_match(&p, "/not-a-pattern"));
	kl_patterns_release(&p);
	assert_int_equal(kl_patterns_add_file(&p, "/tmp/keel-surely-missing-pattern-file"),
			 -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(basename_matches_anywhere),
		cmocka_unit_test(case_folding),
		cmocka_unit_test(directory_match_covers_children),
		cmocka_unit_test(anchored_patterns),
		cmocka_unit_test(floating_patterns_with_slashes),
		cmocka_unit_test(globstar),
		cmocka_unit_test(component_globs),
		cmocka_unit_test(normalisation),
		cmocka_unit_test(bad_patterns_are_refused),
		cmocka_unit_test(several_patterns),
		cmocka_unit_test(may_match_below),
		cmocka_unit_test(pattern_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

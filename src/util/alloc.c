/* All library allocation goes through here so tests can fail the Nth one. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "keel/util.h"

static atomic_long fail_after; /* 0: never fail; only test builds set it */

void kl_alloc_fail_after(long n)
{
	atomic_store(&fail_after, n);
}

bool kl_alloc_fail_pending(void)
{
	return atomic_load(&fail_after) > 0;
}

static bool should_fail(void)
{
	long n = atomic_load(&fail_after);

	if (n <= 0)
		return false;
	if (atomic_fetch_sub(&fail_after, 1) != 1)
		return false;
	errno = ENOMEM; /* as malloc sets it: callers may return -errno */
	return true;
}

void *kl_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *kl_calloc(size_t n, size_t size)
{
	if (should_fail())
		return NULL;
	return calloc(n ? n : 1, size ? size : 1);
}

void *kl_realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void kl_free(void *p)
{
	free(p);
}

void *kl_memdup(const void *p, size_t n)
{
	void *q = kl_malloc(n);

	if (q && n)
		memcpy(q, p, n);
	return q;
}

char *kl_strndup(const char *s, size_t n)
{
	char *q = kl_malloc(n + 1);

	if (!q)
		return NULL;
	memcpy(q, s, n);
	q[n] = 0;
	return q;
}

char *kl_strdup(const char *s)
{
	return kl_strndup(s, strlen(s));
}

int kl_array_grow(void *arrp, size_t *cap, size_t n, size_t elem, size_t first_cap)
{
	void **arr = arrp;
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	/* n may be far past cap (room asked for many items at once): double until it fits */
	ncap = *cap ? *cap : (first_cap ? first_cap : 1);
	while (ncap <= n) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem)
		return -ENOMEM;
	p = kl_realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

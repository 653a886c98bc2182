/*
 * Small helpers every subsystem uses: allocation, cleanup attributes,
 * growable buffers with a hard cap, hex, varints and error codes.
 */
#ifndef KEEL_UTIL_H
#define KEEL_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* ---- ids -------------------------------------------------------------- */

/*
 * A 32-byte object name: a keyed hash for blobs, SHA-256 of the stored bytes
 * for files (docs/FORMAT.md). Plain bytes, so every layer can carry one.
 */
#define KL_ID_LEN 32
struct kl_id {
	uint8_t b[KL_ID_LEN];
};

/* ---- errors ---------------------------------------------------------- */

/*
 * Domain errors, returned negated like -errno. Numbered from 1000 so they
 * never collide with errno values.
 */
enum kl_error {
	KL_EUSAGE = 1000, /* bad command line or option value */
	KL_EBADPASS,	  /* no key file opens with this passphrase */
	KL_ECORRUPT,	  /* MAC failure, bad format, hash mismatch */
	KL_ENOREPO,	  /* no repository at that location */
	KL_EEXIST_REPO,	  /* a repository already exists there */
	KL_EVERSION,	  /* repository format newer than this program */
	KL_ENOTFOUND,	  /* snapshot, path or blob not found */
	KL_EPARTIAL,	  /* completed, but some inputs could not be read */
	KL_ELOCKED,	  /* repository locked by another process */
	KL_EREMOTE,	  /* storage service error */
	KL_ECMD,	  /* a child command failed */
	KL_EVERIFY,	  /* restored data differs from the snapshot */
	KL_EINTERRUPTED,  /* stopped by a signal */
	KL_ECHECK,	  /* check found problems */
	KL_EAPPENDONLY,	  /* the storage only allows adding objects */
	KL_EOBJLOCKED,	  /* object under retention (S3 Object Lock): not deleted */
	KL_ELOCKLEFT,	  /* done, but our own lock object could not be removed */
	KL_EOUTCLOSED,	  /* the reader of our output went away (EPIPE): a quiet exit */
	KL_EDBCONNECT,	  /* cannot connect to the database server */
	KL_EDBSERVER,	  /* the database server refused or broke off the operation */
	KL_ETARGET,	  /* a job missed its RPO or RTO target (keel status) */
	KL_EDBGAP,	  /* a database's log has a gap (keel db check) */
};

/* Message for a negative code (errno or kl_error). Never NULL. */
const char *kl_strerror(int r);

/*
 * Detail the caller lacks (which object, which path) goes once into an
 * error buffer; the first failure's message is kept, as curl's failf().
 */
struct kl_err {
	int code;
	int claimed; /* set atomically by the first kl_fail: worker threads may race */
	char msg[512];
};

/* Records the message if none is there yet (thread-safe). Returns r. */
int kl_fail(struct kl_err *e, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kl_err_clear(struct kl_err *e);

#ifdef NDEBUG
#define KL_NEVER(x) (x)
#else
#include <assert.h>
#define KL_NEVER(x) (assert(!(x)), (x))
#endif

/* ---- pause points for tests (src/util/testhook.c) ------------------- */

#ifdef KL_TESTING
void kl_test_point(const char *name);
#else
#define kl_test_point(name) ((void)0)
#endif

/* ---- parsing (src/util/parse.c) -------------------------------------- */

/*
 * A percentage from 0 to 100 as "N", "N%", "N.F" or "N.F%" (decimal digits
 * only: no sign, no spaces, no exponent), in *ret as per mille (tenths of a
 * percent), rounded to the nearest; a value above zero gives at least 1.
 * Returns 0, or -KL_EUSAGE for anything else (then *ret is unchanged).
 */
int kl_parse_percent(const char *s, unsigned *ret);

/*
 * A decimal number from min to max (digits only: no sign, no spaces), or a
 * size with an optional binary unit: "4096", "10K", "10M", "1G", "2T", the
 * unit's letter either case and followed by nothing, "B", "iB" or "b"
 * ("10MiB"). Returns 0, or -KL_EUSAGE (then *ret is unchanged).
 */
int kl_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
int kl_parse_size(const char *s, uint64_t *ret);

/* ---- allocation and cleanup ---------------------------------------- */

void *kl_malloc(size_t n);
void *kl_calloc(size_t n, size_t size);
void *kl_realloc(void *p, size_t n);
char *kl_strdup(const char *s);
char *kl_strndup(const char *s, size_t n);
void *kl_memdup(const void *p, size_t n);
void kl_free(void *p);
/*
 * Makes room for element n (0-based) in a growable array: when n >= *cap,
 * doubles *cap (first: first_cap) until it exceeds n and reallocates
 * *(void **)arrp.
 * Returns 0 or -ENOMEM (the array is unchanged then).
 */
int kl_array_grow(void *arrp, size_t *cap, size_t n, size_t elem, size_t first_cap);
/* Allocation failure injection for tests: fail the Nth allocation (0 = off). */
void kl_alloc_fail_after(long n);
/* True while the failure kl_alloc_fail_after() set has not happened: a sweep's end. */
bool kl_alloc_fail_pending(void);

static inline void kl_freep(void *p)
{
	kl_free(*(void **)p);
}
static inline void kl_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(kl_freep)
#define _cleanup_close_ _cleanup_(kl_closep)

#define KL_TAKE_PTR(p)                                                                             \
	({                                                                                         \
		__typeof__(p) _ptr_ = (p);                                                         \
		(p) = NULL;                                                                        \
		_ptr_;                                                                             \
	})
#define KL_TAKE_FD(fd)                                                                             \
	({                                                                                         \
		int _fd_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_fd_;                                                                              \
	})

#define KL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KL_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- buffers ---------------------------------------------------------- */

/*
 * Growable byte buffer. data is never NULL after init and always
 * NUL-terminated (the NUL is not counted in len). Growing beyond max
 * returns -E2BIG, so a length read from untrusted input can never make us
 * allocate without bound.
 */
struct kl_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
};

#define KL_BUF_MAX_DEFAULT ((size_t)1 << 30)
#define KL_BUF_INIT(m)                                                                             \
	{                                                                                          \
		.data = (uint8_t *)kl_buf_empty_, .len = 0, .cap = 0, .max = (m)                   \
	}
extern const char kl_buf_empty_[1];

void kl_buf_init(struct kl_buf *b, size_t max);
void kl_buf_release(struct kl_buf *b);		 /* frees, back to empty */
void kl_buf_clear(struct kl_buf *b);		 /* len = 0, keeps memory */
int kl_buf_grow(struct kl_buf *b, size_t extra); /* ensure room for extra more */
int kl_buf_add(struct kl_buf *b, const void *p, size_t n);
int kl_buf_addstr(struct kl_buf *b, const char *s);
int kl_buf_addch(struct kl_buf *b, uint8_t c);
int kl_buf_addf(struct kl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kl_buf_setlen(struct kl_buf *b, size_t len); /* len <= cap required */
uint8_t *kl_buf_detach(struct kl_buf *b, size_t *len_ret);
static inline void kl_buf_releasep(struct kl_buf *b)
{
	kl_buf_release(b);
}
#define _cleanup_buf_ _cleanup_(kl_buf_releasep)

/* ---- hex -------------------------------------------------------------- */

void kl_hex_encode(const uint8_t *in, size_t n, char *out);    /* out: 2n+1 bytes */
int kl_hex_decode(const char *in, size_t n_out, uint8_t *out); /* exact length */

/* ---- varints (unsigned LEB128) --------------------------------------- */

int kl_varint_put(struct kl_buf *b, uint64_t v);
/* Returns bytes consumed (>0) or -KL_ECORRUPT. */
int kl_varint_get(const uint8_t *p, size_t n, uint64_t *ret);

/* ---- little-endian ---------------------------------------------------- */

static inline void kl_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}
static inline uint32_t kl_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void kl_put_le64(uint8_t *p, uint64_t v)
{
	kl_put_le32(p, (uint32_t)v);
	kl_put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t kl_get_le64(const uint8_t *p)
{
	return (uint64_t)kl_get_le32(p) | (uint64_t)kl_get_le32(p + 4) << 32;
}

/* ---- time ------------------------------------------------------------- */

/*
 * int64_t, as kl_time_*_ns are: a count of seconds times KL_NSEC_PER_SEC
 * is computed in 64 bits whatever the type of the count.
 */
#define KL_NSEC_PER_SEC ((int64_t)1000000000)
#define KL_NSEC_PER_MSEC ((int64_t)1000000)
#define KL_SEC_PER_DAY 86400

int64_t kl_time_now_ns(void);  /* CLOCK_REALTIME */
int64_t kl_time_mono_ns(void); /* CLOCK_MONOTONIC */
/* "2026-11-25T18:50:51.123456789Z" style (UTC, seconds precision if prec=0) */
void kl_time_format_utc(int64_t ns, char out[40]);
void kl_time_format_local(int64_t ns, char out[40]);
/*
 * File times are (seconds, nanoseconds) pairs, which int64 nanoseconds
 * cannot hold beyond 1677..2262: format them from the seconds.
 */
void kl_time_format_local_sec(int64_t sec, char out[40]);
/* The whole second at or before ns (toward minus infinity, unlike division). */
int64_t kl_time_floor_sec(int64_t ns);

#endif

/*
 * The S3 backend (src/backend/s3*.c) and the pieces of it that tests and
 * fuzzers reach on their own: location parsing, credentials files, AWS
 * Signature Version 4, and the strict XML reader for ListObjectsV2 and
 * error responses. docs/S3.md describes the user-facing side.
 */
#ifndef KEEL_S3_H
#define KEEL_S3_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/backend.h"
#include "keel/format.h"
#include "keel/util.h"

/*
 * Opens "s3:http[s]://host[:port]/bucket[/prefix]" (also "s3:host/bucket",
 * which means https). Reads its settings from the environment and keel's
 * configuration file (docs/S3.md) and does no network I/O: a wrong
 * endpoint or key shows on first use. Returns 0, -KL_EUSAGE for a
 * malformed location, setting or configuration file or missing
 * credentials (what to do in err, which may be NULL), -ENOMEM.
 */
int kl_backend_s3_open(const char *location, struct kl_err *err, struct kl_backend **ret);

/* ---- Object Lock (docs/S3.md) -------------------------------------------- */

/*
 * Object Lock and listings with times are the backend's optional
 * operations (backend.h: kl_backend_prepare_object_lock(),
 * kl_backend_set_object_lock(), kl_backend_list_mtime()). An object
 * written at mtime with the repository's lock_days is kept until about
 * mtime + lock_days; the exact date, from this machine's clock at the
 * PUT, is kl_backend_s3_retain_until().
 */

/*
 * When the retention of one object ends, read from the object (one HEAD):
 * *ret_ns is nanoseconds since the epoch, 0 when it has none, INT64_MAX
 * under a legal hold. Returns 0, -ENOENT, -EOPNOTSUPP when b is not an S3
 * backend, or an error of the service.
 */
int kl_backend_s3_retain_until(struct kl_backend *b, enum kl_obj_type t, const char *name,
			       int64_t *ret_ns);

/* ---- locations ---------------------------------------------------------- */

struct kl_s3_location {
	bool https;
	char *host;   /* as written, with [] for IPv6 literals; owned */
	char *port;   /* digits, or NULL for the scheme's default; owned */
	char *bucket; /* owned */
	char *prefix; /* "" or "a/b" without leading or trailing '/'; owned */
};

/*
 * Parses the part after "s3:". Rejects empty path components, "." and
 * "..", control characters, and bucket names S3 would refuse.
 * Returns 0, -KL_EUSAGE or -ENOMEM; on success release with
 * kl_s3_location_release().
 */
int kl_s3_location_parse(const char *s, struct kl_s3_location *ret);
void kl_s3_location_release(struct kl_s3_location *l);

/* ---- credentials ---------------------------------------------------------- */

struct kl_s3_creds {
	char *access_key; /* owned */
	char *secret_key; /* owned; wiped by kl_s3_creds_release() */
	char *token;	  /* session token or NULL; owned */
};

/*
 * Finds the [profile] section of an AWS shared credentials file (the text
 * of ~/.aws/credentials) and reads aws_access_key_id,
 * aws_secret_access_key and aws_session_token from it.
 * Returns 0, -ENOENT when the profile or one of the two keys is missing,
 * -ENOMEM.
 */
int kl_s3_creds_parse(const char *text, size_t n, const char *profile, struct kl_s3_creds *ret);
void kl_s3_creds_release(struct kl_s3_creds *c);

/* ---- keel's configuration file (docs/S3.md) ---------------------------- */

/*
 * What keel's configuration file says about one S3 location: the
 * settings of every section that matches it, the most specific section
 * winning per setting ("[s3]" matches every location, "[s3 "URL"]" a
 * location that is URL or lies below it). The key pair and token are
 * taken together, from the most specific matching section that has them.
 */
struct kl_s3_conf {
	struct kl_s3_creds creds; /* access_key NULL: no section gave a key pair */
	unsigned creds_line;	  /* line of that section's header */
	char *creds_section;	  /* that section's header without brackets; owned */
	char *region;		  /* owned, NULL when unset; so are the next two */
	char *storage_class;
	char *ca_file;
	int virtual_host;     /* -1 unset, 0 path style, 1 virtual-hosted */
	unsigned connections; /* 0 when unset; so are the next two */
	unsigned retries;
	unsigned timeout;
	bool has_secret; /* some section, matching or not, holds a secret or token */
};

/*
 * Parses the text of a configuration file for the repository at location
 * ("s3:..."; NULL matches no section, to check a file alone). Strict:
 * unknown sections or settings, malformed values, a key without its
 * secret, control characters are refused with -KL_EUSAGE and a message
 * "line N: ..." in err that never quotes a value. Returns 0, -KL_EUSAGE
 * or -ENOMEM; release *ret with kl_s3_conf_release() in every case.
 */
int kl_s3_conf_parse(const char *text, size_t n, const char *location, struct kl_s3_conf *ret,
		     struct kl_err *err);
void kl_s3_conf_release(struct kl_s3_conf *c);

/*
 * How specific a section's location pattern is for a location: -1 when
 * it does not match, else the length of the normalized pattern. Both are
 * normalized first: "s3:" dropped, "https://" added to the short form,
 * scheme and host in lower case, trailing '/' dropped. A pattern matches
 * the location it names and every location below it, at a '/'.
 */
int kl_s3_conf_match(const char *pattern, const char *location);

/*
 * Reads keel's configuration file: $KEEL_CONFIG, else
 * $XDG_CONFIG_HOME/keel/config, else $HOME/.config/keel/config. A missing
 * file is no error (all unset) unless KEEL_CONFIG names it. A file that
 * holds a secret must belong to the user (or root) and be unreadable by
 * group and others, as ssh wants of its keys. *path_ret gets the path
 * read or, when missing, looked for (the caller's to free; NULL when no
 * HOME is known). Returns 0, -KL_EUSAGE
 * (message in err), -ENOMEM or another -errno of reading it.
 */
int kl_s3_conf_load(const char *location, struct kl_s3_conf *ret, char **path_ret,
		    struct kl_err *err);

/* ---- AWS Signature Version 4 --------------------------------------------- */

struct kl_s3_header {
	const char *name; /* any case; signed in lower case */
	const char *value;
};

struct kl_s3_sign_input {
	const char *method;
	const char *path;  /* canonical URI: the URI-encoded absolute path, as sent */
	const char *query; /* the query string as sent (encoded), "" or NULL for none */
	const struct kl_s3_header *headers; /* every header to sign, host and x-amz-date too */
	size_t n_headers;
	const char *payload_hash; /* lower-case hex SHA-256 of the body */
	const char *amz_date;	  /* "YYYYMMDDTHHMMSSZ" */
	const char *region;
	const char *service; /* "s3" */
	const char *access_key;
	const char *secret_key;
};

/*
 * Computes the Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=...,SignedHeaders=...,Signature=...".
 * creq, when not NULL, receives the canonical request (for tests and
 * debugging). Returns 0, -EINVAL for malformed input (a header name twice,
 * too many headers or parameters), -ENOMEM.
 */
int kl_s3_sign(const struct kl_s3_sign_input *in, struct kl_buf *auth, struct kl_buf *creq);

#define KL_S3_SECRET_MAX 512 /* bytes of a secret access key */

/*
 * The derived key HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service),
 * "aws4_request"). Returns 0, or -EINVAL for a secret over KL_S3_SECRET_MAX.
 */
int kl_s3_signing_key(const char *secret, const char *date8, const char *region,
		      const char *service, uint8_t out[32]);

/* Sorts "a=1&b&c=2" into SigV4's canonical query ("b" becomes "b="). Returns 0 or -EINVAL. */
int kl_s3_canonical_query(const char *query, struct kl_buf *out);

/* Appends s URI-encoded as SigV4 says: unreserved bytes kept, '/' kept if keep_slash. */
int kl_s3_uri_encode(struct kl_buf *out, const char *s, size_t n, bool keep_slash);

void kl_s3_sha256_hex(const void *data, size_t n, char out[65]);
/* base64 of the MD5 digest, the value of a Content-MD5 header */
void kl_s3_md5_base64(const void *data, size_t n, char out[25]);
/* lower-case hex of the MD5 digest, what S3 returns as a single-part PUT's ETag */
void kl_s3_md5_hex(const void *data, size_t n, char out[33]);

/* ---- XML responses -------------------------------------------------------- */

#define KL_S3_KEY_MAX 1024    /* S3's limit on key length, in bytes */
#define KL_S3_TOKEN_MAX 4096  /* continuation tokens we accept */
#define KL_S3_PAGE_MAX 100000 /* entries in one listing page */

struct kl_s3_object {
	char *key; /* decoded, NUL-free, 1..KL_S3_KEY_MAX bytes; owned */
	uint64_t size;
	int64_t mtime_ns; /* LastModified, ns since the epoch; 0 when absent or unreadable */
};

struct kl_s3_list {
	struct kl_s3_object *objs;
	size_t n, cap;
	bool truncated;	  /* IsTruncated was "true" */
	char *next_token; /* NextContinuationToken, decoded, or NULL; owned */
};

/*
 * Reads a ListObjectsV2 response (root element ListBucketResult): every
 * Contents' Key and Size, IsTruncated and NextContinuationToken; other
 * elements are skipped. Strict: malformed XML, DOCTYPE, CDATA, unknown
 * entities, a Contents without exactly one Key and one Size, sizes that are
 * not decimal or overflow, and anything past the limits above are refused.
 * Returns 0, -KL_ECORRUPT or -ENOMEM; *ret is zeroed first and released on
 * failure.
 */
int kl_s3_list_parse(const void *xml, size_t n, struct kl_s3_list *ret);
void kl_s3_list_release(struct kl_s3_list *l);

struct kl_s3_error {
	char code[64];	   /* e.g. "NoSuchBucket"; "" when absent */
	char message[256]; /* truncated to fit */
	char region[64];   /* Region, when the server names the right one */
};

/* Reads an <Error> body. Returns 0 or -KL_ECORRUPT (then *ret is all empty). */
int kl_s3_error_parse(const void *xml, size_t n, struct kl_s3_error *ret);

struct kl_s3_lock_config {
	bool enabled;	       /* ObjectLockEnabled is "Enabled" */
	char default_mode[16]; /* the bucket's default retention, "" when none */
	uint32_t default_days; /* Years counted as 365 days */
};

/* Reads a GetObjectLockConfiguration answer. Returns 0 or -KL_ECORRUPT. */
int kl_s3_lock_config_parse(const void *xml, size_t n, struct kl_s3_lock_config *ret);

/*
 * Parses an ISO 8601 time in UTC as S3 writes it ("2026-11-27T00:47:23Z",
 * with any number of fraction digits). Returns 0 and nanoseconds since
 * the epoch, or -EINVAL.
 */
int kl_s3_parse_time(const char *s, size_t n, int64_t *ret_ns);

#endif

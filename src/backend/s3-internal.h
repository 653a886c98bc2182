/*
 * Shared by the files of the S3 backend: s3.c (keys, stat, get, put, del,
 * create, opening), s3-list.c (listings), s3-lock.c (Object Lock),
 * s3-settings.c (settings and credentials), s3-http.c (signed requests
 * over libcurl with retries) and s3-readahead.c. Not for use elsewhere.
 */
#ifndef KEEL_S3_INTERNAL_H
#define KEEL_S3_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>

#include "keel/s3.h"

struct s3_conn;

#define RA_SLOTS 8  /* read-ahead windows kept (s3-readahead.c) */
#define RA_HINTS 32 /* packs whose last read position is remembered */

struct s3_ra_slot {
	char name[80]; /* the pack */
	uint64_t off;  /* where the window starts in it */
	uint8_t *data; /* NULL: an empty slot */
	size_t len;
	uint64_t used; /* for least-recently-used replacement */
};

struct s3_ra_hint {
	char name[80];
	uint64_t end; /* where the last read ended */
	uint64_t used;
};

struct s3_ra {
	pthread_mutex_t lock;
	struct s3_ra_slot slot[RA_SLOTS];
	struct s3_ra_hint hint[RA_HINTS];
	uint64_t clock;
};

struct s3 {
	struct kl_backend b;
	struct kl_s3_location loc;
	struct kl_s3_creds creds;
	char *creds_source; /* for messages: where the key pair came from */
	char *region;
	char *ca_file;	     /* NULL: the system's CA store */
	char *storage_class; /* x-amz-storage-class for packs, or NULL */
	char *base_url;	   /* "https://host:port" or, virtual-hosted, "https://bucket.host:port" */
	char *host_header; /* what the Host header says, signed */
	char *path_base;   /* "/bucket" (path style, encoded) or "" (virtual-hosted) */
	char *endpoint;	   /* for messages: "http://host:port/bucket" */
	bool virtual_host;
	bool debug;
	unsigned max_attempts;	     /* per request, the first included */
	unsigned retry_delay_ms;     /* the first back-off step */
	unsigned max_keys;	     /* ListObjectsV2 page size */
	unsigned max_conns;	     /* requests in flight at once */
	long timeout_s;		     /* an attempt without progress for this long fails */
	enum kl_lock_mode lock_mode; /* Object Lock for new objects; KL_LOCK_NONE: none */
	uint32_t lock_days;
	size_t ra_window; /* read-ahead window in bytes, 0: off */
	struct s3_ra ra;

	pthread_mutex_t lock; /* guards the pool */
	pthread_cond_t cv;
	struct s3_conn *idle;
	unsigned n_conns;
};

/* One S3 request, with what came back. */
struct s3_req {
	const char *method; /* GET PUT HEAD DELETE */
	const char *key;    /* full object key, NULL for the bucket itself */
	const char *query;  /* encoded, or NULL */
	const void *body;   /* PUT: sent as is; NULL and 0 for an empty body */
	size_t body_len;
	bool range; /* GET bytes off..off+len-1 (len 0: to the end) */
	uint64_t off, len;
	bool if_none_match; /* PUT only if the key does not exist (412 otherwise) */
	const char *storage_class;
	const char *lock_mode;	/* x-amz-object-lock-mode, or NULL */
	const char *lock_until; /* x-amz-object-lock-retain-until-date */
	bool bucket_lock;	/* CreateBucket with x-amz-bucket-object-lock-enabled */
	struct kl_buf *out;	/* a 2xx body is appended here; NULL: dropped */

	/* results of the last attempt */
	long status; /* 0 when no response came */
	bool has_length;
	uint64_t length; /* Content-Length */
	bool has_range;	 /* a Content-Range "bytes FIRST-LAST/..." came */
	uint64_t range_first, range_last;
	char etag[80];		 /* without quotes */
	char bucket_region[64];	 /* x-amz-bucket-region */
	char version_id[128];	 /* x-amz-version-id */
	bool locked_mode;	 /* x-amz-object-lock-mode came */
	bool legal_hold;	 /* x-amz-object-lock-legal-hold: ON */
	int64_t retain_until_ns; /* x-amz-object-lock-retain-until-date, 0 when none */
	struct kl_s3_error err;	 /* the error body's Code, Message, Region */
	unsigned attempts;
	bool maybe_applied; /* an earlier attempt may have reached the server */

	/* transfer state, private to s3-http.c */
	CURL *h;
	size_t out_base, sent;
	uint64_t seen;
	int cb_err;
	struct kl_buf errbody;
	char curl_err[CURL_ERROR_SIZE];
};

/*
 * Runs q with retries: connection failures, timeouts, truncated bodies,
 * 500, 502, 503, 504 and the codes S3 marks retryable (SlowDown,
 * RequestTimeout, InternalError, BadDigest) are retried with exponential
 * back-off and jitter, up to s->max_attempts. Returns 0 when a response
 * came (look at q->status), or a negative error when none did (its detail
 * recorded with kl_backend_fail()).
 */
int kl_s3_request_(struct s3 *s, struct s3_req *q);
void kl_s3_req_release_(struct s3_req *q);

/*
 * Turns a response that is not what the caller wanted into an error code,
 * recording the detail a user must act on (403, missing bucket, wrong
 * region, server errors) with kl_backend_fail(). what names the object.
 */
int kl_s3_http_error_(struct s3 *s, struct s3_req *q, const char *what);

/* s3.c: the key of an object (-EINVAL for a bad name or a key too long) */
int kl_s3_obj_key_(const struct s3 *s, enum kl_obj_type t, const char *name, char *out, size_t n);
/*
 * A HEAD of key (NULL: the bucket) into q; a 400 or 403 learns its error
 * code from a GET of one byte. Returns as kl_s3_request_() does.
 */
int kl_s3_head_(struct s3 *s, const char *key, struct s3_req *q);
/* Creates the bucket, with Object Lock enabled if lock. */
int kl_s3_make_bucket_(struct s3 *s, bool lock);

/* The vtable's operations that live outside s3.c, and the one they share. */
int kl_s3_stat_(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t *size_ret);
int kl_s3_list_(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud);
int kl_s3_list_mtime_(struct kl_backend *b, enum kl_obj_type t, kl_list_mtime_cb cb,
		      void *userdata);
int kl_s3_prepare_object_lock_(struct kl_backend *b);
void kl_s3_set_object_lock_(struct kl_backend *b, enum kl_lock_mode mode, uint32_t days);

/* s3-settings.c: fill s from the environment, conf and the credentials file */
int kl_s3_load_settings_(struct s3 *s, const struct kl_s3_conf *conf);
int kl_s3_load_creds_(struct s3 *s, struct kl_s3_conf *conf, const char *conf_path);

void kl_s3_pool_free_(struct s3 *s);

/*
 * Serves a ranged read of a pack from a read-ahead window, fetching one
 * when the reader moves sequentially through the pack. Returns 1 when out
 * got the bytes, 0 when the caller must read them itself, or a negative
 * error (-KL_ECORRUPT when the pack is shorter than asked).
 */
int kl_s3_ra_get_(struct s3 *s, const char *name, const char *key, uint64_t off, uint64_t len,
		  struct kl_buf *out);
void kl_s3_ra_free_(struct s3 *s);

#endif

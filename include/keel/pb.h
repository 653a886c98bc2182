/*
 * Protobuf wire format, the subset keel's messages use (docs/FORMAT.md):
 * varints, zigzag, length-delimited fields. Pure bytes, no keel types
 * beyond struct kl_buf and struct kl_id, so that every layer that encodes a
 * message (format for repository objects, crypto for key files) shares one
 * reader and one writer.
 */
#ifndef KEEL_PB_H
#define KEEL_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/util.h"

enum kl_pb_wire { KL_PB_VARINT = 0, KL_PB_I64 = 1, KL_PB_LEN = 2, KL_PB_I32 = 5 };

int kl_pb_put_uint(struct kl_buf *b, uint32_t field, uint64_t v);
int kl_pb_put_sint(struct kl_buf *b, uint32_t field, int64_t v); /* zigzag */
int kl_pb_put_bytes(struct kl_buf *b, uint32_t field, const void *p, size_t n);
int kl_pb_put_str(struct kl_buf *b, uint32_t field, const char *s); /* NULL: nothing written */

struct kl_pb_reader {
	const uint8_t *p;
	size_t n;
};
struct kl_pb_field {
	uint32_t num;
	enum kl_pb_wire wire;
	uint64_t v;	  /* VARINT, I64, I32 */
	const uint8_t *p; /* LEN */
	size_t len;
};
/* Returns 1 and fills f, 0 at the end, -KL_ECORRUPT on malformed input. */
int kl_pb_next(struct kl_pb_reader *r, struct kl_pb_field *f);
int64_t kl_pb_unzigzag(uint64_t v);
/* Copies a LEN field into a new NUL-terminated string; rejects embedded NUL. */
int kl_pb_strdup(const struct kl_pb_field *f, char **ret);

/* Highest field number a scan counts; higher ones are only skipped. */
#define KL_PB_SCAN_FIELDS 64

/* Result of a first pass over a message. */
struct kl_pb_scan {
	size_t count[KL_PB_SCAN_FIELDS]; /* occurrences of each field number */
	uint64_t v1;			 /* value of field 1 if it is a varint */
	bool v1_varint;			 /* field 1 was seen with wire type VARINT */
};

/*
 * Parses a whole message once without interpreting it: checks the wire
 * structure and counts fields. Returns 0 or -KL_ECORRUPT.
 */
int kl_pb_scan(const uint8_t *p, size_t n, struct kl_pb_scan *ret);

/*
 * Checks a scanned message's version field (field 1, uint32): exactly once
 * and equal to want. Returns 0, -KL_EVERSION if it is newer, -KL_ECORRUPT
 * if it is missing, zero, duplicated or of the wrong wire type.
 */
int kl_pb_check_version(const struct kl_pb_scan *s, uint32_t want);

/*
 * Marks field num of a message as seen; -KL_ECORRUPT if it already was.
 * Singular fields may appear only once in keel's messages.
 */
static inline int kl_pb_once(uint64_t *seen, uint32_t num)
{
	uint64_t bit = (uint64_t)1 << (num & 63);

	if (*seen & bit)
		return -KL_ECORRUPT;
	*seen |= bit;
	return 0;
}

/* Typed reads of a field; -KL_ECORRUPT on the wrong wire type or range. */
int kl_pb_get_u32(const struct kl_pb_field *f, uint32_t *ret);
int kl_pb_get_u64(const struct kl_pb_field *f, uint64_t *ret);
int kl_pb_get_s64(const struct kl_pb_field *f, int64_t *ret);
int kl_pb_get_s32(const struct kl_pb_field *f, int32_t *ret);
int kl_pb_get_bool(const struct kl_pb_field *f, bool *ret);
int kl_pb_get_id(const struct kl_pb_field *f, struct kl_id *ret); /* exactly 32 bytes */
/* A LEN field's bytes, copied; empty gives NULL and 0. */
int kl_pb_get_bytes(const struct kl_pb_field *f, uint8_t **ret, size_t *len_ret);

/* Writers that omit the field when it holds its default value. */
int kl_pb_put_uint_nz(struct kl_buf *b, uint32_t field, uint64_t v);
int kl_pb_put_sint_nz(struct kl_buf *b, uint32_t field, int64_t v);
int kl_pb_put_bytes_nz(struct kl_buf *b, uint32_t field, const void *p, size_t n);

/*
 * Length-delimited submessages written in place: begin writes the tag and
 * reserves one length byte, end stores the body's length, moving the body
 * if the length needs more than one byte.
 */
int kl_pb_begin(struct kl_buf *b, uint32_t field, size_t *mark_ret);
int kl_pb_end(struct kl_buf *b, size_t mark);

#endif

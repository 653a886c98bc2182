/*
 * Helpers shared by the encoders and decoders in src/format/. Not part of
 * the public API: nothing outside src/format/ includes this.
 *
 * The caps below bound what a decoder will allocate for counts read from
 * untrusted bytes; docs/FORMAT.md section 11 lists them. Encoders enforce
 * the same rules as decoders, so keel never writes something it would
 * refuse to read back.
 */
#ifndef KEEL_FORMAT_PB_INTERNAL_H
#define KEEL_FORMAT_PB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/format.h"

#define KL_FORMAT_VERSION 1 /* of Tree, Snapshot, PackHeader and IndexFile */

#define KL_TREE_MAX_NODES ((size_t)1 << 20)
#define KL_NODE_MAX_XATTRS ((size_t)1 << 16)
#define KL_XATTR_VALUE_MAX ((size_t)64 << 10)	  /* Linux XATTR_SIZE_MAX */
#define KL_SNAPSHOT_MAX_STRINGS ((size_t)1 << 20) /* each of paths, tags, excludes */
#define KL_PACK_MAX_BLOBS ((size_t)1 << 24)
#define KL_INDEX_MAX_PACKS ((size_t)1 << 24)
#define KL_INDEX_MAX_SUPERSEDES ((size_t)1 << 20)
#define KL_BLOB_RAW_MAX ((uint32_t)64 << 20)

/*
 * Smallest valid encodings of repeated submessages, tag and length
 * included. A count of n entries in m bytes with n * min > m means some
 * entry is too short to be valid, so decoders reject it before allocating
 * n structs.
 */
#define KL_PB_MIN_NODE 7   /* tag, len, name (3 bytes), type (2 bytes) */
#define KL_PB_MIN_BLOB 40  /* tag, len, id (34), type (2), length (2) */
#define KL_PB_MIN_PACK 36  /* tag, len, pack id (34) */
#define KL_PB_MIN_ID 34	   /* tag, len, 32 bytes */
#define KL_PB_MIN_STRING 2 /* tag, len */

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

/* BlobEntry, shared by pack headers and index files. */
int kl_blob_entry_encode(const struct kl_blob_entry *e, uint32_t field, struct kl_buf *out);
int kl_blob_entry_decode(const uint8_t *p, size_t n, struct kl_blob_entry *ret);
/* Checks one entry's fields (type, compression, lengths). */
bool kl_blob_entry_valid(const struct kl_blob_entry *e);
/*
 * Checks entries are valid, in increasing offset order without overlap,
 * and end within data_len (UINT64_MAX: no bound, as offset + length of a
 * uint32 pair is always below it).
 */
bool kl_blob_entries_valid(const struct kl_blob_entry *e, size_t n, uint64_t data_len);
/* Decodes the repeated BlobEntry field `field` of a message into h. */
int kl_blob_entries_decode(const uint8_t *p, size_t n, uint32_t field, size_t count,
			   struct kl_pack_header *h);

#endif

/*
 * Limits and helpers shared by the encoders and decoders in src/format/. Not part of
 * the public API: nothing outside src/format/ includes this.
 *
 * The caps below bound what a decoder will allocate for counts read from
 * untrusted bytes; docs/FORMAT.md section 11 lists them. Encoders enforce
 * the same rules as decoders, so keel never writes something it would
 * refuse to read back.
 */
#ifndef KEEL_FORMAT_INTERNAL_H
#define KEEL_FORMAT_INTERNAL_H

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

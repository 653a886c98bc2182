/*
 * The slot of an inode in the open-addressing tables that backup
 * (backup-links.c) and restore (restore-links.c) keep of hard-linked files.
 */
#ifndef KEEL_OPS_LINK_HASH_H
#define KEEL_OPS_LINK_HASH_H

#include <stddef.h>
#include <stdint.h>

/* mask is the table's capacity, a power of two, minus one */
static inline size_t kl_link_hash(uint64_t dev, uint64_t ino, size_t mask)
{
	uint64_t h = (ino ^ (dev * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return (size_t)(h ^ (h >> 29)) & mask;
}

#endif

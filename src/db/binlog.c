/*
 * MariaDB's binary log, as the server sends it to a replica and as its
 * files hold it (docs/DATABASES.md, "MariaDB's binary log"): event
 * headers, the format description and rotate events, and the rules that
 * tell which events a replica receives belong to the file it follows.
 * Pure: bytes in, decisions out; fuzzed (fuzz/fuzz-binlog.c).
 */
#include <stdio.h>

#include "keel/db.h"

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* zlib's CRC-32 (polynomial 0xedb88320, reflected), as binlog_checksum = CRC32 uses */
static const uint32_t crc_tab[256] = {
	0x00000000, 0x77073096, 0xee0e612c, 0x990951ba, 0x076dc419, 0x706af48f, 0xe963a535,
	0x9e6495a3, 0x0edb8832, 0x79dcb8a4, 0xe0d5e91e, 0x97d2d988, 0x09b64c2b, 0x7eb17cbd,
	0xe7b82d07, 0x90bf1d91, 0x1db71064, 0x6ab020f2, 0xf3b97148, 0x84be41de, 0x1adad47d,
	0x6ddde4eb, 0xf4d4b551, 0x83d385c7, 0x136c9856, 0x646ba8c0, 0xfd62f97a, 0x8a65c9ec,
	0x14015c4f, 0x63066cd9, 0xfa0f3d63, 0x8d080df5, 0x3b6e20c8, 0x4c69105e, 0xd56041e4,
	0xa2677172, 0x3c03e4d1, 0x4b04d447, 0xd20d85fd, 0xa50ab56b, 0x35b5a8fa, 0x42b2986c,
	0xdbbbc9d6, 0xacbcf940, 0x32d86ce3, 0x45df5c75, 0xdcd60dcf, 0xabd13d59, 0x26d930ac,
	0x51de003a, 0xc8d75180, 0xbfd06116, 0x21b4f4b5, 0x56b3c423, 0xcfba9599, 0xb8bda50f,
	0x2802b89e, 0x5f058808, 0xc60cd9b2, 0xb10be924, 0x2f6f7c87, 0x58684c11, 0xc1611dab,
	0xb6662d3d, 0x76dc4190, 0x01db7106, 0x98d220bc, 0xefd5102a, 0x71b18589, 0x06b6b51f,
	0x9fbfe4a5, 0xe8b8d433, 0x7807c9a2, 0x0f00f934, 0x9609a88e, 0xe10e9818, 0x7f6a0dbb,
	0x086d3d2d, 0x91646c97, 0xe6635c01, 0x6b6b51f4, 0x1c6c6162, 0x856530d8, 0xf262004e,
	0x6c0695ed, 0x1b01a57b, 0x8208f4c1, 0xf50fc457, 0x65b0d9c6, 0x12b7e950, 0x8bbeb8ea,
	0xfcb9887c, 0x62dd1ddf, 0x15da2d49, 0x8cd37cf3, 0xfbd44c65, 0x4db26158, 0x3ab551ce,
	0xa3bc0074, 0xd4bb30e2, 0x4adfa541, 0x3dd895d7, 0xa4d1c46d, 0xd3d6f4fb, 0x4369e96a,
	0x346ed9fc, 0xad678846, 0xda60b8d0, 0x44042d73, 0x33031de5, 0xaa0a4c5f, 0xdd0d7cc9,
	0x5005713c, 0x270241aa, 0xbe0b1010, 0xc90c2086, 0x5768b525, 0x206f85b3, 0xb966d409,
	0xce61e49f, 0x5edef90e, 0x29d9c998, 0xb0d09822, 0xc7d7a8b4, 0x59b33d17, 0x2eb40d81,
	0xb7bd5c3b, 0xc0ba6cad, 0xedb88320, 0x9abfb3b6, 0x03b6e20c, 0x74b1d29a, 0xead54739,
	0x9dd277af, 0x04db2615, 0x73dc1683, 0xe3630b12, 0x94643b84, 0x0d6d6a3e, 0x7a6a5aa8,
	0xe40ecf0b, 0x9309ff9d, 0x0a00ae27, 0x7d079eb1, 0xf00f9344, 0x8708a3d2, 0x1e01f268,
	0x6906c2fe, 0xf762575d, 0x806567cb, 0x196c3671, 0x6e6b06e7, 0xfed41b76, 0x89d32be0,
	0x10da7a5a, 0x67dd4acc, 0xf9b9df6f, 0x8ebeeff9, 0x17b7be43, 0x60b08ed5, 0xd6d6a3e8,
	0xa1d1937e, 0x38d8c2c4, 0x4fdff252, 0xd1bb67f1, 0xa6bc5767, 0x3fb506dd, 0x48b2364b,
	0xd80d2bda, 0xaf0a1b4c, 0x36034af6, 0x41047a60, 0xdf60efc3, 0xa867df55, 0x316e8eef,
	0x4669be79, 0xcb61b38c, 0xbc66831a, 0x256fd2a0, 0x5268e236, 0xcc0c7795, 0xbb0b4703,
	0x220216b9, 0x5505262f, 0xc5ba3bbe, 0xb2bd0b28, 0x2bb45a92, 0x5cb36a04, 0xc2d7ffa7,
	0xb5d0cf31, 0x2cd99e8b, 0x5bdeae1d, 0x9b64c2b0, 0xec63f226, 0x756aa39c, 0x026d930a,
	0x9c0906a9, 0xeb0e363f, 0x72076785, 0x05005713, 0x95bf4a82, 0xe2b87a14, 0x7bb12bae,
	0x0cb61b38, 0x92d28e9b, 0xe5d5be0d, 0x7cdcefb7, 0x0bdbdf21, 0x86d3d2d4, 0xf1d4e242,
	0x68ddb3f8, 0x1fda836e, 0x81be16cd, 0xf6b9265b, 0x6fb077e1, 0x18b74777, 0x88085ae6,
	0xff0f6a70, 0x66063bca, 0x11010b5c, 0x8f659eff, 0xf862ae69, 0x616bffd3, 0x166ccf45,
	0xa00ae278, 0xd70dd2ee, 0x4e048354, 0x3903b3c2, 0xa7672661, 0xd06016f7, 0x4969474d,
	0x3e6e77db, 0xaed16a4a, 0xd9d65adc, 0x40df0b66, 0x37d83bf0, 0xa9bcae53, 0xdebb9ec5,
	0x47b2cf7f, 0x30b5ffe9, 0xbdbdf21c, 0xcabac28a, 0x53b39330, 0x24b4a3a6, 0xbad03605,
	0xcdd70693, 0x54de5729, 0x23d967bf, 0xb3667a2e, 0xc4614ab8, 0x5d681b02, 0x2a6f2b94,
	0xb40bbe37, 0xc30c8ea1, 0x5a05df1b, 0x2d02ef8d,
};

uint32_t kl_binlog_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	for (size_t i = 0; i < n; i++)
		crc = crc_tab[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

bool kl_binlog_checksum_ok(const uint8_t *p, size_t n)
{
	uint32_t crc;

	if (n < KL_BINLOG_HDR + 4)
		return false;
	if (p[4] == KL_BINLOG_FORMAT && (p[17] & KL_BINLOG_F_IN_USE)) {
		/* the server computes it with the in-use flag clear, which it clears on close */
		uint8_t b = (uint8_t)(p[17] & ~KL_BINLOG_F_IN_USE);

		crc = kl_binlog_crc32(0, p, 17);
		crc = kl_binlog_crc32(crc, &b, 1);
		crc = kl_binlog_crc32(crc, p + 18, n - 4 - 18);
	} else {
		crc = kl_binlog_crc32(0, p, n - 4);
	}
	return crc == le32(p + n - 4);
}

int kl_binlog_event_decode(const uint8_t *p, size_t n, struct kl_binlog_event *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (n < KL_BINLOG_HDR || n > KL_BINLOG_EVENT_MAX)
		return -KL_ECORRUPT;
	ret->timestamp = le32(p);
	ret->type = p[4];
	ret->server_id = le32(p + 5);
	ret->size = le32(p + 9);
	ret->log_pos = le32(p + 13);
	ret->flags = (uint16_t)(p[17] | p[18] << 8);
	return ret->size == n ? 0 : -KL_ECORRUPT;
}

/*
 * Body: binlog version (2 bytes, 4), server version (50), creation time
 * (4), header length (1, 19), one post-header length per event type, then
 * the checksum algorithm (1) and a checksum (4), whatever the algorithm.
 */
#define FD_MIN (KL_BINLOG_HDR + 2 + 50 + 4 + 1 + 1 + 4)
int kl_binlog_format_decode(const uint8_t *p, size_t n, uint8_t *alg_ret)
{
	struct kl_binlog_event ev;

	if (kl_binlog_event_decode(p, n, &ev) < 0 || ev.type != KL_BINLOG_FORMAT || n < FD_MIN ||
	    (p[KL_BINLOG_HDR] | p[KL_BINLOG_HDR + 1] << 8) != 4 ||
	    p[KL_BINLOG_HDR + 2 + 50 + 4] != KL_BINLOG_HDR)
		return -KL_ECORRUPT;
	*alg_ret = p[n - 5];
	if (*alg_ret > 1 && *alg_ret != 255) /* 255: undefined (a pre-checksum server) */
		return -KL_ECORRUPT;
	if (*alg_ret == 255)
		*alg_ret = 0;
	return 0;
}

int kl_binlog_rotate_decode(const uint8_t *p, size_t n, char *name, size_t size, uint64_t *pos_ret)
{
	struct kl_binlog_event ev;
	size_t len;

	if (kl_binlog_event_decode(p, n, &ev) < 0 || ev.type != KL_BINLOG_ROTATE ||
	    n < KL_BINLOG_HDR + 8 + 1)
		return -KL_ECORRUPT;
	/*
	 * A checksum ends it when the sender uses one; the server makes up
	 * rotate events with the replica's algorithm, not the file's, so the
	 * checksum itself says (names are [A-Za-z0-9._-]: a false match is
	 * one in 2^32 and gives a name that is then refused or unknown).
	 */
	len = n - KL_BINLOG_HDR - 8;
	if (n >= KL_BINLOG_HDR + 8 + 1 + 4 && kl_binlog_checksum_ok(p, n))
		len -= 4;
	if (len >= size)
		return -KL_ECORRUPT;
	memcpy(name, p + KL_BINLOG_HDR + 8, len);
	name[len] = 0;
	*pos_ret = le64(p + KL_BINLOG_HDR);
	return kl_db_binlog_name_valid(name) && strlen(name) == len ? 0 : -KL_ECORRUPT;
}

int kl_binlog_file_number(const char *name, uint32_t *ret)
{
	const char *dot = strrchr(name, '.');
	uint64_t v = 0;

	if (!dot || !dot[1])
		return -KL_ECORRUPT;
	for (const char *c = dot + 1; *c; c++) {
		if (*c < '0' || *c > '9')
			return -KL_ECORRUPT;
		v = v * 10 + (uint64_t)(*c - '0');
		if (v > UINT32_MAX - 1) /* the next file's number must fit too */
			return -KL_ECORRUPT;
	}
	*ret = (uint32_t)v;
	return 0;
}

int kl_binlog_follow_init(struct kl_binlog_follow *f, const char *file, uint64_t have)
{
	memset(f, 0, sizeof(*f));
	if (!kl_db_binlog_name_valid(file) || have < KL_BINLOG_MAGIC_LEN || have > UINT32_MAX ||
	    kl_binlog_file_number(file, &f->file_no) < 0)
		return -KL_ECORRUPT;
	snprintf(f->file, sizeof(f->file), "%s", file);
	f->have = have;
	return 0;
}

/* The server goes on with file at pos: the file followed is complete. */
static int next_file(struct kl_binlog_follow *f, const char *file, uint64_t pos)
{
	uint32_t no;

	if (kl_binlog_file_number(file, &no) < 0)
		return -KL_ECORRUPT;
	snprintf(f->next, sizeof(f->next), "%s", file);
	f->next_pos = pos;
	return KL_BINLOG_NEXT;
}

int kl_binlog_follow_step(struct kl_binlog_follow *f, const uint8_t *p, size_t n,
			  struct kl_binlog_event *ev)
{
	bool made_up;
	char name[KL_BINLOG_NAME_MAX + 1] = "";
	uint64_t pos = 0;
	uint8_t alg;

	if (kl_binlog_event_decode(p, n, ev) < 0)
		return -KL_ECORRUPT;
	made_up = ev->log_pos == 0 || (ev->flags & KL_BINLOG_F_ARTIFICIAL);
	if (ev->type == KL_BINLOG_HEARTBEAT)
		return KL_BINLOG_SKIP;
	if (ev->type == KL_BINLOG_FORMAT) {
		if (kl_binlog_format_decode(p, n, &alg) < 0)
			return -KL_ECORRUPT;
		f->alg = alg; /* a copy made up for a dump mid-file is the file's too */
	}
	if (ev->type == KL_BINLOG_ROTATE) {
		if (kl_binlog_rotate_decode(p, n, name, sizeof(name), &pos) < 0)
			return -KL_ECORRUPT;
		/* made up at the start of a dump (this file) or when the server goes on */
		if (made_up)
			return strcmp(name, f->file) ? next_file(f, name, pos) : KL_BINLOG_SKIP;
	}
	if (made_up)
		return KL_BINLOG_SKIP; /* the format description repeated for a dump mid-file */
	if (ev->log_pos <= f->have)
		return KL_BINLOG_SKIP; /* sent again */
	if (f->ended || (uint64_t)ev->log_pos != f->have + n)
		return -KL_ECORRUPT; /* a hole, or something after the file's end */
	f->have += n;
	if (ev->type == KL_BINLOG_STOP || ev->type == KL_BINLOG_ROTATE)
		f->ended = true;
	if (ev->type == KL_BINLOG_ROTATE && next_file(f, name, pos) < 0)
		return -KL_ECORRUPT;
	return KL_BINLOG_APPEND;
}

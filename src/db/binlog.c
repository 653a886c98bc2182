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

bool kl_binlog_checksum_ok(const uint8_t *p, size_t n)
{
	uint32_t crc;

	if (n < KL_BINLOG_HDR + 4)
		return false;
	if (p[4] == KL_BINLOG_FORMAT && (p[17] & KL_BINLOG_F_IN_USE)) {
		/* the server computes it with the in-use flag clear, which it clears on close */
		uint8_t b = (uint8_t)(p[17] & ~KL_BINLOG_F_IN_USE);

		crc = kl_crc32(0, p, 17);
		crc = kl_crc32(crc, &b, 1);
		crc = kl_crc32(crc, p + 18, n - 4 - 18);
	} else {
		crc = kl_crc32(0, p, n - 4);
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
	/* a rotate naming no valid next file is refused before anything changes */
	if (ev->type == KL_BINLOG_ROTATE && next_file(f, name, pos) < 0)
		return -KL_ECORRUPT;
	f->have += n;
	if (ev->type == KL_BINLOG_STOP || ev->type == KL_BINLOG_ROTATE)
		f->ended = true;
	return KL_BINLOG_APPEND;
}

/*
 * The PostgreSQL replication protocol's CopyData messages as bytes
 * (docs/DATABASES.md): what the server sends during START_REPLICATION
 * (pg-stream.c) and BASE_BACKUP (pg-backup.c). Pure functions of the
 * message: they check every length and copy nothing, so the callers
 * keep their own errors and a fuzz target (fuzz/fuzz-pg-msg.c) can
 * reach them without a server.
 */
#include <string.h>

#include "keel/db.h"

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int kl_pgm_stream_decode(const uint8_t *p, size_t n, struct kl_pgm_stream *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!n)
		return -KL_ECORRUPT;
	ret->type = p[0];
	switch (p[0]) {
	case 'w': /* start LSN, end of WAL, send time, WAL bytes */
		if (n < 25)
			return -KL_ECORRUPT;
		ret->start_lsn = get_be64(p + 1);
		ret->end_lsn = get_be64(p + 9);
		ret->send_time = (int64_t)get_be64(p + 17);
		ret->data = p + 25;
		ret->len = n - 25;
		return 0;
	case 'k': /* end of WAL, send time, reply requested */
		if (n < 18)
			return -KL_ECORRUPT;
		ret->end_lsn = get_be64(p + 1);
		ret->send_time = (int64_t)get_be64(p + 9);
		ret->reply = p[17] != 0;
		return 0;
	default:
		return -KL_ECORRUPT;
	}
}

int kl_pgm_backup_decode(const uint8_t *p, size_t n, struct kl_pgm_backup *ret)
{
	const uint8_t *end, *loc;

	memset(ret, 0, sizeof(*ret));
	if (!n)
		return -KL_ECORRUPT;
	ret->type = p[0];
	p++;
	n--;
	switch (ret->type) {
	case 'n': /* archive name, tablespace location: both NUL-terminated */
		end = memchr(p, 0, n);
		if (!end)
			return -KL_ECORRUPT;
		loc = end + 1;
		if (!memchr(loc, 0, n - (size_t)(loc - p)))
			return -KL_ECORRUPT;
		ret->name = (const char *)p;
		ret->location = (const char *)loc;
		return 0;
	case 'd':
		ret->data = p;
		ret->len = n;
		return 0;
	case 'p':
		if (n != 8)
			return -KL_ECORRUPT;
		ret->progress = get_be64(p);
		return 0;
	case 'm':
		return 0;
	default:
		return -KL_ECORRUPT;
	}
}

/* "X/Y" in hex at *p; moves *p past it. */
static int history_lsn(const char **p, const char *end, uint64_t *ret)
{
	uint64_t part[2] = {0, 0};

	for (int k = 0; k < 2; k++) {
		int nd = 0;

		for (; *p < end && nd < 9; (*p)++, nd++) {
			char c = **p;
			int v = c >= '0' && c <= '9'   ? c - '0'
				: c >= 'A' && c <= 'F' ? c - 'A' + 10
				: c >= 'a' && c <= 'f' ? c - 'a' + 10
						       : -1;
			if (v < 0)
				break;
			part[k] = part[k] << 4 | (uint64_t)v;
		}
		if (!nd || nd > 8)
			return -KL_ECORRUPT;
		if (!k && (*p >= end || *(*p)++ != '/'))
			return -KL_ECORRUPT;
	}
	*ret = part[0] << 32 | part[1];
	return 0;
}

int kl_pgm_history_parse(const char *p, size_t n, struct kl_pg_switch *v, size_t max, size_t *n_ret)
{
	const char *end = p + n;

	*n_ret = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		uint64_t tli = 0, lsn;
		int nd = 0;

		if (!eol)
			eol = end;
		while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if (p == eol || *p == '#') {
			p = eol + (eol < end);
			continue;
		}
		for (; p < eol && *p >= '0' && *p <= '9' && nd < 11; p++, nd++)
			tli = tli * 10 + (uint64_t)(*p - '0');
		if (!nd || nd > 10 || !tli || tli > UINT32_MAX || p >= eol ||
		    (*p != ' ' && *p != '\t'))
			return -KL_ECORRUPT;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (history_lsn(&p, eol, &lsn) < 0 || (p < eol && *p != ' ' && *p != '\t'))
			return -KL_ECORRUPT;
		if (*n_ret >= max ||
		    (*n_ret && (tli <= v[*n_ret - 1].tli || lsn < v[*n_ret - 1].end_lsn)))
			return -KL_ECORRUPT;
		v[*n_ret].tli = (uint32_t)tli;
		v[*n_ret].end_lsn = lsn;
		(*n_ret)++;
		p = eol + (eol < end);
	}
	return 0;
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int kl_pgm_walhdr_decode(const uint8_t *p, size_t n, struct kl_pgm_walhdr *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (n < 40 || !(get_le(p + 2, 2) & 0x0002)) /* XLP_LONG_HEADER */
		return -KL_ECORRUPT;
	ret->magic = (uint16_t)get_le(p, 2);
	ret->tli = (uint32_t)get_le(p + 4, 4);
	ret->pageaddr = get_le(p + 8, 8);
	ret->sysid = get_le(p + 24, 8);
	ret->seg_size = (uint32_t)get_le(p + 32, 4);
	ret->block_size = (uint32_t)get_le(p + 36, 4);
	return 0;
}

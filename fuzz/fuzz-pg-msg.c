/*
 * Fuzzes the decoders of the PostgreSQL replication messages
 * (src/db/pg-msg.c), which read what a database server sends: every input
 * goes to both the WAL stream's and the base backup's decoder. Oracles:
 * a message is accepted only with a known type (and a WAL segment's long
 * page header, which wal-push decodes, whenever 40 bytes have the flag); what the result points
 * to lies inside the message (names NUL-terminated there); the lengths
 * add up; a failure leaves no pointer behind.
 */
#include <stdlib.h>
#include <string.h>

#include "keel/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *data, size_t size, const void *p, size_t n)
{
	const uint8_t *b = p;

	if (b < data || b > data + size || n > (size_t)(data + size - b))
		abort();
}

static void check_stream(const uint8_t *data, size_t size)
{
	struct kl_pgm_stream m;
	int rc = kl_pgm_stream_decode(data, size, &m);

	if (m.type != (size ? data[0] : 0))
		abort();
	if (rc < 0) {
		if (rc != -KL_ECORRUPT || m.data || m.len)
			abort();
		return;
	}
	if (m.type == 'w') {
		if (!m.data || m.len + 25 != size)
			abort();
		inside(data, size, m.data, m.len);
	} else if (m.type != 'k' || size < 18 || m.data || m.len || m.reply != (data[17] != 0)) {
		abort();
	}
}

static void check_backup(const uint8_t *data, size_t size)
{
	struct kl_pgm_backup m;
	int rc = kl_pgm_backup_decode(data, size, &m);

	if (m.type != (size ? data[0] : 0))
		abort();
	if (rc < 0) {
		if (rc != -KL_ECORRUPT || m.data || m.len || m.name || m.location)
			abort();
		return;
	}
	switch (m.type) {
	case 'n':
		inside(data, size, m.name, strlen(m.name) + 1);
		inside(data, size, m.location, strlen(m.location) + 1);
		if (m.name != (const char *)data + 1 || m.location != m.name + strlen(m.name) + 1)
			abort();
		break;
	case 'd':
		if (m.len + 1 != size || m.data != data + 1)
			abort();
		inside(data, size, m.data, m.len);
		break;
	case 'p':
		if (size != 9)
			abort();
		break;
	case 'm':
		break;
	default:
		abort();
	}
}

/* A WAL segment's long page header (wal-push reads it from the file): the fields in place. */
static void check_walhdr(const uint8_t *data, size_t size)
{
	struct kl_pgm_walhdr h;
	int rc = kl_pgm_walhdr_decode(data, size, &h);
	bool ok = size >= 40 && (data[2] & 2);

	if ((rc == 0) != ok || (rc < 0 && rc != -KL_ECORRUPT))
		abort();
	if (rc == 0 && (h.pageaddr >> 56 != data[15] || (h.pageaddr & 0xff) != data[8] ||
			(h.sysid & 0xff) != data[24] || (h.seg_size >> 24) != data[35] ||
			(h.tli & 0xff) != data[4]))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_stream(data, size);
	check_backup(data, size);
	check_walhdr(data, size);
	return 0;
}

/*
 * Fuzzes the decoders of MariaDB binary log events (src/db/binlog.c):
 * what a server sends a replica, which keel stores byte for byte. The
 * input is a sequence of events, each preceded by its length (2 bytes,
 * little-endian), fed to a follower of "bin.000001" from offset 4.
 * Oracles: an appended event ends exactly where the follower says the
 * file now ends; offsets never go back within a file; a rotate's name is
 * a valid file name that encodes a number; the decoders agree with each
 * other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_binlog_follow f;
	struct kl_binlog_event ev = {0};
	char name[KL_BINLOG_NAME_MAX + 1];
	uint64_t pos;
	uint32_t no;
	uint8_t alg;

	if (kl_binlog_follow_init(&f, "bin.000001", KL_BINLOG_MAGIC_LEN) < 0)
		abort();
	while (size >= 2) {
		size_t n = (size_t)(data[0] | data[1] << 8);
		uint64_t before = f.have;
		int step;

		data += 2;
		size -= 2;
		if (n > size)
			n = size;
		step = kl_binlog_follow_step(&f, data, n, &ev);
		if (step >= 0 && (ev.size != n || n < KL_BINLOG_HDR))
			abort();
		if (step == KL_BINLOG_APPEND && (f.have != before + n || ev.log_pos != f.have))
			abort();
		if (step != KL_BINLOG_APPEND && f.have != before)
			abort();
		/* ev is the follower's only when it took the event (step >= 0) */
		if (kl_binlog_rotate_decode(data, n, name, sizeof(name), &pos) >= 0 &&
		    (!kl_db_binlog_name_valid(name) || (step >= 0 && ev.type != KL_BINLOG_ROTATE)))
			abort();
		if (kl_binlog_format_decode(data, n, &alg) >= 0 &&
		    (alg > 1 || data[4] != KL_BINLOG_FORMAT))
			abort();
		(void)kl_binlog_checksum_ok(data, n);
		if (step == KL_BINLOG_NEXT || (step == KL_BINLOG_APPEND && f.next[0])) {
			if (kl_binlog_file_number(f.next, &no) < 0)
				abort();
			snprintf(name, sizeof(name), "%s", f.next);
			if (kl_binlog_follow_init(&f, name, KL_BINLOG_MAGIC_LEN) < 0)
				abort();
		}
		data += n;
		size -= n;
	}
	return 0;
}

/*
 * The replication connection of `keel db stream mariadb://` (docs/DATABASES.md,
 * "MariaDB's binary log"): COM_BINLOG_DUMP through MariaDB Connector/C,
 * read by a thread of its own. libmariadb reads ahead into buffers of its
 * own, so polling its socket cannot tell whether an event is waiting;
 * a thread that blocks in the read and queues what arrives lets the
 * stream wake on a descriptor, store on its own clock and stop at once.
 *
 * The session asks for the events exactly as the files hold them: with
 * their checksums (@master_binlog_checksum), annotate-rows events and
 * GTID events not replaced by dummies for older replicas
 * (@mariadb_slave_capability = 4, BINLOG_SEND_ANNOTATE_ROWS_EVENT), and a
 * heartbeat while nothing happens, so a dead connection shows.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "maria-binlog.h"

/* after mysql.h, which they need */
#include <errmsg.h>
#include <mariadb_rpl.h>
#include <mysqld_error.h>

#define QUEUE_MAX ((size_t)64 << 20)

bool kl_mb_error_lost(unsigned e)
{
	/* gone, lost, cannot connect, killed or shut down: the server may come back */
	return e == 0 || e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST ||
	       e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR || e == ER_SERVER_SHUTDOWN ||
	       e == ER_CONNECTION_KILLED || e == ER_QUERY_INTERRUPTED || e == 2026 /* SSL */;
}

int kl_mb_file_name(const char *example, uint32_t no, char *buf, size_t size)
{
	const char *dot = strrchr(example, '.');
	int width, n;

	if (!dot)
		return -KL_ECORRUPT;
	width = (int)strlen(dot + 1); /* the server pads to 6 digits, and goes past them */
	n = snprintf(buf, size, "%.*s.%0*" PRIu32, (int)(dot - example), example, width, no);
	return n > 0 && (size_t)n < size && kl_db_binlog_name_valid(buf) ? 0 : -KL_ECORRUPT;
}

static void wake(struct kl_mb_feed *f)
{
	ssize_t w = write(f->wake[1], "", 1);

	(void)w; /* full: the stream is awake already */
}

static void *reader(void *arg)
{
	struct kl_mb_feed *f = arg;

	for (;;) {
		unsigned long n = mysql_net_read_packet(f->m);
		const uint8_t *p = f->m->net.read_pos;
		uint8_t len[4];
		int rc = 0;

		pthread_mutex_lock(&f->mu);
		if (n == packet_error || n == 0 || (p[0] == 0xfe && n < 8) || p[0] != 0) {
			f->done = true;
			f->err_no = n == packet_error || n == 0 ? mysql_errno(f->m) : 0;
			snprintf(f->err, sizeof(f->err), "%s",
				 n == packet_error || n == 0 ? mysql_error(f->m)
				 : p[0] == 0xfe		     ? "the server ended the binlog dump"
						: "unexpected packet in the binlog dump");
			if (n != packet_error && n && p[0] != 0 && p[0] != 0xfe)
				f->err_no = CR_MALFORMED_PACKET;
			pthread_mutex_unlock(&f->mu);
			wake(f);
			return NULL;
		}
		while (f->q.len > QUEUE_MAX && !f->quit)
			pthread_cond_wait(&f->room, &f->mu);
		f->last_ns = kl_time_mono_ns();
		len[0] = (uint8_t)(n - 1);
		len[1] = (uint8_t)((n - 1) >> 8);
		len[2] = (uint8_t)((n - 1) >> 16);
		len[3] = (uint8_t)((n - 1) >> 24);
		if (!f->quit) {
			rc = kl_buf_add(&f->q, len, 4);
			if (rc >= 0)
				rc = kl_buf_add(&f->q, p + 1, n - 1);
		}
		if (rc < 0) {
			f->done = true;
			f->err_no = CR_OUT_OF_MEMORY;
			snprintf(f->err, sizeof(f->err), "out of memory queueing an event");
		}
		pthread_mutex_unlock(&f->mu);
		wake(f);
		if (rc < 0)
			return NULL;
	}
}

static int session(struct kl_repo *r, MYSQL *m, const struct kl_mb_dump *d)
{
	char sql[160];

	snprintf(sql, sizeof(sql),
		 "SET @master_binlog_checksum = @@global.binlog_checksum, "
		 "@mariadb_slave_capability = 4, @master_heartbeat_period = %" PRIu64,
		 (uint64_t)d->heartbeat_ms * 1000000);
	if (mysql_query(m, sql))
		return kl_repo_fail(r, -KL_EDBSERVER, "cannot set up the replication session: %s",
				    mysql_error(m));
	return 0;
}

int kl_mb_feed_start(struct kl_repo *r, MYSQL *m, const struct kl_mb_dump *d, struct kl_mb_feed *f)
{
	MARIADB_RPL *rpl;
	int rc;

	memset(f, 0, sizeof(*f));
	f->m = m;
	f->wake[0] = f->wake[1] = -1;
	kl_buf_init(&f->q, QUEUE_MAX + KL_BINLOG_EVENT_MAX + 8);
	rc = session(r, m, d);
	if (rc < 0)
		return rc;
	rpl = mariadb_rpl_init_ex(m, MARIADB_RPL_VERSION);
	if (!rpl)
		return kl_repo_fail(r, -KL_EDBSERVER, "cannot start replication: %s",
				    mysql_error(m));
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, d->file, strlen(d->file));
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, (unsigned long)d->pos);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, d->server_id);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, MARIADB_RPL_BINLOG_SEND_ANNOTATE_ROWS);
	rc = mariadb_rpl_open(rpl)
		     ? kl_repo_fail(r, -KL_EDBSERVER, "cannot start the binlog dump of '%s': %s",
				    d->file, mysql_error(m))
		     : 0;
	mariadb_rpl_close(rpl); /* only the request's parameters: the connection stays */
	if (rc < 0)
		return rc;
	if (pipe2(f->wake, O_CLOEXEC | O_NONBLOCK) < 0)
		return kl_repo_fail(r, -errno, "pipe");
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->room, NULL);
	f->last_ns = kl_time_mono_ns();
	if (pthread_create(&f->th, NULL, reader, f)) {
		pthread_mutex_destroy(&f->mu);
		pthread_cond_destroy(&f->room);
		return kl_repo_fail(r, -EAGAIN, "cannot start the binlog reader");
	}
	f->running = true;
	return 0;
}

int kl_mb_feed_take(struct kl_mb_feed *f, struct kl_buf *out, bool *done_ret)
{
	uint8_t sink[256];
	int rc = 0;

	while (read(f->wake[0], sink, sizeof(sink)) > 0)
		;
	pthread_mutex_lock(&f->mu);
	if (f->q.len)
		rc = kl_buf_add(out, f->q.data, f->q.len);
	if (rc >= 0)
		kl_buf_clear(&f->q);
	*done_ret = f->done;
	pthread_cond_signal(&f->room);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void kl_mb_feed_stop(struct kl_mb_feed *f)
{
	if (f->running) {
		pthread_mutex_lock(&f->mu);
		f->quit = true;
		pthread_cond_signal(&f->room);
		pthread_mutex_unlock(&f->mu);
		/* a read blocked in libmariadb ends with an error */
		shutdown(mysql_get_socket(f->m), SHUT_RDWR);
		pthread_join(f->th, NULL);
		pthread_mutex_destroy(&f->mu);
		pthread_cond_destroy(&f->room);
		f->running = false;
	}
	if (f->wake[0] >= 0)
		close(f->wake[0]);
	if (f->wake[1] >= 0)
		close(f->wake[1]);
	f->wake[0] = f->wake[1] = -1;
	kl_buf_release(&f->q);
}

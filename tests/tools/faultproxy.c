/*
 * faultproxy: an HTTP/1.1 proxy on loopback that sits between keel and an
 * S3 server and breaks requests on purpose, so that tests can show what
 * keel does when the network or the service misbehaves.
 *
 *     faultproxy [--seed N] [--faults SPEC] [--slow-ms MS] [--burst N]
 *                [--max-consecutive N] [--log FILE] [--port-file FILE]
 *                LISTEN-PORT UPSTREAM-HOST:PORT
 *
 * SPEC is a comma-separated list of KIND=PROBABILITY (also read from the
 * environment variable FAULTPROXY_FAULTS). Each request draws once; the
 * kinds are tried in the order given. Kinds:
 *
 *   drop       forward the request, then close the connection without an
 *              answer (the server acted; the client never hears of it)
 *   reset-req  reset the connection halfway through the request body
 *              (the server never sees the request)
 *   reset      forward, send half the response body, then reset
 *   slowdown   answer 503 SlowDown (S3's XML error) without forwarding;
 *              the next --burst - 1 requests get the same (a burst)
 *   500        answer 500 InternalError without forwarding
 *   502        forward, then answer 502 Bad Gateway instead of the
 *              server's answer (the server acted)
 *   slow       forward, then wait --slow-ms before answering; longer than
 *              the client's timeout it becomes a stall
 *   truncate   forward, then send the server's head (its Content-Length)
 *              and only part of the body, and close the connection
 *   short      for 206 answers: send part of the body with a
 *              Content-Length that matches what is sent, the
 *              Content-Range left as the server wrote it (a broken
 *              middlebox); other answers pass unharmed
 *
 * A fault that does not fit a request (truncate without a body) becomes
 * drop. A request (method, target and range) is faulted at most
 * --max-consecutive times in a row (default: no limit), so that a client
 * with enough retries always gets through. Decisions come from a
 * SplitMix64 stream seeded with --seed and the request's number, so one
 * sequence of requests meets the same faults on every run.
 *
 * LISTEN-PORT 0 picks a free port; --port-file receives it. --log gets one
 * line per request: number, method, target, status, fault. Bodies are
 * held in memory whole (keel's are at most a pack, a few MiB in tests).
 * One thread per client connection, each with its own connection to the
 * upstream server, kept alive as the client's is.
 *
 * Test-only code: not part of libkeel.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (64u << 10)
#define BODY_MAX ((size_t)1 << 30)
#define TRACK_SLOTS (1u << 16)

enum fault {
	F_NONE,
	F_DROP,
	F_RESET_REQ,
	F_RESET,
	F_SLOWDOWN,
	F_500,
	F_502,
	F_SLOW,
	F_TRUNC,
	F_SHORT,
	F_N
};

static const char *const fault_names[F_N] = {"none", "drop", "reset-req", "reset",    "slowdown",
					     "500",  "502",  "slow",	  "truncate", "short"};

struct rule {
	enum fault f;
	double p;
};

struct proxy {
	struct rule rules[F_N];
	size_t n_rules;
	uint64_t seed;
	unsigned slow_ms, burst, max_consec;
	char up_host[256], up_port[16];
	FILE *log;

	pthread_mutex_t lock; /* guards everything below */
	uint64_t n_req;
	unsigned burst_left;
	uint64_t track_key[TRACK_SLOTS]; /* request identity -> faults in a row */
	unsigned track_n[TRACK_SLOTS];
	uint64_t count[F_N];
};

/* ---- small helpers -------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "faultproxy: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t fnv1a(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* close with RST instead of FIN */
static void reset_close(int fd)
{
	struct linger l = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* ---- buffered reading ----------------------------------------------------- */

struct conn {
	int fd;
	char buf[16384];
	size_t off, len;
};

static ssize_t conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->off == c->len)
		c->off = c->len = 0;
	do
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

/* Reads up to and including the blank line. Returns 1, 0 on EOF before any byte, -1. */
static int read_head(struct conn *c, char *out, size_t cap, size_t *len)
{
	size_t n = 0;

	for (;;) {
		while (c->off < c->len) {
			if (n + 1 >= cap)
				return -1;
			out[n++] = c->buf[c->off++];
			if (n >= 4 && !memcmp(out + n - 4, "\r\n\r\n", 4)) {
				out[n] = 0;
				*len = n;
				return 1;
			}
		}
		ssize_t r = conn_fill(c);

		if (r <= 0)
			return n == 0 && r == 0 ? 0 : -1;
	}
}

static int read_exact(struct conn *c, char *out, size_t n)
{
	while (n) {
		if (c->off == c->len && conn_fill(c) <= 0)
			return -1;
		size_t k = c->len - c->off < n ? c->len - c->off : n;

		memcpy(out, c->buf + c->off, k);
		c->off += k;
		out += k;
		n -= k;
	}
	return 0;
}

static int read_line(struct conn *c, char *out, size_t cap)
{
	size_t n = 0;

	for (;;) {
		if (c->off == c->len && conn_fill(c) <= 0)
			return -1;
		char ch = c->buf[c->off++];

		if (n + 1 >= cap)
			return -1;
		out[n++] = ch;
		if (ch == '\n') {
			out[n] = 0;
			return 0;
		}
	}
}

struct body {
	char *p;
	size_t len, cap;
};

static int body_add(struct body *b, const char *p, size_t n)
{
	if (n == 0)
		return 0; /* p may be NULL: an empty body never allocated */
	if (b->len + n > BODY_MAX)
		return -1;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		char *q;

		while (cap < b->len + n)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return -1;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static int read_body_len(struct conn *c, struct body *b, size_t n)
{
	char tmp[16384];

	while (n) {
		size_t k = n < sizeof(tmp) ? n : sizeof(tmp);

		if (read_exact(c, tmp, k) < 0 || body_add(b, tmp, k) < 0)
			return -1;
		n -= k;
	}
	return 0;
}

static int read_body_chunked(struct conn *c, struct body *b)
{
	char line[1024];

	for (;;) {
		char *end;
		unsigned long long n;

		if (read_line(c, line, sizeof(line)) < 0)
			return -1;
		errno = 0;
		n = strtoull(line, &end, 16);
		if (errno || end == line || n > BODY_MAX)
			return -1;
		if (n == 0)
			break;
		if (read_body_len(c, b, (size_t)n) < 0 || read_line(c, line, sizeof(line)) < 0)
			return -1;
	}
	/* trailers, up to the blank line */
	do
		if (read_line(c, line, sizeof(line)) < 0)
			return -1;
	while (strcmp(line, "\r\n") && strcmp(line, "\n"));
	return 0;
}

static int read_body_close(struct conn *c, struct body *b)
{
	for (;;) {
		if (c->off < c->len) {
			if (body_add(b, c->buf + c->off, c->len - c->off) < 0)
				return -1;
			c->off = c->len;
		}
		ssize_t r = conn_fill(c);

		if (r == 0)
			return 0;
		if (r < 0)
			return -1;
	}
}

/* ---- headers -------------------------------------------------------------- */

/* The value of header name in head (a whole HTTP head), into out; false if absent. */
static bool header(const char *head, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = strstr(head, "\r\n");

	while (p && p[2] != '\r') {
		const char *line = p + 2, *eol = strstr(line, "\r\n");

		if (!eol)
			break;
		if ((size_t)(eol - line) > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
			const char *v = line + nl + 1;
			size_t n;

			while (*v == ' ' || *v == '\t')
				v++;
			n = (size_t)(eol - v);
			while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			if (n >= cap)
				n = cap - 1;
			memcpy(out, v, n);
			out[n] = 0;
			return true;
		}
		p = eol;
	}
	return false;
}

/*
 * Copies head without the named headers (a NULL-terminated list), without
 * its final blank line, into out.
 */
static int strip_headers(const char *head, const char *const *drop, struct body *out)
{
	const char *p = head, *eol;

	while ((eol = strstr(p, "\r\n")) && eol != p) {
		bool keep = p == head;

		if (!keep) {
			keep = true;
			for (size_t i = 0; drop[i]; i++) {
				size_t nl = strlen(drop[i]);

				if ((size_t)(eol - p) > nl && p[nl] == ':' &&
				    !strncasecmp(p, drop[i], nl))
					keep = false;
			}
		}
		if (keep && body_add(out, p, (size_t)(eol - p) + 2) < 0)
			return -1;
		p = eol + 2;
	}
	return 0;
}

static int addf(struct body *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int addf(struct body *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	return body_add(b, tmp, (size_t)n);
}

/* ---- decisions ------------------------------------------------------------ */

static enum fault decide(struct proxy *px, const char *method, const char *target,
			 const char *range, uint64_t *num)
{
	/*
	 * The range is part of a request's identity: a client reads one pack
	 * with many ranged GETs at once, and another range's success must not
	 * reset the count of faults this one met.
	 */
	uint64_t id = fnv1a(range, fnv1a(target, fnv1a(method, 0xcbf29ce484222325ull))) | 1;
	size_t slot = (size_t)(id % TRACK_SLOTS), probes = 0;
	enum fault f = F_NONE;
	double u, acc = 0;

	pthread_mutex_lock(&px->lock);
	*num = ++px->n_req;
	u = (double)(splitmix64(px->seed ^ splitmix64(*num)) >> 11) * 0x1.0p-53;
	if (px->burst_left) {
		px->burst_left--;
		f = F_SLOWDOWN;
	} else {
		for (size_t i = 0; i < px->n_rules; i++) {
			acc += px->rules[i].p;
			if (u < acc) {
				f = px->rules[i].f;
				break;
			}
		}
		if (f == F_SLOWDOWN && px->burst > 1)
			px->burst_left = px->burst - 1;
	}
	/* the request's faults in a row, in an open-addressing table */
	while (px->track_key[slot] && px->track_key[slot] != id && probes++ < 64)
		slot = (slot + 1) % TRACK_SLOTS;
	if (px->track_key[slot] == id || !px->track_key[slot]) {
		px->track_key[slot] = id;
		if (f != F_NONE && px->max_consec && px->track_n[slot] >= px->max_consec)
			f = F_NONE;
		px->track_n[slot] = f == F_NONE ? 0 : px->track_n[slot] + 1;
	}
	pthread_mutex_unlock(&px->lock);
	return f;
}

static void note(struct proxy *px, uint64_t num, const char *method, const char *target, int status,
		 enum fault f)
{
	pthread_mutex_lock(&px->lock);
	px->count[f]++;
	if (px->log) {
		fprintf(px->log, "%llu %s %s %d %s\n", (unsigned long long)num, method, target,
			status, fault_names[f]);
		fflush(px->log);
	}
	pthread_mutex_unlock(&px->lock);
}

/* ---- upstream ------------------------------------------------------------- */

static int upstream_connect(struct proxy *px)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai, *a;
	int fd = -1, one = 1;

	if (getaddrinfo(px->up_host, px->up_port, &hints, &ai))
		return -1;
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		if (!connect(fd, a->ai_addr, a->ai_addrlen))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0) {
		struct timeval tv = {300, 0};

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

/* The upstream's answer: head (without its blank line) and body. */
struct answer {
	char head[HEAD_MAX];
	size_t head_len;
	int status;
	bool close; /* the upstream connection cannot be reused */
	struct body body;
};

static int read_answer(struct conn *up, bool is_head, struct answer *a)
{
	char v[256];

	for (;;) {
		int r = read_head(up, a->head, sizeof(a->head), &a->head_len);

		if (r <= 0)
			return -1;
		if (sscanf(a->head, "HTTP/1.%*d %d", &a->status) != 1)
			return -1;
		if (a->status >= 200 || a->status == 101)
			break; /* 1xx: interim, read the next */
	}
	a->close = strncmp(a->head, "HTTP/1.1", 8) != 0;
	if (header(a->head, "connection", v, sizeof(v)) && strcasestr(v, "close"))
		a->close = true;
	if (is_head || a->status == 204 || a->status == 304)
		return 0;
	if (header(a->head, "transfer-encoding", v, sizeof(v)) && strcasestr(v, "chunked"))
		return read_body_chunked(up, &a->body);
	if (header(a->head, "content-length", v, sizeof(v))) {
		char *end;
		unsigned long long n = strtoull(v, &end, 10);

		if (*end || n > BODY_MAX)
			return -1;
		return read_body_len(up, &a->body, (size_t)n);
	}
	a->close = true;
	return read_body_close(up, &a->body);
}

/* ---- one client connection -------------------------------------------------- */

static int send_error(int fd, bool is_head, int status, const char *reason, const char *code,
		      const char *msg)
{
	struct body b = {0};
	char xml[512];
	int n, r;

	n = snprintf(xml, sizeof(xml),
		     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
		     "<Message>%s</Message><RequestId>faultproxy</RequestId></Error>",
		     code, msg);
	r = addf(&b,
		 "HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
		 "Connection: keep-alive\r\n\r\n",
		 status, reason, n);
	if (r >= 0 && !is_head)
		r = body_add(&b, xml, (size_t)n);
	if (r >= 0)
		r = write_all(fd, b.p, b.len);
	free(b.p);
	return r;
}

struct client {
	struct proxy *px;
	int fd;
};

static const char *const req_drop[] = {"expect", "connection", "keep-alive", "proxy-connection",
				       NULL};
static const char *const resp_drop[] = {"transfer-encoding", "content-length", "connection",
					"keep-alive", NULL};

/*
 * Serves one request. Returns 0 to go on with the next on this
 * connection, 1 when the connection is done (closed or reset), -1 on a
 * failure (the caller closes).
 */
static int serve_one(struct proxy *px, struct conn *cl, struct conn *up, char *head)
{
	char method[16], target[8192], v[256];
	struct body req = {0}, out = {0};
	struct answer *a = NULL;
	char range[128];
	size_t head_len, clen = 0;
	enum fault f;
	uint64_t num;
	bool is_head, want_close, reused;
	int r, ret = -1, tries;

	r = read_head(cl, head, HEAD_MAX, &head_len);
	if (r <= 0)
		return 1;
	if (sscanf(head, "%15s %8191s HTTP/1.%*d", method, target) != 2)
		return -1;
	is_head = !strcmp(method, "HEAD");
	want_close = header(head, "connection", v, sizeof(v)) && strcasestr(v, "close");
	if (header(head, "transfer-encoding", v, sizeof(v)))
		return -1; /* keel always sends a Content-Length */
	if (header(head, "content-length", v, sizeof(v))) {
		char *end;
		unsigned long long n = strtoull(v, &end, 10);

		if (*end || n > BODY_MAX)
			return -1;
		clen = (size_t)n;
	}
	if (!header(head, "range", range, sizeof(range)))
		range[0] = 0;
	f = decide(px, method, target, range, &num);
	if (header(head, "expect", v, sizeof(v)) && !strcasecmp(v, "100-continue") &&
	    write_all(cl->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
		return -1;
	if (f == F_RESET_REQ) {
		/* half the body (none if there is none), then a reset */
		read_body_len(cl, &req, clen / 2);
		note(px, num, method, target, 0, f);
		free(req.p);
		reset_close(cl->fd);
		cl->fd = -1;
		return 1;
	}
	if (read_body_len(cl, &req, clen) < 0)
		goto out;
	if (f == F_SLOWDOWN || f == F_500) {
		r = f == F_500 ? send_error(cl->fd, is_head, 500, "Internal Server Error",
					    "InternalError",
					    "We encountered an internal error. Please try again.")
			       : send_error(cl->fd, is_head, 503, "Slow Down", "SlowDown",
					    "Please reduce your request rate.");
		note(px, num, method, target, f == F_500 ? 500 : 503, f);
		ret = r < 0 ? -1 : want_close;
		goto out;
	}

	/* forward; a kept-alive upstream connection may have gone stale: one new try */
	a = calloc(1, sizeof(*a));
	if (!a || strip_headers(head, req_drop, &out) < 0 ||
	    addf(&out, "Connection: keep-alive\r\n\r\n") < 0 || body_add(&out, req.p, req.len) < 0)
		goto out;
	for (tries = 0; tries < 2; tries++) {
		reused = up->fd >= 0;
		if (up->fd < 0) {
			up->fd = upstream_connect(px);
			up->off = up->len = 0;
			if (up->fd < 0)
				break;
		}
		if (write_all(up->fd, out.p, out.len) == 0 && read_answer(up, is_head, a) == 0)
			break;
		close(up->fd);
		up->fd = -1;
		free(a->body.p);
		memset(a, 0, sizeof(*a));
		if (!reused)
			break;
	}
	if (up->fd < 0 || !a->status) {
		note(px, num, method, target, 0, F_NONE);
		send_error(cl->fd, is_head, 502, "Bad Gateway", "BadGateway",
			   "faultproxy: no answer from the upstream server");
		ret = 1;
		goto out;
	}
	if (a->close) {
		close(up->fd);
		up->fd = -1;
	}

	/* faults that need a body fall back to drop without one */
	if ((f == F_RESET || f == F_TRUNC) && (is_head || a->body.len < 2))
		f = F_DROP;
	if (f == F_SHORT && (a->status != 206 || a->body.len < 2))
		f = F_NONE;
	note(px, num, method, target, a->status, f);
	switch (f) {
	case F_DROP:
		close(cl->fd);
		cl->fd = -1;
		ret = 1;
		goto out;
	case F_502:
		r = send_error(cl->fd, is_head, 502, "Bad Gateway", "BadGateway",
			       "faultproxy: the upstream answer was lost");
		ret = r < 0 ? -1 : want_close;
		goto out;
	case F_SLOW:
		sleep_ms(px->slow_ms);
		break;
	default:
		break;
	}

	/* the answer, with our own framing */
	out.len = 0;
	if (is_head) {
		if (body_add(&out, a->head, a->head_len) < 0)
			goto out;
	} else {
		size_t send_len = f == F_SHORT ? a->body.len - a->body.len / 3 : a->body.len;

		if (strip_headers(a->head, resp_drop, &out) < 0 ||
		    addf(&out, "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n", send_len) <
			    0)
			goto out;
	}
	if (f == F_RESET || f == F_TRUNC) {
		size_t part = f == F_RESET ? a->body.len / 2 : a->body.len - a->body.len / 3;

		if (write_all(cl->fd, out.p, out.len) == 0)
			write_all(cl->fd, a->body.p, part);
		if (f == F_RESET) {
			reset_close(cl->fd);
		} else {
			shutdown(cl->fd, SHUT_WR);
			close(cl->fd);
		}
		cl->fd = -1;
		ret = 1;
		goto out;
	}
	if (!is_head && body_add(&out, a->body.p,
				 f == F_SHORT ? a->body.len - a->body.len / 3 : a->body.len) < 0)
		goto out;
	ret = write_all(cl->fd, out.p, out.len) < 0 ? -1 : want_close;
out:
	if (a)
		free(a->body.p);
	free(a);
	free(req.p);
	free(out.p);
	return ret;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct conn *cl = calloc(1, sizeof(*cl)), *up = calloc(1, sizeof(*up));
	char *head = malloc(HEAD_MAX);
	int r = -1;

	if (cl && up && head) {
		cl->fd = c->fd;
		up->fd = -1;
		do
			r = serve_one(c->px, cl, up, head);
		while (r == 0);
	}
	if (cl && cl->fd >= 0)
		close(cl->fd);
	else if (!cl)
		close(c->fd);
	if (up && up->fd >= 0)
		close(up->fd);
	free(head);
	free(cl);
	free(up);
	free(c);
	return NULL;
}

/* ---- setup ---------------------------------------------------------------- */

static void parse_faults(struct proxy *px, const char *spec)
{
	char *copy = strdup(spec), *save = NULL, *item;
	double total = 0;

	if (!copy)
		die("out of memory");
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *end;
		enum fault f = F_NONE;
		double p;

		if (!eq)
			die("fault '%s' has no '=PROBABILITY'", item);
		*eq = 0;
		for (int i = 1; i < F_N; i++)
			if (!strcmp(item, fault_names[i]))
				f = (enum fault)i;
		if (f == F_NONE)
			die("unknown fault kind '%s'", item);
		errno = 0;
		p = strtod(eq + 1, &end);
		if (errno || *end || p < 0 || p > 1)
			die("probability '%s' of '%s' is not in 0..1", eq + 1, item);
		if (px->n_rules >= F_N)
			die("too many faults");
		px->rules[px->n_rules++] = (struct rule){f, p};
		total += p;
	}
	if (total > 1.0 + 1e-9)
		die("probabilities add up to more than 1");
	free(copy);
}

static unsigned parse_uint(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !*s || s[0] == '-' || v > 100000000ul)
		die("%s '%s' is not a number", what, s);
	return (unsigned)v;
}

static void usage(void)
{
	fprintf(stderr, "usage: faultproxy [--seed N] [--faults KIND=P,...] [--slow-ms MS] "
			"[--burst N]\n"
			"                  [--max-consecutive N] [--log FILE] [--port-file FILE]\n"
			"                  LISTEN-PORT UPSTREAM-HOST:PORT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"seed", required_argument, NULL, 's'},
		{"faults", required_argument, NULL, 'f'},
		{"slow-ms", required_argument, NULL, 'w'},
		{"burst", required_argument, NULL, 'b'},
		{"max-consecutive", required_argument, NULL, 'm'},
		{"log", required_argument, NULL, 'l'},
		{"port-file", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	static struct proxy px;
	const char *faults = getenv("FAULTPROXY_FAULTS"), *port_file = NULL, *colon;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int c, lfd, one = 1;

	px.slow_ms = 2000;
	px.burst = 1;
	pthread_mutex_init(&px.lock, NULL);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			px.seed = strtoull(optarg, NULL, 0);
			break;
		case 'f':
			faults = optarg;
			break;
		case 'w':
			px.slow_ms = parse_uint(optarg, "--slow-ms");
			break;
		case 'b':
			px.burst = parse_uint(optarg, "--burst");
			break;
		case 'm':
			px.max_consec = parse_uint(optarg, "--max-consecutive");
			break;
		case 'l':
			px.log = fopen(optarg, "a");
			if (!px.log)
				die("cannot open '%s': %s", optarg, strerror(errno));
			break;
		case 'p':
			port_file = optarg;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2)
		usage();
	if (faults && *faults)
		parse_faults(&px, faults);
	colon = strrchr(argv[optind + 1], ':');
	if (!colon || colon == argv[optind + 1] ||
	    (size_t)(colon - argv[optind + 1]) >= sizeof(px.up_host) ||
	    strlen(colon + 1) >= sizeof(px.up_port))
		die("upstream '%s' is not HOST:PORT", argv[optind + 1]);
	memcpy(px.up_host, argv[optind + 1], (size_t)(colon - argv[optind + 1]));
	memcpy(px.up_port, colon + 1, strlen(colon + 1) + 1);

	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)parse_uint(argv[optind], "LISTEN-PORT"));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
		die("cannot listen on 127.0.0.1:%s: %s", argv[optind], strerror(errno));
	if (port_file) {
		char tmp[4096];
		FILE *pf;

		/* written whole, then renamed: a reader never sees half a number */
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", port_file) >= sizeof(tmp))
			die("--port-file name too long");
		pf = fopen(tmp, "w");
		if (!pf || fprintf(pf, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(pf) != 0 ||
		    rename(tmp, port_file) < 0)
			die("cannot write '%s'", port_file);
	}
	for (;;) {
		struct client *cl;
		pthread_t t;
		pthread_attr_t attr;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			die("accept: %s", strerror(errno));
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		cl = malloc(sizeof(*cl));
		if (!cl) {
			close(fd);
			continue;
		}
		cl->px = &px;
		cl->fd = fd;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, client_main, cl)) {
			close(fd);
			free(cl);
		}
		pthread_attr_destroy(&attr);
	}
}

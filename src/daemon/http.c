/*
 * The daemon's HTTP listener (libmicrohttpd, driven by the daemon's own
 * poll loop through its epoll descriptor: no threads). GET and HEAD only;
 * what a path gives is the caller's handler's (metrics.c, page.c). With
 * a token, every request must carry it (Authorization: Bearer, or
 * ?token=); without one, only loopback addresses are accepted.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <string.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "keel/daemon.h"
#include "keel/fs.h"

struct kl_daemon_http {
	struct MHD_Daemon *mhd;
	kl_daemon_http_handler *handler;
	void *userdata;
	struct kl_buf token; /* empty: none */
};

/* Whether the request carries the token; compared in constant time. */
static bool authorized(const struct kl_daemon_http *h, struct MHD_Connection *conn)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	const char *q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
	const char *given = NULL;
	unsigned char diff = 0;
	size_t n;

	if (!h->token.len)
		return true;
	if (auth && !strncmp(auth, "Bearer ", 7))
		given = auth + 7;
	else if (q)
		given = q;
	if (!given)
		return false;
	n = strlen(given);
	for (size_t i = 0; i < h->token.len; i++)
		diff |= (unsigned char)(h->token.data[i] ^ (i < n ? (unsigned char)given[i] : 0));
	return !diff && n == h->token.len;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     const void *body, size_t n)
{
	struct MHD_Response *res =
		MHD_create_response_from_buffer(n, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result r;

	if (!res)
		return MHD_NO;
	MHD_add_response_header(res, "Content-Type", type);
	r = MHD_queue_response(conn, status, res);
	MHD_destroy_response(res);
	return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct kl_daemon_http *h = cls;
	static const char denied[] = "a token is needed (Authorization: Bearer, or ?token=)\n";
	_cleanup_buf_ struct kl_buf out = KL_BUF_INIT(1u << 22);
	const char *type = "text/plain";
	int status;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "", 0);
	if (!authorized(h, conn))
		return reply(conn, MHD_HTTP_UNAUTHORIZED, "text/plain", denied, sizeof(denied) - 1);
	status = h->handler(url, &out, &type, h->userdata);
	if (status < 0) {
		kl_buf_clear(&out);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	return reply(conn, (unsigned)status, type, out.data, out.len);
}

/* "127.0.0.1:9911", "[::1]:9911", "0.0.0.0:9911": beyond loopback only with a token */
static int resolve(const char *listen, bool token, struct sockaddr_storage *ss, socklen_t *len,
		   struct kl_err *err)
{
	_cleanup_free_ char *host = NULL;
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *ai;
	bool loopback;
	int r;

	if (!colon || colon == listen || !colon[1])
		return kl_fail(err, -KL_EUSAGE, "[http] listen '%s' is not HOST:PORT", listen);
	if (listen[0] == '[' && colon[-1] == ']')
		host = kl_strndup(listen + 1, (size_t)(colon - listen - 2));
	else
		host = kl_strndup(listen, (size_t)(colon - listen));
	if (!host)
		return -ENOMEM;
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r != 0)
		return kl_fail(err, -KL_EUSAGE, "[http] listen '%s': %s", listen, gai_strerror(r));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	if (ss->ss_family == AF_INET)
		loopback = (ntohl(((struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	else
		loopback = ss->ss_family == AF_INET6 &&
			   IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ss)->sin6_addr);
	if (!loopback && !token)
		return kl_fail(err, -KL_EUSAGE,
			       "[http] listen '%s': listening beyond loopback needs token-file",
			       listen);
	return 0;
}

/* The token: the file's first line, at least 16 bytes, not readable by others. */
static int read_token(const char *path, struct kl_buf *out, struct kl_err *err)
{
	struct stat sb;
	int r;

	r = kl_fs_read_all(AT_FDCWD, path, 4096, out);
	if (r < 0)
		return kl_fail(err, r == -ENOENT || r == -E2BIG ? -KL_EUSAGE : r,
			       "[http] token-file '%s': %s", path,
			       r == -E2BIG ? "larger than 4 KiB" : kl_strerror(r));
	if (stat(path, &sb) == 0 && (sb.st_mode & 0044))
		return kl_fail(err, -KL_EUSAGE,
			       "[http] token-file '%s' is readable by others: restrict it with "
			       "'chmod 600'",
			       path);
	for (size_t i = 0; i < out->len; i++)
		if (out->data[i] == '\n' || out->data[i] == '\r') {
			out->len = i;
			break;
		}
	for (size_t i = 0; i < out->len; i++)
		if (out->data[i] <= ' ' || out->data[i] > '~')
			return kl_fail(err, -KL_EUSAGE,
				       "[http] token-file '%s': the token must be printable ASCII "
				       "without blanks",
				       path);
	if (out->len < 16)
		return kl_fail(err, -KL_EUSAGE,
			       "[http] token-file '%s': the token is shorter than 16 characters",
			       path);
	return 0;
}

int kl_daemon_http_start(const char *listen, const char *token_file,
			 kl_daemon_http_handler *handler, void *userdata,
			 struct kl_daemon_http **ret, struct kl_err *err)
{
	struct kl_daemon_http *h;
	struct sockaddr_storage ss;
	socklen_t len;
	int r;

	*ret = NULL;
	r = resolve(listen, token_file != NULL, &ss, &len, err);
	if (r < 0)
		return r;
	h = kl_calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->token = (struct kl_buf)KL_BUF_INIT(4096);
	if (token_file) {
		r = read_token(token_file, &h->token, err);
		if (r < 0) {
			kl_buf_release(&h->token);
			kl_free(h);
			return r;
		}
	}
	h->handler = handler;
	h->userdata = userdata;
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0,
				  NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, &ss,
				  MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT,
				  10u, MHD_OPTION_END);
	if (!h->mhd) {
		sodium_memzero(h->token.data, h->token.len);
		kl_buf_release(&h->token);
		kl_free(h);
		return kl_fail(err, -EADDRINUSE, "cannot listen on '%s'", listen);
	}
	*ret = h;
	return 0;
}

int kl_daemon_http_fd(const struct kl_daemon_http *h)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);

	return i ? i->epoll_fd : -1;
}

int kl_daemon_http_timeout_ms(const struct kl_daemon_http *h)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (MHD_get_timeout(h->mhd, &t) != MHD_YES)
		return -1;
	return t > 60000 ? 60000 : (int)t;
}

void kl_daemon_http_run(struct kl_daemon_http *h)
{
	MHD_run(h->mhd);
}

void kl_daemon_http_free(struct kl_daemon_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);
	sodium_memzero(h->token.data, h->token.len);
	kl_buf_release(&h->token);
	kl_free(h);
}
